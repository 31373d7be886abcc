"""Compile a parsed script once into Python closures; running it is then calling them.

The console sends the same few scripts again and again, so everything that depends only on the
text is done here, once (``templates.prepare``): node kinds are dispatched, literal values, variable
names, casts and operators resolved, a command's parameter tokens laid out. What depends on the run
(variables, commands, the server, the values of the single-quoted strings a template leaves open and
the text error positions are worded from) is left to the ``Interpreter`` the closures receive.

Each closure does exactly what the tree walker did for its node, in the same order: an
expression's PSError is located at the innermost expression that raised it, a statement's at the
statement, and a construct the interpreter cannot run fails when it is reached, not before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from emconsole.backends.lab.pwsh import methods
from emconsole.backends.lab.pwsh.api import CmdletSpec, ErrorRecord, PSError, PSObject, ScriptBlock
from emconsole.backends.lab.pwsh.binder import (
    MISSING,
    Arg,
    Binder,
    Param,
    Recipe,
    Slot,
    bind,
    recipe,
)
from emconsole.backends.lab.pwsh.interpreter import Interpreter, ScriptExit, ScriptHalt
from emconsole.backends.lab.pwsh.positions import Site
from emconsole.backends.lab.pwsh.subset import CAST_TYPES, type_key, variable_name
from emconsole.backends.lab.pwsh.syntax import SyntaxNode
from emconsole.backends.lab.pwsh.values import (
    Encoding,
    Hashtable,
    add,
    as_list,
    comparison,
    to_bool,
    to_datetime,
    to_int,
    to_number,
    to_string,
)

Expr = Callable[["Interpreter"], Any]
Stmt = Callable[["Interpreter", list[Any]], None]
Block = tuple[Stmt, ...]
Caster = Callable[["Interpreter", Any], Any]
Assign = Callable[["Interpreter", Any], None]

_ESCAPES = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "0": "\0",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "e": "\x1b",
}
_MERGES = {"2>&1": {"error"}, "3>&1": {"warning"}, "6>&1": {"host"}, "*>&1": {"error", "warning", "host"}}
_READ_ONLY = ("true", "false", "null", "_", "psitem")


Failure = Callable[["Interpreter"], BaseException]


def _raiser(make: Failure) -> Expr:
    """An expression that fails when it is evaluated (a fresh exception each time)."""

    def fail(it: Interpreter) -> NoReturn:
        raise make(it)

    return fail


def _deferred(error: Exception) -> Failure:
    """A tree shape the walker would have tripped over when it got there: trip over it then."""
    return lambda it: error.with_traceback(None)


def _unsupported(site: Site, what: str) -> Failure:
    return lambda it: it.source.not_supported(site, what)


def _located(site: Site, run: Expr) -> Expr:
    """The expression's PSError is positioned here unless an inner expression already was."""

    def located(it: Interpreter) -> Any:
        try:
            return run(it)
        except PSError as error:
            it.source.locate(error.record, site)
            raise

    return located


def _constant(value: Any) -> Expr:
    return lambda it: value


def _text_of(value: Expr) -> Expr:
    return lambda it: to_string(value(it))


def collect(items: list[Any]) -> Any:
    """A pipeline's result as a value: nothing is $null, one object is itself, more are an array."""
    if not items:
        return None
    return items[0] if len(items) == 1 else items


# ---- argument tokens of a command ------------------------------------------------------------------
#: ``tokens.append(payload)`` (a Param or an Arg whose value is fixed)
TOKEN = 0
#: ``tokens.append(Arg(payload(it)))``
ARG = 1
#: ``tokens.append(Param(name, expr(it)))`` with ``payload = (name, expr)``
PARAM_VALUE = 2
#: evaluate ``payload(it)`` and drop it (a ``-Name:value`` whose ':' was followed by another ':')
EVALUATE = 3
#: ``raise payload(it)``
FAIL = 4

ArgumentStep = tuple[int, Any]


