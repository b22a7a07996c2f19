"""A local certificate authority and a server certificate for the demo application's host names.

The Security Scan and the Penetration Testing checks verify the application's TLS certificate
like any client would. ``make run`` serves the demo frontends over HTTPS under their real names
(``app.sanvi-machinery.com`` …) with a certificate from a CA of its own, made once into
``.local/tls/`` (``ca.pem``: the CA certificate the checks are told to trust through
``tasks.security_scan.settings.tls_ca_file``; ``server.pem`` / ``server-key.pem``: the demo server's). The CA's
key stays in the same directory (mode 600); nothing here is trusted by the system.

The server certificate is re-issued when the host names change or when it is within
:data:`RENEW_DAYS` of expiry, so a long-lived ``.local/`` never turns the certificate checks red.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: Validity of the server certificate; CA/Browser Forum maximum for public certificates.
SERVER_DAYS = 397
CA_DAYS = 3650
#: Re-issue before the checks' warning threshold (tasks.security_scan.settings.cert_warning_days, 30) is near.
RENEW_DAYS = 60


@dataclass(frozen=True)
class LocalTLS:
    """Paths of the local CA certificate and the server certificate and key."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    path.chmod(0o600)


def _name(common_name: str) -> object:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Sanvi Ops local stack"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca(directory: Path, now: dt.datetime) -> tuple[object, object]:
    """The CA's (certificate, key): loaded from ``directory`` or made there."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    cert_path, key_path = directory / "ca.pem", directory / "ca-key.pem"
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if cert.not_valid_after_utc - now > dt.timedelta(days=SERVER_DAYS):
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            return cert, key
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("Sanvi Ops local CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)  # type: ignore[arg-type]
        .issuer_name(name)  # type: ignore[arg-type]
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
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
    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _current(cert_path: Path, ca_cert: object, hosts: list[str], now: dt.datetime) -> bool:
    from cryptography import x509

    if not cert_path.exists():
        return False
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return (
        cert.issuer == ca_cert.subject  # type: ignore[attr-defined]
        and sorted(sans.get_values_for_type(x509.DNSName)) == sorted(hosts)
        and cert.not_valid_after_utc - now > dt.timedelta(days=RENEW_DAYS)
    )


def ensure_certificates(directory: Path, hosts: Iterable[str], now: dt.datetime | None = None) -> LocalTLS:
    """The local CA and a server certificate for ``hosts`` (and 127.0.0.1) in ``directory``,
    made or re-issued as needed (see the module docstring)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = now or dt.datetime.now(dt.UTC)
    names = sorted({h.lower() for h in hosts})
    if not names:
        raise ValueError("ensure_certificates: no host name to certify")
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca_cert, ca_key = _ca(directory, now)
    tls = LocalTLS(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    if _current(tls.cert_file, ca_cert, names, now) and tls.key_file.exists():
        return tls
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))  # type: ignore[arg-type]
        .issuer_name(ca_cert.subject)  # type: ignore[attr-defined]
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[attr-defined]
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    _write_private(
        tls.key_file,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    tls.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return tls
