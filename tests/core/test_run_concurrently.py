"""run_concurrently: one raising or hanging component never hides the others, and never blocks."""

from __future__ import annotations

import threading
import time

import pytest

from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.tasks.system_health_check.health import run_concurrently

pytestmark = pytest.mark.unit


def _ok(name: str) -> list[CheckResult]:
    return [CheckResult(check=f"{name}.a", status=Status.OK, summary="fine", component=name)]


def test_all_components_report_in_order():
    results = run_concurrently({"x": lambda: _ok("x"), "y": lambda: _ok("y") + _ok("y2")}, timeout_s=5)
    assert [r.check for r in results] == ["x.a", "y.a", "y2.a"]


def test_components_run_at_the_same_time():
    barrier = threading.Barrier(3, timeout=5)

    def meet(name: str):
        def _check() -> list[CheckResult]:
            barrier.wait()  # only passes when all three are running together
            return _ok(name)

        return _check

    results = run_concurrently({n: meet(n) for n in ("a", "b", "c")}, timeout_s=10)
    assert [r.status for r in results] == [Status.OK] * 3


def test_raising_and_hanging_components_do_not_hide_the_others():
    release = threading.Event()

    def boom() -> list[CheckResult]:
        raise RuntimeError("driver exploded")

    def hang() -> list[CheckResult]:
        release.wait(30)
        return _ok("hang")

    try:
        started = time.monotonic()
        results = run_concurrently(
            {"first": lambda: _ok("first"), "boom": boom, "hang": hang, "last": lambda: _ok("last")},
            timeout_s=0.5,
        )
        elapsed = time.monotonic() - started
    finally:
        release.set()

    by_check = {r.check: r for r in results}
    assert [r.check for r in results] == ["first.a", "boom", "hang", "last.a"]
    assert by_check["first.a"].status is Status.OK and by_check["last.a"].status is Status.OK
    assert by_check["boom"].status is Status.ERROR
    assert "RuntimeError: driver exploded" in by_check["boom"].summary
    assert by_check["boom"].component == "boom"
    assert by_check["hang"].status is Status.CRITICAL
    assert by_check["hang"].summary == "hang did not answer within 0.5 s"
    # Bounded by the timeout (plus scheduling slack), not by the 30 s the hang would take.
    assert elapsed < 5


def test_a_check_raising_timeouterror_is_an_error_not_a_hang():
    def times_out() -> list[CheckResult]:
        raise TimeoutError("socket read timed out")

    (result,) = run_concurrently({"db": times_out}, timeout_s=5)
    assert result.status is Status.ERROR
    assert "TimeoutError: socket read timed out" in result.summary


def test_results_are_json_serialisable():
    def boom() -> list[CheckResult]:
        raise ValueError("x" * 1000)

    (result,) = run_concurrently({"c": boom}, timeout_s=5)
    assert len(result.summary) < 400
    assert CheckResult.from_dict(result.to_dict()) == result


def test_empty_and_bad_timeout():
    assert run_concurrently({}, timeout_s=1) == []
    with pytest.raises(ValueError, match="timeout_s must be > 0"):
        run_concurrently({"a": lambda: []}, timeout_s=0)


def test_a_hung_check_does_not_keep_the_process_alive(tmp_path):
    """The task process must be able to exit after giving up on a component (no thread join at exit)."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "hang.py"
    script.write_text(
        "import time\n"
        "from sanvi_ops.tasks.system_health_check.health import run_concurrently\n"
        "r = run_concurrently({'hang': lambda: time.sleep(60) or []}, timeout_s=0.2)\n"
        "print(r[0].status)\n"
    )
    include = Path(__file__).resolve().parents[2] / "include"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(script)],
        env={"PYTHONPATH": str(include)},
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "critical"
    assert time.monotonic() - started < 30  # far below the 60 s the hung check would take
