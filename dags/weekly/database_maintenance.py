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
- **How**: `tasks.database_maintenance.settings.parallelism` tables at once (default 2), each on its own connection, inside
  the Airflow pool `tasks.database_maintenance.settings.pool` (`sanvi_db_heavy`) so no other heavy database work overlaps.
  Per table `lock_timeout` and `statement_timeout`; the whole run has a time box, cut to the end
  of the maintenance window.
- **When**: the scheduled run inside `tasks.database_maintenance.settings.window` (Wed 03:00–06:00 in the config's
  time zone); a scheduled run that starts outside it (queued too long) refuses with a `skipped`
  result.

## Manual runs and approvals
`decide_run` applies the guide's deployment-window rules (`tasks.database_maintenance.approval`:
the production database) to the run, before anything touches the database:

| run | what happens |
|---|---|
| `dry_run: yes` | dry run: reports the plan, changes nothing (any time) |
| scheduled | vacuums (inside its window) |
| manual, inside `tasks.database_maintenance.settings.window` or the production deployment window (Tue & Thu 22:00–02:00) | vacuums |
| manual, outside both, `dry_run: auto` (the default) | **dry run** |
| manual, outside both, `dry_run: no` | waits for `approve_product_owner` **and** `approve_cto` (the guide: "Product Owner & CTO"); both approve → vacuums; one rejects or the deadline (`tasks.database_maintenance.approval.deadline`, 4 h) passes → refused, nothing vacuumed |

The approvers are mentioned in Slack with a link; they answer under **Required actions** in the
Airflow UI (Approve / Reject and a comment). Every request and answer is stored (`signoffs`).

Trigger Params: `mode` = `needed` (default) | `all` | `tables` (with `tables: ["schema.table"]`),
`dry_run` = `auto` (default) | `yes` | `no`, `emergency` (an urgent change outside the windows),
`reason` (why, for the change record).

## Change record
Every run that vacuums leaves a change record (`record_change`, after `record`): **standard**
(scheduled, or by hand inside a window), **normal** (approved outside the windows) or
**emergency** (`emergency: true`). For an emergency, `request_review` triggers the `change_review`
DAG, whose run asks the DBA team for the post-implementation review (due `change_management.pir_due`,
5 d; unanswered, escalated to the team lead); this run does not wait for it. If `request_review`
fails with "Dag change_review is paused": unpause `change_review` and clear the task.
See docs/operations.md, "Change records".

Then `record` stores one result per table (dead tuples before/after, duration, skipped or timed
out), a result per table near transaction-ID wraparound (`age(relfrozenxid)` > 50 % of
`autovacuum_freeze_max_age` warning, > 80 % critical) and the `vacuum.run` summary naming the
worst tables; `notify` posts it to Slack.

## When it is not green
1. **skipped (locked)**: another session held a conflicting lock (a migration, `LOCK TABLE`,
   a long `ALTER`). Find it: `SELECT pid, query FROM pg_stat_activity WHERE wait_event_type = 'Lock'
   OR pid IN (SELECT pid FROM pg_locks WHERE relation = 'schema.table'::regclass)`. Re-run later
   with `mode: tables`.
2. **timed out**: the table is bigger than `tasks.database_maintenance.settings.statement_timeout` allows; vacuum it alone
   with `mode: tables` and a longer timeout, or let autovacuum catch up (raise its cost limit).
3. **not run**: the time box ended first; the tables are listed in the `vacuum.run` result.
4. **wraparound warning/critical**: run `VACUUM (FREEZE, VERBOSE) schema.table` in a quiet hour
   and find what holds the xmin horizon back (`pg_stat_activity.backend_xmin`, replication slots,
   prepared transactions).
5. **refused**: the scheduled run started outside the window (queued too long in the pool?), or
   an approval was rejected or not answered in time (the summary names who). Trigger it again
   inside the window, or with `dry_run: no` and ask the approvers to answer in time.
6. **error, permission denied**: the `sanvi_app_db` role may not vacuum that table; make it the
   owner, or `GRANT pg_maintain TO <role>` (PostgreSQL 17+).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, get_current_context, task

from sanvi_ops.airflow_kit.approval import approval_gate, dry_run_param, run_policy
from sanvi_ops.airflow_kit.changes import change_params
from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.airflow_kit.params import string_list_param
from sanvi_ops.airflow_kit.publish import publish
from sanvi_ops.core.config import load_config


@maintenance_dag(
    __file__,
    __doc__,
    params={
        "mode": Param(
            "needed",
            type="string",
            enum=["needed", "all", "tables"],
            title="Mode",
            description="needed: only tables over a threshold; all: every table; tables: the list below",
        ),
        # Optional in the form (a null type): only mode 'tables' needs it, and the task says so
        # (an error result naming the Param) when that mode comes without tables.
        "tables": string_list_param(
            title="Tables",
            description="Only for mode 'tables' (or to plan in a dry run): schema.table names. "
            "Leave empty for modes 'needed' and 'all'.",
        ),
        "dry_run": dry_run_param(),
        **change_params(),
    },
)
def database_maintenance() -> None:
    gate = approval_gate(maintenance_window=lambda cfg: cfg.tasks.database_maintenance.settings.window)

    @task(pool=load_config().tasks.database_maintenance.settings.pool, trigger_rule="none_failed")
    def vacuum_analyze() -> list[dict[str, Any]]:
        """VACUUM (ANALYZE, SKIP_LOCKED) the tables that need it, N at once, within the time box."""
        from sanvi_ops.tasks.database_maintenance import airflow_tasks as vacuum_tasks

        context = get_current_context()
        return vacuum_tasks.vacuum_analyze(dict(context["params"]), policy=run_policy(context))

    vacuumed = vacuum_analyze()
    gate >> vacuumed
    publish(vacuumed, changes=True)


database_maintenance()
