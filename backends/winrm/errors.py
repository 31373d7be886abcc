"""Every way a WinRM call can fail, turned into a ``ServerFailure`` an admin can act on.

pywinrm lets many exception types escape (WINRM.md lists them: its own errors, ``requests``
errors, ``AssertionError``, ``StopIteration``, XML, Unicode and base64 errors). Nothing outside this
package may see one of them, so the mapping is total: an unknown exception becomes "output not
understood" with its type kept in ``detail``.
"""

from __future__ import annotations

import binascii
import re
import socket
import ssl
from xml.etree.ElementTree import ParseError

import requests
from winrm.exceptions import (
    InvalidCredentialsError,
    WinRMError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
    WSManFaultError,
)

from emconsole.models import FailureKind, ServerFailure

# WSManFault codes (MS-WSMV / winrm.h).
FAULT_INVALID_SELECTORS = 2150858843  # the shell is unknown (expired, or the service restarted)
FAULT_SHELL_QUOTA = 2150859173  # ERROR_WSMAN_QUOTA_MAX_SHELLS
FAULT_OPERATIONS_QUOTA = 2150859174  # ERROR_WSMAN_QUOTA_MAX_OPERATIONS
_QUOTA_CODES = {FAULT_SHELL_QUOTA, FAULT_OPERATIONS_QUOTA, 2150859172, 2150859175, 2150859176}

SECOND_HOP_ADVICE = (
    "the WinRM session holds no credentials for Active Directory (second hop): "
    "use CredSSP over HTTPS, or Kerberos with delegation"
)

# PowerShell error texts that mean "the Exchange Management Shell could not be loaded".
_EMS_PATTERNS = (
    r"Microsoft\.Exchange\.Management\.PowerShell\.(SnapIn|E2010)",
    r"No snap-ins have been registered",
    r"RemoteExchange\.ps1",
    r"Connect-ExchangeServer",
    r"The term '(Get|Set)-(ExchangeServer|OrganizationConfig)' is not recognized",
)
# ... and texts that mean the cmdlets ran but could not reach Active Directory (no delegated creds).
_SECOND_HOP_PATTERNS = (
    r"Active Directory (operation|server|error)",
    r"LDAP server is unavailable",
    r"domain controller",
    r"No Exchange servers are available in any Active Directory site",
    r"ADTopology",
    r"Kerberos.*(delegat|double hop|second hop)",
    r"second hop",
    r"0x51\b",
)


def first_line(text: str) -> str:
    """The first non-blank line, trimmed (PowerShell puts the real error first)."""
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#< CLIXML"):
            return line[:300]
    return ""


def classify_powershell_error(stderr: str, stdout: str = "") -> ServerFailure:
    """A script that exited non-zero: EMS not loadable, AD second hop, or a plain PowerShell error."""
    text = stderr or stdout
    line = first_line(text) or "PowerShell exited with an error and printed nothing"
    if any(re.search(p, text, re.IGNORECASE) for p in _SECOND_HOP_PATTERNS):
        return ServerFailure(kind=FailureKind.AD_SECOND_HOP, message=f"{SECOND_HOP_ADVICE} ({line})",
                             detail=text[-4000:], raw_output=stdout or None)
    if any(re.search(p, text, re.IGNORECASE) for p in _EMS_PATTERNS):
        return ServerFailure(
            kind=FailureKind.EMS_NOT_LOADABLE,
            message=f"the Exchange Management Shell could not be loaded: {line} "
                    "(check the server's 'ems' setting: snap-in or RemoteExchange.ps1)",
            detail=text[-4000:], raw_output=stdout or None,
        )
    return ServerFailure(kind=FailureKind.POWERSHELL, message=f"PowerShell error: {line}",
                         detail=text[-4000:], raw_output=stdout or None)


