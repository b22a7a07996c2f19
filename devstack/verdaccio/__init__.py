"""A local npm registry (verdaccio, offline) for ``make run`` and the Dependency Updates tests.

``make tools`` installs verdaccio, pinned by this folder's ``package.json``/``package-lock.json``,
into ``.local/verdaccio`` (``npm ci --ignore-scripts``). :class:`LocalVerdaccio` starts it on
127.0.0.1 with a config that has no uplinks (it never proxies to the public registry), storage
in a folder of its own, and one htpasswd user that publishes.

:func:`publish` builds a tiny package tarball (``package/package.json``, ``package/index.js``)
and publishes it with the registry's publish call (``PUT /<name>``, what ``npm publish`` sends),
so seeding a few dozen versions takes a second instead of one ``npm`` start each.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

REPO = Path(__file__).resolve().parents[2]
INSTALL_DIR = REPO / ".local" / "verdaccio"
BIN = INSTALL_DIR / "node_modules" / ".bin" / "verdaccio"
INSTALL_HINT = "run `make tools` (installs Debian nodejs/npm if missing and verdaccio into .local/verdaccio)"
USER, PASSWORD = "sanvi-seed", "seed-password"

CONFIG = """\
storage: {storage}
auth:
  htpasswd:
    file: {htpasswd}
    max_users: -1
uplinks: {{}}
packages:
  '@*/*':
    access: $all
    publish: $authenticated
  '**':
    access: $all
    publish: $authenticated
server:
  keepAliveTimeout: 5
security:
  api:
    legacy: true
log: {{type: stdout, format: pretty, level: warn}}
"""


def missing_tools() -> list[str]:
    """What is missing to run verdaccio here (empty: it can run)."""
    missing = [t for t in ("node", "npm") if shutil.which(t) is None]
    if not BIN.exists():
        missing.append(str(BIN.relative_to(REPO)))
    return missing


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def minimal_env(home: Path) -> dict[str, str]:
    """The environment of a node/npm child process: PATH, a private HOME, nothing else of ours."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
    }


class LocalVerdaccio:
    """verdaccio on 127.0.0.1:<free port>, storage and config under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def auth_header(self) -> dict[str, str]:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def start(self, timeout_s: float = 60.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "storage").mkdir(exist_ok=True)
        htpasswd = self.root / "htpasswd"
        sha = base64.b64encode(hashlib.sha1(PASSWORD.encode()).digest()).decode()  # noqa: S324 - htpasswd {SHA}
        htpasswd.write_text(f"{USER}:{{SHA}}{sha}:autocreated\n")
        cfg = self.root / "config.yaml"
        cfg.write_text(CONFIG.format(storage=self.root / "storage", htpasswd=htpasswd))
        log = (self.root / "verdaccio.log").open("ab")
        self._proc = subprocess.Popen(  # noqa: S603 - our pinned binary, fixed arguments
            [str(BIN), "--config", str(cfg), "--listen", f"127.0.0.1:{self.port}"],
            env=minimal_env(self.root),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"verdaccio exited with {self._proc.returncode}; see {self.root / 'verdaccio.log'}"
                )
            try:
                if httpx.get(f"{self.url}-/ping", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"verdaccio did not answer on {self.url} within {timeout_s:.0f}s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None

    def publish(
        self,
        name: str,
        version: str,
        *,
        dependencies: dict[str, str] | None = None,
        deprecated: str | None = None,
        tag: str = "latest",
    ) -> None:
        publish(
            self.url,
            self.auth_header,
            name,
            version,
            dependencies=dependencies,
            deprecated=deprecated,
            tag=tag,
        )


def tarball(name: str, version: str, dependencies: dict[str, str] | None = None) -> bytes:
    """A tiny, reproducible npm package tarball (what ``npm pack`` makes of a two-file package)."""
    manifest: dict[str, Any] = {"name": name, "version": version, "main": "index.js", "license": "MIT"}
    if dependencies:
        manifest["dependencies"] = dict(dependencies)
    files = {
        "package/package.json": json.dumps(manifest, indent=2).encode() + b"\n",
        "package/index.js": f"module.exports = {json.dumps(name + '@' + version)};\n".encode(),
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, 499162500  # npm's fixed mtime
            tar.addfile(info, io.BytesIO(data))
    import gzip

    return gzip.compress(raw.getvalue(), mtime=0)


def publish(
    registry: str,
    headers: dict[str, str],
    name: str,
    version: str,
    *,
    dependencies: dict[str, str] | None = None,
    deprecated: str | None = None,
    tag: str = "latest",
) -> None:
    """Publish one version as ``npm publish`` does (``PUT <registry>/<name>`` with the tarball attached)."""
    data = tarball(name, version, dependencies)
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    filename = f"{name.rsplit('/', 1)[-1]}-{version}.tgz"
    manifest: dict[str, Any] = {
        "name": name,
        "version": version,
        "main": "index.js",
        "license": "MIT",
        "_id": f"{name}@{version}",
        "dependencies": dict(dependencies or {}),
        "dist": {
            "integrity": integrity,
            "shasum": hashlib.sha1(data).hexdigest(),  # noqa: S324 - npm's shasum field
            "tarball": f"{registry.rstrip('/')}/{name}/-/{filename}",
        },
    }
    if deprecated:
        manifest["deprecated"] = deprecated
    body = {
        "_id": name,
        "name": name,
        "dist-tags": {tag: version},
        "versions": {version: manifest},
        "_attachments": {
            filename: {
                "content_type": "application/octet-stream",
                "data": base64.b64encode(data).decode(),
                "length": len(data),
            }
        },
    }
    resp = httpx.put(
        f"{registry.rstrip('/')}/{quote(name, safe='@')}", json=body, headers=headers, timeout=30
    )
    if resp.status_code not in (200, 201):
        raise RuntimeError(
            f"publishing {name}@{version} to {registry}: HTTP {resp.status_code} {resp.text[:200]}"
        )
