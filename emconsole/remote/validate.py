"""Validation of every value that goes into a remote script, before any script text exists.

Only values that pass these checks are ever quoted into a header; everything else is refused with
``InvalidInput`` naming the field and the rule, so the operator sees what to fix in the config.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

from emconsole.models import MITIGATION_ID_PATTERN

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
IDENTITY_RE = re.compile(rf"^{_LABEL}$")
FQDN_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?$")
MITIGATION_ID_RE = re.compile(MITIGATION_ID_PATTERN)
#: ``20260131T235959Z-0123abcd``: UTC time of the delete plus 32 random bits; a file name on the server.
BACKUP_ID_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[a-f0-9]{8}$")
SERVICE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
#: IIS app pool names may hold spaces (``DefaultAppPool``, ``My Pool``) but never quotes.
APP_POOL_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9 ._-]{0,62}[A-Za-z0-9._-])?$")
EMS_MODES = ("snapin", "remoteexchange")
MAX_LIST = 64


def shown(value: object, limit: int = 60) -> str:
    """A value quoted for a message: escaped (``repr``) and cut, so a 100 kB input stays one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


class InvalidInput(ValueError):
    """A value that must not reach a server: ``field`` names it, the message says the rule."""

    def __init__(self, field: str, value: object, rule: str) -> None:
        self.field = field
        self.value = value
        super().__init__(f"{field}: {shown(value)} is not allowed ({rule}); no script was built")


def _check(field: str, value: object, pattern: re.Pattern[str], rule: str) -> str:
    # re's ``$`` also matches before a final newline: fullmatch plus the explicit type check closes that.
    if not isinstance(value, str) or pattern.fullmatch(value) is None or "\n" in value:
        raise InvalidInput(field, value, rule)
    return value


def identity(value: object, field: str = "server name") -> str:
    """An Exchange server name as ``$env:COMPUTERNAME`` has it: one DNS label."""
    return _check(
        field, value, IDENTITY_RE, "one DNS label: 1-63 letters, digits or hyphens, no hyphen at either end"
    )


def host(value: object, field: str = "host") -> str:
    """A host to connect to: an FQDN / single label, or an IPv4 / IPv6 literal."""
    if isinstance(value, str):
        literal = value[1:-1] if value.startswith("[") and value.endswith("]") else value
        try:
            ipaddress.ip_address(literal)
            return value
        except ValueError:
            pass
    return _check(field, value, FQDN_RE, "a DNS name (labels of letters, digits, hyphens) or an IP address")


def mitigation_id(value: object, field: str = "mitigation ID") -> str:
    return _check(
        field,
        value,
        MITIGATION_ID_RE,
        "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
    )


def backup_id(value: object, field: str = "backup ID") -> str:
    return _check(field, value, BACKUP_ID_RE, "emconsole's own format, e.g. 20260131T235959Z-0123abcd")


def service_name(value: object, field: str = "service name") -> str:
    return _check(field, value, SERVICE_NAME_RE, "1-80 letters, digits, '.', '_' or '-'")


def app_pool(value: object, field: str = "app pool name") -> str:
    return _check(
        field, value, APP_POOL_RE, "1-64 letters, digits, spaces, '.', '_' or '-', no space at either end"
    )


def ems_mode(value: object, field: str = "ems") -> str:
    if value not in EMS_MODES:
        raise InvalidInput(field, value, "one of " + ", ".join(EMS_MODES))
    return str(value)


def many(
    check: Callable[[object, str], str], values: Iterable[object], field: str, limit: int = MAX_LIST
) -> list[str]:
    """Validate a list (at most ``limit`` items, duplicates dropped case-insensitively, order kept)."""
    if isinstance(values, str):
        raise InvalidInput(field, values, "a list of values, not one string")
    items = list(values)
    if len(items) > limit:
        raise InvalidInput(field, f"<{len(items)} items>", f"at most {limit} items")
    seen: set[str] = set()
    out: list[str] = []
    for index, value in enumerate(items):
        ok = check(value, f"{field}[{index}]")
        if ok.casefold() not in seen:
            seen.add(ok.casefold())
            out.append(ok)
    return out


def new_backup_id(now: datetime | None = None) -> str:
    """A fresh backup ID; the console picks it so the audit intent can name it before the delete."""
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
