"""A real Prometheus server on 127.0.0.1, loaded with deterministic node_exporter and HTTP series.

Used by ``make run`` (when the ``prometheus`` binary is on PATH) and by the ``prometheus_server``
test fixture. Nothing is scraped: on every start the data directory is rebuilt from OpenMetrics
text with ``promtool tsdb create-blocks-from openmetrics`` (the supported backfill path; about
a second for six hours of demo data) and only then is the server started, so the TSDB opens
with the blocks already in place and queries see hours of history at once.

Why no scraping: with an empty head block Prometheus serves backfilled blocks of any age, even
blocks reaching into the future (``horizon``, verified with Prometheus 2.42), which keeps a
long-running ``make run`` showing "current" data. A scrape would start the head at "now", and
samples the head later needs would clash with the future blocks. Retention (30 days) is far
beyond the few hours of history, so no backfilled block is ever dropped.

:func:`demo_series` tells a small, fixed story relative to ``now`` (see its docstring) so checks
have something healthy, something warning, something critical and a spike that does not count.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devstack.postgres import free_port

#: Queries that turn the demo's node_exporter series into "percent used per instance". They are
#: the standard node_exporter formulas; include/config/maintenance.yaml carries the same ones.
CPU_USED_PCT = '100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])))'
MEMORY_USED_PCT = "100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)"

INSTALL_HINT = "Debian package 'prometheus'; `make test` installs it when apt is available"


class PrometheusStartError(RuntimeError):
    """promtool or prometheus failed; the message carries their output."""


def find_binary(name: str) -> str | None:
    """Path of ``prometheus`` / ``promtool``: env ``SANVI_PROMETHEUS_BIN`` / ``SANVI_PROMTOOL_BIN``, else PATH."""
    override = os.environ.get(f"SANVI_{name.upper()}_BIN")
    if override:
        return override if Path(override).is_file() and os.access(override, os.X_OK) else None
    return shutil.which(name)


def missing_binaries() -> list[str]:
    """The binaries among ``prometheus`` and ``promtool`` that cannot be found (empty: all there)."""
    return [name for name in ("prometheus", "promtool") if find_binary(name) is None]


def _require(name: str) -> str:
    path = find_binary(name)
    if path is None:
        raise FileNotFoundError(f"{name} not found on PATH ({INSTALL_HINT})")
    return path


# --------------------------------------------------------------------------------------------
# Demo data
# --------------------------------------------------------------------------------------------

GIB = 1024**3


@dataclass(frozen=True)
class _Filesystem:
    mountpoint: str
    device: str
    size_bytes: int
    used_fraction: float
    growth_per_hour: float  # fraction of the size


@dataclass(frozen=True)
class _Host:
    name: str
    cpus: int
    mem_total: int
    cpu_base: float
    mem_base: float
    phase: float
    filesystems: tuple[_Filesystem, ...]
    serves_http: bool = False


_HOSTS: tuple[_Host, ...] = (
    _Host(
        "frontend-1",
        2,
        8 * GIB,
        0.22,
        0.48,
        0.3,
        (_Filesystem("/", "/dev/nvme0n1p1", 40 * GIB, 0.41, 0.0004),),
    ),
    _Host(
        "backend-1",
        2,
        16 * GIB,
        0.45,
        0.62,
        1.1,
        (_Filesystem("/", "/dev/nvme0n1p1", 60 * GIB, 0.52, 0.0006),),
        True,
    ),
    _Host(
        "backend-2",
        2,
        16 * GIB,
        0.40,
        0.60,
        2.3,
        (_Filesystem("/", "/dev/nvme0n1p1", 60 * GIB, 0.49, 0.0006),),
        True,
    ),
    _Host(
        "db-1",
        2,
        32 * GIB,
        0.35,
        0.62,
        3.7,
        (
            _Filesystem("/", "/dev/nvme0n1p1", 40 * GIB, 0.38, 0.0002),
            _Filesystem("/var/lib/postgresql", "/dev/nvme1n1", 500 * GIB, 0.82, 0.0008),
        ),
    ),
)

#: The ``instance`` labels :func:`demo_series` writes.
DEMO_INSTANCES: tuple[str, ...] = tuple(h.name for h in _HOSTS)

#: (method, route, median latency in s, requests per second, [(status, share of requests)])
_ROUTES: tuple[tuple[str, str, float, float, tuple[tuple[str, float], ...]], ...] = (
    ("GET", "/api/machines", 0.085, 12.0, (("404", 0.002),)),
    ("POST", "/api/orders", 0.11, 3.0, ()),
    ("GET", "/api/health", 0.008, 0.5, ()),
)
_BUCKETS: tuple[float, ...] = (0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5)
_LE_LABELS: tuple[str, ...] = (*(repr(b) for b in _BUCKETS), "+Inf")
_LATENCY_SIGMA = 0.5
_NORMAL_ERROR_SHARE = 0.0005

#: The story, as offsets before ``now`` (a scenario starting there lasts until the data ends).
BACKEND1_HOT_SINCE = timedelta(minutes=25)  # CPU 96 %: rate()[5m] is > 90 % for the last 20 min
BACKEND1_ERRORS_SINCE = timedelta(minutes=10)  # 5xx share 2.5 %, p95 latency ~ 0.7 s
DB1_MEMORY_SINCE = timedelta(minutes=30)  # memory 85 %: above 80 % for 30 min, never 90 %
BACKEND2_SPIKE = timedelta(minutes=3)  # memory 93 % for the 3 min up to ``now`` only


def _wave(t: float, phase: float) -> float:
    """Deterministic pseudo-noise in about [-1, 1], a function of absolute time only."""
    return 0.6 * math.sin(t / 37.0 + phase) + 0.4 * math.sin(t / 11.3 + 2.0 * phase)


def _daily(t: float) -> float:
    """Business-hours shape in [-1, 1]: peak at 14:00 UTC, trough at 02:00 UTC."""
    return math.sin(2.0 * math.pi * ((t % 86400.0) / 86400.0 - 8.0 / 24.0))


def _clamp(x: float, lo: float = 0.01, hi: float = 0.99) -> float:
    return min(hi, max(lo, x))


def _cpu_busy(host: _Host, t: float, now: float) -> float:
    if host.name == "backend-1" and t > now - BACKEND1_HOT_SINCE.total_seconds():
        return 0.96 + 0.01 * _wave(t, host.phase)
    return _clamp(host.cpu_base + 0.06 * _daily(t) + 0.02 * _wave(t, host.phase))


def _mem_used(host: _Host, t: float, now: float) -> float:
    if host.name == "db-1" and t > now - DB1_MEMORY_SINCE.total_seconds():
        return 0.85 + 0.004 * _wave(t, host.phase)
    if host.name == "backend-2" and now - BACKEND2_SPIKE.total_seconds() < t <= now:
        return 0.93 + 0.003 * _wave(t, host.phase)
    return _clamp(host.mem_base + 0.03 * _daily(t) + 0.01 * _wave(t + 5.0, host.phase))


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _timestamps(now: float, history: timedelta, horizon: timedelta, resolution: int) -> list[int]:
    first = math.ceil((now - history.total_seconds()) / resolution) * resolution
    last = math.floor((now + horizon.total_seconds()) / resolution) * resolution
    return list(range(first, last + 1, resolution))


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _node_cpu(out: list[str], now: float, ts: list[int]) -> None:
    out.append("# HELP node_cpu_seconds Seconds the CPUs spent in each mode.")
    out.append("# TYPE node_cpu_seconds counter")
    modes = (("idle", 0.0), ("iowait", 0.06), ("system", 0.24), ("user", 0.70))
    for host in _HOSTS:
        busy = [_cpu_busy(host, t, now) for t in ts]
        for cpu in range(host.cpus):
            skew = 0.01 if cpu % 2 == 0 else -0.01
            for mode, share in modes:
                value = 250_000.0 * (1 + cpu) + 1000.0 * len(mode)
                labels = _labels(cpu=str(cpu), instance=host.name, job="node", mode=mode)
                prev = ts[0]
                for t, b in zip(ts, busy, strict=True):
                    u = _clamp(b + skew, 0.0, 1.0)
                    value += (t - prev) * ((1.0 - u) if mode == "idle" else u * share)
                    prev = t
                    out.append(f"node_cpu_seconds_total{labels} {value:.3f} {t}")


def _node_memory(out: list[str], now: float, ts: list[int]) -> None:
    out.append("# HELP node_memory_MemAvailable_bytes Memory information field MemAvailable_bytes.")
    out.append("# TYPE node_memory_MemAvailable_bytes gauge")
    for host in _HOSTS:
        labels = _labels(instance=host.name, job="node")
        for t in ts:
            avail = int(host.mem_total * (1.0 - _mem_used(host, t, now))) // 4096 * 4096
            out.append(f"node_memory_MemAvailable_bytes{labels} {avail} {t}")
    out.append("# HELP node_memory_MemTotal_bytes Memory information field MemTotal_bytes.")
    out.append("# TYPE node_memory_MemTotal_bytes gauge")
    for host in _HOSTS:
        labels = _labels(instance=host.name, job="node")
        out.extend(f"node_memory_MemTotal_bytes{labels} {host.mem_total} {t}" for t in ts)


def _node_filesystem(out: list[str], now: float, ts: list[int]) -> None:
    def series(metric: str, value: Callable[[_Filesystem, int], int]) -> None:
        for host in _HOSTS:
            for fs in host.filesystems:
                labels = _labels(
                    device=fs.device, fstype="ext4", instance=host.name, job="node", mountpoint=fs.mountpoint
                )
                out.extend(f"{metric}{labels} {value(fs, t)} {t}" for t in ts)

    def avail(fs: _Filesystem, t: int) -> int:
        used = fs.used_fraction + fs.growth_per_hour * (t - now) / 3600.0
        return int(fs.size_bytes * (1.0 - _clamp(used, 0.0, 1.0))) // 4096 * 4096

    out.append("# HELP node_filesystem_avail_bytes Filesystem space available to non-root users in bytes.")
    out.append("# TYPE node_filesystem_avail_bytes gauge")
    series("node_filesystem_avail_bytes", avail)
    out.append("# HELP node_filesystem_size_bytes Filesystem size in bytes.")
    out.append("# TYPE node_filesystem_size_bytes gauge")
    series("node_filesystem_size_bytes", lambda fs, _t: fs.size_bytes)


def _traffic(t: float, rps: float, phase: float) -> float:
    return rps * (1.0 + 0.35 * _daily(t) + 0.05 * _wave(t, phase))


def _status_share(status: str, ok_status: str, extra: tuple[tuple[str, float], ...], failing: bool) -> float:
    """Share of a route's requests answered with ``status``."""
    error_share = 0.025 if failing else _NORMAL_ERROR_SHARE
    if status == "500":
        return error_share
    if status == ok_status:
        return 1.0 - error_share - sum(share for _, share in extra)
    return dict(extra).get(status, 0.0)


