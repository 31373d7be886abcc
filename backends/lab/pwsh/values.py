"""PowerShell's value semantics over plain Python values: truth, strings, numbers, dates, hashtables.

PowerShell converts the *right* operand to the type of the *left* one, compares strings without
regard to case, and treats a one-element array like its element in a condition. Every operator and
cast of the interpreter goes through these helpers so the rules live in one place.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, MutableMapping
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from emconsole.backends.lab.pwsh.api import ErrorRecord, PSEnum, PSError, PSObject, ScriptBlock

CUSTOM_OBJECT = "System.Management.Automation.PSCustomObject"


class Hashtable(MutableMapping[Any, Any]):
    """``@{}`` (case-insensitive string keys, insertion order kept) and ``[ordered]@{}``."""

    def __init__(self, items: dict[Any, Any] | None = None, *, ordered: bool = False) -> None:
        self.ordered = ordered
        self._data: dict[Any, tuple[Any, Any]] = {}
        for key, value in (items or {}).items():
            self[key] = value

    @staticmethod
    def _fold(key: Any) -> Any:
        return key.lower() if isinstance(key, str) else key

    def __getitem__(self, key: Any) -> Any:
        return self._data[self._fold(key)][1]

    def __setitem__(self, key: Any, value: Any) -> None:
        folded = self._fold(key)
        original = self._data[folded][0] if folded in self._data else key
        self._data[folded] = (original, value)

    def __delitem__(self, key: Any) -> None:
        del self._data[self._fold(key)]

    def __iter__(self) -> Iterator[Any]:
        return (original for original, _ in self._data.values())

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return self._fold(key) in self._data

    def type_name(self) -> str:
        return (
            "System.Collections.Specialized.OrderedDictionary"
            if self.ordered
            else "System.Collections.Hashtable"
        )

    def __repr__(self) -> str:
        return f"Hashtable({dict(self.items())!r})"


class Encoding:
    """A ``System.Text.Encoding`` (``[Text.Encoding]::UTF8``, ``New-Object System.Text.UTF8Encoding``)."""

    def __init__(self, name: str, bom: bool) -> None:
        self.name = name
        self.bom = bom

    def __repr__(self) -> str:
        return f"Encoding({self.name!r}, bom={self.bom})"


def local_zone(offset: timedelta) -> timezone:
    """A named zone marks a DateTime of kind Local (``timezone.utc`` itself marks kind Utc)."""
    return timezone(offset, "Local")


def date_kind(value: datetime) -> str:
    if value.tzinfo is None:
        return "Unspecified"
    return "Utc" if value.tzinfo is timezone.utc else "Local"


def to_universal(value: datetime, local: timezone) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=local)
    return value.astimezone(timezone.utc)


def epoch_ms(value: datetime, local: timezone) -> int:
    """Milliseconds since 1970 (what ``\\/Date(ms)\\/`` carries)."""
    return math.floor(to_universal(value, local).timestamp() * 1000)


def type_name(value: Any) -> str:
    """The .NET type name PowerShell would report for a value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "System.Boolean"
    if isinstance(value, int):
        return "System.Int32" if -(2**31) <= value < 2**31 else "System.Int64"
    if isinstance(value, float):
        return "System.Double"
    if isinstance(value, str):
        return "System.String"
    if isinstance(value, datetime):
        return "System.DateTime"
    if isinstance(value, list):
        return "System.Object[]"
    if isinstance(value, Hashtable):
        return value.type_name()
    if isinstance(value, PSObject):
        return value.type_names[0] if value.type_names else CUSTOM_OBJECT
    if isinstance(value, PSEnum):
        return value.type_name
    if isinstance(value, ScriptBlock):
        return "System.Management.Automation.ScriptBlock"
    if isinstance(value, ErrorRecord):
        return "System.Management.Automation.ErrorRecord"
    if isinstance(value, Encoding):
        return "System.Text.UTF8Encoding"
    return type(value).__name__


