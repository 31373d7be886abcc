"""The generic commands of the subset (objects, output, Join-Path, Get-Date, New-Object).

They are ordinary ``CmdletSpec`` entries, registered like the Exchange helper's cmdlets, with the
parameter names and positions of Windows PowerShell 5.1.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from emconsole.backends.lab.pwsh import methods
from emconsole.backends.lab.pwsh.api import (
    CmdletSpec,
    CommandContext,
    ErrorRecord,
    ParamSpec,
    PSError,
    PSObject,
    ScriptBlock,
)
from emconsole.backends.lab.pwsh.convert_json import from_json, to_json
from emconsole.backends.lab.pwsh.session import CommandRegistry
from emconsole.backends.lab.pwsh.values import (
    CUSTOM_OBJECT,
    Encoding,
    Hashtable,
    as_list,
    compare,
    to_bool,
    to_datetime,
    to_int,
    to_number,
    to_string,
    type_name,
)

Params = dict[str, Any]


def _not_supported(command: str, what: str) -> PSError:
    return PSError(
        ErrorRecord(
            message=f"{what} is not supported by the lab's PowerShell (outside POWERSHELL-SUBSET.md).",
            fully_qualified_error_id=f"NotSupportedInLab,{command}",
            category="NotImplemented",
            exception_type="System.NotSupportedException",
            command=command,
        )
    )


def _local(ctx: CommandContext) -> Any:
    return ctx.now().tzinfo


def _truth(block: ScriptBlock, item: Any) -> bool:
    result = block.invoke(item)
    return to_bool(result[0] if len(result) == 1 else result)


def _block(command: str, value: Any) -> ScriptBlock:
    if not isinstance(value, ScriptBlock):
        raise _not_supported(command, f"{command} without a script block")
    return value


def where_object(ctx: CommandContext, params: Params, items: list[Any]) -> Iterator[Any]:
    block = _block("Where-Object", params.get("FilterScript"))
    for item in items:
        if _truth(block, item):
            yield item


def foreach_object(ctx: CommandContext, params: Params, items: list[Any]) -> Iterator[Any]:
    block = _block("ForEach-Object", params.get("Process"))
    for item in items:
        yield from block.invoke(item)


def _property_value(item: Any, selector: Any) -> Any:
    if isinstance(selector, ScriptBlock):
        result = selector.invoke(item)
        return result[0] if len(result) == 1 else (result or None)
    return methods.member(item, to_string(selector))


def _calculated(entry: Hashtable) -> tuple[str, Any]:
    """``@{n=..; e=..}`` with the keys PowerShell accepts (Name/Label/Expression and their prefixes)."""
    name: Any = None
    expression: Any = None
    for key, value in entry.items():
        lowered = to_string(key).lower()
        if "name".startswith(lowered) or "label".startswith(lowered):
            name = value
        elif "expression".startswith(lowered):
            expression = value
        else:
            raise PSError(
                ErrorRecord(
                    message=f'The "{key}" key is not valid.',
                    fully_qualified_error_id="DictionaryKeyIllegal,Microsoft.PowerShell.Commands.SelectObjectCommand",
                    category="InvalidArgument",
                    exception_type="System.NotSupportedException",
                    command="Select-Object",
                )
            )
    if expression is None:
        raise PSError(
            ErrorRecord(
                message='The "Expression" key is missing.',
                fully_qualified_error_id="DictionaryKeyMissing,Microsoft.PowerShell.Commands.SelectObjectCommand",
                category="InvalidArgument",
                exception_type="System.NotSupportedException",
                command="Select-Object",
            )
        )
    return to_string(name if name is not None else expression), expression


def _selected(item: Any, properties: list[Any]) -> PSObject:
    result = PSObject(type_names=(f"Selected.{type_name(item)}", CUSTOM_OBJECT))
    for selector in properties:
        if isinstance(selector, Hashtable):
            name, expression = _calculated(selector)
            result[name] = _property_value(item, expression)
        elif to_string(selector) == "*" and isinstance(item, PSObject):
            for name, value in item.properties():
                result[name] = value
        else:
            name = to_string(selector)
            real = (
                next((n for n, _ in item.properties() if n.lower() == name.lower()), name)
                if isinstance(item, PSObject)
                else name
            )
            result[real] = _property_value(item, name)
    return result


def select_object(ctx: CommandContext, params: Params, items: list[Any]) -> Iterator[Any]:
    if "InputObject" in params:
        items = [params["InputObject"]]
    first = params.get("First")
    if first is not None:
        items = items[: to_int(first)]
    properties = as_list(params.get("Property"))
    expand = params.get("ExpandProperty")
    results: list[Any] = []
    for item in items:
        if expand is not None:
            value = (
                methods.member(item, to_string(expand))
                if not isinstance(item, Hashtable)
                else item.get(expand)
            )
            if value is None and not (isinstance(item, PSObject) and to_string(expand) in item):
                ctx.write_error(
                    ErrorRecord(
                        message=f'Property "{to_string(expand)}" cannot be found.',
                        fully_qualified_error_id="ExpandPropertyNotFound,Microsoft.PowerShell.Commands.SelectObjectCommand",
                        category="InvalidArgument",
                        exception_type="System.Management.Automation.PSArgumentException",
                    )
                )
                continue
            results.extend(as_list(value))
        elif properties:
            results.append(_selected(item, properties))
        else:
            results.append(item)
    if params.get("Unique"):
        seen: list[str] = []
        unique: list[Any] = []
        for item in results:
            key = repr(item.properties()) if isinstance(item, PSObject) else to_string(item)
            if key not in seen:
                seen.append(key)
                unique.append(item)
        results = unique
    yield from results


def _sort_key(ctx: CommandContext, selectors: list[Any]) -> Any:
    local = _local(ctx)

    def order(a: Any, b: Any) -> int:
        for selector in selectors or [None]:
            left = a if selector is None else _property_value(a, selector)
            right = b if selector is None else _property_value(b, selector)
            if left is None and right is None:
                continue
            if left is None or right is None:
                return -1 if left is None else 1
            if compare("-lt", left, right, local):
                return -1
            if compare("-gt", left, right, local):
                return 1
        return 0

    return functools.cmp_to_key(order)


def sort_object(ctx: CommandContext, params: Params, items: list[Any]) -> Iterator[Any]:
    selectors = as_list(params.get("Property"))
    ordered = sorted(items, key=_sort_key(ctx, selectors), reverse=bool(params.get("Descending")))
    if params.get("Unique"):
        unique: list[Any] = []
        for item in ordered:
            if not unique or _sort_key(ctx, selectors)(unique[-1]) != _sort_key(ctx, selectors)(item):
                unique.append(item)
        ordered = unique
    yield from ordered


def measure_object(ctx: CommandContext, params: Params, items: list[Any]) -> Iterator[Any]:
    name = params.get("Property")
    values = [methods.member(item, to_string(name)) if name is not None else item for item in items]
    numbers = (
        [to_number(v) for v in values if v is not None]
        if any(params.get(k) for k in ("Sum", "Average", "Maximum", "Minimum"))
        else []
    )
    yield PSObject(
        {
            "Count": len([v for v in values if v is not None]) if name is not None else len(values),
            "Average": sum(numbers) / len(numbers) if params.get("Average") and numbers else None,
            "Sum": sum(numbers) if params.get("Sum") else None,
            "Maximum": max(numbers) if params.get("Maximum") and numbers else None,
            "Minimum": min(numbers) if params.get("Minimum") and numbers else None,
            "Property": to_string(name) if name is not None else None,
        },
        type_names=("Microsoft.PowerShell.Commands.GenericMeasureInfo",),
    )


def convert_to_json(ctx: CommandContext, params: Params, items: list[Any]) -> Iterator[Any]:
    if "InputObject" in params:
        value = params["InputObject"]
    elif not items:
        return
    else:
        value = items[0] if len(items) == 1 else items
    depth = to_int(params.get("Depth", 2))
    yield to_json(value, depth=depth, compress=bool(params.get("Compress")), local=_local(ctx))


def convert_from_json(ctx: CommandContext, params: Params, items: list[Any]) -> Iterator[Any]:
    texts = [params["InputObject"]] if "InputObject" in params else items
    yield from_json("\n".join(to_string(t) for t in texts))


def get_date(ctx: CommandContext, params: Params, items: list[Any]) -> Iterator[Any]:
    value: datetime = to_datetime(params["Date"], _local(ctx)) if "Date" in params else ctx.now()
    if "Format" in params:
        yield methods.call(value, "ToString", [params["Format"]], _local(ctx))
    else:
        yield value


def write_output(ctx: CommandContext, params: Params, items: list[Any]) -> Iterator[Any]:
    values = params.get("InputObject", items)
    for value in as_list(values):
        yield from as_list(value) if not params.get("NoEnumerate") else [value]


def write_host(ctx: CommandContext, params: Params, items: list[Any]) -> Iterable[Any]:
    parts = as_list(params.get("Object"))
    separator = to_string(params.get("Separator", " "))
    text = separator.join(to_string(p) for p in parts)
    ctx.write_host(text, not params.get("NoNewline"))
    return ()


def write_warning(ctx: CommandContext, params: Params, items: list[Any]) -> Iterable[Any]:
    for message in as_list(params.get("Message")) or items:
        ctx.write_warning(to_string(message))
    return ()


def out_null(ctx: CommandContext, params: Params, items: list[Any]) -> Iterable[Any]:
    return ()


def join_path(ctx: CommandContext, params: Params, items: list[Any]) -> Iterator[Any]:
    child = to_string(params.get("ChildPath", ""))
    for path in as_list(params.get("Path")) or items:
        base = to_string(path).replace("/", "\\")
        yield base.rstrip("\\") + "\\" + child.replace("/", "\\").lstrip("\\") if child else base


def new_object(ctx: CommandContext, params: Params, items: list[Any]) -> Iterator[Any]:
    name = to_string(params.get("TypeName")).lower()
    if name in ("system.text.utf8encoding", "text.utf8encoding"):
        arguments = as_list(params.get("ArgumentList"))
        yield Encoding("utf-8", bom=to_bool(arguments[0]) if arguments else False)
        return
    raise _not_supported("New-Object", f"New-Object {to_string(params.get('TypeName'))}")


def _p(name: str, position: int | None = None, **kwargs: Any) -> ParamSpec:
    return ParamSpec(name, position=position, **kwargs)


#: the interpreter runs these two in place when a script block is written as their only argument
#: (``Interpreter.run_command``): a script block written there always binds to the first parameter
WHERE_OBJECT = CmdletSpec(
    "Where-Object",
    where_object,
    (_p("FilterScript", 0, mandatory=True), _p("InputObject", pipeline=True)),
    aliases=("where", "?"),
)
FOREACH_OBJECT = CmdletSpec(
    "ForEach-Object",
    foreach_object,
    (_p("Process", 0, mandatory=True), _p("InputObject", pipeline=True)),
    aliases=("foreach", "%"),
)
CORE_COMMANDS = (
    WHERE_OBJECT,
    FOREACH_OBJECT,
    CmdletSpec(
        "Select-Object",
        select_object,
        (
            _p("Property", 0),
            _p("InputObject", pipeline=True),
            _p("ExpandProperty"),
            _p("First"),
            _p("Unique", switch=True),
        ),
        aliases=("select",),
    ),
    CmdletSpec(
        "Sort-Object",
        sort_object,
        (
            _p("Property", 0),
            _p("InputObject", pipeline=True),
            _p("Descending", switch=True),
            _p("Unique", switch=True),
        ),
        aliases=("sort",),
    ),
    CmdletSpec(
        "Measure-Object",
        measure_object,
        (
            _p("Property", 0),
            _p("InputObject", pipeline=True),
            _p("Sum", switch=True),
            _p("Average", switch=True),
            _p("Maximum", switch=True),
            _p("Minimum", switch=True),
        ),
        aliases=("measure",),
    ),
    CmdletSpec(
        "ConvertTo-Json",
        convert_to_json,
        (_p("InputObject", 0, pipeline=True), _p("Depth"), _p("Compress", switch=True)),
    ),
    CmdletSpec("ConvertFrom-Json", convert_from_json, (_p("InputObject", 0, pipeline=True, mandatory=True),)),
    CmdletSpec("Get-Date", get_date, (_p("Date", 0, pipeline=True), _p("Format"))),
    CmdletSpec(
        "Write-Output",
        write_output,
        (_p("InputObject", 0, pipeline=True, remaining=True), _p("NoEnumerate", switch=True)),
        aliases=("echo", "write"),
    ),
    CmdletSpec(
        "Write-Host",
        write_host,
        (
            _p("Object", 0, pipeline=True, remaining=True),
            _p("NoNewline", switch=True),
            _p("Separator"),
            _p("ForegroundColor"),
            _p("BackgroundColor"),
        ),
    ),
    CmdletSpec("Write-Warning", write_warning, (_p("Message", 0, pipeline=True, mandatory=True),)),
    CmdletSpec("Out-Null", out_null, (_p("InputObject", pipeline=True),)),
    CmdletSpec("Join-Path", join_path, (_p("Path", 0, pipeline=True, mandatory=True), _p("ChildPath", 1))),
    CmdletSpec(
        "New-Object",
        new_object,
        (_p("TypeName", 0, mandatory=True), _p("ArgumentList", 1, aliases=("Args",))),
    ),
)


def register_core(registry: CommandRegistry) -> None:
    for spec in CORE_COMMANDS:
        registry.register(spec)
