"""Slack reporting: what to say (``render``), when to say it (``pipeline``), saying it (``slack``).

- :mod:`sanvi_ops.core.notify.render`: pure functions building the Block Kit run summary and the
  guide's ``[INCIDENT]`` / ``[UPDATE]`` / ``[RESOLVED]`` templates and the task-failure message.
- :mod:`sanvi_ops.core.notify.pipeline`: ``process_run`` (record task), ``process_failure`` (failure
  callback) and ``process_deadline_miss`` (deadline alert callback) write results, incidents and
  outbox rows to the results store, honouring silences (:mod:`sanvi_ops.core.silences`); escalations
  and due updates of open incidents are :mod:`sanvi_ops.core.escalation` (run by the watchdog DAG).
- :mod:`sanvi_ops.core.notify.slack`: ``deliver_pending`` sends the outbox with ``slack_sdk``
  (429 ``Retry-After``, bounded retries, ordered, never twice at once).

Importing this package imports nothing heavy; ``slack_sdk`` is only loaded with ``notify.slack``.
"""
