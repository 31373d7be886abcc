"""Parameter binding as PowerShell does it: names (unique prefixes, aliases), switches, positions.

Common parameters (-ErrorAction, -WarningAction, and -Confirm/-WhatIf for commands that support
ShouldProcess) are bound here too and handed back separately: the interpreter applies them, the
command never sees them.

Which token binds to which parameter depends only on the tokens' kinds and names, never on their
values (bar a switch's truth and an -ErrorAction's name, converted as they are bound). So a command
written in a script is bound once on its *shape* — values stood in for by ``Slot``s — into a
``Recipe``, and each run only fills the slots in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from emconsole.backends.lab.pwsh.api import CmdletSpec, ParamSpec, PSError, command_error
from emconsole.backends.lab.pwsh.values import to_bool, to_string

ACTION_PREFERENCES = ("Stop", "Continue", "SilentlyContinue", "Ignore")
_COMMON = (ParamSpec("ErrorAction", aliases=("ea",)), ParamSpec("WarningAction", aliases=("wa",)))
_SHOULD_PROCESS = (
    ParamSpec("Confirm", switch=True, aliases=("cf",)),
    ParamSpec("WhatIf", switch=True, aliases=("wi",)),
)


class _Missing:
    """No value followed a parameter name (``-Name`` at the end, or a switch)."""


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Param:
    """``-Name`` or ``-Name:value`` as written."""

    name: str
    value: Any = MISSING


@dataclass(frozen=True)
class Arg:
    """A value argument."""

    value: Any


class Slot(NamedTuple):
    """Stands for the value of the ``position``-th token that has one, in a shape bound into a Recipe."""

    position: int


class _Switch(NamedTuple):
    value: Any


class _Action(NamedTuple):
    param: ParamSpec
    value: Any


@dataclass
class Bound:
    """The binding result: the command's own parameters, and the common ones by canonical name."""

    params: dict[str, Any] = field(default_factory=dict)
    common: dict[str, Any] = field(default_factory=dict)


def _error(
    spec: CmdletSpec,
    message: str,
    error_id: str,
    category: str = "InvalidArgument",
    exception: str = "ParameterBindingException",
    target: str = "",
) -> PSError:
    record = command_error(
        message, error_id, spec.name, category, f"System.Management.Automation.{exception}", target
    )
    return PSError(replace(record, command=spec.name))


class Binding:
    """What binding needs to know about one command, worked out once per ``CmdletSpec``."""

    def __init__(self, spec: CmdletSpec) -> None:
        self.spec = spec
        common = _COMMON + (_SHOULD_PROCESS if spec.should_process else ())
        own = {p.name.lower() for p in spec.params}
        self.candidates = spec.params + tuple(c for c in common if c.name.lower() not in own)
        #: lower-case name or alias -> the first candidate that has it
        self.exact: dict[str, ParamSpec] = {}
        for param in self.candidates:
            for key in (param.name.lower(), *(alias.lower() for alias in param.aliases)):
                self.exact.setdefault(key, param)
        #: unique prefixes seen so far (a failed lookup is not kept: its error is made afresh)
        self.prefixes: dict[str, ParamSpec] = {}
        #: id(candidate) -> True when it binds into Bound.common
        self.to_common = {id(p): p in common and p not in spec.params for p in self.candidates}
        self.slots = sorted((p for p in spec.params if p.position is not None), key=lambda p: p.position or 0)
        self.remaining = tuple(p for p in spec.params if p.remaining)
        self.mandatory = tuple(p for p in spec.params if p.mandatory)

    def resolve(self, name: str) -> ParamSpec:
        """Exact name or alias first, then a unique prefix (PowerShell's abbreviation rule)."""
        lowered = name.lower()
        found = self.exact.get(lowered) or self.prefixes.get(lowered)
        if found is not None:
            return found
        matches = [param for param in self.candidates if param.name.lower().startswith(lowered)]
        if len(matches) == 1:
            self.prefixes[lowered] = matches[0]
            return matches[0]
        if not matches:
            raise _error(
                self.spec,
                f"A parameter cannot be found that matches parameter name '{name}'.",
                "NamedParameterNotFound",
            )
        listed = " ".join(f"-{param.name}" for param in matches)
        raise _error(
            self.spec,
            f"Parameter cannot be processed because the parameter name '{name}' is ambiguous. "
            f"Possible matches include: {listed}.",
            "AmbiguousParameter",
        )


_BINDINGS: dict[int, Binding] = {}


def binding(spec: CmdletSpec) -> Binding:
    """The spec's Binding (cached by identity; specs live as long as their registry)."""
    found = _BINDINGS.get(id(spec))
    if found is None or found.spec is not spec:
        if len(_BINDINGS) > 1024:  # registries made per test or per script run: keep it bounded
            _BINDINGS.clear()
        found = _BINDINGS[id(spec)] = Binding(spec)
    return found


def _action(spec: CmdletSpec, param: ParamSpec, value: Any) -> str:
    text = to_string(value)
    for choice in ACTION_PREFERENCES:
        if text.lower() == choice.lower():
            return choice
    raise _error(
        spec,
        f"Cannot bind parameter '{param.name}'. Cannot convert value \"{text}\" to type "
        '"System.Management.Automation.ActionPreference". Error: "Unable to match the identifier '
        f"name {text} to a valid enumerator name. Specify one of the following enumerator names "
        f'and try again: {", ".join(ACTION_PREFERENCES)}"',
        "CannotConvertArgumentNoMessage",
    )