class CommandPlan:
    """One command of a pipeline, everything about it that the text decides.

    Its tokens are a fixed shape (``shape``: kinds and names, values as Slots) whose values the
    run evaluates left to right; binding the shape to a command is done once per command found
    (``bind``), so a run only fills the values in.
    """

    def __init__(
        self,
        site: Site,
        name: str | None,
        target: Expr | None,
        dot_sourced: bool,
        steps: tuple[ArgumentStep, ...],
        merges: frozenset[str],
    ) -> None:
        self.site = site
        #: the command's name when written as a name (and lower-cased); else ``target`` computes it
        self.name = name
        self.key = None if name is None else name.lower()
        self.target = target
        self.dot_sourced = dot_sourced
        self.merges = merges
        shape: list[Param | Arg] = []
        evaluate: list[tuple[int, Any]] = []
        for kind, payload in steps:
            if kind == TOKEN and isinstance(payload, Param) and payload.value is MISSING:
                shape.append(payload)
                continue
            if kind in (TOKEN, ARG, PARAM_VALUE):
                slot = Slot(sum(1 for k, _ in evaluate if k in (TOKEN, ARG)))
                if kind == TOKEN:
                    shape.append(Param(payload.name, slot) if isinstance(payload, Param) else Arg(slot))
                    evaluate.append((TOKEN, payload.value))
                elif kind == ARG:
                    shape.append(Arg(slot))
                    evaluate.append((ARG, payload))
                else:
                    shape.append(Param(payload[0], slot))
                    evaluate.append((ARG, payload[1]))
            else:
                evaluate.append((kind, payload))
        self.shape = tuple(shape)
        #: how the values are made: (TOKEN, constant) / (ARG, expression) / (EVALUATE, expression) / FAIL
        self._evaluate = tuple(evaluate)
        self._constant = (
            tuple(payload for _, payload in evaluate) if all(k == TOKEN for k, _ in evaluate) else None
        )
        #: when every value is a constant or an expression: one maker per value
        self._makers = (
            tuple(payload if kind == ARG else _constant(payload) for kind, payload in evaluate)
            if all(k in (TOKEN, ARG) for k, _ in evaluate)
            else None
        )
        #: the tokens' values, evaluated left to right
        self.values = self._values()
        #: the body of the script block when one written in place is the only argument (``{ ... }``)
        self.block: Block | None = None
        #: (spec, whether there is pipeline input) -> the Recipe, or None when binding always fails
        self._recipes: dict[tuple[int, bool], tuple[CmdletSpec, Recipe | None]] = {}
        #: the last (spec, has_pipeline_input, binder) used: a call site nearly always finds the same
        #: command (one tuple, so that threads sharing the program never see a torn entry); the
        #: interpreter reads it before it asks ``binder``
        self.last: tuple[CmdletSpec | None, bool, Binder] = (None, False, _no_binder)

    def _values(self) -> Callable[[Interpreter], Sequence[Any]]:
        """``values``: the shortest way for this plan (most commands have one or two arguments)."""
        constant, makers = self._constant, self._makers
        if constant is not None:
            return lambda it: constant
        if makers is None:
            return self._evaluated
        if len(makers) == 1:
            (first,) = makers
            return lambda it: [first(it)]
        if len(makers) == 2:
            first, second = makers
            return lambda it: [first(it), second(it)]
        return lambda it: [make(it) for make in makers]

    def _evaluated(self, it: Interpreter) -> Sequence[Any]:
        """The values when some token only evaluates (``-Name::value``) or fails."""
        values: list[Any] = []
        for kind, payload in self._evaluate:
            if kind == TOKEN:
                values.append(payload)
            elif kind == ARG:
                values.append(payload(it))
            elif kind == EVALUATE:
                payload(it)
            else:
                raise payload(it)
        return values

    def tokens(self, values: Sequence[Any]) -> list[Param | Arg]:
        """The tokens as written, with their values."""
        return [
            token
            if token.value is MISSING
            else Param(token.name, values[token.value.position])
            if isinstance(token, Param)
            else Arg(values[token.value.position])
            for token in self.shape
        ]

    def binder(self, spec: CmdletSpec, has_pipeline_input: bool) -> Binder:
        """What gives ``binder.bind``'s result for this command's values, as (params, common): the
        cached Recipe's when binding can succeed, else ``bind`` itself (which raises its error)."""
        key = (id(spec), has_pipeline_input)
        cached = self._recipes.get(key)
        if cached is None or cached[0] is not spec:
            cached = self._recipes[key] = (spec, recipe(spec, self.shape, has_pipeline_input))
        made = cached[1]
        if made is not None:
            found = made.bound
        else:

            def found(values: Sequence[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
                bound = bind(spec, self.tokens(values), has_pipeline_input)
                return bound.params, bound.common

        self.last = (spec, has_pipeline_input, found)
        return found


def _no_binder(values: Sequence[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    raise AssertionError("CommandPlan.last before any command was found")


@dataclass(frozen=True)
class Program:
    """A compiled script: its top-level statements, each rendered by Out-Default when it ends."""

    statements: Block


class Compiler:
    """Turns the ``SyntaxNode`` tree of one script into closures (one instance per script text).

    ``parameters`` maps the start of each single-quoted string whose value the run supplies
    (``it.literals``) to its index: the program then serves every text that differs only there.
    ``consumed`` tells which of them the program really reads that way.
    """

    def __init__(self, original: str, mapped: str, parameters: dict[int, int] | None = None) -> None:
        self.original = original
        self.mapped = mapped
        self.parameters = parameters or {}
        self.consumed: set[int] = set()
        #: expressions that only read: ("const", value), ("literal", index in it.literals) or
        #: ("var", lower-case name), which the closures built over them read in place
        self._reads: dict[Expr, tuple[str, Any]] = {}
        #: expressions that position every PSError they raise themselves (or raise none)
        self._locating: set[Expr] = set()
        #: script block literals: the expression -> the block's body
        self._blocks: dict[Expr, Block] = {}
        #: stores into a plain variable (``assign_variable``): the closure -> the lower-case name
        self._variables: dict[Assign, str] = {}
        #: assignments to a plain variable: the closure -> (lower-case name, value expression)
        self._stores: dict[Callable[[Interpreter], None], tuple[str, Expr]] = {}

    def text(self, node: SyntaxNode) -> str:
        return self.original[node.start : node.end]

    def site(self, node: SyntaxNode) -> Site:
        return Site(node)

    def holds_parameters(self, node: SyntaxNode) -> bool:
        return any(node.start <= start < node.end for start in self.parameters)

    def _read(self, kind: str, payload: Any, expr: Expr) -> Expr:
        self._reads[expr] = (kind, payload)
        self._locating.add(expr)  # a read raises nothing
        return expr

    def _constant(self, value: Any) -> Expr:
        return self._read("const", value, _constant(value))

    def _locates(self, expr: Expr) -> Expr:
        self._locating.add(expr)
        return expr

    def _locating_as(self, operand: Expr, expr: Expr) -> Expr:
        """``expr`` adds no error of its own to ``operand``'s: it positions them as ``operand`` does."""
        if operand in self._locating:
            self._locating.add(expr)
        return expr

    def _located(self, site: Site, expr: Expr) -> Expr:
        """``_located``, unless ``expr`` positions its errors itself: the wrapper could never act."""
        return expr if expr in self._locating else self._locates(_located(site, expr))

    # ---- statements -------------------------------------------------------------------------------
    def statement_nodes(self, node: SyntaxNode) -> list[SyntaxNode]:
        found: list[SyntaxNode] = []
        for child in node.named_children:
            if child.type in ("statement_list", "script_block_body"):
                found += self.statement_nodes(child)
            elif child.type not in ("comment", "empty_statement"):
                found.append(child)
        return found

    def block(self, node: SyntaxNode | None) -> Block:
        if node is None:
            return ()
        return tuple(self.statement(child) for child in self.statement_nodes(node))

    def statement(self, node: SyntaxNode) -> Stmt:
        site = self.site(node)
        try:
            if node.type == "pipeline":
                return self._pipeline_statement(node, site)
            if node.type == "if_statement":
                return self._if_statement(node, site)
            if node.type == "foreach_statement":
                return self._foreach_statement(node, site)
            body = self._statement(node)
        except Exception as error:  # re-raised when the statement runs, as before
            fail = _raiser(_deferred(error))

            def body(it: Interpreter, out: list[Any]) -> None:
                fail(it)

        return self._guarded(site, body)

    @staticmethod
    def _guarded(site: Site, body: Stmt) -> Stmt:
        """A statement's error handling around ``body``: its PSError is statement-terminating."""

        def run(it: Interpreter, out: list[Any]) -> None:
            try:
                it.last_ok = True
                body(it, out)
            except ScriptHalt:
                raise
            except PSError as error:
                it.statement_failed(error, site)

        return run

    def _statement(self, node: SyntaxNode) -> Stmt:
        kind = node.type
        if kind == "try_statement":
            return self._try(node)
        if kind == "flow_control_statement":
            return self._exit(node)
        site = self.site(node)
        fail = _raiser(_unsupported(site, f"The statement '{kind}'"))

        def unsupported(it: Interpreter, out: list[Any]) -> None:
            fail(it)

        return unsupported

    def _pipeline_statement(self, node: SyntaxNode, site: Site) -> Stmt:
        """A pipeline statement with ``statement``'s error handling in the same closure (the most
        frequent statement: one call less)."""
        child = node.named_children[0]
        if child.type == "assignment_expression":
            assign = self.assignment(child)
            store = self._stores.get(assign)
            if store is not None:
                return self._store_statement(site, *store)

            def assignment(it: Interpreter, out: list[Any]) -> None:
                try:
                    it.last_ok = True
                    assign(it)
                except ScriptHalt:
                    raise
                except PSError as error:
                    it.statement_failed(error, site)

            return assignment
        chain = self.chain(child)

        def pipeline(it: Interpreter, out: list[Any]) -> None:
            try:
                it.last_ok = True
                out.extend(chain(it))
            except ScriptHalt:
                raise
            except PSError as error:
                it.statement_failed(error, site)

        return pipeline

    def _store_statement(self, site: Site, key: str, value: Expr) -> Stmt:
        """``$name = value`` as a statement (the commonest): a constant or a single-quoted string is
        stored without a call and cannot fail; anything else as the assignment statement above."""
        read = self._reads.get(value)
        if read is not None and read[0] == "const":
            constant = read[1]

            def store_constant(it: Interpreter, out: list[Any]) -> None:
                it.last_ok = True
                it.variables[key] = constant

            return store_constant
        if read is not None and read[0] == "literal":
            index = read[1]

            def store_literal(it: Interpreter, out: list[Any]) -> None:
                it.last_ok = True
                it.variables[key] = it.literals[index]

            return store_literal

        def store(it: Interpreter, out: list[Any]) -> None:
            try:
                it.last_ok = True
                it.variables[key] = value(it)
            except ScriptHalt:
                raise
            except PSError as error:
                it.statement_failed(error, site)

        return store

    def _if_statement(self, node: SyntaxNode, site: Site) -> Stmt:
        clauses: list[tuple[Expr | None, Block]] = []
        condition = node.child_by_field_name("condition")
        body = next(c for c in node.named_children if c.type == "statement_block")
        clauses.append((self._condition(condition), self._body(body)))
        for child in node.named_children:
            if child.type == "elseif_clauses":
                for clause in child.named_children:
                    block = next(c for c in clause.named_children if c.type == "statement_block")
                    clauses.append(
                        (self._condition(clause.child_by_field_name("condition")), self._body(block))
                    )
            elif child.type == "else_clause":
                block = next(c for c in child.named_children if c.type == "statement_block")
                clauses.append((None, self._body(block)))
        chosen = tuple(clauses)
        only, then = chosen[0]
        if len(chosen) == 1 and only is not None:

            def run_if(it: Interpreter, out: list[Any]) -> None:
                """The commonest if: one clause, _guarded's error handling in the same closure."""
                try:
                    it.last_ok = True
                    value = only(it)
                    if value is True or (value is not False and to_bool(value)):
                        for statement in then:
                            statement(it, out)
                except ScriptHalt:
                    raise
                except PSError as error:
                    it.statement_failed(error, site)

            return run_if

        def run(it: Interpreter, out: list[Any]) -> None:
            for test, block in chosen:
                if test is None or to_bool(test(it)):
                    for statement in block:
                        statement(it, out)
                    return

        return self._guarded(site, run)

    def _condition(self, node: SyntaxNode | None) -> Expr | None:
        return None if node is None else self.value_of_pipeline(node)

    def _body(self, statement_block: SyntaxNode) -> Block:
        return self.block(statement_block.child_by_field_name("statement_list"))

    def _foreach_statement(self, node: SyntaxNode, site: Site) -> Stmt:
        assign = self.assign_variable(next(c for c in node.named_children if c.type == "variable"))
        source = self.value_of_pipeline(next(c for c in node.named_children if c.type == "pipeline"))
        body = self._body(next(c for c in node.named_children if c.type == "statement_block"))

        key = self._variables.get(assign)
        if key is not None:

            def run_over(it: Interpreter, out: list[Any]) -> None:
                """``foreach ($name in ...)`` (the commonest): the loop variable stored in place,
                _guarded's error handling in the same closure."""
                try:
                    it.last_ok = True
                    items = source(it)
                    variables = it.variables
                    for item in items if items.__class__ is list else as_list(items):
                        variables[key] = item
                        for statement in body:
                            statement(it, out)
                except ScriptHalt:
                    raise
                except PSError as error:
                    it.statement_failed(error, site)

            return run_over

        def run(it: Interpreter, out: list[Any]) -> None:
            items = source(it)
            for item in items if items.__class__ is list else as_list(items):
                assign(it, item)
                for statement in body:
                    statement(it, out)

        return self._guarded(site, run)

    def _try(self, node: SyntaxNode) -> Stmt:
        body = self._body(next(c for c in node.named_children if c.type == "statement_block"))
        catches = next((c for c in node.named_children if c.type == "catch_clauses"), None)
        handler: Block | None = None
        handler_error: Exception | None = None
        if catches is not None:
            try:
                handler = self._body(
                    next(c for c in catches.named_children[0].named_children if c.type == "statement_block")
                )
            except Exception as error:  # the walker found this out only when it caught
                handler_error = error
        has_catch = catches is not None

        def run(it: Interpreter, out: list[Any]) -> None:
            it.try_depth += 1
            try:
                for statement in body:
                    statement(it, out)
            except PSError as error:
                it.try_depth -= 1
                if not has_catch:
                    raise
                if handler_error is not None:
                    raise handler_error.with_traceback(None) from None
                assert handler is not None
                session = it.session
                saved = session.get_variable("_")
                session.set_variable("_", error.record)
                session.set_variable("PSItem", error.record)
                try:
                    for statement in handler:
                        statement(it, out)
                finally:
                    session.set_variable("_", saved)
                    session.set_variable("PSItem", saved)
                return
            it.try_depth -= 1

        return run

    def _exit(self, node: SyntaxNode) -> Stmt:
        value = self.value_of_pipeline(node.named_children[0]) if node.named_children else None

        def run(it: Interpreter, out: list[Any]) -> None:
            raise ScriptExit(to_int(value(it)) if value is not None else 0)

        return run

    # ---- pipelines --------------------------------------------------------------------------------
    def chain(self, node: SyntaxNode) -> Callable[[Interpreter], list[Any]]:
        """A pipeline's output objects."""
        elements = [c for c in node.named_children if c.type != "comment"]
        steps: list[tuple[str, Any]] = []
        for index, element in enumerate(elements):
            if element.type == "command":
                steps.append(("command", self.command(element)))
            elif index == 0:
                steps.append(("value", self.value(element)))
            else:
                site = self.site(element)
                steps.append(("fail", _unsupported(site, "An expression after '|'")))
                break
        if len(steps) == 1 and steps[0][0] == "command":
            plan: CommandPlan = steps[0][1]
            return lambda it: it.run_command(plan, None) or []
        if all(kind == "command" for kind, _ in steps[1:]) and steps[0][0] != "fail":
            return self._command_chain(steps[0], tuple(plan for _, plan in steps[1:]))
        planned = tuple(steps)

        def run(it: Interpreter) -> list[Any]:
            items: list[Any] | None = None
            for kind, step in planned:
                if kind == "command":
                    items = it.run_command(step, items)
                elif kind == "value":
                    value = step(it)
                    items = [None] if value is None else as_list(value)  # `$null | x` sends one $null
                else:
                    raise step(it)
            return items or []

        return run

    @staticmethod
    def _command_chain(
        head: tuple[str, Any], rest: tuple[CommandPlan, ...]
    ) -> Callable[[Interpreter], list[Any]]:
        """``chain``'s loop for a pipeline of commands (after a first command or a value)."""
        kind, first = head
        if kind == "command" and len(rest) == 1:
            (second,) = rest
            return lambda it: it.run_command(second, it.run_command(first, None)) or []

        def run(it: Interpreter) -> list[Any]:
            if kind == "command":
                items = it.run_command(first, None)
            else:
                value = first(it)
                items = [None] if value is None else as_list(value)  # `$null | x` sends one $null
            for plan in rest:
                items = it.run_command(plan, items)
            return items or []

        return run

    def value_of_pipeline(self, node: SyntaxNode) -> Expr:
        """A pipeline used as an expression: an expression keeps its value, commands collect."""
        try:
            return self._value_of_pipeline(node)
        except Exception as error:  # re-raised when evaluated, as the walker did
            return _raiser(_deferred(error))

    def _value_of_pipeline(self, node: SyntaxNode) -> Expr:
        if (
            node.type == "pipeline"
            and node.named_children
            and node.named_children[0].type == "assignment_expression"
        ):
            assign = self.assignment(node.named_children[0])

            def assignment(it: Interpreter) -> None:
                assign(it)

            return assignment
        chain_node = node.named_children[0] if node.type == "pipeline" else node
        elements = [c for c in chain_node.named_children if c.type != "comment"]
        if len(elements) == 1 and elements[0].type != "command":
            return self.value(elements[0])
        if len(elements) == 1:  # one command (the commonest): ``collect(chain(it))`` in one closure
            plan = self.command(elements[0])

            def command_value(it: Interpreter) -> Any:
                items = it.run_command(plan, None)
                if not items:
                    return None
                return items[0] if len(items) == 1 else items

            return command_value
        chain = self.chain(chain_node)
        return lambda it: collect(chain(it))

    def assignment(self, node: SyntaxNode) -> Callable[[Interpreter], None]:
        left = node.named_children[0]
        value_node = node.child_by_field_name("value")
        assert value_node is not None
        value = self.value_of_pipeline(value_node.named_children[0])
        target = left.named_children[0]
        while target.type == "unary_expression":
            target = target.named_children[0]
        caster: Caster | None = None
        if (
            target.type == "expression_with_unary_operator"
            and target.named_children[0].type == "cast_expression"
        ):
            cast = target.named_children[0]
            caster = self.cast(cast, cast.named_children[0])
            target = cast.named_children[1]
            while target.type == "unary_expression":
                target = target.named_children[0]
        if target.type == "variable":
            name = variable_name(self.text(target))
            key = name.lower()
            if caster is None and not key.startswith("env:") and key not in _READ_ONLY:

                def assign(it: Interpreter) -> None:
                    it.variables[key] = value(it)

                self._stores[assign] = (key, value)
                return assign
            store = self.assign_variable(target)
        elif target.type == "member_access":
            store = self._assign_member(target)
        else:
            site = self.site(target)

            def store(it: Interpreter, value: Any) -> None:
                raise it.source.not_supported(site, "Assigning to this expression")

        if caster is None:
            return lambda it: store(it, value(it))
        convert = caster
        return lambda it: store(it, convert(it, value(it)))

    def _assign_member(self, node: SyntaxNode) -> Assign:
        owner, member = node.named_children[0], node.named_children[-1]
        name = self.text(member)
        if owner.type == "type_literal":

            def encoding(it: Interpreter, value: Any) -> None:
                it.session.output_encoding = value

            return encoding
        target = self.value(owner)

        def store(it: Interpreter, value: Any) -> None:
            obj = target(it)
            if isinstance(obj, (PSObject, Hashtable)) and (isinstance(obj, Hashtable) or name in obj):
                obj[name] = value
                return
            raise PSError(
                ErrorRecord(
                    message=f"The property '{name}' cannot be found on this object. "
                    "Verify that the property exists and "
                    "can be set.",
                    fully_qualified_error_id="PropertyAssignmentException",
                    category="InvalidOperation",
                )
            )

        return store

    def assign_variable(self, node: SyntaxNode) -> Assign:
        name = variable_name(self.text(node))
        if name.lower().startswith("env:"):
            key = name[4:]
            return lambda it, value: it.session.set_env(key, to_string(value))
        if name.lower() in _READ_ONLY:

            def read_only(it: Interpreter, value: Any) -> None:
                raise PSError(
                    ErrorRecord(
                        message=f"Cannot overwrite variable {name} because it is read-only or constant.",
                        fully_qualified_error_id="VariableNotWritable",
                        category="WriteError",
                        exception_type="System.Management.Automation.SessionStateUnauthorizedAccessException",
                    )
                )

            return read_only
        key = name.lower()

        def assign(it: Interpreter, value: Any) -> None:
            it.variables[key] = value

        self._variables[assign] = key
        return assign

    # ---- commands ---------------------------------------------------------------------------------
    def command(self, node: SyntaxNode) -> CommandPlan:
        operator = next((c for c in node.children if c.type == "command_invocation_operator"), None)
        name_node = node.child_by_field_name("command_name")
        assert name_node is not None
        dot_sourced = operator is not None and self.text(operator) == "."
        name: str | None = None
        target: Expr | None = None
        if name_node.type == "command_name":
            name = self.text(name_node)
        else:
            target = self._command_target(name_node)
        steps, merges = self._arguments(node.child_by_field_name("command_elements"))
        plan = CommandPlan(self.site(node), name, target, dot_sourced, steps, merges)
        if len(steps) == 1 and steps[0][0] == ARG:
            plan.block = self._blocks.get(steps[0][1])
        return plan

    def _command_target(self, node: SyntaxNode) -> Expr:
        inner = node.named_children[0]
        if inner.type == "path_command_name":
            parts = inner.named_children
            if len(parts) == 1 and parts[0].type == "variable":
                return self.value(parts[0])
            return _constant(self.text(inner))
        return self.value(inner)

    def _arguments(self, node: SyntaxNode | None) -> tuple[tuple[ArgumentStep, ...], frozenset[str]]:
        """The walker's token loop, run here on what the text fixes; values stay for the run.

        ``tokens`` mirrors the token list the walker built (with the index of the step that made each
        one) so that a ``:`` separator pops the same token it did.
        """
        steps: list[ArgumentStep | None] = []
        tokens: list[tuple[bool, int]] = []  # (is a Param, index in steps)
        merges: set[str] = set()
        if node is None:
            return (), frozenset()
        pending: str | None = None
        for child in node.named_children:
            kind = child.type
            if kind == "command_argument_sep" and self.text(child).strip() == ":":
                if not tokens or not tokens[-1][0]:
                    site = self.site(child)
                    steps.append((FAIL, _unsupported(site, "A ':' not after a parameter name")))
                    break
                _, index = tokens.pop()
                made = steps[index]
                assert made is not None
                if made[0] == TOKEN:
                    pending = made[1].name
                    steps[index] = None
                else:  # a -Name:value: its value is still evaluated, then dropped
                    pending = made[1][0]
                    steps[index] = (EVALUATE, made[1][1])
                continue
            if kind in ("command_argument_sep", "comment"):
                continue
            if kind == "redirection":
                key = self.text(child).replace(" ", "")
                if key not in _MERGES:
                    steps.append((FAIL, lambda it, key=key: KeyError(key)))
                    break
                merges |= _MERGES[key]
                continue
            if kind == "command_parameter":
                text = self.text(child)
                if text.endswith(":"):
                    pending = text[1:-1]
                else:
                    tokens.append((True, len(steps)))
                    steps.append((TOKEN, Param(text[1:])))
                continue
            value = self._argument_value(child)
            constant = value[1] if value[0] else None
            if pending is not None:
                tokens.append((True, len(steps)))
                if value[0]:
                    steps.append((TOKEN, Param(pending, constant)))
                else:
                    steps.append((PARAM_VALUE, (pending, value[1])))
                pending = None
            else:
                tokens.append((False, len(steps)))
                steps.append((TOKEN, Arg(constant)) if value[0] else (ARG, value[1]))
        else:
            if pending is not None:
                steps.append((TOKEN, Param(pending)))
        return tuple(step for step in steps if step is not None), frozenset(merges)

    def _argument_value(self, node: SyntaxNode) -> tuple[bool, Any]:
        """(True, text) for a bare word (a fixed string), else (False, expression)."""
        if node.type == "generic_token":
            return True, self.text(node)
        if node.type == "bareword_argument_list":
            parts = [self._argument_value(c) for c in node.named_children]
            makers = tuple(part[1] if not part[0] else _constant(part[1]) for part in parts)
            return False, lambda it: [make(it) for make in makers]
        return False, self.value(node)

    # ---- expressions ------------------------------------------------------------------------------
    def value(self, node: SyntaxNode) -> Expr:
        handler = getattr(self, "_v_" + node.type, None)
        site = self.site(node)
        if handler is None:
            what = f"The expression '{node.type}'"
            return _raiser(_unsupported(site, what))
        try:
            run: Expr = handler(node, site)
        except Exception as error:  # re-raised when evaluated, as the walker did
            return self._located(site, _raiser(_deferred(error)))
        return run

    def _v_unary_expression(self, node: SyntaxNode, site: Site) -> Expr:
        return self.value(node.named_children[0])

    def _v_argument_expression(self, node: SyntaxNode, site: Site) -> Expr:
        return self.value(node.named_children[0])

    def _v_variable(self, node: SyntaxNode, site: Site) -> Expr:
        name = variable_name(self.text(node))
        lowered = name.lower()
        if lowered == "true":
            return self._constant(True)
        if lowered == "false":
            return self._constant(False)
        if lowered == "null":
            return self._constant(None)
        if lowered.startswith("env:"):
            key = name[4:]
            return self._locates(lambda it: it.session.get_env(key))
        key = "_" if lowered == "psitem" else lowered
        return self._read("var", key, lambda it: it.variables.get(key))

    def _v_string_literal(self, node: SyntaxNode, site: Site) -> Expr:
        inner = node.named_children[0]
        text = self.text(inner)
        mapped = self.mapped[inner.start : inner.end]
        if inner.type == "verbatim_string_characters":
            index = self.parameters.get(inner.start)
            if index is None:
                return self._constant(_unquote_single(text[1:-1], mapped[1:-1]))
            self.consumed.add(index)
            return self._read("literal", index, lambda it: it.literals[index])
        if inner.type == "verbatim_here_string_characters":
            return self._constant(_here_body(text))
        if inner.type in ("expandable_string_literal", "expandable_here_string_literal"):
            return self._expand(inner, text, mapped, site)
        inner_site = self.site(inner)
        return _raiser(_unsupported(inner_site, "This string form"))

    def _expand(self, node: SyntaxNode, text: str, mapped: str, site: Site) -> Expr:
        base = node.start
        here = node.type == "expandable_here_string_literal"
        start = text.index("\n") + 1 if here else 1
        end = text.rindex("\n") if here else len(text) - 1
        parts: list[str | Expr] = []
        position = start
        blocks = False
        for child in node.named_children:
            child_start, child_end = child.start - base, child.end - base
            parts.append(_unescape(text[position:child_start], mapped[position:child_start], here))
            if child.type == "sub_expression":
                parts.append(self._sub_expression_text(child))
                blocks = True
            elif child.type == "variable":
                parts.append(_text_of(self.value(child)))
            position = child_end
        parts.append(_unescape(text[position:end], mapped[position:end], here))
        if all(isinstance(part, str) for part in parts):
            return self._constant("".join(part for part in parts if isinstance(part, str)))
        pieces = tuple(parts)

        def expand(it: Interpreter) -> str:
            return "".join(part if isinstance(part, str) else part(it) for part in pieces)

        return self._located(site, expand) if blocks else self._locates(expand)

    def _sub_expression_text(self, node: SyntaxNode) -> Expr:
        block = self.block(node.child_by_field_name("statements"))

        def text(it: Interpreter) -> str:
            out: list[Any] = []
            for statement in block:
                statement(it, out)
            return to_string(collect(out))

        return text

    def _v_integer_literal(self, node: SyntaxNode, site: Site) -> Expr:
        text = self.text(node)
        try:
            return self._constant(int(text, 16) if text.lower().startswith("0x") else int(text))
        except ValueError:
            return _raiser(_unsupported(site, f"The number literal '{text}'"))

    def _v_real_literal(self, node: SyntaxNode, site: Site) -> Expr:
        text = self.text(node)
        try:
            return self._constant(float(text))
        except ValueError:
            return _raiser(_unsupported(site, f"The number literal '{text}'"))

    def _v_array_expression(self, node: SyntaxNode, site: Site) -> Expr:
        block = self.block(node.child_by_field_name("statements"))

        def array(it: Interpreter) -> list[Any]:
            out: list[Any] = []
            try:
                for statement in block:
                    statement(it, out)
            except PSError as error:
                it.source.locate(error.record, site)
                raise
            return out

        return self._locates(array if block else lambda it: [])

    def _v_sub_expression(self, node: SyntaxNode, site: Site) -> Expr:
        block = self.block(node.child_by_field_name("statements"))

        def sub(it: Interpreter) -> Any:
            out: list[Any] = []
            try:
                for statement in block:
                    statement(it, out)
            except PSError as error:
                it.source.locate(error.record, site)
                raise
            return collect(out)

        return self._locates(sub)

    def _v_parenthesized_expression(self, node: SyntaxNode, site: Site) -> Expr:
        return self._located(site, self.value_of_pipeline(node.named_children[0]))

    def _v_array_literal_expression(self, node: SyntaxNode, site: Site) -> Expr:
        items = tuple(self.value(child) for child in node.named_children)
        return lambda it: [item(it) for item in items]

    def _hash_entries(self, node: SyntaxNode) -> list[tuple[Expr | str, Expr | None]]:
        """(key, value) per entry; a key written as a bare name is its text."""
        body = next((c for c in node.named_children if c.type == "hash_literal_body"), None)
        entries: list[tuple[Expr | str, Expr | None]] = []
        for entry in body.named_children if body is not None else []:
            try:
                key_inner = entry.named_children[0].named_children[0]
                key = self.text(key_inner) if key_inner.type == "simple_name" else self.value(key_inner)
                value_node = entry.named_children[1] if len(entry.named_children) > 1 else None
                entries.append((key, self.value_of_pipeline(value_node) if value_node is not None else None))
            except Exception as error:  # the walker tripped over this entry when it got there
                entries.append((_raiser(_deferred(error)), None))
        return entries

    def _v_hash_literal_expression(self, node: SyntaxNode, site: Site) -> Expr:
        planned = tuple(self._hash_entries(node))

        def table(it: Interpreter) -> Hashtable:
            result = Hashtable()
            try:
                for key, value in planned:
                    name = key if isinstance(key, str) else key(it)
                    result[name] = value(it) if value is not None else None
            except PSError as error:
                it.source.locate(error.record, site)
                raise
            return result

        return self._locates(table)

    def _custom_object(self, operand: SyntaxNode) -> Expr | None:
        """``[pscustomobject]@{ a = ..; b = .. }`` with bare-name keys, built straight into the object.

        Same object as through the Hashtable: PSObject keeps a key's first spelling and last value
        as the Hashtable does, and the entries are evaluated in the same order.
        """
        while operand.type == "unary_expression" and operand.named_children:
            operand = operand.named_children[0]
        if operand.type != "hash_literal_expression":
            return None
        entries = self._hash_entries(operand)
        if not all(isinstance(key, str) for key, _ in entries):
            return None
        planned = tuple((str(key), value) for key, value in entries)
        site = self.site(operand)
        spellings = {key.lower(): key for key, _ in planned}
        if len(spellings) == len(planned):  # names that differ without case: no first-spelling rule
            keys = tuple(key for key, _ in planned)
            values = tuple(_constant(None) if value is None else value for _, value in planned)

            def distinct(it: Interpreter) -> PSObject:
                try:
                    made = [value(it) for value in values]
                    return PSObject.custom(spellings, dict(zip(keys, made, strict=True)))
                except PSError as error:
                    it.source.locate(error.record, site)
                    raise

            return self._locates(distinct)

        def custom(it: Interpreter) -> PSObject:
            result = PSObject()
            try:
                for key, value in planned:
                    result[key] = value(it) if value is not None else None
            except PSError as error:
                it.source.locate(error.record, site)
                raise
            return result

        return self._locates(custom)

    def _v_script_block_expression(self, node: SyntaxNode, site: Site) -> Expr:
        block_node = node.named_children[0] if node.named_children else None
        fixed = None if self.holds_parameters(node) else self.text(node)[1:-1]
        body = self.block(
            block_node.child_by_field_name("script_block_body") if block_node is not None else None
        )

        def script_block(it: Interpreter) -> ScriptBlock:
            def invoke(*args: Any) -> list[Any]:
                return it.invoke_block(body, args[0] if args else None)

            return ScriptBlock(fixed if fixed is not None else it.source.slice(site)[1:-1], invoke)

        self._blocks[script_block] = body
        return script_block

    def _v_expression_with_unary_operator(self, node: SyntaxNode, site: Site) -> Expr:
        first = node.children[0]
        if first.type == "cast_expression":
            return self._located(site, self.value(first))
        operand = self.value(node.named_children[-1])
        operator = first.type.lower()
        if operator in ("-not", "!"):
            return self._locating_as(operand, lambda it: not to_bool(operand(it)))
        if operator == "-":
            return self._located(site, lambda it: -to_number(operand(it)))
        what = f"The unary operator '{first.type}'"

        def unsupported(it: Interpreter) -> NoReturn:
            operand(it)
            raise it.source.not_supported(site, what)

        return self._located(site, unsupported)

    def _v_cast_expression(self, node: SyntaxNode, site: Site) -> Expr:
        type_literal, operand_node = node.named_children[0], node.named_children[1]
        kind = CAST_TYPES.get(type_key(self.text(type_literal)))
        fused = self._custom_object(operand_node) if kind == "pscustomobject" else None
        if fused is not None:
            return fused
        operand = self.value(operand_node)
        if kind == "string":  # to_string and to_bool never fail: nothing to position
            return self._locating_as(operand, lambda it: to_string(operand(it)))
        if kind == "bool":
            return self._locating_as(operand, lambda it: to_bool(operand(it)))
        convert = self.cast(node, type_literal)

        def cast(it: Interpreter) -> Any:
            try:
                return convert(it, operand(it))
            except PSError as error:
                it.source.locate(error.record, site)
                raise

        return self._locates(cast)

    def cast(self, node: SyntaxNode, type_literal: SyntaxNode) -> Caster:
        kind = CAST_TYPES.get(type_key(self.text(type_literal)))
        if kind == "string":
            return lambda it, value: to_string(value)
        if kind == "int":
            return lambda it, value: to_int(value)
        if kind == "bool":
            return lambda it, value: to_bool(value)
        if kind == "datetime":
            return lambda it, value: to_datetime(value, it.local)
        if kind == "string[]":
            return lambda it, value: (
                [to_string(item) for item in as_list(value)] if value is not None else None
            )
        site = self.site(node)
        if kind == "ordered":

            def ordered(it: Interpreter, value: Any) -> Any:
                if not isinstance(value, Hashtable):
                    raise it.source.not_supported(site, "[ordered] on anything but a hash literal")
                value.ordered = True
                return value

            return ordered
        if kind == "pscustomobject":
            return lambda it, value: PSObject(dict(value.items())) if isinstance(value, Hashtable) else value
        what = f"The type '{self.text(type_literal)}'"

        def unknown(it: Interpreter, value: Any) -> NoReturn:
            raise it.source.not_supported(site, what)

        return unknown

    def _v_comparison_expression(self, node: SyntaxNode, site: Site) -> Expr:
        left, operator, right = node.named_children[0], node.named_children[1], node.named_children[2]
        op = self.text(operator).lower()
        lhs, rhs = self.value(left), self.value(right)
        if op in ("-match", "-notmatch"):
            return self._located(site, lambda it: it.match(op, lhs(it), rhs(it)))

        compare = comparison(op)
        left_read, right_read = self._reads.get(lhs), self._reads.get(rhs)
        if (
            left_read is not None
            and left_read[0] == "var"
            and right_read is not None
            and right_read[0] == "literal"
        ):
            key, index = left_read[1], right_read[1]

            def variable_to_text(it: Interpreter) -> Any:
                """``$name -op 'text'`` (the commonest): the operands read in place."""
                try:
                    return compare(it.variables.get(key), it.literals[index], it.local)
                except PSError as error:
                    it.source.locate(error.record, site)
                    raise

            return self._locates(variable_to_text)

        def compared(it: Interpreter) -> Any:
            try:
                return compare(lhs(it), rhs(it), it.local)
            except PSError as error:
                it.source.locate(error.record, site)
                raise

        return self._locates(compared)

    _v_comparison_argument_expression = _v_comparison_expression

    def _v_logical_expression(self, node: SyntaxNode, site: Site) -> Expr:
        children = node.children
        first = self.value(children[0])
        rest: list[tuple[str, Expr]] = []
        index = 1
        while index + 1 < len(children):
            rest.append((children[index].type.lower(), self.value(children[index + 1])))
            index += 2
        pairs = tuple(rest)

        def logical(it: Interpreter) -> bool:
            result = to_bool(first(it))
            for operator, operand in pairs:
                if (operator == "-and" and result) or (operator == "-or" and not result):
                    result = to_bool(operand(it))
            return result

        return logical

    _v_logical_argument_expression = _v_logical_expression

    def _v_additive_expression(self, node: SyntaxNode, site: Site) -> Expr:
        first, *rest = (self.value(child) for child in node.named_children)
        others = tuple(rest)

        def additive(it: Interpreter) -> Any:
            try:
                result = first(it)
                for other in others:
                    value = other(it)
                    if result.__class__ is str and value.__class__ is str:  # the commonest, as add does
                        result = result + value
                    else:
                        result = add(result, value)
                return result
            except PSError as error:
                it.source.locate(error.record, site)
                raise

        return self._locates(additive)

    _v_additive_argument_expression = _v_additive_expression

    def _v_member_access(self, node: SyntaxNode, site: Site) -> Expr:
        owner, member = node.named_children[0], node.named_children[-1]
        name = self.text(member)
        if owner.type == "type_literal":
            if name.lower() == "utf8":
                return lambda it: Encoding("utf-8", bom=True)
            return lambda it: it.session.output_encoding
        target = self.value(owner)
        key = name.lower()

        def read_member(it: Interpreter) -> Any:  # member never fails: nothing to position
            found = target(it)
            return found.member(key) if found.__class__ is PSObject else methods.member(found, name)

        return self._locating_as(target, read_member)

    def _v_invocation_expression(self, node: SyntaxNode, site: Site) -> Expr:
        owner = self.value(node.named_children[0])
        name = self.text(next(c for c in node.named_children if c.type == "member_name"))
        arguments = next((c for c in node.named_children if c.type == "argument_list"), None)
        values: list[Expr] = []
        if arguments is not None:
            for child in arguments.named_children:
                values += [
                    self.value(arg) for arg in child.named_children if arg.type == "argument_expression"
                ]
        planned = tuple(values)

        def invocation(it: Interpreter) -> Any:
            try:
                evaluated = [value(it) for value in planned]
                return methods.call(owner(it), name, evaluated, it.local)
            except PSError as error:
                it.source.locate(error.record, site)
                raise

        return self._locates(invocation)

    def _v_element_access(self, node: SyntaxNode, site: Site) -> Expr:
        owner, index = self.value(node.named_children[0]), self.value(node.named_children[1])
        return self._located(site, lambda it: methods.index(owner(it), index(it)))


def _unquote_single(text: str, mapped: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(text):
        out.append(text[index])
        index += 2 if mapped[index] == "'" and index + 1 < len(text) and mapped[index + 1] == "'" else 1
    return "".join(out)


def _here_body(text: str) -> str:
    return text[text.index("\n") + 1 : text.rindex("\n")].replace("\r\n", "\n").rstrip("\r")


def _unescape(text: str, mapped: str, here: bool) -> str:
    """Backtick escapes and doubled ``""`` of a double-quoted string's literal stretch."""
    out: list[str] = []
    index = 0
    while index < len(text):
        char = mapped[index]
        if char == "`" and index + 1 < len(text):
            following = text[index + 1]
            out.append(_ESCAPES.get(following, following))
            index += 2
        elif char == '"' and not here and index + 1 < len(text) and mapped[index + 1] == '"':
            out.append(text[index + 1])
            index += 2
        else:
            out.append(text[index])
            index += 1
    return "".join(out)
