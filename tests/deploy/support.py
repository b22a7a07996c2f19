"""Shared helpers for the deployment-file tests: paths, the Airflow pin, a secret scanner."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
HELM_VALUES = ROOT / "deploy" / "helm-values.yaml"
REQUIREMENTS = ROOT / "requirements.txt"
REQUIREMENTS_LOCAL = ROOT / "requirements-local.txt"
EXECUTORS = ROOT / "deploy" / "requirements-executors.txt"
IMAGE_LOCK = ROOT / "deploy" / "requirements-image.lock"
POOLS = ROOT / "deploy" / "pools.json"

FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
TWELVE_HOURS_IN_MINUTES = 12 * 60

#: Files committed with the deployment: none may hold a secret.
DEPLOY_FILES = (
    COMPOSE,
    ENV_EXAMPLE,
    HELM_VALUES,
    DOCKERFILE,
    ROOT / ".dockerignore",
    *sorted((ROOT / "deploy").rglob("*.sh")),
    *sorted((ROOT / "deploy").rglob("*.sql")),
)


def airflow_pin() -> str:
    """The version in ``apache-airflow==X`` of requirements.txt."""
    match = re.search(r"^apache-airflow==([0-9][^\s#;]*)", REQUIREMENTS.read_text(), re.MULTILINE)
    assert match, "requirements.txt pins no apache-airflow==<version>"
    return match.group(1)


def requirement_name(line: str) -> str | None:
    """The normalised package name of a requirements line, or None for comments/blank lines."""
    line = line.split("#", 1)[0].strip()
    if not line or line.startswith("-"):
        return None
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
    return match.group(0).lower().replace("_", "-") if match else None


def local_stack_packages() -> set[str]:
    """Packages of requirements-local.txt: the local stack (`make run`, the tests), never the image."""
    return {name for line in REQUIREMENTS_LOCAL.read_text().splitlines() if (name := requirement_name(line))}


def pins(path: Path) -> dict[str, str]:
    """``{normalised name: version}`` of every ``name[extras]==version`` line of a requirements file."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)", line)
        if match:
            out[match.group(1).lower().replace("_", "-").replace(".", "-")] = match.group(3)
    return out


# --- secret scanning -----------------------------------------------------------------------------

#: Values that are obviously not secrets: placeholders and references to where the secret lives.
_PLACEHOLDER = re.compile(
    r"^(|change-me|.*\bchange-me\b.*|\$\{[^}]*\}|\$[A-Z_]+|<[^>]*>|…|\.\.\.|x+|\*+)$", re.IGNORECASE
)
#: Key names whose value is a secret (a key *naming* a Secret, e.g. ``jwtSecretName``, is not).
_SECRET_KEY = re.compile(r"(password|passwd|secret|token|fernet|api_?key|private_?key|credential)", re.I)
_NAMES_A_SECRET = re.compile(r"(secretname|_name|name)$", re.IGNORECASE)
#: Shapes of real credentials, whatever key they sit under.
_CREDENTIAL_SHAPES = {
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
    "Fernet key": re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}=(?![A-Za-z0-9=])"),
}
#: ``scheme://user:password@host``: the password part.
_URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^\s:/@'\"]*:(\$\{[^}]*\}|[^\s@'\"]+)@", re.IGNORECASE)


def is_placeholder(value: str) -> bool:
    return bool(_PLACEHOLDER.match(value.strip().strip("'\"")))


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(key path, key, value) of every mapping entry, recursively."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield f"{path}.{key}", str(key), value
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


def secret_findings_in_text(text: str, where: str) -> list[str]:
    """Credential shapes and URL passwords that are not placeholders."""
    found = [f"{where}: looks like a {what}" for what, rx in _CREDENTIAL_SHAPES.items() if rx.search(text)]
    found += [
        f"{where}: password in URL {m.group(0)!r}"
        for m in _URL_PASSWORD.finditer(text)
        if not is_placeholder(m.group(1))
    ]
    return found


def secret_findings_in_mapping(data: Any, where: str) -> list[str]:
    """Secret-named keys with a literal value (YAML trees, parsed JSON connections)."""
    found = []
    for path, key, value in _walk(data):
        if isinstance(value, (dict, list)) or value is None or isinstance(value, bool):
            continue
        if _SECRET_KEY.search(key) and not _NAMES_A_SECRET.search(key) and not is_placeholder(str(value)):
            found.append(f"{where}{path}: literal value for a secret")
    return found


def parse_env_file(text: str) -> dict[str, str]:
    """``KEY=value`` lines of a dotenv file (quotes removed; comments and blanks skipped)."""
    env = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def secret_findings_in_env(text: str, where: str) -> list[str]:
    found = []
    for key, value in parse_env_file(text).items():
        if _SECRET_KEY.search(key) and not is_placeholder(value):
            found.append(f"{where}: {key} has a literal value")
        if value.startswith("{"):
            found += secret_findings_in_mapping(json.loads(value), f"{where}: {key}")
    return found
