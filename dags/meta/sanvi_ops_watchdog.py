"""
# Sanvi Ops Watchdog (every 15 minutes)

*Not a task of the guide: it watches the platform that runs them.*

| task | what |
|---|---|
| `ping_heartbeat` | requests the dead man's switch URL of the `sanvi_heartbeat` connection (healthchecks.io style) and records a heartbeat row in the results store |
| `sweep_incidents` | escalates unacknowledged incidents still open after the guide's "Escalate After" (on-call → team lead → CTO, once per level), resolves those their DAG no longer reports, posts the weekly P4 summary |
| `flush_outbox` | sends every pending Slack message, so one Slack refused earlier goes out within minutes |

The outside monitor expects a ping every 15 minutes (set its period to 15 min and a grace time
of about 10 min). When the scheduler, the workers or the metadata database die, the pings stop
and **the outside monitor alerts**: Airflow cannot report its own death.

No summary is posted for a watchdog run (it runs 96 times a day); its heartbeats are in the
results store (table `heartbeats`) and on the Maintenance page.

## When it is red
1. `ping_heartbeat` failed: the monitor's URL did not answer 2xx. Check the `sanvi_heartbeat`
   connection (host = the full ping URL) and the worker's outbound access; the outside monitor
   will alert soon if it stays red.
2. `sweep_incidents` / `flush_outbox` failed: the results store (`sanvi_ops_store`) or Slack is
   unreachable; the log names which. Messages stay in the outbox and are sent by the next run.
3. The outside monitor alerted but this DAG looks fine: look at its last runs' times; a gap
   means the scheduler stopped (check the scheduler's health, `airflow jobs check`).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import TriggerRule, get_current_context, task

from sanvi_ops.airflow_kit.frame import maintenance_dag


@maintenance_dag(__file__, __doc__)
def sanvi_ops_watchdog() -> None:
    @task
    def ping_heartbeat() -> dict[str, Any]:
        """Ping the outside monitor (dead man's switch) and record the heartbeat in the store."""
        from sanvi_ops.tasks.sanvi_ops_watchdog import airflow_tasks as watchdog_tasks

        dag_run = get_current_context()["dag_run"]
        return watchdog_tasks.ping_heartbeat(dag_run.dag_id, dag_run.run_id)

    @task
    def sweep_incidents() -> dict[str, Any]:
        """Escalate unacknowledged incidents past "Escalate After"; resolve stale ones; weekly P4 summary."""
        from sanvi_ops.tasks.sanvi_ops_watchdog import airflow_tasks as watchdog_tasks

        dag_run = get_current_context()["dag_run"]
        return watchdog_tasks.sweep_incidents(dag_run.dag_id, dag_run.run_id)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def flush_outbox() -> dict[str, Any]:
        """Deliver everything pending in the outbox (also what earlier runs could not send)."""
        from sanvi_ops.tasks.sanvi_ops_watchdog import airflow_tasks as watchdog_tasks

        return watchdog_tasks.flush_outbox(get_current_context()["dag_run"].dag_id)

    [ping_heartbeat(), sweep_incidents()] >> flush_outbox()


sanvi_ops_watchdog()
