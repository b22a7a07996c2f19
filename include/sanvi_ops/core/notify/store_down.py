"""When the results store is down: announce the run anyway, keep it in a spool, replay it later.

The ``record`` task normally writes results, incidents and outbox rows to the store before
anything is announced (:mod:`sanvi_ops.core.notify.pipeline`). When the store cannot be reached, that
order would lose the run: no results, no incident, and a P1 nobody hears about. Instead:

1. :func:`spool_run` writes the run (its results, the time it was detected, the store's error)
   to a :class:`Spool`, a durable place outside the store that every worker reads (the glue uses
   Airflow Variables, see :mod:`sanvi_ops.airflow_kit.spool`). A retried task finds its entry again.
2. :func:`announce` posts straight to Slack what the run found, marked "not recorded: store
   down": one ``[INCIDENT]`` per critical result (incident channel, on-call mention; the store
   numbers incidents, so it has no ``#id`` yet) and the run summary. Each post is exactly-once
   like the outbox's (:mod:`sanvi_ops.core.notify.slack`): its idempotency key and state are saved in
   the spool *before* the post, and a post whose answer was lost is looked up in the channel
   before it is tried again. Silences live in the store and cannot be read: the announcement is
   made regardless (a silenced check would only be announced during an outage).
3. :func:`replay` (the watchdog, and the ``record`` task of any DAG's next run, before its own
   run) records each spooled run with :func:`~sanvi_ops.core.notify.pipeline.process_run` at its
   detection time, so results and incidents carry the original time (``opened_at``), then
   attaches the direct posts to the outbox rows they stand for (marked sent with their ``ts``,
   so the ``[INCIDENT]`` is not announced a second time and ``[RESOLVED]`` lands in its thread),
   and deletes the entry. Replay holds the outbox flush lock, so no flusher posts a row in the
   moment between its enqueueing and its adoption.

No Airflow import here: the spool is a small protocol the glue implements.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

from sanvi_ops.core.notify import render
from sanvi_ops.core.results import CheckResult, Status

if TYPE_CHECKING:
    from sanvi_ops.core.notify.pipeline import ConfigLike
    from sanvi_ops.core.notify.slack import Posted, SlackSender
    from sanvi_ops.core.store import ResultStore

log = logging.getLogger(__name__)

SPOOL_VERSION: Final = 1
#: What every direct post says about itself.
NOT_RECORDED: Final = "not recorded: store down"
#: How long replay waits for a running flush to finish before leaving the spool for later.
REPLAY_LOCK_WAIT_SECONDS: Final = 30.0


class Spool(Protocol):
    """Durable key → JSON document storage shared by every worker (see the module docstring)."""

    def save(self, key: str, entry: dict[str, Any]) -> None: ...
    def load(self, key: str) -> dict[str, Any] | None: ...
    def load_all(self) -> dict[str, dict[str, Any]]: ...
    def delete(self, key: str) -> None: ...


@dataclass
class SpoolPost:
    """One direct post of a spooled run and how far it got.

    ``state``: ``pending`` (not tried), ``sending`` (tried, outcome unknown: look it up first),
    ``sent`` (``ts``/``channel_id`` known) or ``failed`` (Slack certainly did not take it; the
    outbox sends the regular message after the replay).
    """

    role: str  # "summary" or "incident:<check>"
    channel: str
    text: str
    blocks: list[dict[str, Any]]
    key: str = field(default_factory=lambda: f"sanvi-{uuid.uuid4().hex}")
    state: str = "pending"
    attempt_at: str | None = None
    ts: str | None = None
    channel_id: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class SpooledRun:
    """A run the store could not take, as kept in the spool."""

    dag_id: str
    run_id: str
    logical_date: datetime | None
    detected_at: datetime
    results: list[CheckResult]
    run_url: str | None
    store_error: str
    posts: list[SpoolPost] = field(default_factory=list)

    @property
    def spool_key(self) -> str:
        return spool_key(self.dag_id, self.run_id)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": SPOOL_VERSION,
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "logical_date": self.logical_date.isoformat() if self.logical_date else None,
            "detected_at": self.detected_at.isoformat(),
            "results": [r.to_dict() for r in self.results],
            "run_url": self.run_url,
            "store_error": self.store_error,
            "posts": [p.as_dict() for p in self.posts],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SpooledRun:
        """Parse a spool entry; :class:`ValueError` naming what is wrong (the spool is shared state)."""
        try:
            if data.get("version") != SPOOL_VERSION:
                raise ValueError(f"version {data.get('version')!r} (expected {SPOOL_VERSION})")
            logical = data.get("logical_date")
            detected = datetime.fromisoformat(str(data["detected_at"]))
            if detected.tzinfo is None:
                raise ValueError("detected_at has no time zone")
            return cls(
                dag_id=str(data["dag_id"]),
                run_id=str(data["run_id"]),
                logical_date=datetime.fromisoformat(str(logical)) if logical else None,
                detected_at=detected,
                results=[CheckResult.from_dict(dict(r)) for r in data["results"]],
                run_url=str(data["run_url"]) if data.get("run_url") else None,
                store_error=str(data.get("store_error") or ""),
                posts=[
                    SpoolPost(**{k: p.get(k) for k in SpoolPost.__dataclass_fields__ if k in p})
                    for p in data.get("posts") or []
                ],  # fmt: skip
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"spool entry is malformed: {type(exc).__name__}: {exc}") from None


def spool_key(dag_id: str, run_id: str) -> str:
    """A key made only of the characters Airflow allows in a Variable key (run ids hold ``:+``)."""
    import hashlib
    import re

    safe_dag = re.sub(r"[^A-Za-z0-9_-]", "_", dag_id)[:120]
    digest = hashlib.sha256(f"{dag_id}\0{run_id}".encode()).hexdigest()[:20]
    return f"{safe_dag}.{digest}"


# ----------------------------------------------------------------------------- spool + announce


def spool_run(
    spool: Spool,
    cfg: ConfigLike,
    dag_id: str,
    run_id: str,
    logical_date: datetime | None,
    results: Sequence[CheckResult],
    run_url: str | None,
    *,
    detected_at: datetime,
    store_error: str,
) -> SpooledRun:
    """Keep the run in the spool (and return it). A run already spooled (a retried task) keeps its
    entry: its posts' keys and states are what makes them exactly-once."""
    existing = spool.load(spool_key(dag_id, run_id))
    if existing is not None:
        try:
            return SpooledRun.from_dict(existing)
        except ValueError:
            log.exception("spooled run %s %s unreadable: spooling it afresh", dag_id, run_id)
    entry = SpooledRun(
        dag_id=dag_id,
        run_id=run_id,
        logical_date=logical_date,
        detected_at=detected_at,
        results=list(results),
        run_url=run_url,
        store_error=store_error,
        posts=_posts(cfg, dag_id, run_id, list(results), run_url, detected_at, store_error),
    )
    spool.save(entry.spool_key, entry.as_dict())
    log.warning(
        "%s %s: results store down (%s); run kept in the spool as %s until it returns",
        dag_id, run_id, store_error, entry.spool_key,
    )  # fmt: skip
    return entry