def format_double(value: float) -> str:
    """A double as .NET's round-trip format writes it (``1.5``, ``1E+20``, ``NaN``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        text = f"{mantissa}E{sign}{exponent.lstrip('+-').zfill(2)}"
    return text


def invariant_date(value: datetime) -> str:
    """How PowerShell turns a DateTime into a string (invariant culture)."""
    return value.strftime("%m/%d/%Y %H:%M:%S")


def to_string(value: Any) -> str:
    """PowerShell's conversion to [string] (string expansion, -join, casts)."""
    if value.__class__ is str:  # by far the commonest: one test, then the rules in their order
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, datetime):
        return invariant_date(value)
    if isinstance(value, list):
        return " ".join(to_string(item) for item in value)
    if isinstance(value, PSEnum):
        return value.name
    if isinstance(value, ScriptBlock):
        return value.text
    if isinstance(value, ErrorRecord):
        return value.message
    if isinstance(value, PSObject):
        return object_string(value)
    return type_name(value)


def object_string(value: PSObject) -> str:
    """A custom object as ``@{a=1; b=2}``; other objects by their ToString (or type name)."""
    if value.type_names and value.type_names[0] != CUSTOM_OBJECT:
        return value.to_string if value.to_string is not None else value.type_names[0]
    return "@{" + "; ".join(f"{name}={to_string(item)}" for name, item in value.properties()) + "}"


_NUMBER = re.compile(r"^\s*([+-]?)(0x[0-9a-f]+|\d+(\.\d*)?([e][+-]?\d+)?|\.\d+([e][+-]?\d+)?)\s*$", re.I)


def parse_number(text: str) -> int | float | None:
    match = _NUMBER.match(text)
    if text.strip() == "":
        return 0
    if not match:
        return None
    body = match.group(2)
    sign = -1 if match.group(1) == "-" else 1
    if body.lower().startswith("0x"):
        return sign * int(body, 16)
    if re.fullmatch(r"\d+", body):
        return sign * int(body)
    return sign * float(body)


def conversion_error(value: Any, target: str) -> PSError:
    return PSError(
        ErrorRecord(
            message=f'Cannot convert value "{to_string(value)}" to type "{target}". '
            'Error: "Input string was not in a correct format."',
            fully_qualified_error_id="InvalidCastFromStringToInteger"
            if isinstance(value, str)
            else "ConvertToFinalInvalidCastException",
            category="InvalidArgument",
            exception_type="System.Management.Automation.RuntimeException",
        )
    )


def to_number(value: Any) -> int | float:
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, PSEnum):
        return value.value
    if isinstance(value, str):
        number = parse_number(value)
        if number is not None:
            return number
    if isinstance(value, list) and len(value) == 1:
        return to_number(value[0])
    raise conversion_error(value, "System.Int32")


def to_int(value: Any) -> int:
    """``[int]``: .NET rounds half to even, as Python's round does."""
    number = to_number(value)
    result = round(number) if isinstance(number, float) else number
    if not -(2**31) <= result < 2**31:
        raise conversion_error(value, "System.Int32")
    return result


def to_bool(value: Any) -> bool:
    """PowerShell truth: "", 0, $null and empty arrays are false; one element decides for its array."""
    if value is True or value is False:  # what comparisons give: the commonest
        return value
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        return value != ""
    if isinstance(value, list):
        if not value:
            return False
        return to_bool(value[0]) if len(value) == 1 else True
    return True


def parse_datetime(text: str, local: timezone) -> datetime:
    """``[datetime]'...'``: ISO-8601 (an offset gives a Local DateTime, as .NET) or invariant M/d/yyyy."""
    raw = text.strip()
    iso = re.sub(r"(\.\d{6})\d+", r"\1", raw)
    iso = iso[:-1] + "+00:00" if iso.endswith(("Z", "z")) else iso
    value: datetime | None
    try:
        value = datetime.fromisoformat(iso)
    except ValueError:
        value = None
        for pattern in ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y"):
            try:
                value = datetime.strptime(raw, pattern)
                break
            except ValueError:
                continue
        if value is None:
            raise PSError(
                ErrorRecord(
                    message=f'Cannot convert value "{text}" to type "System.DateTime". '
                    'Error: "String was not recognized as a valid DateTime."',
                    fully_qualified_error_id="InvalidCastParseTargetInvocationWithFormatProvider",
                    category="InvalidArgument",
                )
            ) from None
    assert value is not None
    if value.tzinfo is not None:
        value = value.astimezone(local)
    return value


