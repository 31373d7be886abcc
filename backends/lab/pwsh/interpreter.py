"""The runtime of a compiled script (``compiler.py``): streams, commands, sessions and errors.

Error semantics follow PowerShell: a command's non-terminating error honours -ErrorAction /
$ErrorActionPreference; a statement-terminating error (unknown command, binding error, a cmdlet's
terminating error) ends its statement and the script goes on, unless inside ``try`` or under
``$ErrorActionPreference = 'Stop'``, where it becomes script-terminating (``ScriptHalt``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from emconsole.backends.lab.pwsh.api import CmdletSpec, ErrorRecord, PSError, ScriptBlock
from emconsole.backends.lab.pwsh.binder import Arg
from emconsole.backends.lab.pwsh.commands import FOREACH_OBJECT, WHERE_OBJECT
from emconsole.backends.lab.pwsh.records import InformationRecord, WarningRecord
from emconsole.backends.lab.pwsh.session import CommandRegistry, Session
from emconsole.backends.lab.pwsh.values import Hashtable, to_bool, to_string

if TYPE_CHECKING:
    from emconsole.backends.lab.pwsh.compiler import Block, CommandPlan, Program
    from emconsole.backends.lab.pwsh.positions import Site, Source


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

    __slots__ = ("_interpreter", "_site", "dot_sourced", "error_action", "spec", "warning_action")

    def __init__(
        self,
        interpreter: Interpreter,
        spec: CmdletSpec,
        error_action: str,
        warning_action: str,
        dot_sourced: bool,
        site: Site,
    ) -> None:
        self._interpreter = interpreter
        self.spec = spec
        self.error_action = error_action
        self.warning_action = warning_action
        #: True when invoked with ``. path``: a script may then define session commands
        self.dot_sourced = dot_sourced
        self._site = site

    @property
    def _invocation(self) -> str:
        """Where the command is written (worded only when an error needs it)."""
        return self._interpreter.source.invocation(self._site)

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
    """Runs one compiled script against one server's registry, in one session."""

    def __init__(
        self,
        program: Program,
        *,
        source: Source,
        literals: tuple[str, ...],
        server: Any,
        registry: CommandRegistry,
        session: Session,
        now: Callable[[], datetime],
        local_zone: timezone,
    ) -> None:
        self.program = program
        #: the text being run (positions for errors) and its single-quoted strings' values
        self.source = source
        self.literals = literals
        self.server = server
        self.registry = registry
        self.session = session
        #: the session's variables (lower-case name -> value): compiled scripts read them here
        self.variables = session.variables
        self.now = now
        self.local = local_zone
        self._merges: list[tuple[frozenset[str], list[Any]]] = []
        #: how many ``try`` blocks are running: inside one, a statement's error halts up to the catch
        self.try_depth = 0
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
        for statement in self.program.statements:
            out: list[Any] = []
            try:
                statement(self, out)
            finally:
                on_output(out)

    def statement_failed(self, error: PSError, site: Site) -> None:
        """A statement-terminating error: the script goes on, unless in ``try`` or under ``Stop``."""
        self.source.locate(error.record, site)
        self.last_ok = False
        if self.try_depth or self.preference("ErrorActionPreference") == "Stop":
            raise ScriptHalt(error.record) from error
        self.emit("error", error.record)

    def invoke_block(self, body: Block, item: Any) -> list[Any]:
        """Run a script block's body with ``$_`` bound to ``item`` (restored afterwards)."""
        variables = self.variables
        saved = variables.get("_")
        variables["_"] = item
        out: list[Any] = []
        try:
            for statement in body:
                statement(self, out)
        finally:
            variables["_"] = saved
        return out

    def preference(self, name: str) -> str:
        return to_string(self.session.get_variable(name, "Continue")) or "Continue"

    # ---- commands -----------------------------------------------------------------------------------
    def run_command(self, plan: CommandPlan, pipeline_input: list[Any] | None) -> list[Any]:
        key = plan.key
        block = plan.block
        if key is not None:  # a name in the text: found in the session's or the registry's table
            # a script block written in place, the only argument, is made (below) only if needed:
            # making it has no effect, so the command may be found first
            values = plan.values(self) if block is None else ()
            session = self.session
            found = session.commands.get(key) or self.registry.commands.get(key)
            spec = (
                found
                if found is not None and (not found.requires_ems or session.ems_loaded)
                else self._named(key if plan.name is None else plan.name, key)
            )
            if block is not None:
                if not plan.merges and (spec is WHERE_OBJECT or spec is FOREACH_OBJECT):
                    return self._in_place(plan, spec, block, pipeline_input) if pipeline_input else []
                values = plan.values(self)
        else:
            target = plan.target(self) if plan.target is not None else plan.name
            values = plan.values(self)
            meant = self._find(target)
            if isinstance(meant, ScriptBlock):
                tokens = plan.tokens(values)
                return self._with_merges(
                    plan.merges, lambda: meant.invoke(*[t.value for t in tokens if isinstance(t, Arg)])
                )
            spec = meant
        merges = plan.merges
        has_input = bool(pipeline_input)
        last = plan.last
        binder = last[2] if last[0] is spec and last[1] is has_input else plan.binder(spec, has_input)
        params, common = binder(values)
        error_action = self._action(common, "ErrorAction", "erroractionpreference")
        warning_action = self._action(common, "WarningAction", "warningpreference")
        call = CommandCall(self, spec, error_action, warning_action, plan.dot_sourced, plan.site)
        items = list(pipeline_input) if pipeline_input else []
        try:
            if merges:
                return self._with_merges(merges, lambda: list(spec.func(call, params, items)))
            return list(spec.func(call, params, items))
        except ScriptHalt:
            raise
        except PSError as error:
            self._attribute(error, spec, plan)
            raise

    def _in_place(
        self, plan: CommandPlan, spec: CmdletSpec, body: Block, pipeline_input: list[Any]
    ) -> list[Any]:
        """``Where-Object { ... }`` / ``ForEach-Object { ... }`` named in the text: what
        ``where_object`` and ``foreach_object`` do with that block, without making the ScriptBlock,
        binding it (it always binds to the first parameter) or the command's context (neither reads
        it). Half the commands of a status script are these, most of them with no input: then
        ``run_command`` gives nothing without calling this."""
        out: list[Any] = []
        invoke = self.invoke_block
        try:
            if spec is WHERE_OBJECT:
                for item in pipeline_input:
                    result = invoke(body, item)
                    if to_bool(result[0] if len(result) == 1 else result):
                        out.append(item)
            else:
                for item in pipeline_input:
                    out.extend(invoke(body, item))
        except ScriptHalt:
            raise
        except PSError as error:
            self._attribute(error, spec, plan)
            raise
        return out

    def _attribute(self, error: PSError, spec: CmdletSpec, plan: CommandPlan) -> None:
        """A command's error names the command and where it is written, unless it already does."""
        error.record.command = error.record.command or spec.name
        error.record.invocation = error.record.invocation or self.source.invocation(plan.site)

    def _with_merges(self, merges: frozenset[str], run: Callable[[], list[Any]]) -> list[Any]:
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

    def _action(self, common: dict[str, Any], parameter: str, preference_variable: str) -> Any:
        """A command's -ErrorAction/-WarningAction, else the preference variable's value (as text)."""
        if parameter in common:
            return common[parameter]
        preference = self.variables.get(preference_variable)
        if preference.__class__ is str and preference:
            return preference
        return to_string(preference) or "Continue"

    def _find(self, target: Any) -> CmdletSpec | ScriptBlock:
        """The command a computed name (or script block) means now."""
        if isinstance(target, ScriptBlock):
            return target
        name = to_string(target)
        return self._named(name, name.lower())

    def _named(self, name: str, key: str) -> CmdletSpec:
        """The command ``name`` (``key``: lower-cased) means now: the session's, the registry's (an
        Exchange cmdlet only once the shell is loaded), else a script file; or CommandNotFound."""
        spec = self.session.commands.get(key) or self.registry.commands.get(key)
        if spec is not None and spec.requires_ems and not self.session.ems_loaded:
            spec = None
        if spec is None:
            spec = self.registry.script(name)
        if spec is None:
            raise command_not_found(name)
        return spec

    # ---- operators with side effects -----------------------------------------------------------------
    def match(self, op: str, left: Any, right: Any) -> Any:
        """``-match`` / ``-notmatch``; a scalar match sets ``$Matches``."""
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