def _posts(
    cfg: ConfigLike,
    dag_id: str,
    run_id: str,
    results: list[CheckResult],
    run_url: str | None,
    now: datetime,
    store_error: str,
) -> list[SpoolPost]:
    from sanvi_ops.core.notify.pipeline import (
        DEFAULT_INCIDENT_SEVERITY,
        _impact,
        _service,
        _severity,
        _task_info,
    )

    local_now = now.astimezone(_zone(cfg.timezone))
    posts: list[SpoolPost] = []
    for result in results:
        if result.status is not Status.CRITICAL:
            continue
        level = result.severity or DEFAULT_INCIDENT_SEVERITY
        severity = _severity(cfg, level)
        text, blocks = render.incident_message(
            f"({NOT_RECORDED})",
            level,
            _service(result),
            result.summary,
            _impact(result, severity),
            now=local_now,
            update_every=severity.update_every,
            on_call=cfg.on_call.on_call_at(local_now),
            run_url=run_url,
        )
        posts.append(SpoolPost(f"incident:{result.check}", cfg.slack.incident_channel, text, blocks))
    title, team = _task_info(cfg, dag_id)
    text, blocks = render.summary_message(dag_id, run_id, title, team, results, run_url)
    note = (
        f":floppy_disk: *Not recorded: store down.* {render.escape(render.clean(store_error, 300))}. "
        "The run is kept in Airflow and recorded (incidents with their original time) when the "
        "results store is back."
    )
    blocks = [*blocks[:1], {"type": "section", "text": {"type": "mrkdwn", "text": note}}, *blocks[1:]]
    if len(blocks) > render.MAX_BLOCKS:  # a summary already at Slack's limit: drop a result section
        del blocks[-2]
    posts.append(SpoolPost("summary", cfg.slack.channel, f"{text}\n({NOT_RECORDED})", blocks))
    return posts


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def announce(spool: Spool, entry: SpooledRun, sender: SlackSender | None) -> list[str]:
    """Post the entry's direct messages that are not out yet, each exactly once; returns one line
    per post saying what happened. Never raises for Slack's failures (they are kept in the entry)."""
    from sanvi_ops.core.notify.slack import SlackDeliveryError

    if sender is None:
        return [f"{p.role}: no Slack connection; kept in the spool" for p in entry.posts if p.state != "sent"]
    lines = []
    for post in entry.posts:
        if post.state == "sent":
            continue
        try:
            found = _find(sender, post) if post.state == "sending" else None
            posted = found or _post(spool, entry, sender, post)
        except SlackDeliveryError as exc:
            if not exc.in_doubt:
                post.state = "failed"  # Slack did not take it; else it stays "sending" (look up first)
            post.error = str(exc)
            spool.save(entry.spool_key, entry.as_dict())
            lines.append(f"{post.role}: {exc}")
            log.warning(
                "%s %s: store-down post %s not delivered: %s", entry.dag_id, entry.run_id, post.role, exc
            )
            continue
        post.state, post.ts, post.channel_id, post.error = "sent", posted.ts, posted.channel, None
        spool.save(entry.spool_key, entry.as_dict())
        lines.append(f"{post.role}: {'found in' if found else 'posted to'} {posted.channel} at {posted.ts}")
    return lines


