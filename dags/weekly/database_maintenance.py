"""
# Database Maintenance (weekly, Wednesday 04:00)

*The guide: "Run VACUUM ANALYZE on PostgreSQL" — DBA.*

`vacuum_analyze` runs `VACUUM (ANALYZE, SKIP_LOCKED)` on the application database
(`sanvi_app_db`), table by table, never `FULL` (no table is ever rewritten or locked against
reads and writes):

- **Which tables**: by default only those that need it — dead tuples over the autovacuum
  threshold (`autovacuum_vacuum_threshold + scale_factor × reltuples`, per-table settings
  honoured), changes since the last ANALYZE over its threshold, or a transaction-ID age over the
  wraparound warning level. Most urgent first; the least recently vacuumed first among equals.
- **How**: `vacuum.parallelism` tables at once (default 2), each on its own connection, inside
  the Airflow pool `vacuum.pool` (`sanvi_db_heavy`) so no other heavy database work overlaps.
  Per table `lock_timeout` and `statement_timeout`; the whole run has a time box, cut to the end
  of the maintenance window.
- **When**: only inside `vacuum.window` (Wednesday 03:00–06:00 in the config's time zone);
  outside it the run refuses (a `skipped` result) unless triggered with
  `force_outside_window: true`.

Trigger Params: `mode` = `needed` (default) | `all` | `tables` (with `tables: ["schema.table"]`)
| `dry_run` (reports the plan and changes nothing; allowed any time).

Then `record` stores one result per table (dead tuples before/after, duration, skipped or timed
out), a result per table near transaction-ID wraparound (`age(relfrozenxid)` > 50 % of
`autovacuum_freeze_max_age` warning, > 80 % critical) and the `vacuum.run` summary naming the
worst tables; `notify` posts it to Slack.

## When it is not green
1. **skipped (locked)**: another session held a conflicting lock (a migration, `LOCK TABLE`,
   a long `ALTER`). Find it: `SELECT pid, query FROM pg_stat_activity WHERE wait_event_type = 'Lock'
   OR pid IN (SELECT pid FROM pg_locks WHERE relation = 'schema.table'::regclass)`. Re-run later
   with `mode: tables`.
2. **timed out**: the table is bigger than `vacuum.statement_timeout` allows; vacuum it alone
   with `mode: tables` and a longer timeout, or let autovacuum catch up (raise its cost limit).
3. **not run**: the time box ended first; the tables are listed in the `vacuum.run` result.
4. **wraparound warning/critical**: run `VACUUM (FREEZE, VERBOSE) schema.table` in a quiet hour
   and find what holds the xmin horizon back (`pg_stat_activity.backend_xmin`, replication slots,
   prepared transactions).
5. **refused**: the run started outside the window (queued too long in the pool?). Trigger it
   again inside the window, or with `force_outside_window: true` if the load allows.
6. **error, permission denied**: the `sanvi_app_db` role may not vacuum that table; make it the
   owner, or `GRANT pg_maintain TO <role>` (PostgreSQL 17+).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, get_current_context, task

from sanvi_ops.config import load_config
from sanvi_ops.glue.frame import maintenance_dag
from sanvi_ops.glue.publish import publish


@maintenance_dag(
    __file__,
    __doc__,
    params={
        "mode": Param(
            "needed",
            type="string",
            enum=["needed", "all", "tables", "dry_run"],
            title="Mode",
            description="needed: only tables over a threshold; all; tables: the list below; "
            "dry_run: report the plan, change nothing",
        ),
        "tables": Param(
            [],
            type="array",
            items={"type": "string"},
            title="Tables",
            description="schema.table names for mode 'tables' (or to plan in a dry run)",
        ),
        "force_outside_window": Param(
            False,
            type="boolean",
            title="Run outside the maintenance window",
            description="Vacuum even though it is outside vacuum.window (the load is yours to judge)",
        ),
    },
)
def database_maintenance() -> None:
    @task(pool=load_config().vacuum.pool)
    def vacuum_analyze() -> list[dict[str, Any]]:
        """VACUUM (ANALYZE, SKIP_LOCKED) the tables that need it, N at once, within the time box."""
        from sanvi_ops.glue import vacuum_tasks

        return vacuum_tasks.vacuum_analyze(dict(get_current_context()["params"]))

    publish(vacuum_analyze())


database_maintenance()
