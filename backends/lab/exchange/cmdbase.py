"""Helpers shared by the emulated commands: the server behind a context, errors as PowerShell words them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emconsole.backends.lab.exchange.org import LabServer
from emconsole.backends.lab.pwsh.api import CommandContext, ErrorRecord, PSError, PSObject
from emconsole.backends.lab.pwsh.api import command_error as error


def lab_server(ctx: CommandContext) -> LabServer:
    """The LabServer a command runs on; the org's clock is caught up first."""
    server: LabServer = ctx.server
    server.org.sync()
    return server


def fail(message: str, error_id: str, command: str, **kw: str) -> PSError:
    return PSError(error(message, error_id, command, **kw))


def path_not_found(path: str, command: str) -> ErrorRecord:
    return error(
        f"Cannot find path '{path}' because it does not exist.",
        "PathNotFound",
        command,
        "ObjectNotFound",
        "System.Management.Automation.ItemNotFoundException",
        path,
    )


def as_strings(value: Any) -> list[str]:
    """A parameter value that may be one string, an array, or $null."""
    if value.__class__ is str:  # the commonest (the rules below give the same)
        return [value]
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def as_mapping(value: Any) -> dict[str, Any] | None:
    """A hashtable parameter (``-AtElement @{name='x'}``, ``-Value @{...}``) as a plain dict."""
    if value is None:
        return None
    if isinstance(value, PSObject):
        return dict(value.properties())
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    return None


def custom(**props: Any) -> PSObject:
    """A [pscustomobject] with the given properties in order."""
    return PSObject(props)
