"""The configuration backup job (``dags/backups/configuration_backup.py``): the guide's
"Configuration — after changes — 90 days — S3 + version control" row."""
