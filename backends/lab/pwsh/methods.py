"""Member access, indexing and the few .NET methods of the subset, with PowerShell's rules.

Member enumeration: ``$array.Name`` is the Name of each element (flattened); ``.Count`` / ``.Length``
work on anything (1 for a scalar, 0 for $null). A missing property is $null, as without strict mode.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from emconsole.backends.lab.pwsh.api import ErrorRecord, PSEnum, PSError, PSObject
from emconsole.backends.lab.pwsh.values import (
    Hashtable,
    date_kind,
    format_double,
    to_int,
    to_string,
    to_universal,
    type_name,
)

_DATE_MEMBERS = {
    "year": "year",
    "month": "month",
    "day": "day",
    "hour": "hour",
    "minute": "minute",
    "second": "second",
}


def record_view(record: ErrorRecord, name: str) -> Any:
    """The members of an ErrorRecord that scripts read (``$_.Exception.Message``, ...)."""
    lowered = name.lower()
    if lowered == "exception":
        return PSObject(
            {"Message": record.message},
            type_names=(record.exception_type, "System.Exception"),
            to_string=f"{record.exception_type}: {record.message}",
        )
    if lowered == "fullyqualifiederrorid":
        return record.fully_qualified_error_id
    if lowered == "categoryinfo":
        reason = record.exception_type.rsplit(".", 1)[-1]
        return PSObject(
            {
                "Category": record.category,
                "Activity": record.command,
                "Reason": reason,
                "TargetName": record.target,
            },
            type_names=("System.Management.Automation.ErrorCategoryInfo",),
            to_string=f"{record.category}: ({record.target}:) [{record.command}], {reason}",
        )
    if lowered == "targetobject":
        return record.target or None
    return None


def _scalar_member(obj: Any, name: str) -> Any:
    lowered = name.lower()
    if isinstance(obj, PSObject):
        return obj.get(name)
    if isinstance(obj, Hashtable):
        if name in obj:
            return obj[name]
        if lowered == "count":
            return len(obj)
        if lowered == "keys":
            return list(obj.keys())
        if lowered == "values":
            return list(obj.values())
        return None
    if isinstance(obj, ErrorRecord):
        return record_view(obj, name)
    if isinstance(obj, str) and lowered == "length":
        return len(obj)
    if isinstance(obj, datetime):
        if lowered == "kind":
            return PSEnum(
                "System.DateTimeKind", date_kind(obj), ("Unspecified", "Utc", "Local").index(date_kind(obj))
            )
        if lowered in _DATE_MEMBERS:
            return getattr(obj, _DATE_MEMBERS[lowered])
    if isinstance(obj, PSEnum) and lowered == "value__":
        return obj.value
    if lowered in ("count", "length"):
        return 1
    return None


def member(obj: Any, name: str) -> Any:
    """``obj.Name`` with member enumeration over arrays."""
    if obj is None:
        return 0 if name.lower() in ("count", "length") else None
    if isinstance(obj, list):
        if name.lower() in ("count", "length"):
            return len(obj)
        values: list[Any] = []
        for item in obj:
            value = member(item, name)
            if isinstance(value, list):
                values.extend(value)
            elif value is not None:
                values.append(value)
        if not values:
            return None
        return values[0] if len(values) == 1 else values
    return _scalar_member(obj, name)


def index(obj: Any, key: Any) -> Any:
    """``obj[i]``: negative indexes count from the end; out of range is $null; hashtables by key."""
    if isinstance(key, list):
        return [index(obj, k) for k in key]
    if isinstance(obj, Hashtable):
        return obj.get(key)
    if isinstance(obj, PSObject):
        return obj.get(to_string(key))
    if isinstance(obj, (list, str)):
        position = to_int(key)
        if -len(obj) <= position < len(obj):
            return obj[position]
        return None
    if obj is None:
        raise PSError(
            ErrorRecord(
                message="Cannot index into a null array.",
                fully_qualified_error_id="NullArray",
                category="InvalidOperation",
            )
        )
    position = to_int(key)
    return obj if position in (0, -1) else None


def _date_string(value: datetime, fmt: str | None) -> str:
    if fmt is None or fmt == "":
        hour = value.hour % 12 or 12
        return (
            f"{value.month}/{value.day}/{value.year} {hour}:{value:%M:%S} {'AM' if value.hour < 12 else 'PM'}"
        )
    if fmt == "o" or fmt == "O":
        kind = date_kind(value)
        if kind == "Utc" and value.year >= 1000:  # the commonest ('o' of ToUniversalTime()): no strftime
            return (
                f"{value.year}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:"
                f"{value.second:02d}.{value.microsecond * 10:07d}Z"
            )
        base = value.strftime("%Y-%m-%dT%H:%M:%S") + f".{value.microsecond * 10:07d}"
        if kind == "Utc":
            return base + "Z"
        if kind == "Local":
            return base + value.strftime("%z")[:3] + ":" + value.strftime("%z")[3:]
        return base
    if fmt == "s":
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    if fmt == "u":
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    return _custom_date(value, fmt)


_TOKENS = [("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S")]


def _custom_date(value: datetime, fmt: str) -> str:
    """The custom format tokens a script is likely to use (yyyy MM dd HH mm ss fff and literals)."""
    out: list[str] = []
    rest = fmt
    while rest:
        if rest.startswith("fff"):
            out.append(f"{value.microsecond // 1000:03d}")
            rest = rest[3:]
            continue
        for token, code in _TOKENS:
            if rest.startswith(token):
                out.append(value.strftime(code))
                rest = rest[len(token) :]
                break
        else:
            if rest[0] in "'\"":
                end = rest.find(rest[0], 1)
                end = len(rest) if end == -1 else end
                out.append(rest[1:end])
                rest = rest[end + 1 :]
            elif re.match(r"[a-zA-Z]", rest[0]) and rest[0] not in "TZ":
                raise PSError(
                    ErrorRecord(
                        message=f"The date format '{fmt}' is not supported by the lab's PowerShell "
                        "(outside POWERSHELL-SUBSET.md).",
                        fully_qualified_error_id="NotSupportedInLab",
                        category="NotImplemented",
                        exception_type="System.NotSupportedException",
                    )
                )
            else:
                out.append(rest[0])
                rest = rest[1:]
    return "".join(out)


def _split(text: str, args: list[Any]) -> list[str]:
    """``String.Split(params char[])`` as Windows PowerShell binds it: every character separates."""
    if not args:
        return re.split(r"\s", text)
    separators: list[str] = []
    count: int | None = None
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool):
            count = arg
        elif isinstance(arg, list):
            separators += [c for item in arg for c in to_string(item)]
        else:
            separators += list(to_string(arg))
    if not separators:
        return re.split(r"\s", text)
    if count is None and len(separators) == 1:  # the commonest ('/'): what the regex gives
        return text.split(separators[0])
    pattern = "[" + "".join(re.escape(c) for c in separators) + "]"
    return re.split(pattern, text, maxsplit=0 if count is None else max(count - 1, 0))


def call(obj: Any, name: str, args: list[Any], local: timezone) -> Any:
    """A method call; on an array it is called on each element (member enumeration)."""
    lowered = name.lower()
    if isinstance(obj, list):
        return [call(item, name, args, local) for item in obj]
    if obj is None:
        raise PSError(
            ErrorRecord(
                message="You cannot call a method on a null-valued expression.",
                fully_qualified_error_id="InvokeMethodOnNull",
                category="InvalidOperation",
            )
        )
    if lowered == "tostring":
        if isinstance(obj, datetime):
            return _date_string(obj, to_string(args[0]) if args else None)
        if isinstance(obj, float) and not args:
            return format_double(obj)
        if args:
            raise _no_overload(name, obj, len(args))
        if isinstance(obj, PSObject):
            return (
                ""
                if obj.to_string is None and "System.Management.Automation.PSCustomObject" in obj.type_names
                else to_string(obj)
            )
        return to_string(obj)
    if lowered == "touniversaltime" and isinstance(obj, datetime) and not args:
        return to_universal(obj, local)
    if lowered == "trim" and isinstance(obj, str):
        if not args:
            return obj.strip()
        return obj.strip("".join(to_string(a) for a in args))
    if lowered == "split" and isinstance(obj, str):
        return _split(obj, args)
    raise PSError(
        ErrorRecord(
            message=f"Method invocation failed because [{type_name(obj)}] does not contain a method "
            f"named '{name}'.",
            fully_qualified_error_id="MethodNotFound",
            category="InvalidOperation",
        )
    )


def _no_overload(name: str, obj: Any, count: int) -> PSError:
    return PSError(
        ErrorRecord(
            message=f'Cannot find an overload for "{name}" and the argument count: "{count}".',
            fully_qualified_error_id="MethodCountCouldNotFindBest",
            category="NotSpecified",
            exception_type="System.Management.Automation.MethodException",
            target=type_name(obj),
        )
    )