def to_datetime(value: Any, local: timezone) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return parse_datetime(value, local)
    raise conversion_error(value, "System.DateTime")


def as_list(value: Any) -> list[Any]:
    """What a pipeline or foreach enumerates: arrays item by item, $null as nothing, anything else once."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


@lru_cache(maxsize=1024)
def wildcard_regex(pattern: str) -> re.Pattern[str]:
    """A ``-like`` pattern (``*``, ``?``, ``[a-z]``, backtick escapes) as a case-insensitive regex.

    Cached by pattern: scripts match the same few patterns in loops.
    """
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "`" and index + 1 < len(pattern):
            out.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            end = pattern.find("]", index + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                out.append("[" + pattern[index + 1 : end].replace("\\", "\\\\") + "]")
                index = end
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile("".join(out) + r"\Z", re.I | re.S)


@lru_cache(maxsize=1024)
def wildcard_test(pattern: str) -> Callable[[str], bool]:
    """Whether a text is ``-like`` the pattern: ``wildcard_regex(pattern).match(text)``.

    A pattern whose only wildcards are ``*`` at its ends (``EEMS *``, ``*/rules``) is tested with
    str methods when pattern and text are ASCII: there the regex's case-insensitive match is exactly
    lower-case equality (outside ASCII it also folds e.g. the Kelvin sign, so those texts take the
    regex). Cached by pattern, as ``wildcard_regex``.
    """
    regex = wildcard_regex(pattern)
    core = pattern.strip("*")
    if not pattern.isascii() or any(c in core for c in "*?[`"):
        return lambda text: regex.match(text) is not None
    lowered = core.lower()
    starts, ends = pattern.startswith("*"), pattern.endswith("*") and core != ""
    if starts and ends:
        return lambda text: lowered in text.lower() if text.isascii() else regex.match(text) is not None
    if starts:
        return lambda text: (
            text.lower().endswith(lowered) if text.isascii() else regex.match(text) is not None
        )
    if ends:
        return lambda text: (
            text.lower().startswith(lowered) if text.isascii() else regex.match(text) is not None
        )
    return lambda text: text.lower() == lowered if text.isascii() else regex.match(text) is not None


def _scalar_equal(left: Any, right: Any, local: timezone) -> bool:
    if left.__class__ is str and right.__class__ is str:  # the commonest: as the str rule below
        return left == right or left.lower() == right.lower()
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, str):
        return left.lower() == to_string(right).lower()
    if isinstance(left, bool):
        return left == to_bool(right)
    if isinstance(left, (int, float)):
        if isinstance(right, str):
            number = parse_number(right)
            return number is not None and left == number
        try:
            return left == to_number(right)
        except PSError:
            return False
    if isinstance(left, PSEnum):
        if isinstance(right, str):
            return left.name.lower() == right.lower()
        return isinstance(right, (int, PSEnum)) and left.value == to_number(right)
    if isinstance(left, datetime):
        try:
            other = to_datetime(right, local)
        except PSError:
            return False
        return to_universal(left, local) == to_universal(other, local)
    return left is right or left == right


def _scalar_order(left: Any, right: Any, local: timezone) -> int:
    """-1, 0 or 1, converting the right operand to the left one's type."""
    if isinstance(left, str) or (left is None and isinstance(right, str)):
        a, b = to_string(left).lower(), to_string(right).lower()
    elif isinstance(left, datetime):
        a, b = to_universal(left, local), to_universal(to_datetime(right, local), local)  # type: ignore[assignment]
    elif left is None and right is None:
        return 0
    else:
        a, b = to_number(left), to_number(right)  # type: ignore[assignment]
    return (a > b) - (a < b)


