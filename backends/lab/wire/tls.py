"""The lab's TLS: a CA made at start, server certificates it signs, and the broken ones faults use.

EC P-256 keys keep generation in the milliseconds. The CA PEM is what a client trusts
(pywinrm ``ca_trust_path``); private keys stay in the lab's own directory (mode 0600). For
client-certificate auth the CA also signs a client certificate for the lab account (subject CN and
a UPN-style SAN ``user@domain``), written next to the CA as ``client.pem`` / ``client-key.pem``;
server contexts then ask for a client certificate and check it against the CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

GOOD_NAMES = ("localhost", "127.0.0.1", "::1")
WRONG_NAME = "wrong-host.lab.invalid"


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "emconsole lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(names: tuple[str, ...]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


class LabCA:
    """A CA in ``directory`` (ca.pem) and the server contexts: ``good``, ``wrong-name``, ``expired``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        now = dt.datetime.now(dt.timezone.utc)
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        self._server_key = ec.generate_private_key(ec.SECP256R1())
        self._ca_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("emconsole lab CA"))
            .issuer_name(_name("emconsole lab CA"))
            .public_key(self._ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._ca_key, hashes.SHA256())
        )
        self.ca_path = directory / "ca.pem"
        self.ca_path.write_bytes(self._ca_cert.public_bytes(serialization.Encoding.PEM))
        self._key_path = directory / "server-key.pem"
        _write_private(
            self._key_path,
            self._server_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        self._contexts: dict[str, ssl.SSLContext] = {}

    def _issue(self, kind: str) -> Path:
        now = dt.datetime.now(dt.timezone.utc)
        names = (WRONG_NAME,) if kind == "wrong-name" else GOOD_NAMES
        if kind == "expired":
            start, end = now - dt.timedelta(days=60), now - dt.timedelta(days=1)
        else:
            start, end = now - dt.timedelta(days=1), now + dt.timedelta(days=30)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(self._ca_cert.subject)
            .public_key(self._server_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(_san(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self._ca_key, hashes.SHA256())
        )
        path = self.directory / f"server-{kind}.pem"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def issue_client(self, username: str, domain: str, stem: str = "client") -> tuple[Path, Path]:
        """A client certificate for ``username`` signed by the CA: (``stem``.pem, ``stem``-key.pem)."""
        now = dt.datetime.now(dt.timezone.utc)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(username))
            .issuer_name(self._ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(
                x509.SubjectAlternativeName([x509.RFC822Name(f"{username}@{domain.lower()}")]), critical=False
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self._ca_key, hashes.SHA256())
        )
        cert_path, key_path = self.directory / f"{stem}.pem", self.directory / f"{stem}-key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_private(
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        return cert_path, key_path

    def server_context(self, kind: str = "good", client_certs: bool = False) -> ssl.SSLContext:
        """A server-side context presenting the certificate of that kind (made once, shared);
        ``client_certs``: ask for a client certificate and verify it against the CA."""
        key = f"{kind}+client" if client_certs else kind
        if key not in self._contexts:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(self._issue(kind), self._key_path)
            if client_certs:
                context.load_verify_locations(cafile=str(self.ca_path))
                context.verify_mode = ssl.CERT_OPTIONAL
            self._contexts[key] = context
        return self._contexts[key]
