"""The fleet engine: refresh, plan, execute and verify, over a bounded thread pool it owns.

Why it is shaped this way (DESIGN.md data flow 5-7):
- pywinrm blocks, so every WinRM call runs on ``concurrency`` worker threads owned here; the UI
  and the CLI only ever await. A hung server holds one worker until its deadline, no more.
- ``refresh`` streams one ``ServerView`` per server as each completes. A second ``refresh`` call
  **waits** for the one in flight to finish before starting (never overlaps, never drops).
- One asyncio lock per server: two changes never interleave on one server.
- A change is ``plan`` (exact PowerShell per server, nothing sent) then ``execute``: audit intents
  (the whole plan in one fsync'd write, so a crash mid-run leaves every planned server on record)
  -> run -> verify by reading back -> audit result. Read-only mode is enforced here.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from typing import Any, TypeVar, cast

from emconsole.audit import NOT_SENT_OUTCOME, UNKNOWN_OUTCOME, AuditLog, Change
from emconsole.backends.base import Backend, BackendFailure, RawResult
from emconsole.commandlog import CommandLog, CommandLogEntry
from emconsole.config import Config, ServerConfig
from emconsole.knowledge import Catalogue, CatalogueEntry, Knowledge
from emconsole.models import (
    ActionKind,
    ActionOutcome,
    ActionRequest,
    ActionScope,
    ArtifactKind,
    FailureKind,
    OutcomeStatus,
    ServerFailure,
    ServerState,
    base_id,
)
from emconsole.remote import documents, results, scripts, validate
from emconsole.remote.documents import OutputNotUnderstood
from emconsole.remote.scripts import RemoteScript

#: Failures after which an organisation change moves on to the next server.
_TRY_NEXT = {FailureKind.UNREACHABLE, FailureKind.TIMEOUT, FailureKind.AUTH, FailureKind.TLS,
             FailureKind.QUOTA}
#: Changes that are one property write on the server: a read-back without them means not made.
_SINGLE_WRITES = {ActionKind.BLOCK, ActionKind.UNBLOCK, ActionKind.ENABLE, ActionKind.DISABLE}
#: Script codes that are an action's outcome (reported as such), not a failure to reach the server.
_REPORTED_BY_OUTCOME = {"changed_since_read", "backup_exists", "backup_not_found"}


T = TypeVar("T")
StateReader = Callable[[documents.StatusDocument, ServerConfig], ServerState]


class ReadOnlyError(PermissionError):
    """A change was asked for while the engine is read-only."""


class PlanError(ValueError):
    """The request cannot be planned (unknown server, nothing read yet, invalid input)."""


@dataclass(frozen=True)
class ServerView:
    """An immutable snapshot of what the console knows about one server."""

    name: str
    config: ServerConfig
    state: ServerState | None = None
    failure: ServerFailure | None = None
    refreshed_at: datetime | None = None
    loading: bool = False
    busy: str | None = None
    #: IDs a reapply asked for, shown "pending next EM check" until a refresh sees them applied.
    pending_check: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlannedStep:
    """One script for one server, exactly as it will be sent."""

    server: str
    script_text: str
    summary: str
    script: RemoteScript = field(repr=False, compare=False)
    mitigation_ids: tuple[str, ...] = ()
    backup_id: str | None = None
    #: For an organisation change: servers to try next, in order, if this one is unreachable.
    fallbacks: tuple[str, ...] = ()


@dataclass(frozen=True)
class ActionPlan:
    """What ``execute`` will do. ``skipped``: servers left out, with the reason."""

    request: ActionRequest
    steps: tuple[PlannedStep, ...]
    skipped: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class OcsResult:
    """Test-MitigationServiceConnectivity.ps1 on one server: ok True/False, None when it did not run."""

    server: str
    ok: bool | None
    message: str
    failure: ServerFailure | None = None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:300]


def _document(script: RemoteScript, raw: RawResult) -> documents.Envelope:
    """The script's document, or the ``BackendFailure`` its output or its own error code makes."""
    try:
        doc = documents.parse_document(raw.stdout, script.operation)
    except OutputNotUnderstood as exc:
        raise BackendFailure(ServerFailure(
            kind=FailureKind.OUTPUT_NOT_UNDERSTOOD,
            message=f"output not understood: {exc.reason} (the raw output is in the command log)",
            detail=_first_line(raw.stderr), raw_output=raw.stdout[-20000:]), may_have_run=True) from None
    failure = results.failure(doc)
    if failure is not None and doc.code not in _REPORTED_BY_OUTCOME:
        raise BackendFailure(failure.model_copy(update={"raw_output": raw.stdout[-20000:]}))
    return doc