def _http(out: list[str], now: float, ts: list[int]) -> None:
    hot_since = now - BACKEND1_HOT_SINCE.total_seconds()
    errors_since = now - BACKEND1_ERRORS_SINCE.total_seconds()
    out.append("# HELP http_requests Requests handled by the Sanvi backend API.")
    out.append("# TYPE http_requests counter")
    for host in (h for h in _HOSTS if h.serves_http):
        for method, route, _median, rps, extra in _ROUTES:
            ok_status = "201" if method == "POST" else "200"
            for status in (ok_status, *(s for s, _ in extra), "500"):
                labels = _labels(
                    instance=host.name, job="sanvi-backend", method=method, route=route, status=status
                )
                total, prev = 0.0, ts[0]
                for t in ts:
                    n = _traffic(t, rps, host.phase) * (t - prev)
                    prev = t
                    total += n * _status_share(
                        status, ok_status, extra, host.name == "backend-1" and t > errors_since
                    )
                    out.append(f"http_requests_total{labels} {round(total)} {t}")

    out.append("# HELP http_request_duration_seconds Latency of requests handled by the Sanvi backend API.")
    out.append("# TYPE http_request_duration_seconds histogram")
    for host in (h for h in _HOSTS if h.serves_http):
        for method, route, median, rps, _extra in _ROUTES:
            base = _labels(instance=host.name, job="sanvi-backend", method=method, route=route)[1:-1]
            counts = [0.0] * (len(_BUCKETS) + 1)
            total_sum, prev = 0.0, ts[0]
            for t in ts:
                n = _traffic(t, rps, host.phase) * (t - prev)
                prev = t
                m = median * (3.5 if host.name == "backend-1" and t > hot_since else 1.0)
                for i, le in enumerate(_BUCKETS):
                    counts[i] += n * _phi((math.log(le) - math.log(m)) / _LATENCY_SIGMA)
                counts[-1] += n
                total_sum += n * m * math.exp(_LATENCY_SIGMA**2 / 2.0)
                for le_text, c in zip(_LE_LABELS, counts, strict=True):
                    out.append(
                        f'http_request_duration_seconds_bucket{{{base},le="{le_text}"}} {round(c)} {t}'
                    )
                out.append(f"http_request_duration_seconds_count{{{base}}} {round(counts[-1])} {t}")
                out.append(f"http_request_duration_seconds_sum{{{base}}} {total_sum:.3f} {t}")


