"""A tree walker for POWERSHELL-SUBSET.md over tree-sitter-pwsh's tree.

Error semantics follow PowerShell: a command's non-terminating error honours -ErrorAction /
$ErrorActionPreference; a statement-terminating error (unknown command, binding error, a cmdlet's
terminating error) ends its statement and the script goes on, unless inside ``try`` or under
``$ErrorActionPreference = 'Stop'``, where it becomes script-terminating (``ScriptHalt``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

import tree_sitter
from emconsole.backends.lab.pwsh import methods
from emconsole.backends.lab.pwsh.api import CmdletSpec, ErrorRecord, PSError, PSObject, ScriptBlock
from emconsole.backends.lab.pwsh.binder import Arg, Param, bind
from emconsole.backends.lab.pwsh.records import InformationRecord, WarningRecord
from emconsole.backends.lab.pwsh.session import CommandRegistry, Session
from emconsole.backends.lab.pwsh.subset import CAST_TYPES, type_key, variable_name
from emconsole.backends.lab.pwsh.syntax import ParsedScript
from emconsole.backends.lab.pwsh.values import (
    Encoding,
    Hashtable,
    add,
    as_list,
    compare,
    to_bool,
    to_datetime,
    to_int,
    to_number,
    to_string,
)

Node = tree_sitter.Node
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


class ScriptHalt(PSError):
    """A script-terminating error: caught by ``catch`` or ends the script with exit code 1."""


class ScriptExit(Exception):
    """``exit N``."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def command_not_found(name: str) -> PSError:
    return PSError(
        ErrorRecord(
            message=f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or "
            "operable "
            "program. Check the spelling of the name, or if a path was included, verify that the path is "
            "correct and try again.",
            fully_qualified_error_id="CommandNotFoundException",
            category="ObjectNotFound",
            exception_type="System.Management.Automation.CommandNotFoundException",
            target=name,
            command=name,
        )
    )


class CommandCall:
    """The ``CommandContext`` a command runs with: its server, the session, and the streams."""

    def __init__(
        self,
        interpreter: Interpreter,
        spec: CmdletSpec,
        error_action: str,
        warning_action: str,
        *,
        dot_sourced: bool,
        invocation: str,
    ) -> None:
        self._interpreter = interpreter
        self.spec = spec
        self.error_action = error_action
        self.warning_action = warning_action
        #: True when invoked with ``. path``: a script may then define session commands
        self.dot_sourced = dot_sourced
        self._invocation = invocation

    @property
    def server(self) -> Any:
        return self._interpreter.server

    @property
    def session(self) -> Session:
        return self._interpreter.session

    def now(self) -> datetime:
        return self._interpreter.now()

    def write_error(self, record: ErrorRecord) -> None:
        record.command = record.command or self.spec.name
        record.invocation = record.invocation or self._invocation
        if self.error_action == "Stop":
            raise ScriptHalt(record)
        if self.error_action == "Continue":
            self._interpreter.emit("error", record)

    def write_warning(self, text: str) -> None:
        if self.warning_action == "Stop":
            raise ScriptHalt(
                ErrorRecord(
                    message="The running command stopped because the preference variable "
                    '"WarningPreference" or '
                    f"common parameter is set to Stop: {text}",
                    fully_qualified_error_id="ActionPreferenceStop",
                    category="OperationStopped",
                    exception_type="System.Management.Automation.ActionPreferenceStopException",
                    command=self.spec.name,
                    invocation=self._invocation,
                )
            )
        if self.warning_action == "Continue":
            self._interpreter.emit("warning", text)

    def write_host(self, text: str, newline: bool = True) -> None:
        """Host text (a line unless ``newline`` is False, as Write-Host -NoNewline): an InformationRecord."""
        record = InformationRecord(text, newline=newline, source=self.spec.name, when=self._interpreter.now())
        self._interpreter.emit("host", record)