def _services_and_pools(entries: Iterable[CatalogueEntry]) -> tuple[list[str], list[str]]:
    """The services and app pools these mitigations change (what a status or delete script reads)."""
    services, pools = [], []
    for entry in entries:
        for art in entry.artifacts:
            if art.kind is ArtifactKind.SERVICE:
                services.append(art.name)
            elif art.kind is ArtifactKind.APP_POOL:
                pools.append(art.name)
    return services, pools


async def _as_completed(jobs: list[Coroutine[Any, Any, T]]) -> AsyncGenerator[T, None]:
    """Run the jobs concurrently and yield each result as soon as it is ready.

    Closing it early (use it under ``aclosing``, so that happens at once) cancels the rest and waits
    for them to unwind: a cancelled read stops at its next poll, a cancelled change still writes its
    audit result.
    """
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        for next_done in asyncio.as_completed(tasks):
            yield await next_done
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class FleetEngine:
    """The asyncio API over the blocking backend. See the module docstring for the guarantees."""

    def __init__(self, config: Config, backend: Backend, *, audit: AuditLog, command_log: CommandLog,
                 read_only: bool | None = None, knowledge: Knowledge | None = None,
                 state_reader: StateReader | None = None) -> None:
        self.config = config
        self.backend = backend
        self.audit = audit
        self.command_log = command_log
        self.read_only: bool = config.read_only if read_only is None else read_only
        self.knowledge = knowledge or config.knowledge()
        self._state_reader = state_reader or self._read_with_catalogue
        self._pool = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="emconsole-winrm")
        self._views: dict[str, ServerView] = {s.name: ServerView(s.name, s) for s in config.servers}
        self._refresh_lock: asyncio.Lock | None = None
        self._change_locks: dict[str, asyncio.Lock] = {}
        self._listeners: list[Callable[[ServerView], None]] = []
        #: Per server: the status script and what it was built from (its config, the catalogue).
        self._status_scripts: dict[str, tuple[ServerConfig, Catalogue, RemoteScript]] = {}
        self._closed = False

    # ------------------------------------------------------------------ views
    def views(self) -> list[ServerView]:
        """Every server, in config order."""
        return list(self._views.values())

    def view(self, name: str) -> ServerView:
        return self._views[self._canonical(name)]

    def subscribe(self, callback: Callable[[ServerView], None]) -> Callable[[], None]:
        """Call ``callback`` on the event loop whenever a view changes; returns an unsubscribe."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def _canonical(self, name: str) -> str:
        server = self.config.server(name)
        if server is None:
            raise KeyError(f"no server called {name!r} in the configuration")
        return server.name

    def _set(self, name: str, **changes: Any) -> ServerView:
        view = replace(self._views[name], **changes)
        self._views[name] = view
        for listener in list(self._listeners):
            listener(view)
        return view

    def _select(self, names: Iterable[str] | None) -> list[str]:
        if names is None:
            return list(self._views)
        return list(dict.fromkeys(self._canonical(n) for n in names))

    # ------------------------------------------------------------------ one call
    async def _run(self, server: ServerConfig, script: RemoteScript, then: Callable[[RawResult], T]) -> T:
        """Run a script on the pool, then ``then`` on its result on the same pool thread (parsing
        and making the model stay off the event loop); cancelling the awaiting task stops the worker
        at its next poll. What ``then`` raises is raised here, once the command log has the call."""
        if self._closed:
            raise RuntimeError("the engine is closed")
        cancel = threading.Event()
        started = _now()

        def call() -> tuple[RawResult, T | None, Exception | None]:
            result = self.backend.run(server, script, self.config.call_timeout, cancel)
            try:
                return result, then(result), None
            except Exception as exc:  # raised on the event loop, once the command log has the call
                return result, None, exc

        future = asyncio.get_running_loop().run_in_executor(self._pool, call)
        try:
            result, value, error = await asyncio.shield(future)
        except asyncio.CancelledError:
            cancel.set()
            raise
        except BackendFailure as exc:
            self.command_log.add(CommandLogEntry(
                target=server.name, started=started, duration=exc.duration_s, round_trips=exc.round_trips,
                exit_code=exc.exit_code, bytes=len(exc.stdout) + len(exc.stderr),
                first_error_line=_first_line(exc.stderr) or exc.failure.message, script=script.text,
                raw_output=exc.stdout + (f"\n--- stderr ---\n{exc.stderr}" if exc.stderr else ""),
                failure_kind=exc.failure.kind.value))
            raise
        self.command_log.add(CommandLogEntry(
            target=server.name, started=started, duration=result.duration_s, round_trips=result.round_trips,
            exit_code=result.exit_code, bytes=result.bytes_sent + result.bytes_received,
            first_error_line=_first_line(result.stderr), script=script.text,
            raw_output=result.stdout + (f"\n--- stderr ---\n{result.stderr}" if result.stderr else "")))
        if error is not None:
            raise error
        return cast(T, value)

    async def _run_document(self, server: ServerConfig, script: RemoteScript) -> documents.Envelope:
        """Run and parse; a failure of any layer becomes ``BackendFailure`` with a ``ServerFailure``."""
        return await self._run(server, script, partial(_document, script))

    # ------------------------------------------------------------------ refresh
    def _read_with_catalogue(self, doc: documents.StatusDocument, server: ServerConfig) -> ServerState:
        """The default state reader: the catalogue in force tells whose services and app pools are whose."""
        return results.server_state(doc, server.name, self.knowledge.catalogue)

    def _status_script(self, server: ServerConfig) -> RemoteScript:
        """Built once per server and catalogue, not per refresh: on the event loop, building them
        took 90-103 ms of each refresh of 500 servers (thread time of this method)."""
        catalogue = self.knowledge.catalogue
        built = self._status_scripts.get(server.name)
        if built is not None and built[0] is server and built[1] is catalogue:
            return built[2]
        services, pools = _services_and_pools(catalogue.entries)
        script = scripts.build_status(server.name, server.ems.value, services, pools)
        self._status_scripts[server.name] = (server, catalogue, script)
        return script

    async def _read_state(self, name: str) -> ServerView:
        """One status script: on success the state replaces the last one; on failure it is kept."""
        server = self._views[name].config

        def read(raw: RawResult) -> ServerState:
            doc = _document(script, raw)
            assert isinstance(doc, documents.StatusDocument)
            return self._state_reader(doc, server)

        try:
            script = self._status_script(server)
            state = await self._run(server, script, read)
        except BackendFailure as exc:
            return self._set(name, failure=exc.failure, refreshed_at=_now(), loading=False)
        except (validate.InvalidInput, scripts.ScriptTooLong) as exc:
            return self._set(name, failure=ServerFailure(kind=FailureKind.INVALID_INPUT, message=str(exc)),
                             refreshed_at=_now(), loading=False)
        except (ValueError, TypeError) as exc:  # the document parsed but does not make a state
            return self._set(name, failure=ServerFailure(kind=FailureKind.OUTPUT_NOT_UNDERSTOOD,
                                                         message=f"output not understood: {exc}"[:400]),
                             refreshed_at=_now(), loading=False)
        pending = tuple(i for i in self._views[name].pending_check
                        if not any(base_id(a).casefold() == base_id(i).casefold() for a in state.applied))
        return self._set(name, state=state, failure=None, refreshed_at=_now(), loading=False,
                         pending_check=pending)

    async def refresh(self, names: Iterable[str] | None = None) -> AsyncIterator[ServerView]:
        """Read every (or the named) server; yields each ``ServerView`` as soon as it is read.

        Waits for a refresh already in flight to finish first. Leaving the loop early cancels the
        rest (their workers stop at the next poll; their views go back to not loading).
        """
        targets = self._select(names)
        if self._refresh_lock is None:
            self._refresh_lock = asyncio.Lock()
        # Only as many reads start as the pool can run: the others wait here, before building their
        # script, so a 500-server refresh does not spend ~0.2 ms x 500 on the event loop at once.
        slots = asyncio.Semaphore(self.config.concurrency)

        async def read(name: str) -> ServerView:
            async with slots:
                return await self._read_state(name)

        async with self._refresh_lock:
            for name in targets:
                self._set(name, loading=True)
            try:
                async with aclosing(_as_completed([read(name) for name in targets])) as views:
                    async for view in views:
                        yield view
            finally:
                for name in targets:
                    if self._views[name].loading:
                        self._set(name, loading=False)

    # ------------------------------------------------------------------ discovery (read-only)
    async def discover(self, seed: str) -> list[documents.DiscoveredServerDoc]:
        """Get-ExchangeServer on the (configured) seed server: every Exchange server of the organisation.

        Read-only, command log only; raises KeyError for a seed not in the config, BackendFailure
        when the seed cannot be read.
        """
        server = self._views[self._canonical(seed)].config
        doc = await self._run_document(server, scripts.build_discover(server.name, server.ems.value))
        assert isinstance(doc, documents.DiscoverDocument)
        return list(doc.result.servers) if doc.result else []

    # ------------------------------------------------------------------ OCS test (read-only)
    async def test_ocs(self, names: Iterable[str]) -> AsyncIterator[OcsResult]:
        """Test-MitigationServiceConnectivity.ps1 per server; allowed in read-only mode."""

        async def one(name: str) -> OcsResult:
            server = self._views[name].config
            try:
                script = scripts.build_test_ocs(server.name, server.ems.value)
                doc = await self._run_document(server, script)
            except BackendFailure as exc:
                return OcsResult(name, None, exc.failure.message, exc.failure)
            assert isinstance(doc, documents.OcsDocument)
            lines = doc.result.lines if doc.result else []
            verdict = doc.result.field("Result") if doc.result else ""
            message = (doc.result.field("Message") if doc.result else "") or " ".join(lines)[:300]
            ok = True if verdict.lower().startswith("success") else False if verdict else None
            return OcsResult(name, ok, message or verdict or "no result printed")

        async with aclosing(_as_completed([one(n) for n in self._select(names)])) as results:
            async for result in results:
                yield result

    # ------------------------------------------------------------------ plan
    def _refuse_if_read_only(self) -> None:
        if self.read_only:
            raise ReadOnlyError("read-only mode: changes to servers are refused (start without --read-only)")

    def plan(self, request: ActionRequest) -> ActionPlan:
        """The exact PowerShell per server; nothing is sent. Raises ReadOnlyError / PlanError."""
        self._refuse_if_read_only()
        if request.kind is ActionKind.TEST_OCS:
            raise PlanError("the OCS test is not a change: use test_ocs()")
        try:
            names = self._select(request.servers)
        except KeyError as exc:
            raise PlanError(str(exc.args[0])) from None
        try:
            if request.backup_id is not None:
                validate.backup_id(request.backup_id)
            if request.scope is ActionScope.ORG:
                return self._plan_org(request, names)
        except (validate.InvalidInput, scripts.ScriptTooLong) as exc:
            raise PlanError(str(exc)) from None
        steps: list[PlannedStep] = []
        skipped: list[tuple[str, str]] = []
        for name in names:
            try:
                step = self._plan_server(request, self._views[name])
            except (validate.InvalidInput, scripts.ScriptTooLong) as exc:
                # The request itself is valid (checked above and by ActionRequest): what no script may
                # carry came from this server's own lists. Skip it; it must not stop the others.
                step = f"what it reported cannot be sent back in a script: {exc}"
            if isinstance(step, str):
                skipped.append((name, step))
            else:
                steps.append(step)
        if not steps:
            raise PlanError("nothing to do: " + "; ".join(f"{n}: {why}" for n, why in skipped))
        return ActionPlan(request, tuple(steps), tuple(skipped))

    def _plan_org(self, request: ActionRequest, names: list[str]) -> ActionPlan:
        """Organisation changes run once, on the first reachable server (the others are fallbacks)."""
        reachable = [n for n in names if self._views[n].state is not None and self._views[n].failure is None]
        order = reachable + [n for n in names if n not in reachable]
        server = self._views[order[0]].config
        enabled = request.kind is ActionKind.ENABLE
        script = scripts.build_set_enabled(server.name, server.ems.value, "org", enabled)
        summary = f"{'enable' if enabled else 'disable'} EM for the whole organisation (run on {server.name})"
        step = PlannedStep(server.name, script.text, summary, script, fallbacks=tuple(order[1:]))
        return ActionPlan(request, (step,))

    def _block_ids(self, ids: Iterable[str], state: ServerState) -> list[str]:
        """Base ID, every full ID known (catalogue and this server's applied list), as given."""
        out: dict[str, str] = {}
        for mid in ids:
            base = base_id(mid).casefold()
            for i in (*self.knowledge.catalogue.block_ids(mid),
                      *(a for a in (*state.applied, *(m.id for m in state.mitigations))
                        if base_id(a).casefold() == base)):
                out.setdefault(i.casefold(), i)
        return list(out.values())

    def _plan_server(self, request: ActionRequest, view: ServerView) -> PlannedStep | str:
        """One server's step, or the reason it is skipped."""
        server, kind, ids = view.config, request.kind, request.mitigation_ids
        ems = server.ems.value
        label = ", ".join(ids)
        if kind is ActionKind.REAPPLY:
            script = scripts.build_reapply(server.name)
            return PlannedStep(server.name, script.text, f"restart MSExchangeMitigation on {server.name}",
                               script, ids)
        if kind is ActionKind.RESTORE:
            assert request.backup_id is not None
            script = scripts.build_restore(server.name, request.backup_id)
            summary = f"restore backup {request.backup_id} on {server.name}"
            return PlannedStep(server.name, script.text, summary, script, ids, request.backup_id)
        if kind in (ActionKind.ENABLE, ActionKind.DISABLE):
            enabled = kind is ActionKind.ENABLE
            script = scripts.build_set_enabled(server.name, ems, "server", enabled)
            return PlannedStep(server.name, script.text,
                               f"{'enable' if enabled else 'disable'} EM on {server.name}", script)
        state = view.state
        if state is None:
            return "its block list has not been read yet: refresh it first"
        if kind is ActionKind.BLOCK:
            block_ids = self._block_ids(ids, state)
            script = scripts.build_block(server.name, ems, block_ids, state.blocked)
            return PlannedStep(server.name, script.text, f"block {label} on {server.name} "
                               f"(writes {', '.join(block_ids)})", script, ids)
        if kind is ActionKind.UNBLOCK:
            bases = {base_id(i).casefold() for i in ids}
            remove = [b for b in state.blocked if base_id(b).casefold() in bases]
            if not remove:
                return f"{label} is not blocked there"
            script = scripts.build_unblock(server.name, ems, remove, state.blocked)
            return PlannedStep(server.name, script.text, f"unblock {label} on {server.name} "
                               f"(removes {', '.join(remove)})", script, ids)
        if kind is ActionKind.DELETE:
            entries = (self.knowledge.catalogue.get(mid) for mid in ids)
            services, pools = _services_and_pools(e for e in entries if e)
            backup = validate.new_backup_id()
            block_ids = self._block_ids(ids, state) if request.also_block else []
            script = scripts.build_delete(server.name, ems, ids, backup, services=services, app_pools=pools,
                                          block=request.also_block, block_ids=block_ids,
                                          expected=state.blocked)
            also = " and block it" if request.also_block else ""
            return PlannedStep(server.name, script.text, f"back up (as {backup}) and delete {label} on "
                               f"{server.name}{also}", script, ids, backup)
        raise PlanError(f"{kind.value} cannot be planned")

    # ------------------------------------------------------------------ execute
    async def execute(self, plan: ActionPlan) -> AsyncIterator[ActionOutcome]:
        """Record every step's intent (one write), then run each (run -> verify -> audit result); yields
        outcomes as they end."""
        self._refuse_if_read_only()
        changes = [self._change(plan.request, step) for step in plan.steps]
        intents = await self._record_intents(changes)
        steps = [self._execute_step(plan.request, step, intent)
                 for step, intent in zip(plan.steps, intents, strict=True)]
        async with aclosing(_as_completed(steps)) as outcomes:
            async for outcome in outcomes:
                yield outcome

    async def _record_intents(self, changes: list[Change]) -> list[str]:
        """The intents, on record before anything is sent. Cancelled meanwhile, the write still ends
        (it runs on in its thread): its intents are then closed as "not sent" at once, not left for
        the next start to list as "outcome unknown"."""
        write = asyncio.ensure_future(asyncio.to_thread(self.audit.intents, changes))
        try:
            return await asyncio.shield(write)
        except asyncio.CancelledError:
            ids = await asyncio.shield(write)
            await asyncio.shield(asyncio.to_thread(self._close_unsent, ids, changes))
            raise

    def _close_unsent(self, intents: list[str], changes: list[Change]) -> None:
        for intent, change in zip(intents, changes, strict=True):
            self._close_cancelled(intent, change.target, change.action, sent=False, duration_s=0.0)

    def _close_cancelled(self, intent: str, target: str, action: str, *, sent: bool,
                         duration_s: float) -> None:
        """A cancelled change's result: "unknown" once it may have been sent, else "not sent"."""
        self.audit.result(intent, outcome=UNKNOWN_OUTCOME if sent else NOT_SENT_OUTCOME,
                          duration_s=duration_s,
                          detail="cancelled while running" if sent else "cancelled before it was sent",
                          target=target, action=action)

    @staticmethod
    def _change(request: ActionRequest, step: PlannedStep) -> Change:
        details: dict[str, Any] = {"scope": request.scope.value, "summary": step.summary}
        if step.backup_id:
            details["backup_id"] = step.backup_id
        return Change(step.server, request.kind.value, step.mitigation_ids, step.script.sha256, details)

    def _lock(self, name: str) -> asyncio.Lock:
        return self._change_locks.setdefault(name, asyncio.Lock())

    async def _execute_step(self, request: ActionRequest, step: PlannedStep, intent: str) -> ActionOutcome:
        for name in (step.server, *step.fallbacks):
            if name == step.server:
                this = step
            else:
                this = self._replan(step, name)
                [intent] = await self._record_intents([self._change(request, this)])
            outcome = await self._execute_on(request, this, intent)
            if outcome.failure is None or outcome.failure.kind not in _TRY_NEXT or not step.fallbacks:
                return outcome
        return outcome

    def _replan(self, step: PlannedStep, name: str) -> PlannedStep:
        server = self._views[name].config
        enabled = "$Enabled = $true" in step.script_text
        script = scripts.build_set_enabled(server.name, server.ems.value, "org", enabled)
        return replace(step, server=name, script_text=script.text, script=script, fallbacks=())

    async def _execute_on(self, request: ActionRequest, step: PlannedStep, intent: str) -> ActionOutcome:
        """Run one recorded change and record its result, also when cancelled: "not sent" while it
        waited for an earlier change to that server, "unknown" once it may have been sent."""
        name = step.server
        server = self._views[name].config
        start = time.monotonic()
        sent = False
        try:
            async with self._lock(name):
                sent = True
                self._set(name, busy=step.summary)
                try:
                    outcome = await self._run_and_verify(request, step, server)
                finally:
                    self._set(name, busy=None)
        except asyncio.CancelledError:
            await asyncio.to_thread(self._close_cancelled, intent, name, request.kind.value, sent=sent,
                                    duration_s=time.monotonic() - start)
            raise
        outcome = outcome.model_copy(update={"duration": time.monotonic() - start})
        await asyncio.to_thread(
            self.audit.result, intent, outcome=outcome.status.value, duration_s=outcome.duration,
            detail=outcome.detail, backups=[outcome.backup] if outcome.backup else [], target=name,
            action=request.kind.value)
        return outcome

    async def _run_and_verify(self, request: ActionRequest, step: PlannedStep,
                              server: ServerConfig) -> ActionOutcome:
        """The script's own read-back decides first; then the engine reads the server again."""
        try:
            doc = await self._run_document(server, step.script)
        except BackendFailure as exc:
            failed = ActionOutcome(server=step.server, kind=request.kind, status=OutcomeStatus.FAILED,
                                   detail=exc.failure.message, failure=exc.failure)
            return await self._after_lost_answer(request, failed) if exc.may_have_run else failed
        outcome = results.outcome(doc, step.server, request.kind)
        if outcome.status is OutcomeStatus.FAILED:
            return outcome
        if request.kind is ActionKind.REAPPLY:
            if outcome.status is OutcomeStatus.DONE:
                pending = (*self._views[step.server].pending_check, *(request.mitigation_ids or ("*",)))
                self._set(step.server, pending_check=tuple(dict.fromkeys(pending)))
            return outcome
        if request.scope is ActionScope.ORG:
            return outcome
        view = await self._read_state(step.server)
        problem = self._read_back_problem(request, view)
        if problem and outcome.status is OutcomeStatus.DONE:
            return outcome.model_copy(update={"status": OutcomeStatus.NOT_VERIFIED,
                                              "detail": f"{outcome.detail}; read-back: {problem}"})
        return outcome

    async def _after_lost_answer(self, request: ActionRequest, failed: ActionOutcome) -> ActionOutcome:
        """The script may have run but its answer was lost (deadline, garbled or cut output): never
        report "failed" for a change that may have been made. A fresh read decides: the change is
        there (not verified: its own read-back never came), it is not (failed, for the single writes
        that cannot half happen), or nobody can tell (not verified)."""
        unknown = f"{failed.detail}; the script may have run"
        if request.kind is ActionKind.REAPPLY or request.scope is ActionScope.ORG:
            return failed.model_copy(update={"status": OutcomeStatus.NOT_VERIFIED,
                                             "detail": f"{unknown}: its effect is unknown"})
        view = await self._read_state(failed.server)
        problem = self._read_back_problem(request, view)
        if not problem:
            detail = f"{unknown} and a read-back shows the change in place"
        elif request.kind in _SINGLE_WRITES and view.failure is None and view.state is not None:
            return failed.model_copy(update={"detail": f"{failed.detail}; read-back: not made ({problem})"})
        else:
            detail = f"{unknown}: its effect is unknown (read-back: {problem})"
        return failed.model_copy(update={"status": OutcomeStatus.NOT_VERIFIED, "detail": detail})

    def _read_back_problem(self, request: ActionRequest, view: ServerView) -> str:
        """Why a fresh status read contradicts the change ('' when it confirms it)."""
        state = view.state
        if state is None or view.failure is not None:
            return f"could not read the server again ({view.failure.message if view.failure else 'no state'})"
        kind, ids = request.kind, request.mitigation_ids
        if kind is ActionKind.BLOCK or (kind is ActionKind.DELETE and request.also_block):
            missing = [i for i in ids if not state.is_blocked(i)]
            if missing:
                return f"{', '.join(missing)} not in MitigationsBlocked {list(state.blocked)}"
        if kind is ActionKind.UNBLOCK:
            bases = {base_id(i).casefold() for i in ids}
            still = [b for b in state.blocked if base_id(b).casefold() in bases]
            if still:
                return f"still blocked: {', '.join(still)}"
        if kind is ActionKind.DELETE:
            left = [a.name for a in state.artifacts if any(a.belongs_to(i) for i in ids)]
            if left:
                return f"still present: {', '.join(left)}"
        if kind in (ActionKind.ENABLE, ActionKind.DISABLE) and state.server_enabled is not (
                kind is ActionKind.ENABLE):
            return f"MitigationsEnabled reads {state.server_enabled}"
        return ""

    # ------------------------------------------------------------------ close
    async def aclose(self) -> None:
        """Stop the pool (waiting for calls in flight up to their deadline) and close the backend."""
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._pool.shutdown, True)
        await asyncio.to_thread(self.backend.close)