def compare(op: str, left: Any, right: Any, local: timezone) -> Any:
    """A comparison operator; with an array on the left it filters the array, as PowerShell does."""
    op = op.lower()
    if op in ("-contains", "-notcontains"):
        items = left if isinstance(left, list) else [left]
        found = any(_scalar_equal(item, right, local) for item in items)
        return found if op == "-contains" else not found
    if op in ("-in", "-notin"):
        return compare("-contains" if op == "-in" else "-notcontains", right, left, local)
    if isinstance(left, list):
        return [item for item in left if compare(op, item, right, local) is True]
    if op in ("-eq", "-ieq", "-ne", "-ine"):
        equal = _scalar_equal(left, right, local)
        return equal if op in ("-eq", "-ieq") else not equal
    if op in ("-gt", "-ge", "-lt", "-le"):
        order = _scalar_order(left, right, local)
        return {"-gt": order > 0, "-ge": order >= 0, "-lt": order < 0, "-le": order <= 0}[op]
    if op in ("-like", "-notlike"):
        hit = wildcard_test(to_string(right))(to_string(left))
        return hit if op == "-like" else not hit
    raise ValueError(op)


def comparison(op: str) -> Callable[[Any, Any, timezone], Any]:
    """``compare`` with its operator fixed (a script's operators are known before it runs)."""
    op = op.lower()
    if op in ("-eq", "-ieq", "-ne", "-ine"):
        want = op in ("-eq", "-ieq")

        def equality(left: Any, right: Any, local: timezone) -> Any:
            if isinstance(left, list):
                return [item for item in left if compare(op, item, right, local) is True]
            equal = _scalar_equal(left, right, local)
            return equal if want else not equal

        return equality
    if op in ("-like", "-notlike"):
        like = op == "-like"

        def wildcard(left: Any, right: Any, local: timezone) -> Any:
            if isinstance(left, list):
                return [item for item in left if compare(op, item, right, local) is True]
            test = wildcard_test(right if right.__class__ is str else to_string(right))
            hit = test(left if left.__class__ is str else to_string(left))
            return hit if like else not hit

        return wildcard
    return lambda left, right, local: compare(op, left, right, local)


def add(left: Any, right: Any) -> Any:
    """``+``: numbers add, strings concatenate, arrays append, hashtables merge, as the left operand says."""
    if left.__class__ is str:  # the commonest cases first (the rules below give the same)
        return left + (right if right.__class__ is str else to_string(right))
    if left.__class__ is list:
        return left + (right if isinstance(right, list) else [right])
    if left is None:
        return list(right) if isinstance(right, list) else right
    if isinstance(left, list):
        return left + (right if isinstance(right, list) else [right])
    if isinstance(left, str):
        return left + to_string(right)
    if isinstance(left, Hashtable) and isinstance(right, Hashtable):
        merged = Hashtable(dict(left.items()), ordered=left.ordered)
        for key, value in right.items():
            if key in merged:
                raise PSError(
                    ErrorRecord(
                        message=f"Item has already been added. Key in dictionary: '{key}'  "
                        f"Key being added: '{key}'",
                        fully_qualified_error_id="System.ArgumentException",
                        category="NotSpecified",
                        exception_type="System.ArgumentException",
                    )
                )
            merged[key] = value
        return merged
    if isinstance(left, (int, float, bool)):
        total = to_number(left) + to_number(right)
        if isinstance(total, int) and not -(2**63) <= total < 2**63:
            return float(total)
        return total
    raise PSError(
        ErrorRecord(
            message=f"Method invocation failed because [{type_name(left)}] does not contain a method "
            "named 'op_Addition'.",
            fully_qualified_error_id="MethodNotFound",
            category="InvalidOperation",
        )
    )
