"""System Health Check: one function per component, run side by side.

Each module here (``http``, ``postgres``, ``redis``, ``aws``; ``metrics`` for Prometheus) takes
ready clients or plain values and returns ``list[CheckResult]``; none of them reads Airflow.
:func:`run_concurrently` runs the components at the same time, each in its own thread, so one
dead component (a firewall that drops packets, a server that accepts and never answers) costs
the run at most ``timeout_s`` and never hides what the other components found.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, wait

from sanvi_ops.core.results import CheckResult, Status

__all__ = ["ComponentCheck", "run_concurrently"]

#: A component's check: no arguments (bind them with a lambda or ``functools.partial``).
ComponentCheck = Callable[[], list[CheckResult]]

_MAX_ERROR_TEXT = 300


def _start(name: str, check: ComponentCheck) -> Future[list[CheckResult]]:
    """Run ``check`` in a daemon thread and expose its outcome as a Future.

    Why not a ``ThreadPoolExecutor``: its worker threads are joined at interpreter exit, so a
    check stuck in a socket read would keep the Airflow task process alive long after
    :func:`run_concurrently` gave up on it. A daemon thread is abandoned instead; the checks
    are read-only, so abandoning one loses nothing.
    """
    future: Future[list[CheckResult]] = Future()

    def _runner() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(check())
        except BaseException as exc:  # noqa: BLE001 - reported as the component's result
            future.set_exception(exc)

    threading.Thread(target=_runner, name=f"sanvi-health-{name}", daemon=True).start()
    return future


def _error_result(name: str, exc: BaseException) -> CheckResult:
    text = str(exc).strip().replace("\n", " ")
    if len(text) > _MAX_ERROR_TEXT:
        text = text[: _MAX_ERROR_TEXT - 1] + "…"
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return CheckResult(
        check=name,
        status=Status.ERROR,
        summary=f"The {name} check could not run: {detail}",
        details={"exception": type(exc).__name__, "message": text},
        component=name,
    )


def _timeout_result(name: str, timeout_s: float) -> CheckResult:
    return CheckResult(
        check=name,
        status=Status.CRITICAL,
        summary=f"{name} did not answer within {timeout_s:g} s",
        metric="check_duration_s",
        unit="s",
        thresholds={"critical": timeout_s},
        details={"timeout_s": timeout_s},
        component=name,
    )


def run_concurrently(checks: Mapping[str, ComponentCheck], timeout_s: float) -> list[CheckResult]:
    """Run every component check at once; return all their results, in ``checks`` order.

    :param checks: component name → zero-argument check. The name becomes the ``check`` and
        ``component`` of the single result a failed component is reduced to.
    :param timeout_s: how long the whole call may take. A component still running then is
        reported as one ``critical`` result "did not answer within N s"; a component that
        raised is reported as one ``error`` result naming the exception. Every other
        component's own results are returned untouched.
    :raises ValueError: when ``timeout_s`` is not positive.
    """
    if not timeout_s > 0:
        raise ValueError(f"run_concurrently: timeout_s must be > 0, got {timeout_s!r}")
    futures = {name: _start(name, check) for name, check in checks.items()}
    wait(futures.values(), timeout=timeout_s)
    results: list[CheckResult] = []
    for name, future in futures.items():
        if not future.done():
            future.cancel()  # a no-op once running; the daemon thread is simply abandoned
            results.append(_timeout_result(name, timeout_s))
            continue
        exc = future.exception()
        if exc is not None:
            results.append(_error_result(name, exc))
        else:
            results.extend(future.result())
    return results
