"""The quarterly Penetration Testing's automated exposure checks, run before the human test.

Three plain checks, each returning :class:`CheckResult` objects (one per finding, or one ``ok``
line when nothing was found), never raising for a sick or unreachable target:

* :func:`scan_ports` — a TCP connect scan of a bounded port list on one host (bounded
  concurrency, a timeout per connect). Anything open beyond the expected ports (80/443) is a
  finding: **critical** (P2) for remote-administration, database and monitoring ports
  (:data:`CRITICAL_PORTS`: 22, 3389, 5432, 6379, 9090, …), a warning otherwise.
* :func:`check_tls_ciphers` — the cipher a default client negotiates, and whether weak cipher
  families (:data:`WEAK_CIPHERS`: NULL, EXPORT, RC4, 3DES, CBC with SHA-1 on TLS 1.2) are
  accepted. A family this machine's OpenSSL cannot offer is reported as not tested, by name.
  Protocol and certificate are :func:`sanvi_ops.tasks.security_scan.security.check_tls_endpoint`'s job.
* :func:`check_security_headers` — an HTTP GET of a frontend URL: HSTS with ``max-age`` at
  least the configured minimum, a Content-Security-Policy, clickjacking protection
  (X-Frame-Options DENY/SAMEORIGIN or CSP ``frame-ancestors``), X-Content-Type-Options nosniff.
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.tasks.security_scan.security import HIGH_RISK_PORTS

__all__ = [
    "CRITICAL_PORTS",
    "WEAK_CIPHERS",
    "WeakCipherFamily",
    "check_security_headers",
    "check_tls_ciphers",
    "evaluate_headers",
    "open_ports",
    "scan_ports",
]

#: Open ports that are critical on a public host: :data:`sanvi_ops.tasks.security_scan.security.HIGH_RISK_PORTS`
#: (SSH, RDP, databases, Redis, …) plus monitoring/admin consoles (Prometheus 9090, node
#: exporter 9100, Alertmanager 9093, Grafana 3000, Docker 2375/2376, Kubernetes API 6443,
#: kubelet 10250, etcd 2379/2380, RabbitMQ management 15672, Consul 8500, Vault 8200, VNC 5900,
#: pgbouncer 6432, Airflow 8793).
CRITICAL_PORTS: frozenset[int] = HIGH_RISK_PORTS | frozenset(
    {2375, 2376, 2379, 2380, 3000, 5900, 6432, 6443, 8200, 8500, 8793, 9090, 9093, 9100, 10250, 15672}
)


@dataclass(frozen=True)
class WeakCipherFamily:
    """A family of weak TLS 1.2-and-below ciphers: an OpenSSL cipher string and how bad it is."""

    key: str
    label: str
    openssl: str
    status: Status


#: The families probed by :func:`check_tls_ciphers`, each offered alone (TLS ≤ 1.2).
WEAK_CIPHERS: tuple[WeakCipherFamily, ...] = (
    WeakCipherFamily("null", "NULL (no encryption)", "eNULL:!aNULL", Status.CRITICAL),
    WeakCipherFamily("export", "EXPORT", "EXP:!aNULL", Status.CRITICAL),
    WeakCipherFamily("rc4", "RC4", "RC4:!aNULL", Status.CRITICAL),
    WeakCipherFamily("3des", "3DES (Sweet32)", "3DES:!aNULL", Status.WARNING),
    WeakCipherFamily(
        "cbc_sha1", "CBC with SHA-1 MAC on TLS 1.2", "SHA1:!eNULL:!aNULL:!RC4:!3DES:!EXP", Status.WARNING
    ),
)


def _finding(
    check: str, component: str, status: Status, text: str, action: str, **details: Any
) -> CheckResult:
    return CheckResult(
        check=check,
        status=status,
        summary=f"{text} — Action: {action}",
        details=details,
        severity="P2" if status is Status.CRITICAL else None,
        component=component,
    )


# --------------------------------------------------------------------------------------------
# Open ports
# --------------------------------------------------------------------------------------------


def _is_open(host: str, port: int, timeout_s: float) -> bool | None:
    """``True`` when a TCP connect succeeds, ``False`` when refused or timed out, ``None`` when
    the host name does not resolve."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except socket.gaierror:
        return None
    except OSError:
        return False


def open_ports(
    host: str, ports: Iterable[int], *, timeout_s: float = 2, concurrency: int = 32
) -> list[int] | None:
    """The ports of ``ports`` accepting a TCP connection on ``host``, sorted; ``None`` when the
    host name does not resolve. At most ``concurrency`` connects are in flight at once."""
    wanted = sorted(set(ports))
    if not wanted:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(wanted)))) as pool:
        states = list(pool.map(lambda p: _is_open(host, p, timeout_s), wanted))
    if any(s is None for s in states):
        return None
    return [p for p, s in zip(wanted, states, strict=True) if s]