class Interpreter:
    """Runs one parsed script against one server's registry, in one session."""

    def __init__(
        self,
        parsed: ParsedScript,
        *,
        server: Any,
        registry: CommandRegistry,
        session: Session,
        now: Callable[[], datetime],
        local_zone: timezone,
    ) -> None:
        self.parsed = parsed
        self.server = server
        self.registry = registry
        self.session = session
        self.now = now
        self.local = local_zone
        self._merges: list[tuple[set[str], list[Any]]] = []
        self._try_depth = 0
        #: where unmerged errors, warnings and host text go: (stream, payload) in order
        self.streams: list[tuple[str, Any]] = []
        self.last_ok = True

    # ---- streams -------------------------------------------------------------------------------------
    def emit(self, stream: str, payload: Any) -> None:
        for streams, sink in reversed(self._merges):
            if stream in streams:
                sink.append(WarningRecord(payload) if stream == "warning" else payload)
                return
        if stream == "error":
            self.last_ok = False
        self.streams.append((stream, payload))

    # ---- statements ----------------------------------------------------------------------------------
    def run_top(self, on_output: Callable[[list[Any]], None]) -> None:
        """Each top-level statement's output goes to ``on_output`` (Out-Default) when it ends."""
        for node in self._statements(self.parsed.tree.root_node):
            out: list[Any] = []
            try:
                self.statement(node, out)
            finally:
                on_output(out)

    def _statements(self, node: Node) -> list[Node]:
        found: list[Node] = []
        for child in node.named_children:
            if child.type in ("statement_list", "script_block_body"):
                found += self._statements(child)
            elif child.type not in ("comment", "empty_statement"):
                found.append(child)
        return found

    def block(self, node: Node | None, out: list[Any]) -> None:
        if node is None:
            return
        for statement in self._statements(node):
            self.statement(statement, out)

    def statement(self, node: Node, out: list[Any]) -> None:
        try:
            self.last_ok = True
            self._statement(node, out)
        except ScriptHalt:
            raise
        except PSError as error:
            self._locate(error.record, node)
            self.last_ok = False
            if self._try_depth or self.preference("ErrorActionPreference") == "Stop":
                raise ScriptHalt(error.record) from error
            self.emit("error", error.record)

    def _statement(self, node: Node, out: list[Any]) -> None:
        kind = node.type
        if kind == "pipeline":
            out.extend(self.pipeline(node))
        elif kind == "if_statement":
            self._if(node, out)
        elif kind == "foreach_statement":
            variable = next(c for c in node.named_children if c.type == "variable")
            source = next(c for c in node.named_children if c.type == "pipeline")
            body = next(c for c in node.named_children if c.type == "statement_block")
            for item in as_list(self.value_of_pipeline(source)):
                self.assign_variable(variable, item)
                self.block(body.child_by_field_name("statement_list"), out)
        elif kind == "try_statement":
            self._try(node, out)
        elif kind == "flow_control_statement":
            value = node.named_children[0] if node.named_children else None
            raise ScriptExit(to_int(self.value_of_pipeline(value)) if value is not None else 0)
        else:
            raise self.not_supported(node, f"The statement '{kind}'")

    def _if(self, node: Node, out: list[Any]) -> None:
        clauses: list[tuple[Node | None, Node]] = []
        condition = node.child_by_field_name("condition")
        body = next(c for c in node.named_children if c.type == "statement_block")
        clauses.append((condition, body))
        for child in node.named_children:
            if child.type == "elseif_clauses":
                for clause in child.named_children:
                    clauses.append(
                        (
                            clause.child_by_field_name("condition"),
                            next(c for c in clause.named_children if c.type == "statement_block"),
                        )
                    )
            elif child.type == "else_clause":
                clauses.append((None, next(c for c in child.named_children if c.type == "statement_block")))
        for test, block in clauses:
            if test is None or to_bool(self.value_of_pipeline(test)):
                self.block(block.child_by_field_name("statement_list"), out)
                return

    def _try(self, node: Node, out: list[Any]) -> None:
        body = next(c for c in node.named_children if c.type == "statement_block")
        catches = next((c for c in node.named_children if c.type == "catch_clauses"), None)
        self._try_depth += 1
        try:
            self.block(body.child_by_field_name("statement_list"), out)
        except PSError as error:
            self._try_depth -= 1
            if catches is None:
                raise
            handler = next(c for c in catches.named_children[0].named_children if c.type == "statement_block")
            saved = self.session.get_variable("_")
            self.session.set_variable("_", error.record)
            self.session.set_variable("PSItem", error.record)
            try:
                self.block(handler.child_by_field_name("statement_list"), out)
            finally:
                self.session.set_variable("_", saved)
                self.session.set_variable("PSItem", saved)
            return
        self._try_depth -= 1

    # ---- pipelines ----------------------------------------------------------------------------------
    def pipeline(self, node: Node) -> list[Any]:
        """A pipeline's output objects (an assignment writes nothing)."""
        child = node.named_children[0]
        if child.type == "assignment_expression":
            self._assignment(child)
            return []
        return self.chain(child)

    def chain(self, node: Node) -> list[Any]:
        elements = [c for c in node.named_children if c.type != "comment"]
        items: list[Any] | None = None
        for element in elements:
            if element.type == "command":
                items = self.command(element, items)
            elif items is None:
                value = self.value(element)
                items = [None] if value is None else as_list(value)  # `$null | x` sends one $null
            else:
                raise self.not_supported(element, "An expression after '|'")
        return items or []

    def value_of_pipeline(self, node: Node) -> Any:
        """The value of a pipeline used as an expression: an expression keeps its value, commands collect."""
        if (
            node.type == "pipeline"
            and node.named_children
            and node.named_children[0].type == "assignment_expression"
        ):
            self._assignment(node.named_children[0])
            return None
        chain = node.named_children[0] if node.type == "pipeline" else node
        elements = [c for c in chain.named_children if c.type != "comment"]
        if len(elements) == 1 and elements[0].type != "command":
            return self.value(elements[0])
        return collect(self.chain(chain))

    def _assignment(self, node: Node) -> None:
        left = node.named_children[0]
        value_node = node.child_by_field_name("value")
        assert value_node is not None
        value = self.value_of_pipeline(value_node.named_children[0])
        target = left.named_children[0]
        while target.type == "unary_expression":
            target = target.named_children[0]
        if (
            target.type == "expression_with_unary_operator"
            and target.named_children[0].type == "cast_expression"
        ):
            cast = target.named_children[0]
            value = self.cast(cast, cast.named_children[0], value)
            target = cast.named_children[1]
            while target.type == "unary_expression":
                target = target.named_children[0]
        if target.type == "variable":
            self.assign_variable(target, value)
        elif target.type == "member_access":
            self._assign_member(target, value)
        else:
            raise self.not_supported(target, "Assigning to this expression")

    def _assign_member(self, node: Node, value: Any) -> None:
        owner, member = node.named_children[0], node.named_children[-1]
        name = self.parsed.text(member)
        if owner.type == "type_literal":
            self.session.output_encoding = value
            return
        obj = self.value(owner)
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

    def assign_variable(self, node: Node, value: Any) -> None:
        name = variable_name(self.parsed.text(node))
        if name.lower().startswith("env:"):
            self.session.set_env(name[4:], to_string(value))
        elif name.lower() in ("true", "false", "null", "_", "psitem"):
            raise PSError(
                ErrorRecord(
                    message=f"Cannot overwrite variable {name} because it is read-only or constant.",
                    fully_qualified_error_id="VariableNotWritable",
                    category="WriteError",
                    exception_type="System.Management.Automation.SessionStateUnauthorizedAccessException",
                )
            )
        else:
            self.session.set_variable(name, value)

    def preference(self, name: str) -> str:
        return to_string(self.session.get_variable(name, "Continue")) or "Continue"

    # ---- commands -----------------------------------------------------------------------------------
    def command(self, node: Node, pipeline_input: list[Any] | None) -> list[Any]:
        operator = next((c for c in node.children if c.type == "command_invocation_operator"), None)
        name_node = node.child_by_field_name("command_name")
        assert name_node is not None
        elements = node.child_by_field_name("command_elements")
        dot_sourced = operator is not None and self.parsed.text(operator) == "."
        if name_node.type == "command_name":
            target: Any = self.parsed.text(name_node)
        else:
            target = self._command_target(name_node)
        tokens, merges = self._arguments(elements)
        invocation = self.invocation(node)
        spec = self._find(target)
        if isinstance(spec, ScriptBlock):
            return self._with_merges(
                merges, lambda: spec.invoke(*[t.value for t in tokens if isinstance(t, Arg)])
            )
        bound = bind(spec, tokens, bool(pipeline_input))
        call = CommandCall(
            self,
            spec,
            error_action=bound.common.get("ErrorAction", self.preference("ErrorActionPreference")),
            warning_action=bound.common.get("WarningAction", self.preference("WarningPreference")),
            dot_sourced=dot_sourced,
            invocation=invocation,
        )

        def run() -> list[Any]:
            out: list[Any] = []
            for item in spec.func(call, bound.params, list(pipeline_input or [])):
                out.append(item)
            return out

        try:
            output = self._with_merges(merges, run)
        except ScriptHalt:
            raise
        except PSError as error:
            error.record.command = error.record.command or spec.name
            error.record.invocation = error.record.invocation or invocation
            raise
        return output

    def _with_merges(self, merges: set[str], run: Callable[[], Iterable[Any]]) -> list[Any]:
        if not merges:
            return list(run())
        sink: list[Any] = []
        self._merges.append((merges, sink))
        try:
            for item in run():
                sink.append(item)
        finally:
            self._merges.pop()
        return sink

    def _command_target(self, node: Node) -> Any:
        inner = node.named_children[0]
        if inner.type == "path_command_name":
            parts = inner.named_children
            if len(parts) == 1 and parts[0].type == "variable":
                return self.value(parts[0])
            return self.parsed.text(inner)
        return self.value(inner)

    def _find(self, target: Any) -> CmdletSpec | ScriptBlock:
        if isinstance(target, ScriptBlock):
            return target
        name = to_string(target)
        spec = self.session.command(name) or self.registry.command(name)
        if spec is not None and spec.requires_ems and not self.session.ems_loaded:
            spec = None
        if spec is None:
            spec = self.registry.script(name)
        if spec is None:
            raise command_not_found(name)
        return spec

    def _arguments(self, node: Node | None) -> tuple[list[Param | Arg], set[str]]:
        tokens: list[Param | Arg] = []
        merges: set[str] = set()
        if node is None:
            return tokens, merges
        pending: str | None = None
        for child in node.named_children:
            kind = child.type
            if kind == "command_argument_sep" and self.parsed.text(child).strip() == ":":
                last = tokens.pop() if tokens and isinstance(tokens[-1], Param) else None
                if last is None:
                    raise self.not_supported(child, "A ':' not after a parameter name")
                pending = last.name  # -Name:value (tree-sitter-pwsh makes the ':' a separator)
                continue
            if kind in ("command_argument_sep", "comment"):
                continue
            if kind == "redirection":
                merges |= _MERGES[self.parsed.text(child).replace(" ", "")]
                continue
            if kind == "command_parameter":
                text = self.parsed.text(child)
                if text.endswith(":"):
                    pending = text[1:-1]
                else:
                    tokens.append(Param(text[1:]))
                continue
            value = self._argument_value(child)
            if pending is not None:
                tokens.append(Param(pending, value))
                pending = None
            else:
                tokens.append(Arg(value))
        if pending is not None:
            tokens.append(Param(pending))
        return tokens, merges

    def _argument_value(self, node: Node) -> Any:
        if node.type == "generic_token":
            return self.parsed.text(node)
        if node.type == "bareword_argument_list":
            return [self._argument_value(c) for c in node.named_children]
        return self.value(node)

    # ---- expressions --------------------------------------------------------------------------------
    def value(self, node: Node) -> Any:
        handler = getattr(self, "_v_" + node.type, None)
        if handler is None:
            raise self.not_supported(node, f"The expression '{node.type}'")
        try:
            return handler(node)
        except PSError as error:
            self._locate(error.record, node)
            raise

    def _v_unary_expression(self, node: Node) -> Any:
        return self.value(node.named_children[0])

    def _v_argument_expression(self, node: Node) -> Any:
        return self.value(node.named_children[0])

    def _v_variable(self, node: Node) -> Any:
        name = variable_name(self.parsed.text(node))
        lowered = name.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
        if lowered == "null":
            return None
        if lowered.startswith("env:"):
            return self.session.get_env(name[4:])
        if lowered == "psitem":
            name = "_"
        return self.session.get_variable(name)

    def _v_string_literal(self, node: Node) -> Any:
        inner = node.named_children[0]
        text = self.parsed.text(inner)
        mapped = self.parsed.mapped[slice(*self.parsed.char_span(inner))]
        if inner.type == "verbatim_string_characters":
            return _unquote_single(text[1:-1], mapped[1:-1])
        if inner.type == "verbatim_here_string_characters":
            return _here_body(text)
        if inner.type in ("expandable_string_literal", "expandable_here_string_literal"):
            return self._expand(inner, text, mapped)
        raise self.not_supported(inner, "This string form")

    def _expand(self, node: Node, text: str, mapped: str) -> str:
        base = self.parsed.char_span(node)[0]
        here = node.type == "expandable_here_string_literal"
        start = text.index("\n") + 1 if here else 1
        end = text.rindex("\n") if here else len(text) - 1
        parts: list[str] = []
        position = start
        for child in node.named_children:
            child_start, child_end = (offset - base for offset in self.parsed.char_span(child))
            parts.append(_unescape(text[position:child_start], mapped[position:child_start], here))
            if child.type == "sub_expression":
                out: list[Any] = []
                self.block(child.child_by_field_name("statements"), out)
                parts.append(to_string(collect(out)))
            elif child.type == "variable":
                parts.append(to_string(self.value(child)))
            position = child_end
        parts.append(_unescape(text[position:end], mapped[position:end], here))
        return "".join(parts)

    def _v_integer_literal(self, node: Node) -> Any:
        text = self.parsed.text(node)
        try:
            return int(text, 16) if text.lower().startswith("0x") else int(text)
        except ValueError:
            raise self.not_supported(node, f"The number literal '{text}'") from None

    def _v_real_literal(self, node: Node) -> Any:
        try:
            return float(self.parsed.text(node))
        except ValueError:
            raise self.not_supported(node, f"The number literal '{self.parsed.text(node)}'") from None

    def _v_array_expression(self, node: Node) -> Any:
        out: list[Any] = []
        self.block(node.child_by_field_name("statements"), out)
        return out

    def _v_sub_expression(self, node: Node) -> Any:
        out: list[Any] = []
        self.block(node.child_by_field_name("statements"), out)
        return collect(out)

    def _v_parenthesized_expression(self, node: Node) -> Any:
        return self.value_of_pipeline(node.named_children[0])

    def _v_array_literal_expression(self, node: Node) -> Any:
        return [self.value(child) for child in node.named_children]

    def _v_hash_literal_expression(self, node: Node) -> Any:
        table = Hashtable()
        body = next((c for c in node.named_children if c.type == "hash_literal_body"), None)
        for entry in body.named_children if body is not None else []:
            key_node = entry.named_children[0]
            key_inner = key_node.named_children[0]
            key = self.parsed.text(key_inner) if key_inner.type == "simple_name" else self.value(key_inner)
            value_node = entry.named_children[1] if len(entry.named_children) > 1 else None
            table[key] = self.value_of_pipeline(value_node) if value_node is not None else None
        return table

    def _v_script_block_expression(self, node: Node) -> Any:
        block = node.named_children[0] if node.named_children else None
        text = self.parsed.text(node)[1:-1]

        def invoke(*args: Any) -> list[Any]:
            return self.invoke_block(block, args[0] if args else None)

        return ScriptBlock(text, invoke)

    def invoke_block(self, block: Node | None, item: Any) -> list[Any]:
        """Run a script block's body with ``$_`` bound to ``item`` (restored afterwards)."""
        saved = self.session.get_variable("_")
        self.session.set_variable("_", item)
        out: list[Any] = []
        try:
            body = block.child_by_field_name("script_block_body") if block is not None else None
            self.block(body, out)
        finally:
            self.session.set_variable("_", saved)
        return out

    def _v_expression_with_unary_operator(self, node: Node) -> Any:
        first = node.children[0]
        if first.type == "cast_expression":
            return self.value(first)
        operand = self.value(node.named_children[-1])
        operator = first.type.lower()
        if operator in ("-not", "!"):
            return not to_bool(operand)
        if operator == "-":
            return -to_number(operand)
        raise self.not_supported(node, f"The unary operator '{first.type}'")

    def _v_cast_expression(self, node: Node) -> Any:
        type_literal, operand = node.named_children[0], node.named_children[1]
        return self.cast(node, type_literal, self.value(operand))

    def cast(self, node: Node, type_literal: Node, value: Any) -> Any:
        kind = CAST_TYPES.get(type_key(self.parsed, type_literal))
        if kind == "string":
            return to_string(value)
        if kind == "int":
            return to_int(value)
        if kind == "bool":
            return to_bool(value)
        if kind == "datetime":
            return to_datetime(value, self.local)
        if kind == "string[]":
            return [to_string(item) for item in as_list(value)] if value is not None else None
        if kind == "ordered":
            if not isinstance(value, Hashtable):
                raise self.not_supported(node, "[ordered] on anything but a hash literal")
            value.ordered = True
            return value
        if kind == "pscustomobject":
            if isinstance(value, Hashtable):
                return PSObject(dict(value.items()))
            return value
        raise self.not_supported(node, f"The type '{self.parsed.text(type_literal)}'")

    def _v_comparison_expression(self, node: Node) -> Any:
        left, operator, right = node.named_children[0], node.named_children[1], node.named_children[2]
        op = self.parsed.text(operator).lower()
        lhs, rhs = self.value(left), self.value(right)
        if op in ("-match", "-notmatch"):
            return self._match(op, lhs, rhs)
        return compare(op, lhs, rhs, self.local)

    _v_comparison_argument_expression = _v_comparison_expression

    def _match(self, op: str, left: Any, right: Any) -> Any:
        try:
            pattern = re.compile(re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", to_string(right)), re.I)
        except re.error as error:
            raise PSError(
                ErrorRecord(
                    message=f"Invalid regular expression pattern: {to_string(right)}.",
                    fully_qualified_error_id="InvalidRegularExpression",
                    category="InvalidOperation",
                    exception_type="System.Management.Automation.RuntimeException",
                )
            ) from error
        if isinstance(left, list):
            return [
                item for item in left if (pattern.search(to_string(item)) is not None) == (op == "-match")
            ]
        found = pattern.search(to_string(left))
        if found is not None:
            groups = Hashtable({0: found.group(0)})
            for index, group in enumerate(found.groups(), start=1):
                if group is not None:
                    groups[index] = group
            for group_name, group in found.groupdict().items():
                if group is not None:
                    groups[group_name] = group
            self.session.set_variable("Matches", groups)
        return (found is not None) == (op == "-match")

    def _v_logical_expression(self, node: Node) -> Any:
        children = node.children
        result = to_bool(self.value(children[0]))
        index = 1
        while index + 1 < len(children):
            operator = children[index].type.lower()
            if (operator == "-and" and result) or (operator == "-or" and not result):
                result = to_bool(self.value(children[index + 1]))
            index += 2
        return result

    _v_logical_argument_expression = _v_logical_expression

    def _v_additive_expression(self, node: Node) -> Any:
        children = node.named_children
        result = self.value(children[0])
        for child in children[1:]:
            result = add(result, self.value(child))
        return result

    _v_additive_argument_expression = _v_additive_expression

    def _v_member_access(self, node: Node) -> Any:
        owner, member = node.named_children[0], node.named_children[-1]
        name = self.parsed.text(member)
        if owner.type == "type_literal":
            if name.lower() == "utf8":
                return Encoding("utf-8", bom=True)
            return self.session.output_encoding
        return methods.member(self.value(owner), name)

    def _v_invocation_expression(self, node: Node) -> Any:
        owner = node.named_children[0]
        member = next(c for c in node.named_children if c.type == "member_name")
        arguments = next((c for c in node.named_children if c.type == "argument_list"), None)
        values: list[Any] = []
        if arguments is not None:
            for child in arguments.named_children:
                values += [
                    self.value(arg) for arg in child.named_children if arg.type == "argument_expression"
                ]
        return methods.call(self.value(owner), self.parsed.text(member), values, self.local)

    def _v_element_access(self, node: Node) -> Any:
        owner, index = node.named_children[0], node.named_children[1]
        return methods.index(self.value(owner), self.value(index))

    # ---- errors -------------------------------------------------------------------------------------
    def invocation(self, node: Node) -> str:
        """``At line:N char:M`` plus the source line and a ``~`` underline, as PowerShell prints them."""
        line_no = node.start_point[0] + 1
        start, end = self.parsed.char_span(node)
        line_start = self.parsed.original.rfind("\n", 0, start) + 1
        line_end = self.parsed.original.find("\n", start)
        line_end = len(self.parsed.original) if line_end == -1 else line_end
        source = self.parsed.original[line_start:line_end].rstrip("\r")
        column = start - line_start + 1
        width = max(1, min(end, line_end) - start)
        return f"At line:{line_no} char:{column}\r\n+ {source}\r\n+ {' ' * (column - 1)}{'~' * width}"

    def _locate(self, record: ErrorRecord, node: Node) -> None:
        if not record.invocation:
            record.invocation = self.invocation(node)

    def not_supported(self, node: Node, what: str) -> PSError:
        return PSError(
            ErrorRecord(
                message=f"{what} is not supported by the lab's PowerShell (outside POWERSHELL-SUBSET.md).",
                fully_qualified_error_id="NotSupportedInLab",
                category="NotImplemented",
                exception_type="System.NotSupportedException",
                invocation=self.invocation(node),
            )
        )


def collect(items: list[Any]) -> Any:
    """A pipeline's result as a value: nothing is $null, one object is itself, more are an array."""
    if not items:
        return None
    return items[0] if len(items) == 1 else items


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
