"""Slack reporting: what to say (``render``), when to say it (``pipeline``), saying it (``slack``).

- :mod:`sanvi_ops.notify.render`: pure functions building the Block Kit run summary and the
  guide's ``[INCIDENT]`` / ``[UPDATE]`` / ``[RESOLVED]`` templates and the task-failure message.
- :mod:`sanvi_ops.notify.pipeline`: ``process_run`` (record task) and ``process_failure`` (failure
  callback) write results, incidents and outbox rows to the results store.
- :mod:`sanvi_ops.notify.slack`: ``deliver_pending`` sends the outbox with ``slack_sdk``
  (429 ``Retry-After``, bounded retries, ordered, never twice at once).

Importing this package imports nothing heavy; ``slack_sdk`` is only loaded with ``notify.slack``.
"""