def demo_series(
    now: datetime,
    history: timedelta = timedelta(hours=6),
    horizon: timedelta = timedelta(0),
) -> str:
    """OpenMetrics text (ending in ``# EOF``) for four hosts, from ``now - history`` to ``now + horizon``.

    Deterministic: the same ``now`` gives the same text (values depend on absolute time only;
    scenarios are placed relative to ``now``). node_exporter CPU and memory every 15 s, the rest
    every minute, with a daily business-hours shape and a little noise.

    - ``frontend-1``: healthy (CPU ~ 22 %, memory ~ 48 %).
    - ``backend-1``: CPU at 96 % since ``now - 25m`` (so ``rate(...[5m])`` is above 90 % for the
      last 20 min: critical); from ``now - 10m`` 2.5 % of its requests fail with 500 and its latency
      is 3.5× normal (p95 ~ 0.7 s) — for the error-rate and latency checks of later issues.
    - ``backend-2``: healthy, except memory at 93 % for the 3 minutes up to ``now``: above the
      critical threshold *now*, but not for 5 minutes, so not an alert.
    - ``db-1``: memory at 85 % since ``now - 30m`` (warning, never critical); its
      ``/var/lib/postgresql`` volume is 82 % used and growing.

    HTTP metrics (``job="sanvi-backend"`` on the two backends): ``http_requests_total{method,
    route, status}`` and the histogram ``http_request_duration_seconds`` (buckets include the
    0.3 s SLO and the 0.5 s / 1 s latency thresholds).
    """
    if now.tzinfo is None:
        raise ValueError("demo_series: now must be timezone-aware")
    t_now = now.timestamp()
    fine = _timestamps(t_now, history, horizon, 15)
    coarse = _timestamps(t_now, history, horizon, 60)
    out: list[str] = []
    _node_cpu(out, t_now, fine)
    _node_memory(out, t_now, fine)
    _node_filesystem(out, t_now, coarse)
    _http(out, t_now, coarse)
    out.append("# EOF")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


