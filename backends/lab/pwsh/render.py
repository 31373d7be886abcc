"""Text that PowerShell prints: Out-Default's rendering of output objects and an error record's layout.

Good enough for a host that is read by programs: the console's scripts print one JSON string, so
strings pass through untouched; objects get a plain Format-Table (up to 4 properties) or
Format-List rendering, as PowerShell chooses for objects without a format view.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from emconsole.backends.lab.pwsh.api import ErrorRecord, PSObject
from emconsole.backends.lab.pwsh.records import InformationRecord, WarningRecord
from emconsole.backends.lab.pwsh.values import Hashtable, to_string

NEWLINE = "\r\n"


def display_date(value: datetime) -> str:
    """A DateTime as Out-Default shows it (the en-US long date and time)."""
    hour = value.hour % 12 or 12
    return (
        f"{value:%A}, {value:%B} {value.day}, {value.year} {hour}:{value:%M:%S} "
        f"{'AM' if value.hour < 12 else 'PM'}"
    )


def scalar_text(value: Any) -> str:
    if isinstance(value, datetime):
        return display_date(value)
    if isinstance(value, list):
        shown = ", ".join(to_string(item) for item in value[:4])
        return "{" + shown + (", ..." if len(value) > 4 else "") + "}"
    return to_string(value)


def error_text(record: ErrorRecord) -> str:
    """The record as PowerShell prints it: message, position, CategoryInfo, FullyQualifiedErrorId."""
    head = f"{record.command} : {record.message}" if record.command else record.message
    lines = [head]
    if record.invocation:
        lines.append(record.invocation)
    reason = record.exception_type.rsplit(".", 1)[-1]
    target = record.target
    target_type = "String" if target else ""
    lines.append(
        f"    + CategoryInfo          : {record.category}: ({target}:{target_type}) "
        f"[{record.command}], {reason}"
    )
    lines.append(f"    + FullyQualifiedErrorId : {record.fully_qualified_error_id}")
    return NEWLINE.join(lines) + NEWLINE + " "


def _table(objects: list[PSObject]) -> list[str]:
    names = [name for name, _ in objects[0].properties()]
    cells = [[scalar_text(obj.get(name)) for name in names] for obj in objects]
    widths = [max([len(name)] + [len(row[i]) for row in cells]) for i, name in enumerate(names)]
    lines = [
        "",
        " ".join(name.ljust(widths[i]) for i, name in enumerate(names)).rstrip(),
        " ".join("-" * len(name) + " " * (widths[i] - len(name)) for i, name in enumerate(names)).rstrip(),
    ]
    lines += [" ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    return [*lines, ""]


def _list(obj: PSObject | Hashtable) -> list[str]:
    pairs = obj.properties() if isinstance(obj, PSObject) else list(obj.items())
    if not pairs:
        return []
    width = max(len(to_string(name)) for name, _ in pairs)
    return ["", *(f"{to_string(name).ljust(width)} : {scalar_text(value)}" for name, value in pairs), ""]


def render(items: list[Any]) -> str:
    """Out-Default for one statement's output: runs of alike objects share one table."""
    lines: list[str] = []
    index = 0
    while index < len(items):
        item = items[index]
        if isinstance(item, InformationRecord):
            lines.append(item.text)
        elif isinstance(item, WarningRecord):
            lines.append(f"WARNING: {item.message}")
        elif isinstance(item, PSObject) and len(item.properties()) <= 4 and item.properties():
            names = [name.lower() for name, _ in item.properties()]
            run = [item]
            while (
                index + 1 < len(items)
                and isinstance(items[index + 1], PSObject)
                and [n.lower() for n, _ in items[index + 1].properties()] == names
            ):
                index += 1
                run.append(items[index])
            lines += _table(run)
        elif isinstance(item, (PSObject, Hashtable)):
            lines += _list(item)
        elif isinstance(item, ErrorRecord):
            lines.append(error_text(item))
        elif item is not None:
            lines.append(scalar_text(item))
        index += 1
    return "".join(line + NEWLINE for line in lines)
