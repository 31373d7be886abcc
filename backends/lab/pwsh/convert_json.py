"""ConvertTo-Json / ConvertFrom-Json as Windows PowerShell 5.1 writes and reads JSON.

5.1 serialises with JavaScriptSerializer: ``<>&'`` as ``\\u003c`` ..., DateTime as ``"\\/Date(ms)\\/"``,
enums as numbers. Depth counts every level, arrays included: the top object is level 0 and anything
that is neither scalar nor string beyond ``-Depth`` becomes its string form (a custom object
``@{a=1}``, a hashtable its type name). Without ``-Compress`` 5.1 re-indents the compact text with its
own layout: 4 spaces, ``"key":  value`` and nested blocks aligned under the key, CRLF line ends.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from emconsole.backends.lab.pwsh.api import ErrorRecord, PSEnum, PSError, PSObject, ScriptBlock
from emconsole.backends.lab.pwsh.values import Hashtable, epoch_ms, format_double, to_string, type_name

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "'": "\\u0027",
}


#: every character JavaScriptSerializer escapes: the ones above, other control characters as \uXXXX
_TRANSLATION = str.maketrans({**{chr(code): f"\\u{code:04x}" for code in range(0x20)}, **_ESCAPES})


#: a text without any of those characters is written as it is (most are)
_ESCAPED = re.compile("[\x00-\x1f" + re.escape("".join(_ESCAPES)) + "]")


def _string(text: str) -> str:
    if _ESCAPED.search(text) is None:
        return '"' + text + '"'
    return '"' + text.translate(_TRANSLATION) + '"'


#: property names and keys: the same few again and again
_name = lru_cache(maxsize=2048)(_string)


def _compact(value: Any, depth: int, max_depth: int, local: timezone) -> str:
    """JavaScriptSerializer's text of one value reached at ``depth``."""
    kind = value.__class__  # the commonest exact types first: the same branches as the tests below
    if kind is str:
        return _string(value)
    if kind is PSObject and depth <= max_depth:
        return _object(value, depth, max_depth, local)
    if kind is list and depth <= max_depth:
        return _array(value, depth, max_depth, local)
    if value is None:
        return "null"
    if isinstance(value, str):  # a str subclass (the types tested are disjoint)
        return _string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, datetime):
        return f'"\\/Date({epoch_ms(value, local)})\\/"'
    if isinstance(value, PSEnum):
        return str(value.value)
    if depth > max_depth:
        return _string(to_string(value) if isinstance(value, (PSObject, list)) else type_name(value))
    if isinstance(value, PSObject):
        return _object(value, depth, max_depth, local)
    if isinstance(value, list):
        return _array(value, depth, max_depth, local)
    if isinstance(value, Hashtable):
        return (
            "{"
            + ",".join(
                f"{_name(to_string(k))}:{_compact(v, depth + 1, max_depth, local)}" for k, v in value.items()
            )
            + "}"
        )
    if isinstance(value, ErrorRecord):
        return _compact(
            PSObject(
                {
                    "Exception": {"Message": value.message},
                    "FullyQualifiedErrorId": value.fully_qualified_error_id,
                }
            ),
            depth,
            max_depth,
            local,
        )
    if isinstance(value, ScriptBlock):
        return _string(value.text)
    return _string(type_name(value))


def _object(value: PSObject, depth: int, max_depth: int, local: timezone) -> str:
    inner = depth + 1
    parts = [  # a string property (the commonest) written without a call to _compact, as it would
        f"{_name(name)}:{_string(item) if item.__class__ is str else _compact(item, inner, max_depth, local)}"
        for name, item in value.properties()
    ]
    return "{" + ",".join(parts) + "}"


def _array(value: list[Any], depth: int, max_depth: int, local: timezone) -> str:
    return "[" + ",".join([_compact(item, depth + 1, max_depth, local) for item in value]) + "]"


def _pretty(text: str) -> str:
    """5.1's ConvertToPrettyJsonString: the compact text re-laid out."""
    out: list[str] = []
    if not text.startswith(("{", "[")):
        return text
    _value(text, 0, out, "", 0)
    return "".join(out)


def _value(text: str, index: int, out: list[str], pad: str, spaces: int) -> int:
    char = text[index]
    if char in "{[":
        return _block(text, index, out, pad, spaces)
    if char == '"':
        end = _string_end(text, index)
        out.append(text[index:end])
        return end
    end = index
    while end < len(text) and text[end] not in ",}]":
        end += 1
    out.append(text[index:end])
    return end


def _string_end(text: str, index: int) -> int:
    index += 1
    while text[index] != '"':
        index += 2 if text[index] == "\\" else 1
    return index + 1


def _block(text: str, index: int, out: list[str], pad: str, spaces: int) -> int:
    opener = text[index]
    closer = "}" if opener == "{" else "]"
    inner_pad = pad + " " * spaces + "    "
    out.append(opener + "\r\n")
    index += 1
    first = True
    while text[index] != closer:
        if text[index] == ",":
            index += 1
        if not first:
            out.append(",\r\n")
        first = False
        out.append(inner_pad)
        if opener == "{":
            end = _string_end(text, index)
            key = text[index:end]
            out.append(key + ":  ")
            index = _value(text, end + 1, out, inner_pad, len(key) + 3)
        else:
            index = _value(text, index, out, inner_pad, 0)
    out.append("\r\n" + pad + " " * spaces + closer)
    return index + 1


def to_json(value: Any, *, depth: int = 2, compress: bool = False, local: timezone = timezone.utc) -> str:
    compact = _compact(value, 0, depth, local)
    return compact if compress else _pretty(compact)


def _from_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return PSObject({key: _from_plain(item) for key, item in value.items()})
    if isinstance(value, list):
        return [_from_plain(item) for item in value]
    if isinstance(value, str) and value.startswith("/Date(") and value.endswith(")/"):
        try:
            return datetime.fromtimestamp(int(value[6:-2]) / 1000, tz=timezone.utc)
        except ValueError:
            return value
    return value


def from_json(text: str) -> Any:
    """ConvertFrom-Json: objects become PSCustomObjects (property order kept), ``\\/Date()\\/`` a DateTime."""
    try:
        return _from_plain(json.loads(text))
    except json.JSONDecodeError as error:
        raise PSError(
            ErrorRecord(
                message=f"Invalid JSON primitive: {text[error.pos : error.pos + 20]}.",
                fully_qualified_error_id="System.ArgumentException,Microsoft.PowerShell.Commands.ConvertFromJsonCommand",
                category="NotSpecified",
                exception_type="System.ArgumentException",
            )
        ) from None
