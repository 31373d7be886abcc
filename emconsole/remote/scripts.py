"""Every PowerShell script emconsole sends: a generated header binding validated inputs + constant bodies.

A script is ``header + fragments`` where the fragments are the files in ``ps/`` (shipped as package
data) with indentation, blank lines and full-line comments stripped to stay well inside the command
line (WINRM.md: 32,767 characters with ``skip_cmd_shell``, about 12,000 script characters once
encoded). Only ``quoting`` puts values into the text, and only after ``validate`` accepted them.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from emconsole.models import artifact_match_ids
from emconsole.remote import validate
from emconsole.remote.quoting import quote, quote_array, quote_bool

POWERSHELL_EXE = "powershell.exe"
POWERSHELL_SWITCHES = ("-NoProfile", "-NonInteractive", "-EncodedCommand")
#: CreateProcess limit for the whole command line (``skip_cmd_shell``; 8,191 through cmd.exe).
COMMAND_LINE_LIMIT = 32_767
EM_SERVICE = "MSExchangeMitigation"
MAX_EVENTS = 50
#: Largest lists each script accepts, chosen so the longest allowed inputs still fit the command line
#: (tests/test_remote_scripts.py builds every script with them). A longer list is refused, not cut.
LIMITS: dict[str, int] = {
    "status.services": 32,
    "status.app_pools": 32,
    "block.ids": 64,
    "block.expected": 64,
    "delete.ids": 8,
    "delete.block_ids": 16,
    "delete.expected": 16,
    "delete.services": 4,
    "delete.app_pools": 4,
}

#: Operation -> (schema version, body fragments in order). The header binds what the fragments read.
OPERATIONS: dict[str, tuple[int, tuple[str, ...]]] = {
    "status": (1, ("prelude", "ems", "status", "scan", "status_local", "epilogue")),
    "block": (1, ("prelude", "ems", "cas", "blocklist", "epilogue")),
    "unblock": (1, ("prelude", "ems", "cas", "blocklist", "epilogue")),
    "reapply": (1, ("prelude", "reapply", "epilogue")),
    "delete": (1, ("prelude", "ems", "cas", "delete_scan", "scan", "delete", "epilogue")),
    "restore": (1, ("prelude", "restore", "epilogue")),
    "set_enabled": (1, ("prelude", "ems", "switch", "epilogue")),
    "test_ocs": (1, ("prelude", "ems", "ocs", "epilogue")),
    "discover": (1, ("prelude", "ems", "discover", "epilogue")),
}


class ScriptTooLong(ValueError):
    """The encoded command line would exceed what Windows accepts; nothing is sent."""


@cache
def fragment(name: str) -> str:
    """A body fragment from ``ps/``, minified: no indentation, blank lines or full-line comments."""
    raw = resources.files("emconsole.remote").joinpath(f"ps/{name}.ps1").read_text(encoding="utf-8")
    lines = (line.strip() for line in raw.splitlines())
    return "".join(line + "\n" for line in lines if line and not line.startswith("#"))


def encode_command(text: str) -> str:
    """``-EncodedCommand`` takes base64 of the script's UTF-16LE bytes."""
    return base64.b64encode(text.encode("utf-16-le")).decode("ascii")


def command_arguments(text: str) -> list[str]:
    """The arguments after ``powershell.exe``, for pywinrm ``run_command(..., skip_cmd_shell=True)``."""
    return [*POWERSHELL_SWITCHES, encode_command(text)]


def command_line(text: str) -> str:
    """The whole command line Windows sees, which must fit ``COMMAND_LINE_LIMIT``."""
    return " ".join([POWERSHELL_EXE, *command_arguments(text)])


@dataclass(frozen=True)
class RemoteScript:
    """One script ready to send; ``text`` is exactly what the operator is shown and the audit hashes."""

    operation: str
    schema: int
    identity: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def encoded_arguments(self) -> list[str]:
        return command_arguments(self.text)

    @property
    def command_line(self) -> str:
        return command_line(self.text)


def _build(operation: str, identity: str, bindings: list[tuple[str, str]]) -> RemoteScript:
    schema, parts = OPERATIONS[operation]
    header = [
        f"# emconsole {operation} (schema {schema})",
        f"$Schema = {schema}",
        f"$Operation = {quote(operation)}",
        f"$Identity = {quote(identity)}",
    ]
    header += [f"${name} = {literal}" for name, literal in bindings]
    text = "\n".join(header) + "\n" + "".join(fragment(p) for p in parts)
    length = len(command_line(text))
    if length > COMMAND_LINE_LIMIT:
        raise ScriptTooLong(
            f"the {operation} script needs a {length}-character command line; "
            f"Windows allows {COMMAND_LINE_LIMIT}"
        )
    return RemoteScript(operation, schema, identity, text)


def _shell(ems: str, needed: bool = True) -> list[tuple[str, str]]:
    """How the script loads the Exchange shell, and whether this run needs it at all."""
    return [("Ems", quote(validate.ems_mode(ems))), ("NeedEms", quote_bool(needed))]