def _post(spool: Spool, entry: SpooledRun, sender: SlackSender, post: SpoolPost) -> Posted:
    """Mark "sending" durably, post; after an ambiguous failure look it up, retry boundedly."""
    from sanvi_ops.core.notify.slack import SlackDeliveryError

    retries = 0
    while True:
        post.state = "sending"
        post.attempt_at = post.attempt_at or datetime.now(UTC).isoformat()
        spool.save(entry.spool_key, entry.as_dict())  # before the post: a crash leaves "sending"
        try:
            return sender.post(post.channel, post.text, post.blocks, key=post.key)
        except SlackDeliveryError as exc:
            if not exc.in_doubt or exc.final or retries >= sender.policy.max_retries:
                raise
            retries += 1
            sender.sleep(sender.backoff(retries))
            found = _find(sender, post)
            if found is not None:
                return found


def _find(sender: SlackSender, post: SpoolPost) -> Posted | None:
    since = datetime.fromisoformat(post.attempt_at) if post.attempt_at else datetime.now(UTC)
    return sender.find(sender.channel_id(post.channel, post.channel_id), post.key, since)


# ------------------------------------------------------------------------------------- replay


@dataclass
class ReplayReport:
    replayed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    locked_out: bool = False

    def describe(self) -> str:
        if self.locked_out:
            return "spool replay: another flush held the outbox; left for the next run"
        text = f"spool replay: {len(self.replayed)} run(s) recorded"
        if self.replayed:
            text += f" ({', '.join(self.replayed)})"
        if self.skipped:
            text += f"; {len(self.skipped)} kept: {'; '.join(self.skipped)}"
        return text


def replay(
    store: ResultStore, cfg: ConfigLike, spool: Spool, *, lock_wait: float = REPLAY_LOCK_WAIT_SECONDS
) -> ReplayReport:
    """Record every spooled run in the store, oldest detection first (see the module docstring).

    :raises StoreError: the store is (still) unreachable; the spool is left as it was.
    """
    from sanvi_ops.core.store import StoreError

    report = ReplayReport()
    entries: list[tuple[str, SpooledRun]] = []
    for key, data in spool.load_all().items():
        try:
            entries.append((key, SpooledRun.from_dict(data)))
        except ValueError as exc:
            report.skipped.append(f"{key}: {exc}")
    if not entries:
        return report
    entries.sort(key=lambda item: item[1].detected_at)
    with store.flush_lock(wait_seconds=lock_wait) as got:
        if not got:
            report.locked_out = True
            return report
        for key, entry in entries:
            try:
                _replay_one(store, cfg, entry)
            except StoreError:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad entry must not block the others or the run
                log.exception("spooled run %s %s could not be recorded; kept", entry.dag_id, entry.run_id)
                report.skipped.append(f"{key}: {type(exc).__name__}: {exc}")
                continue
            spool.delete(key)
            report.replayed.append(f"{entry.dag_id} {entry.run_id}")
    log.info(report.describe())
    return report


def _replay_one(store: ResultStore, cfg: ConfigLike, entry: SpooledRun) -> None:
    from sanvi_ops.core.notify.pipeline import process_run

    at = entry.detected_at
    process_run(
        store, cfg, entry.dag_id, entry.run_id, entry.logical_date, entry.results, entry.run_url, now=at
    )
    store.backdate_results(entry.dag_id, entry.run_id, at)
    incident_ids = {
        i.check: i.id for i in store.open_incidents(entry.dag_id) if i.opened_run_id == entry.run_id
    }
    for post in entry.posts:
        if post.role == "summary":
            dedupe_key = f"summary:{entry.dag_id}:{entry.run_id}"
        elif post.role.startswith("incident:") and post.role[len("incident:") :] in incident_ids:
            dedupe_key = f"incident:{incident_ids[post.role[len('incident:') :]]}"
        else:
            continue  # an incident open from before the outage: it was announced then
        note = f"announced while the results store was down ({NOT_RECORDED})"
        since = datetime.fromisoformat(post.attempt_at) if post.attempt_at else None
        if post.state == "sent" and post.ts:
            store.adopt_delivery(dedupe_key, delivery_key=post.key, sending_since=since, ts=post.ts,
                                 channel=post.channel_id or post.channel, note=note)  # fmt: skip
        elif post.state == "sending":
            store.adopt_delivery(dedupe_key, delivery_key=post.key, sending_since=since,
                                 note=f"{note}; outcome unknown, looked up before posting")  # fmt: skip