def scan_ports(
    host: str,
    ports: Iterable[int],
    *,
    expected: Iterable[int] = (80, 443),
    timeout_s: float = 2,
    concurrency: int = 32,
    critical_ports: Iterable[int] = CRITICAL_PORTS,
) -> list[CheckResult]:
    """TCP connect scan of ``ports`` on ``host``: one finding per open port not in ``expected``
    (critical, P2, for ``critical_ports``; warning otherwise), else one ``ok`` line."""
    wanted = sorted(set(ports))
    allowed, critical = set(expected), set(critical_ports)
    base = f"ports[{host}]"
    found = open_ports(host, wanted, timeout_s=timeout_s, concurrency=concurrency)
    if found is None:
        return [
            CheckResult(
                check=base,
                status=Status.ERROR,
                summary=f"{host}: host name does not resolve; ports not scanned",
                details={"host": host},
                component="ports",
            )
        ]
    results = [
        _finding(
            f"{base}.open[{port}]",
            "ports",
            Status.CRITICAL if port in critical else Status.WARNING,
            f"{host}: port {port} is open to the scanner"
            + (" (remote administration / database / monitoring)" if port in critical else ""),
            "close it in the security group / firewall or restrict the source; "
            f"only {sorted(allowed)} should be reachable",
            host=host,
            port=port,
        )
        for port in found
        if port not in allowed
    ]
    return results or [
        CheckResult(
            check=base,
            status=Status.OK,
            summary=f"{host}: {len(wanted)} ports scanned, open: {found or 'none'} (expected {sorted(allowed)})",
            details={"host": host, "scanned": len(wanted), "open": found},
            component="ports",
        )
    ]


# --------------------------------------------------------------------------------------------
# TLS ciphers
# --------------------------------------------------------------------------------------------


def _client() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # ciphers only; the certificate is check_tls_endpoint's
    return ctx


def _handshake(ctx: ssl.SSLContext, host: str, port: int, timeout_s: float) -> tuple[str, str, int] | None:
    """``(cipher, protocol, bits)`` of a completed handshake; ``None`` when the server refused.
    A connection that cannot be made at all raises :class:`OSError`."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        try:
            with ctx.wrap_socket(sock, server_hostname=host) as tls:
                name, protocol, bits = tls.cipher() or ("", "", 0)
                return name, protocol, bits
        except (ssl.SSLError, ConnectionResetError):
            return None


def _weak_context(family: WeakCipherFamily) -> ssl.SSLContext | None:
    """A client offering only ``family`` on TLS ≤ 1.2; ``None`` when this OpenSSL has none."""
    ctx = _client()
    try:
        ctx.set_ciphers(f"{family.openssl}:@SECLEVEL=0")
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.minimum_version = ssl.TLSVersion.TLSv1 if family.key != "cbc_sha1" else ssl.TLSVersion.TLSv1_2
    except (ValueError, ssl.SSLError):
        return None
    if not [c for c in ctx.get_ciphers() if c.get("protocol") != "TLSv1.3"]:
        return None
    return ctx


def check_tls_ciphers(
    name: str,
    host: str,
    port: int = 443,
    *,
    timeout_s: float = 10,
    families: Iterable[WeakCipherFamily] = WEAK_CIPHERS,
) -> list[CheckResult]:
    """The cipher a default client negotiates with ``host:port`` and which weak families the
    server accepts (each offered alone). ``details["not_tested"]`` of the summary line names the
    families this OpenSSL could not offer."""
    base = f"tls_ciphers[{name}]"
    component = "tls"
    try:
        default = ssl.create_default_context()  # the default client's protocols and ciphers
        default.check_hostname = False
        default.verify_mode = ssl.CERT_NONE  # the certificate is check_tls_endpoint's
        negotiated = _handshake(default, host, port, timeout_s)
    except OSError as exc:
        return [
            CheckResult(
                check=base,
                status=Status.ERROR,
                summary=f"{name} ({host}:{port}): cannot connect: {exc}",
                details={"host": host, "port": port},
                component=component,
            )
        ]
    if negotiated is None:
        return [
            CheckResult(
                check=base,
                status=Status.ERROR,
                summary=f"{name} ({host}:{port}): TLS handshake with a default client failed",
                details={"host": host, "port": port},
                component=component,
            )
        ]
    cipher, protocol, bits = negotiated
    results: list[CheckResult] = []
    accepted: list[str] = []
    not_tested: list[str] = []
    for family in families:
        ctx = _weak_context(family)
        if ctx is None:
            not_tested.append(family.key)
            continue
        try:
            got = _handshake(ctx, host, port, timeout_s)
        except OSError:
            got = None
        if got is None:
            continue
        accepted.append(family.key)
        results.append(
            _finding(
                f"{base}.weak[{family.key}]",
                component,
                family.status,
                f"{name} ({host}:{port}) accepts {family.label} ciphers ({got[0]} on {got[1]})",
                "allow only AEAD ciphers (ECDHE with AES-GCM / ChaCha20) — an "
                "ELBSecurityPolicy-TLS13-1-2-* policy",
                host=host,
                port=port,
                family=family.key,
                cipher=got[0],
                protocol=got[1],
            )
        )
    untested = f"; not tested (this OpenSSL cannot offer them): {', '.join(not_tested)}" if not_tested else ""
    results.append(
        CheckResult(
            check=base,
            status=Status.OK,
            summary=f"{name} ({host}:{port}): default client negotiates {cipher} ({bits} bits) on {protocol}"
            + (
                f"; weak families accepted: {', '.join(accepted)}"
                if accepted
                else "; no weak cipher accepted"
            )
            + untested,
            details={
                "host": host,
                "port": port,
                "cipher": cipher,
                "protocol": protocol,
                "bits": bits,
                "accepted": accepted,
                "not_tested": not_tested,
            },
            component=component,
        )
    )
    return results


# --------------------------------------------------------------------------------------------
# Security headers
# --------------------------------------------------------------------------------------------

_MAX_AGE = re.compile(r"(?:^|;)\s*max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


def evaluate_headers(
    name: str, url: str, headers: Mapping[str, str], *, hsts_min_age_s: int = 31_536_000
) -> list[CheckResult]:
    """The findings for one response's ``headers`` (keys case-insensitive)."""
    h = {k.lower(): v for k, v in headers.items()}
    base = f"headers[{name}]"
    out: list[CheckResult] = []

    def missing(key: str, status: Status, text: str, action: str, **details: Any) -> None:
        out.append(
            _finding(
                f"{base}.{key}", "headers", status, f"{name} ({url}): {text}", action, url=url, **details
            )
        )

    hsts = h.get("strict-transport-security")
    if hsts is None:
        missing(
            "hsts",
            Status.WARNING,
            "no Strict-Transport-Security header",
            f"send Strict-Transport-Security: max-age={hsts_min_age_s}; includeSubDomains",
        )
    else:
        m = _MAX_AGE.search(hsts)
        age = int(m.group(1)) if m else None
        if age is None or age < hsts_min_age_s:
            missing(
                "hsts",
                Status.WARNING,
                f"Strict-Transport-Security max-age {age if age is not None else 'missing'} < {hsts_min_age_s}",
                f"raise max-age to at least {hsts_min_age_s} seconds",
                value=hsts,
                max_age=age,
            )
    csp = h.get("content-security-policy")
    if not csp:
        missing(
            "csp", Status.WARNING, "no Content-Security-Policy header", "define a Content-Security-Policy"
        )
    xfo = (h.get("x-frame-options") or "").strip().upper()
    frame_ancestors = bool(csp and re.search(r"(?:^|;)\s*frame-ancestors\s", csp, re.IGNORECASE))
    if xfo not in ("DENY", "SAMEORIGIN") and not frame_ancestors:
        missing(
            "frame_options",
            Status.WARNING,
            "no clickjacking protection (X-Frame-Options DENY/SAMEORIGIN or CSP frame-ancestors)"
            + (f"; X-Frame-Options is {xfo!r}" if xfo else ""),
            "send X-Frame-Options: DENY (or CSP frame-ancestors 'none')",
        )
    if (h.get("x-content-type-options") or "").strip().lower() != "nosniff":
        missing(
            "content_type_options",
            Status.WARNING,
            "X-Content-Type-Options is not nosniff",
            "send X-Content-Type-Options: nosniff",
        )
    return out or [
        CheckResult(
            check=base,
            status=Status.OK,
            summary=f"{name} ({url}): HSTS, CSP, frame and content-type protection present",
            details={"url": url},
            component="headers",
        )
    ]


def check_security_headers(
    name: str,
    url: str,
    *,
    hsts_min_age_s: int = 31_536_000,
    timeout_s: float = 10,
    verify: bool | str | ssl.SSLContext = True,
    client: Any = None,
) -> list[CheckResult]:
    """GET ``url`` (redirects followed) and judge the final response's security headers.
    ``verify`` is httpx's (a CA bundle path for a private CA); ``client`` an ``httpx.Client``."""
    import httpx

    if isinstance(verify, str):
        verify = ssl.create_default_context(cafile=verify)
    try:
        if client is None:
            with httpx.Client(timeout=timeout_s, verify=verify, follow_redirects=True) as own:
                response = own.get(url)
        else:
            response = client.get(url, follow_redirects=True)
    except httpx.HTTPError as exc:
        return [
            CheckResult(
                check=f"headers[{name}]",
                status=Status.ERROR,
                summary=f"{name} ({url}): GET failed: {type(exc).__name__}: {exc}",
                details={"url": url},
                component="headers",
            )
        ]
    return evaluate_headers(name, str(response.url), response.headers, hsts_min_age_s=hsts_min_age_s)
