"""The Security Scan's TLS check against a real TLS server on 127.0.0.1.

Certificates are made in the test with ``cryptography``: a private CA (passed as the CA bundle,
the way ``tasks.security_scan.settings.tls_ca_file`` does) signs leaf certificates that are valid, expiring
soon, expired, or for another host name. The servers complete one handshake per connection.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sanvi_ops.core.results import Status
from sanvi_ops.tasks.security_scan.security import check_tls_endpoint

pytestmark = pytest.mark.integration

NOW = dt.datetime.now(dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Sanvi Test CA"))
        .issuer_name(_name("Sanvi Test CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=400))
        .not_valid_after(NOW + dt.timedelta(days=400))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key, path


def _leaf(ca, tmp: Path, *, days_left: float, san_ip: str | None = "127.0.0.1", san_dns: str | None = None):
    ca_cert, ca_key, _ = ca
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    if san_ip:
        names.append(x509.IPAddress(ipaddress.ip_address(san_ip)))
    if san_dns:
        names.append(x509.DNSName(san_dns))
    not_after = NOW + dt.timedelta(days=days_left)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(san_dns or san_ip or "leaf"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(NOW, not_after) - dt.timedelta(days=30))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "leaf.pem", tmp / "leaf.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class _TLSServer:
    """Accepts connections on 127.0.0.1 and completes (or fails) one handshake on each."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(5)
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)  # until the client closes
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def serve(tmp_path: Path, ca) -> Iterator:
    servers: list[_TLSServer] = []

    def _start(
        *,
        days_left: float = 200,
        san_ip: str | None = "127.0.0.1",
        san_dns: str | None = None,
        min_version: ssl.TLSVersion | None = None,
        max_version: ssl.TLSVersion | None = None,
        legacy: bool = False,
    ) -> int:
        cert, key = _leaf(ca, tmp_path, days_left=days_left, san_ip=san_ip, san_dns=san_dns)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        if legacy:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        if min_version is not None:
            ctx.minimum_version = min_version
        if max_version is not None:
            ctx.maximum_version = max_version
        server = _TLSServer(ctx)
        servers.append(server)
        return server.port

    yield _start
    for s in servers:
        s.close()


def _by_check(results):
    return {r.check.split(".", 1)[1] if "." in r.check else r.check: r for r in results}


def test_valid_certificate_with_custom_ca_is_ok(serve, ca):
    port = serve(min_version=ssl.TLSVersion.TLSv1_2)
    results = check_tls_endpoint("local", "127.0.0.1", port, ca_file=str(ca[2]), timeout_s=5)
    assert [r.status for r in results] == [Status.OK], [r.summary for r in results]
    assert results[0].details["protocol"] in ("TLSv1.2", "TLSv1.3")


def test_without_the_ca_bundle_the_certificate_does_not_verify(serve):
    port = serve()
    results = check_tls_endpoint("local", "127.0.0.1", port, ca_file=None, timeout_s=5, test_legacy=False)
    [cert] = [r for r in results if r.check.endswith(".certificate")]
    assert cert.status is Status.CRITICAL and cert.severity == "P2"


def test_server_limited_to_tls12_negotiates_12_and_passes(serve, ca):
    port = serve(min_version=ssl.TLSVersion.TLSv1_2, max_version=ssl.TLSVersion.TLSv1_2)
    results = check_tls_endpoint("local", "127.0.0.1", port, ca_file=str(ca[2]), timeout_s=5)
    assert [r.status for r in results] == [Status.OK], [r.summary for r in results]
    assert results[0].details["protocol"] == "TLSv1.2"
    if _legacy_supported():  # TLS 1.0/1.1 were offered and refused
        assert results[0].details["legacy_tested"] is True


def test_expiring_soon_is_a_warning(serve, ca):
    port = serve(days_left=20)
    results = check_tls_endpoint(
        "local", "127.0.0.1", port, ca_file=str(ca[2]), timeout_s=5, test_legacy=False
    )
    assert [(r.check, r.status) for r in results] == [("tls[local].expiry", Status.WARNING)]
    assert results[0].details["control"] == "ACM.1" and results[0].summary.startswith("[ACM.1] ")


def test_expiring_within_a_week_is_critical(serve, ca):
    port = serve(days_left=3)
    results = check_tls_endpoint(
        "local", "127.0.0.1", port, ca_file=str(ca[2]), timeout_s=5, test_legacy=False
    )
    assert [(r.check, r.status, r.severity) for r in results] == [
        ("tls[local].expiry", Status.CRITICAL, "P2")
    ]


def test_expired_is_critical_once(serve, ca):
    port = serve(days_left=-2)
    results = check_tls_endpoint(
        "local", "127.0.0.1", port, ca_file=str(ca[2]), timeout_s=5, test_legacy=False
    )
    assert [(r.check, r.status) for r in results] == [("tls[local].expiry", Status.CRITICAL)]
    assert "expired" in results[0].summary


def test_hostname_mismatch_is_critical(serve, ca):
    port = serve(san_ip=None, san_dns="other.example")
    results = check_tls_endpoint(
        "local", "127.0.0.1", port, ca_file=str(ca[2]), timeout_s=5, test_legacy=False
    )
    [cert] = results
    assert cert.check == "tls[local].certificate" and cert.status is Status.CRITICAL
    assert "does not match" in cert.summary


def test_nothing_listening_is_an_error(ca):
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    results = check_tls_endpoint("local", "127.0.0.1", port, ca_file=str(ca[2]), timeout_s=2)
    assert [(r.check, r.status) for r in results] == [("tls[local].handshake", Status.ERROR)]


def _legacy_supported() -> bool:
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        return True
    except (ValueError, ssl.SSLError):
        return False


def test_server_accepting_tls11_is_flagged(serve, ca):
    if not _legacy_supported():
        pytest.skip("this OpenSSL cannot speak TLS 1.0/1.1")
    port = serve(min_version=ssl.TLSVersion.TLSv1, max_version=ssl.TLSVersion.TLSv1_1, legacy=True)
    results = check_tls_endpoint("local", "127.0.0.1", port, ca_file=str(ca[2]), timeout_s=5)
    checks = {r.check: r for r in results}
    if "tls[local].handshake" in checks:
        pytest.skip("this OpenSSL refuses TLS 1.0/1.1 as a client: " + checks["tls[local].handshake"].summary)
    assert checks["tls[local].protocol"].status is Status.CRITICAL
    assert checks["tls[local].legacy_protocols"].status is Status.WARNING
