"""Slack: can the notifier post? ``auth.test`` with the connection's token.

One result, ``slack.auth``: ``ok`` naming the workspace and bot user; ``error`` when Slack
refuses the token (``invalid_auth``, ``token_revoked``, ...) or cannot be reached, naming the
reason. The check needs no scope and posts nothing. It takes a ready ``slack_sdk`` ``WebClient``
(the glue builds it from the Slack connection); "no Slack connection" is the glue's result
(``warning``, not configured), since nothing here reads Airflow.
"""

from __future__ import annotations

from typing import Any

from sanvi_ops.core.results import CheckResult, Status

__all__ = ["check_slack_auth"]


def check_slack_auth(client: Any, *, conn_id: str = "", check: str = "slack.auth") -> CheckResult:
    """``auth.test`` through ``client``; the token never appears in the result."""
    from slack_sdk.errors import SlackApiError, SlackClientError

    where = f" (connection {conn_id!r})" if conn_id else ""
    try:
        resp = client.auth_test()
    except SlackApiError as exc:
        code = str((exc.response.data or {}).get("error") if exc.response is not None else "") or "unknown"
        status = exc.response.status_code if exc.response is not None else None
        return CheckResult(
            check=check,
            status=Status.ERROR,
            summary=f"Slack refused auth.test{where}: {code}; nothing can be posted until the token is fixed",
            details={"error": code, "http_status": status},
            component="slack",
        )
    except (SlackClientError, OSError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return CheckResult(
            check=check,
            status=Status.ERROR,
            summary=f"Slack could not be reached{where}: {type(exc).__name__}: {reason[:200]}",
            details={"error": type(exc).__name__},
            component="slack",
        )
    data = resp.data if hasattr(resp, "data") else dict(resp)
    team, user = data.get("team") or "?", data.get("user") or "?"
    return CheckResult(
        check=check,
        status=Status.OK,
        summary=f"Slack token works: workspace {team}, bot user {user}",
        details={"team": team, "user": user, "url": data.get("url")},
        component="slack",
    )
