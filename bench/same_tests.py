"""pytest plugin: run only the tests the suite already had at commit ``$SAME_TESTS_AS``.

It keeps the tests whose function names appear in that commit's ``tests/`` (parametrised cases
added since come along), so a suite's time can be compared with an older one on the same machine,
e.g. against the suite before the layout move (docs/testing.md):

    SAME_TESTS_AS=d3484d1 PYTEST_ADDOPTS="-p bench.same_tests" make test
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest


def _names(commit: str) -> set[str]:
    try:
        out = subprocess.run(
            ["git", "grep", "-h", "-E", "def test_[A-Za-z0-9_]+", commit, "--", "tests"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except subprocess.CalledProcessError as err:
        raise pytest.UsageError(f"SAME_TESTS_AS={commit}: git grep failed: {err.stderr.strip()}") from err
    return set(re.findall(r"def (test_\w+)", out))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    commit = os.environ.get("SAME_TESTS_AS")
    if not commit:
        raise pytest.UsageError("bench.same_tests needs SAME_TESTS_AS=<commit>")
    names = _names(commit)

    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        name = getattr(item, "originalname", item.name.split("[")[0])
        (kept if name in names else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept
