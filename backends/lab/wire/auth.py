"""HTTP authentication as WinRM does it: Basic per request, NTLM per connection (then message
encryption with the NTLM session keys, MS-WSMV 2.2.9.1.1), or a client certificate (HTTPS only:
the TLS handshake verified it against the lab CA; its subject's CN is mapped to the lab account,
as WinRM's certificate mapping maps a certificate to a local user).

pyspnego's NTLM acceptor checks passwords against the file named by ``NTLM_USER_FILE``
(process-wide), so the lab writes one file for its single account and points the variable at it.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import spnego
import spnego.exceptions

BOUNDARY = b"--Encrypted Boundary"
ENCRYPTED_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
ENCRYPTED_CONTENT_TYPE = f'multipart/encrypted;protocol="{ENCRYPTED_PROTOCOL}";boundary="Encrypted Boundary"'
# The Authorization value a WS-Man client sends to ask for certificate auth (DSP0226 security profile).
CERTIFICATE_PROFILE = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"


class DecryptError(ValueError):
    """An encrypted body that does not unwrap (tampered, wrong keys or not the MS-WSMV layout)."""


@dataclass
class ConnectionAuth:
    """Per-connection state: NTLM authenticates the TCP connection, not single requests."""

    ntlm: spnego.ContextProxy | None = None
    user: str | None = None
    basic_cache: dict[str, bool] = field(default_factory=dict)
    cert_subject: str | None = None  # CN of a verified client certificate (HTTPS)


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one request: ``user`` when accepted, else a 401 with these headers."""

    user: str | None
    challenge: tuple[str, ...] = ()


class Authenticator:
    """Accepts exactly one account, with one scheme (``basic``, ``ntlm`` or ``certificate``), like a lab
    server's WinRM."""

    def __init__(
        self, scheme: str, username: str, password: str, domain: str, https: bool, allow_unencrypted: bool
    ) -> None:
        self.scheme = scheme
        self.username = username
        self.password = password
        self.domain = domain
        self.https = https
        self.allow_unencrypted = allow_unencrypted

    def _basic_ok(self, value: str) -> bool:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return False
        domain, _, name = user.rpartition("\\")
        if "@" in name and not domain:
            name, _, domain = name.partition("@")
        if domain and domain.upper() not in (self.domain.upper(), "."):
            return False
        return name.lower() == self.username.lower() and password == self.password

    def check(self, authorization: str, conn: ConnectionAuth, *, refuse: bool) -> Verdict:
        """Check a request's Authorization header. ``refuse``: the wrong-credentials fault."""
        if self.scheme == "certificate":
            mapped = conn.cert_subject is not None and conn.cert_subject.lower() == self.username.lower()
            if authorization.strip() != CERTIFICATE_PROFILE or refuse or not mapped:
                return Verdict(None, ())
            return Verdict(self.username)
        scheme, _, value = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if self.scheme == "basic":
            if scheme != "basic" or refuse or (not self.https and not self.allow_unencrypted):
                return Verdict(None, ('Basic realm="WSMAN"',))
            ok = conn.basic_cache.get(value)
            if ok is None:
                ok = conn.basic_cache[value] = self._basic_ok(value.strip())
            return Verdict(self.username if ok else None, () if ok else ('Basic realm="WSMAN"',))
        return self._check_ntlm(scheme, value.strip(), conn, refuse)

    def _check_ntlm(self, scheme: str, value: str, conn: ConnectionAuth, refuse: bool) -> Verdict:
        if scheme not in ("negotiate", "ntlm"):
            if conn.user is not None:
                return Verdict(conn.user)
            return Verdict(None, ("Negotiate",))
        name = "NTLM" if scheme == "ntlm" else "Negotiate"
        try:
            token = base64.b64decode(value, validate=True)
            if conn.ntlm is None or conn.ntlm.complete:
                conn.ntlm, conn.user = spnego.server(protocol="ntlm"), None
            out = conn.ntlm.step(token)
        except (binascii.Error, ValueError, spnego.exceptions.SpnegoError):
            conn.ntlm, conn.user = None, None
            return Verdict(None, (name,))
        if not conn.ntlm.complete:
            return Verdict(None, (f"{name} {base64.b64encode(out or b'').decode()}",))
        if refuse:
            conn.ntlm = None
            return Verdict(None, (name,))
        conn.user = conn.ntlm.client_principal or self.username
        return Verdict(conn.user)


def decrypt_body(conn: ConnectionAuth, body: bytes) -> bytes:
    """Unwrap a multipart/encrypted request body (the layout pywinrm's Encryption class writes)."""
    if conn.ntlm is None or conn.user is None:
        raise DecryptError("encrypted body on a connection that is not authenticated")
    parts = [p for p in body.split(BOUNDARY + b"\r\n") if p]
    if len(parts) < 2:
        raise DecryptError("no encrypted part")
    header, payload = parts[0], parts[1]
    try:
        length = int(header.split(b"Length=")[1].split(b"\r\n")[0])
    except (IndexError, ValueError) as exc:
        raise DecryptError("no OriginalContent length") from exc
    if payload.endswith(BOUNDARY + b"--\r\n"):
        payload = payload[: -len(BOUNDARY + b"--\r\n")]
    payload = payload.replace(b"\tContent-Type: application/octet-stream\r\n", b"", 1)
    if len(payload) < 4:
        raise DecryptError("truncated encrypted part")
    sig_len = struct.unpack("<i", payload[:4])[0]
    signature, sealed = payload[4 : 4 + sig_len], payload[4 + sig_len :]
    try:
        message = conn.ntlm.unwrap(signature + sealed).data
    except spnego.exceptions.SpnegoError as exc:
        raise DecryptError(f"unwrap failed: {exc}") from exc
    if len(message) != length:
        raise DecryptError("decrypted length does not match OriginalContent")
    return message


def encrypt_body(conn: ConnectionAuth, message: bytes) -> bytes:
    """Wrap a response for an encrypted session (16-byte NTLM signature, then the sealed message)."""
    assert conn.ntlm is not None
    wrapped = conn.ntlm.wrap(message, encrypt=True).data
    signature, sealed = wrapped[:16], wrapped[16:]
    return (
        BOUNDARY + b"\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"
        b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
        + str(len(message)).encode()
        + b"\r\n"
        + BOUNDARY
        + b"\r\n\tContent-Type: application/octet-stream\r\n"
        + struct.pack("<i", len(signature))
        + signature
        + sealed
        + BOUNDARY
        + b"--\r\n"
    )


class NtlmUserFile:
    """Points ``NTLM_USER_FILE`` at a file holding the lab account while a lab runs, then restores it."""

    def __init__(self, directory: Path, domain: str, username: str, password: str) -> None:
        self.path = directory / "ntlm-users"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(f"{domain}:{username}:{password}\n:{username}:{password}\n")
        self._previous = os.environ.get("NTLM_USER_FILE")
        os.environ["NTLM_USER_FILE"] = str(self.path)

    def restore(self) -> None:
        if self._previous is None:
            os.environ.pop("NTLM_USER_FILE", None)
        else:
            os.environ["NTLM_USER_FILE"] = self._previous