def bind(spec: CmdletSpec, tokens: Sequence[Param | Arg], has_pipeline_input: bool) -> Bound:
    return _bind(spec, tokens, has_pipeline_input, to_bool, _action)


def _bind(
    spec: CmdletSpec,
    tokens: Sequence[Param | Arg],
    has_pipeline_input: bool,
    switch: Callable[[Any], Any],
    action: Callable[[CmdletSpec, ParamSpec, Any], Any],
) -> Bound:
    plan = binding(spec)
    bound = Bound()
    positional: list[Any] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if isinstance(token, Arg):
            positional.append(token.value)
            continue
        param = plan.resolve(token.name)
        if param.switch:
            value: Any = True if token.value is MISSING else switch(token.value)
        elif token.value is not MISSING:
            value = token.value
        elif index < len(tokens) and isinstance(tokens[index], Arg):
            value = tokens[index].value
            index += 1
        else:
            raise _error(
                spec,
                f"Missing an argument for parameter '{param.name}'. Specify a parameter of type "
                "'System.Object' and try again.",
                "MissingArgument",
            )
        target = bound.common if plan.to_common[id(param)] else bound.params
        if param.name in target:
            raise _error(
                spec,
                f"Cannot bind parameter because parameter '{param.name}' is specified more than "
                "once. To provide multiple values to parameters that can accept multiple values, use "
                'the array syntax. For example, "-parameter value1,value2,value3".',
                "ParameterAlreadyBound",
            )
        if param.name in ("ErrorAction", "WarningAction") and target is bound.common:
            value = action(spec, param, value)
        target[param.name] = value
    _bind_positional(plan, bound, positional)
    missing = [
        p.name
        for p in plan.mandatory
        if p.name not in bound.params and not (p.pipeline and has_pipeline_input)
    ]
    if missing:
        raise _error(
            spec,
            "Cannot process command because of one or more missing mandatory parameters: "
            f"{' '.join(missing)}.",
            "MissingMandatoryParameter",
        )
    return bound


def _bind_positional(plan: Binding, bound: Bound, positional: list[Any]) -> None:
    if not positional:
        return
    spec = plan.spec
    slots = [p for p in plan.slots if p.name not in bound.params]
    remaining = next((p for p in plan.remaining if p.name not in bound.params), None)
    for value in positional:
        slot = next((p for p in slots if p.name not in bound.params and not p.remaining), None)
        if slot is not None:
            bound.params[slot.name] = value
        elif remaining is not None:
            bound.params.setdefault(remaining.name, []).append(value)
        else:
            raise _error(
                spec,
                f"A positional parameter cannot be found that accepts argument '{to_string(value)}'.",
                "PositionalParameterNotFound",
                target=to_string(value),
            )


Binder = Callable[[Sequence[Any]], tuple[dict[str, Any], dict[str, Any]]]


class Recipe:
    """A binding of one command shape: ``bound(values)`` is what ``bind`` gives for those values, as
    (params, common) dicts."""

    __slots__ = ("_common", "_params", "_spec", "bound")

    def __init__(self, spec: CmdletSpec, shape: Bound) -> None:
        self._spec = spec
        #: (name, the value's position when it is a plain Slot else -1, symbol)
        self._params = tuple(self._entry(name, symbol) for name, symbol in shape.params.items())
        self._common = tuple(self._entry(name, symbol) for name, symbol in shape.common.items())
        self.bound: Binder = self._plain() or self._filled

    @staticmethod
    def _entry(name: str, symbol: Any) -> tuple[str, int, Any]:
        return name, symbol.position if isinstance(symbol, Slot) else -1, symbol

    def _plain(self) -> Binder | None:
        """When every parameter is a plain Slot and no common one is bound (most commands written in
        a script): the dict made in one expression (for up to two parameters, the commonest)."""
        if self._common or any(at < 0 for _, at, _ in self._params):
            return None
        pairs = tuple((name, at) for name, at, _ in self._params)
        if not pairs:
            return lambda values: ({}, {})
        if len(pairs) == 1:
            ((name, at),) = pairs
            return lambda values: ({name: values[at]}, {})
        if len(pairs) == 2:
            (first, first_at), (second, second_at) = pairs
            return lambda values: ({first: values[first_at], second: values[second_at]}, {})
        return lambda values: ({name: values[at] for name, at in pairs}, {})

    def _filled(self, values: Sequence[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        fill = self._fill
        params = {name: values[at] if at >= 0 else fill(symbol, values) for name, at, symbol in self._params}
        return (
            params,
            {name: values[at] if at >= 0 else fill(symbol, values) for name, at, symbol in self._common},
        )

    def _fill(self, symbol: Any, values: Sequence[Any]) -> Any:
        if isinstance(symbol, Slot):
            return values[symbol.position]
        if isinstance(symbol, _Switch):
            return to_bool(self._fill(symbol.value, values))
        if isinstance(symbol, _Action):
            return _action(self._spec, symbol.param, self._fill(symbol.value, values))
        if isinstance(symbol, list):  # ValueFromRemainingArguments: a new list each run
            return [self._fill(item, values) for item in symbol]
        return symbol


def recipe(spec: CmdletSpec, shape: Sequence[Param | Arg], has_pipeline_input: bool) -> Recipe | None:
    """``shape``'s values are Slots. None when binding fails whatever the values are: ``bind`` then
    raises the error (the only failures a Recipe leaves to the run are -ErrorAction conversions)."""
    try:
        bound = _bind(spec, shape, has_pipeline_input, _Switch, lambda _, param, value: _Action(param, value))
    except PSError:
        return None
    return Recipe(spec, bound)