def _floor_minute(when: datetime) -> datetime:
    when = when.astimezone(UTC)
    return when.replace(second=0, microsecond=0)


@dataclass
class LocalPrometheus:
    """One Prometheus in ``root`` (``root/data`` is rebuilt from the series on every start).

    :param root: a directory of our own; created when missing.
    :param port: TCP port on 127.0.0.1; a free one is picked when ``None`` or taken.
    :param history: how much demo history to backfill before ``now``.
    :param horizon: how much demo data to write *after* ``now``, so a long-running local stack
        still has "current" data (``make run`` uses a day); tests keep 0.
    :param retention: ``--storage.tsdb.retention.time``; far beyond ``history``.
    :param openmetrics: a function ``now -> OpenMetrics text`` replacing :func:`demo_series`.
    """

    root: Path
    port: int | None = None
    history: timedelta = timedelta(hours=6)
    horizon: timedelta = timedelta(0)
    retention: str = "30d"
    openmetrics: Callable[[datetime], str] | None = None
    host: str = "127.0.0.1"
    #: The instant the data was generated around (UTC, whole minute); query ``at=now`` in tests.
    now: datetime | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("LocalPrometheus has no port yet: call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "prometheus.log"

    @property
    def _pid_file(self) -> Path:
        return self.root / "prometheus.pid"

    def _write_config(self) -> Path:
        config = self.root / "prometheus.yml"
        config.write_text(
            "# written by devstack.prometheus on every start.\n"
            "# No scrape targets: the data is backfilled with promtool before the server starts,\n"
            "# and an empty head block is what lets Prometheus serve backfilled future samples.\n"
            "global:\n"
            "  scrape_interval: 15s\n"
            "  evaluation_interval: 15s\n"
            "scrape_configs: []\n"
        )
        return config

    def backfill(self, text: str) -> None:
        """Rebuild ``data_dir`` from OpenMetrics ``text`` with promtool (server must be stopped)."""
        if not text.rstrip().endswith("# EOF"):
            raise ValueError("OpenMetrics text must end with '# EOF'")
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True)
        source = self.root / "series.om"
        source.write_text(text)
        proc = subprocess.run(
            [
                _require("promtool"),
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "--quiet",
                str(source),
                str(self.data_dir),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if proc.returncode != 0:
            raise PrometheusStartError(
                f"promtool backfill of {source} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-2000:]}"
            )
        source.unlink()

    def start(self, now: datetime | None = None) -> LocalPrometheus:
        """Backfill the series around ``now`` (default: the current minute) and start the server.

        A server this object (or an earlier one on the same ``root``) left running is stopped
        first: the data is regenerated for the new ``now``.
        """
        prometheus = _require("prometheus")
        self.root.mkdir(parents=True, exist_ok=True)
        self.stop()
        self._stop_stale()
        self.now = _floor_minute(now or datetime.now(UTC))
        make_text = self.openmetrics or (lambda at: demo_series(at, self.history, self.horizon))
        self.backfill(make_text(self.now))
        config = self._write_config()
        port_file = self.root / "port"
        if self.port is None and port_file.exists():
            self.port = int(port_file.read_text())
        for _attempt in range(3):
            if self.port is None or not _port_free(self.host, self.port):
                self.port = free_port(self.host)
            port_file.write_text(str(self.port))
            with self.log_file.open("wb") as log:
                self._proc = subprocess.Popen(
                    [
                        prometheus,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={self.data_dir}",
                        f"--storage.tsdb.retention.time={self.retention}",
                        f"--web.listen-address={self.host}:{self.port}",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            self._pid_file.write_text(str(self._proc.pid))
            try:
                self._wait_ready()
                return self
            except PrometheusStartError:
                if "address already in use" not in self._log_tail():
                    self.stop()
                    raise
                self.stop()
                self.port = None
        raise PrometheusStartError(f"Prometheus could not bind a port on {self.host}; see {self.log_file}")

    def _log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def _wait_ready(self, timeout: float = 30.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self._proc is not None and self._proc.poll() is not None:
                    raise PrometheusStartError(
                        f"prometheus exited {self._proc.returncode} during start-up: {self._log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/-/ready").status_code == 200:
                        return
                time.sleep(0.05)
        raise PrometheusStartError(
            f"Prometheus at {self.url} not ready after {timeout:g}s; see {self.log_file}"
        )

    def _stop_stale(self) -> None:
        """Stop a server an earlier run left on this data directory (identified by pid + cmdline)."""
        if not self._pid_file.exists():
            return
        with contextlib.suppress(ValueError, OSError):
            pid = int(self._pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            if f"--storage.tsdb.path={self.data_dir}" in cmdline:
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    if not Path(f"/proc/{pid}").exists():
                        break
                    time.sleep(0.1)
        self._pid_file.unlink(missing_ok=True)

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s); a no-op when it is not running."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self._pid_file.unlink(missing_ok=True)

    def destroy(self) -> None:
        """Stop and delete ``root``."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalPrometheus:
        return self.start() if not self.is_running() else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True
