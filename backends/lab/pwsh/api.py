"""The objects and the command interface shared by the lab's interpreter and its emulated cmdlets.

The interpreter (``interpreter.py``) binds parameters and runs pipelines; emulated commands
(Exchange, IIS, services, events, files, ... in ``backends/lab/exchange``) are ``CmdletSpec``
entries in a registry. Values are plain Python values (str, int, float, bool, None, datetime,
list) plus ``PSObject`` for objects with properties, ``PSEnum`` for .NET enums (ConvertTo-Json writes
their number) and ``ScriptBlock`` for ``{ ... }``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class PSEnum:
    """A .NET enum value: shown by name, serialised by ConvertTo-Json as its number."""

    type_name: str
    name: str
    value: int

    def __str__(self) -> str:
        return self.name


#: names of the larger objects cmdlets make again and again (Get-OrganizationConfig: 169,
#: Get-WebApplication: 11) -> their lower-case map, copied for each object
_SPELLINGS: dict[tuple[str, ...], dict[str, str]] = {}


def _spellings(properties: dict[str, Any]) -> dict[str, str]:
    """Each name lower-cased -> the name (the last of any that differ only in case)."""
    if len(properties) < 8:
        return {key.lower(): key for key in properties}
    names = tuple(properties)
    known = _SPELLINGS.get(names)
    if known is None:
        if len(_SPELLINGS) >= 256:
            _SPELLINGS.clear()
        known = _SPELLINGS[names] = {key.lower(): key for key in names}
    return dict(known)


class PSObject:
    """An object with ordered, case-insensitive properties and a .NET type name list."""

    __slots__ = ("_names", "_values", "to_string", "type_names")

    def __init__(self, properties: dict[str, Any] | None = None,
                 type_names: Iterable[str] = ("System.Management.Automation.PSCustomObject",),
                 to_string: str | None = None) -> None:
        self.type_names = list(type_names)
        #: what ``.ToString()`` / string expansion / ConvertTo-Json beyond -Depth show for a non-custom
        #: object (an Exchange server shows its name); None means the first type name
        self.to_string = to_string
        #: lower-case name -> the name as first spelled; the values by that spelling, in order
        self._names: dict[str, str]
        self._values: dict[str, Any]
        if not properties:
            self._names, self._values = {}, {}
            return
        # The cmdlets build objects of up to ~170 properties: in one pass when the names differ
        # without case (always, in practice), else one by one (first spelling, last value).
        self._names = _spellings(properties)
        if len(self._names) == len(properties):
            self._values = dict(properties)
            return
        self._names, self._values = {}, {}
        for key, value in properties.items():
            self[key] = value

    @classmethod
    def custom(cls, spellings: dict[str, str], values: dict[str, Any]) -> PSObject:
        """A PSCustomObject of ``values``, whose names differ without case; ``spellings`` maps each
        name lower-cased to it (copied: the compiler makes it once per ``[pscustomobject]@{...}``)."""
        made = cls.__new__(cls)
        made.type_names = ["System.Management.Automation.PSCustomObject"]
        made.to_string = None
        made._names = dict(spellings)
        made._values = values
        return made

    def __getitem__(self, name: str) -> Any:
        return self._values[self._names[name.lower()]]

    def __setitem__(self, name: str, value: Any) -> None:
        real = self._names.setdefault(name.lower(), name)
        self._values[real] = value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._names

    def member(self, key: str) -> Any:
        """``get(key)`` for a name already lower-cased (compiled scripts lower member names once)."""
        real = self._names.get(key)
        return None if real is None else self._values[real]

    def get(self, name: str, default: Any = None) -> Any:
        real = self._names.get(name.lower())
        return default if real is None else self._values[real]

    def properties(self) -> list[tuple[str, Any]]:
        """(name, value) pairs in their original order and spelling."""
        return list(self._values.items())

    def __repr__(self) -> str:
        return f"PSObject({self.type_names[0]}, {self._values!r})"


@dataclass
class ScriptBlock:
    """A ``{ ... }`` literal; ``invoke`` runs it with ``$_`` bound (supplied by the interpreter)."""

    text: str
    invoke: Callable[..., list[Any]]


@dataclass
class ErrorRecord:
    """A PowerShell error: the console classifies by ``fully_qualified_error_id`` and ``exception_type``."""

    message: str
    fully_qualified_error_id: str
    category: str = "NotSpecified"
    exception_type: str = "System.Management.Automation.RuntimeException"
    target: str = ""
    command: str = ""
    #: "At line:N char:M" and the caret lines, filled in by the interpreter where the error arose
    invocation: str = ""


def command_error(
    message: str,
    error_id: str,
    command: str,
    category: str = "NotSpecified",
    exception: str = "System.Management.Automation.RuntimeException",
    target: str = "",
) -> ErrorRecord:
    """An ErrorRecord whose FullyQualifiedErrorId is ``<error_id>,<command>`` (the command's name or
    .NET class), as every cmdlet error has."""
    return ErrorRecord(
        message=message,
        fully_qualified_error_id=f"{error_id},{command}",
        category=category,
        exception_type=exception,
        target=target,
    )


class PSError(Exception):
    """Raised by commands and the interpreter; ``record`` is what `$_` and CLIXML show."""

    def __init__(self, record: ErrorRecord) -> None:
        super().__init__(record.message)
        self.record = record


class CommandContext(Protocol):
    """What a running command may use: its server's state and PowerShell's output streams."""

    @property
    def server(self) -> Any:
        """The lab server this session runs on (``backends/lab/exchange`` defines it)."""

    @property
    def session(self) -> Any:
        """Per-script session state (variables, whether the Exchange shell is loaded, ...)."""

    def write_error(self, record: ErrorRecord) -> None:
        """A non-terminating error (honours -ErrorAction / $ErrorActionPreference)."""

    def write_warning(self, text: str) -> None: ...

    def now(self) -> datetime:
        """The server's clock (the lab's virtual clock), for Get-Date and local-time conversions."""

    def write_host(self, text: str, newline: bool = True) -> None:
        """Host text, one line unless ``newline`` is False (Write-Host -NoNewline)."""


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of an emulated command, as PowerShell binds it."""

    name: str
    position: int | None = None
    switch: bool = False
    mandatory: bool = False
    aliases: tuple[str, ...] = ()
    pipeline: bool = False  # takes pipeline input by value
    remaining: bool = False  # ValueFromRemainingArguments: collects every unbound positional argument


CommandFunc = Callable[[CommandContext, dict[str, Any], list[Any]], Iterable[Any]]


@dataclass(frozen=True)
class CmdletSpec:
    """An emulated command: ``func(ctx, bound_params, pipeline_input)`` returns output objects.

    ``requires_ems`` marks Exchange cmdlets, unknown until the Exchange shell is loaded.
    """

    name: str
    func: CommandFunc
    params: tuple[ParamSpec, ...] = ()
    requires_ems: bool = False
    aliases: tuple[str, ...] = field(default=())
    #: SupportsShouldProcess: the command accepts -Confirm and -WhatIf (Set-*, Remove-*, ...)
    should_process: bool = False
