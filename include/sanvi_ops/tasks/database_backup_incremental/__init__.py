"""``database_backup_incremental``: the hourly incremental backup (``dags/backups/``).

It runs the same task body as the daily full backup, with ``kind="incremental"``:
:func:`sanvi_ops.tasks.database_backup_full.airflow_tasks.take_backup`, on the engine in
:mod:`sanvi_ops.core.backups` (each incremental is a ``pg_basebackup --incremental`` against the
previous backup's manifest). Its settings are the backup DAGs' shared ``database_backups`` section.
"""