def build_status(
    identity: str,
    ems: str,
    services: Iterable[str] = (),
    app_pools: Iterable[str] = (),
    max_events: int = MAX_EVENTS,
) -> RemoteScript:
    """Everything the console shows for one server. ``services``/``app_pools``: the catalogue's names
    (the EM service itself is always read)."""
    name = validate.identity(identity)
    svcs = validate.many(
        validate.service_name, [EM_SERVICE, *services], "services", LIMITS["status.services"] + 1
    )
    pools = validate.many(validate.app_pool, app_pools, "app pools", LIMITS["status.app_pools"])
    if isinstance(max_events, bool) or not isinstance(max_events, int) or not 1 <= max_events <= 500:
        raise validate.InvalidInput("max_events", max_events, "a whole number from 1 to 500")
    return _build(
        "status",
        name,
        [
            *_shell(ems),
            ("Services", quote_array(svcs)),
            ("AppPools", quote_array(pools)),
            ("MaxEvents", str(max_events)),
        ],
    )


def _blocking(mode: str, expected: Iterable[str], ids: Iterable[str], op: str) -> list[tuple[str, str]]:
    return [
        ("Mode", quote(mode)),
        (
            "Expected",
            quote_array(
                validate.many(
                    validate.mitigation_id, expected, "expected block list", LIMITS[f"{op}.expected"]
                )
            ),
        ),
        (
            "BlockIds",
            quote_array(
                validate.many(
                    validate.mitigation_id,
                    ids,
                    "mitigation IDs to block",
                    LIMITS[f"{op}.{'ids' if op == 'block' else 'block_ids'}"],
                )
            ),
        ),
    ]


def build_block(identity: str, ems: str, ids: Iterable[str], expected: Iterable[str]) -> RemoteScript:
    """Add ``ids`` (base and every known full ID) to MitigationsBlocked if it still equals ``expected``."""
    return _block_or_unblock("block", identity, ems, ids, expected)


def build_unblock(identity: str, ems: str, ids: Iterable[str], expected: Iterable[str]) -> RemoteScript:
    """Remove ``ids`` from MitigationsBlocked if it still equals ``expected``."""
    return _block_or_unblock("unblock", identity, ems, ids, expected)


def _block_or_unblock(
    mode: str, identity: str, ems: str, ids: Iterable[str], expected: Iterable[str]
) -> RemoteScript:
    name = validate.identity(identity)
    bindings = _shell(ems)
    block = _blocking(mode, expected, ids, "block")
    if block[2][1] == "@()":
        raise validate.InvalidInput("mitigation IDs", [], f"{mode} needs at least one ID")
    return _build(mode, name, bindings + block)


def build_reapply(identity: str) -> RemoteScript:
    """Restart the EM service (needs no Exchange shell)."""
    return _build("reapply", validate.identity(identity), [])


def build_delete(
    identity: str,
    ems: str,
    ids: Iterable[str],
    backup_id: str,
    *,
    services: Iterable[str] = (),
    app_pools: Iterable[str] = (),
    block: bool = True,
    block_ids: Iterable[str] = (),
    expected: Iterable[str] = (),
) -> RemoteScript:
    """Back up, then remove, every ``EEMS <id>`` rule/precondition and the named services / app pools.

    ``ids`` are matched against rule names by base ID (``artifact_match_ids``: ``M2.1.0`` finds
    ``EEMS M2.1 ...``); with ``block`` the script first does the same compare-and-set as block with
    ``block_ids`` against ``expected``.
    """
    name = validate.identity(identity)
    given = validate.many(validate.mitigation_id, ids, "mitigation IDs", LIMITS["delete.ids"])
    match_ids = list(artifact_match_ids(given))
    if not match_ids:
        raise validate.InvalidInput("mitigation IDs", [], "delete needs at least one ID")
    bindings = [
        *_shell(ems, needed=bool(block)),
        ("Ids", quote_array(match_ids)),
        ("BackupId", quote(validate.backup_id(backup_id))),
        (
            "Services",
            quote_array(
                validate.many(validate.service_name, services, "services", LIMITS["delete.services"])
            ),
        ),
        (
            "AppPools",
            quote_array(validate.many(validate.app_pool, app_pools, "app pools", LIMITS["delete.app_pools"])),
        ),
    ]
    bindings += _blocking(
        "block" if block else "", expected if block else (), block_ids if block else (), "delete"
    )
    if block and bindings[-1][1] == "@()":
        raise validate.InvalidInput("block IDs", [], "delete with block needs the IDs to block")
    return _build("delete", name, bindings)


def build_restore(identity: str, backup_id: str) -> RemoteScript:
    """Re-create what the delete with this backup ID removed, from the file on the server."""
    return _build(
        "restore", validate.identity(identity), [("BackupId", quote(validate.backup_id(backup_id)))]
    )


def build_set_enabled(identity: str, ems: str, scope: str, enabled: bool) -> RemoteScript:
    """MitigationsEnabled at ``scope`` ``server`` (this server) or ``org`` (run once, on any server)."""
    if scope not in ("server", "org"):
        raise validate.InvalidInput("scope", scope, "server or org")
    if not isinstance(enabled, bool):
        raise validate.InvalidInput("enabled", enabled, "true or false")
    return _build(
        "set_enabled",
        validate.identity(identity),
        [
            *_shell(ems),
            ("Scope", quote(scope)),
            ("Enabled", quote_bool(enabled)),
        ],
    )


def build_test_ocs(identity: str, ems: str) -> RemoteScript:
    """Test-MitigationServiceConnectivity.ps1 on the server (read-only)."""
    return _build(
        "test_ocs",
        validate.identity(identity),
        _shell(ems),
    )


def build_discover(identity: str, ems: str) -> RemoteScript:
    """Get-ExchangeServer on one (seed) server: every Exchange server of the organisation (read-only)."""
    return _build(
        "discover",
        validate.identity(identity),
        _shell(ems),
    )