def _peer_certificate(host: str, port: int) -> tuple[str, str]:
    """(subject, issuer) of the certificate the server presents, read without verifying it."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=3) as sock, \
            ctx.wrap_socket(sock, server_hostname=host) as tls:
        der = tls.getpeercert(binary_form=True)
    if not der:
        return "", ""
    cert = x509.load_der_x509_certificate(der)

    def cn(name: x509.Name) -> str:
        attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(attrs[0].value) if attrs else name.rfc4514_string()

    subject = cn(cert.subject)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
        if names and subject not in names:
            subject = f"{subject} (also {', '.join(names[:3])})"
    except x509.ExtensionNotFound:
        pass
    return subject, cn(cert.issuer)


def tls_failure(exc: BaseException, host: str, port: int) -> ServerFailure:
    """Certificate not trusted: say which name, which issuer, and what to change."""
    reason = str(exc)
    match = re.search(r"certificate verify failed: ([^()'\"]+)", reason)
    why = match.group(1).strip() if match else "TLS handshake failed"
    try:
        subject, issuer = _peer_certificate(host, port)
    except Exception:  # the detail is a courtesy; the failure stands without it
        subject, issuer = "", ""
    who = f" for '{subject}' issued by '{issuer}'" if subject else ""
    return ServerFailure(
        kind=FailureKind.TLS,
        message=f"certificate not trusted{who} on {host}:{port}: {why} — add the issuer to the server's "
                "ca_bundle, or fix the name the config connects to",
        detail=reason[:2000],
    )


def _fail(kind: FailureKind, message: str, detail: object = "", raw: str | None = None) -> ServerFailure:
    return ServerFailure(kind=kind, message=message[:500], detail=str(detail)[:2000], raw_output=raw)


def _unreachable_reason(text: str) -> str:
    low = text.lower()
    if "refused" in low:
        return "connection refused"
    if "resolve" in low or "name or service" in low:
        return "name not resolved"
    return "connection failed"


def map_exception(exc: BaseException, *, host: str, port: int, phase: str, elapsed_s: float) -> ServerFailure:
    """Map anything pywinrm/requests/XML raised during ``phase`` to a ``ServerFailure``."""
    where = f"{host}:{port}"
    kind_name = type(exc).__name__
    garbled = FailureKind.OUTPUT_NOT_UNDERSTOOD
    if isinstance(exc, InvalidCredentialsError):
        return _fail(FailureKind.AUTH, f"wrong credentials: {where} rejected the user name or password "
                                       "(or does not accept this auth transport)", exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return tls_failure(exc, host, port)
    if isinstance(exc, (requests.exceptions.Timeout, WinRMOperationTimeoutError)):
        return timeout_failure(host, port, phase, elapsed_s, detail=f"{kind_name}: {exc}")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return _fail(FailureKind.UNREACHABLE, f"unreachable: {where} ({_unreachable_reason(str(exc))}; "
                                              "is WinRM listening and the firewall open?)", exc)
    if isinstance(exc, WSManFaultError):
        reason = exc.reason or str(exc.wsman_fault_code)
        if exc.wsman_fault_code in _QUOTA_CODES:
            return _fail(FailureKind.QUOTA, f"WinRM quota reached on {where}: {reason} "
                                            "(too many shells or operations for this user)", exc)
        if exc.code == 401 or (exc.fault_subcode or "").endswith("AccessDenied"):
            return _fail(FailureKind.AUTH, f"access denied on {where}: {reason}", exc)
        return _fail(garbled, f"WinRM fault during {phase} on {where}: {reason}", exc)
    if isinstance(exc, WinRMTransportError):
        body = str(exc.response_text)
        return _fail(FailureKind.OUTPUT_NOT_UNDERSTOOD,
                     f"{where} answered HTTP {exc.code} during {phase} with a body that is not WS-Management "
                     "(a proxy or another web server on this port?)", body, body[:20000])
    if isinstance(exc, WinRMError):
        return _fail(garbled, f"WinRM error during {phase} on {where}: {exc}", repr(exc))
    if isinstance(exc, requests.exceptions.RequestException):
        return _fail(FailureKind.UNREACHABLE, f"HTTP request to {where} failed: {exc}", repr(exc))
    if isinstance(exc, (AssertionError, StopIteration, ParseError, UnicodeDecodeError, binascii.Error,
                        ValueError, KeyError, IndexError)):
        return _fail(FailureKind.OUTPUT_NOT_UNDERSTOOD,
                     f"{where} sent a WS-Management answer that could not be understood during {phase} "
                     f"({kind_name})", f"{kind_name}: {exc}")
    return _fail(garbled, f"unexpected error during {phase} on {where}: {kind_name}: {exc}", repr(exc))


def timeout_failure(host: str, port: int, phase: str, elapsed_s: float, detail: str = "") -> ServerFailure:
    """Timed out: after how long, and in which phase (connect / shell / command / receive)."""
    return ServerFailure(kind=FailureKind.TIMEOUT,
                         message=f"timed out after {elapsed_s:.1f} s in the {phase} phase on {host}:{port}",
                         detail=detail)
