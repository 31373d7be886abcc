"""EmConsoleApp: the Textual application that owns the engine session, refreshes and actions.

The app draws its first frame before anything slow happens: the engine (and, for the demo, the lab)
is produced by an async ``starter`` that runs in a worker after mount. Refreshes and actions call
the engine's asyncio API from async workers; each ServerView that arrives is published to every
screen on the stack that shows servers (``server_changed``), so a row updates the moment its
server answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.constants import MAX_FPS
from textual.filter import LineFilter
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState

if TYPE_CHECKING:
    from textual.timer import Timer

    from emconsole.engine import ActionPlan, FleetEngine, OcsResult, ServerView
    from emconsole.exposure import Exposure
    from emconsole.knowledge import Knowledge
    from emconsole.models import (
        ActionKind,
        ActionOutcome,
        ActionRequest,
        ActionScope,
        ServerFailure,
        ServerState,
    )

#: Seconds between two redraws of the top bars while servers answer (see _publish_status_soon).
STATUS_INTERVAL = 0.1
#: Seconds between two batches of server snapshots handed to the screens (see publish).
UPDATE_INTERVAL = 0.05
#: Wall seconds one batch may take before the rest waits for keys already typed (see _deliver).
UPDATE_SLICE = 0.008
#: Server batches wait until no key has come for this long: the frame a key waits for then holds
#: its own change, not a batch of rows (see _hand_over_batch).
KEY_QUIET_S = 0.1
#: How long the rows a refresh held back wait after a key typed while they are handed over: the
#: key's frame comes first (two frame intervals: its handler, then the screen's next update).
KEY_FRAME_S = 2 / MAX_FPS
#: The shortest wait worth a timer: Textual skips a one-shot timer already due when its task first
#: runs, so a wait of a few microseconds would never fire; a shorter one is no wait at all.
MIN_TIMER_S = 0.001
#: Binding actions that change servers: greyed out (check_action -> None) in read-only mode.
CHANGE_ACTIONS = frozenset(
    {"reapply", "block", "unblock", "delete", "enable_em", "disable_em", "enable_org", "disable_org",
     "fix", "delete_leftovers"}
)


@dataclass
class Session:
    """What the starter hands the app once the engine is up (for the demo: once the lab runs)."""

    engine: FleetEngine
    environment: str = ""
    production: bool = False
    refresh_interval: float = 30.0
    bulk_threshold: int = 3
    keymap: dict[str, str] = field(default_factory=dict)
    theme: str | None = None
    knowledge: Knowledge | None = None
    close: Callable[[], Awaitable[None]] | None = None
    #: Called when a refresh of the fleet ends (the CLI's garbage-collection policy, console_cmd).
    after_refresh: Callable[[], None] | None = None


Starter = Callable[[], Awaitable[Session]]


@dataclass
class ActionRun:
    """One confirmed action (one or more requests of one kind) and how it ended per server."""

    title: str
    requests: tuple[ActionRequest, ...]
    dry_run: bool
    started: datetime
    outcomes: list[ActionOutcome] = field(default_factory=list)
    finished: bool = False


class EmConsoleApp(App[int]):
    """The fleet console."""

    CSS_PATH = "emconsole.tcss"
    TITLE = "emconsole"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("M", "matrix", "Matrix", show=False, id="app.matrix"),
        Binding("I", "mitigations", "Mitigations", show=False, id="app.mitigations"),
        Binding("V", "exposure", "Exposure", show=False, id="app.exposure"),
        Binding("C", "command_log", "Commands", show=False, id="app.command_log"),
        Binding("L", "audit_log", "Audit", show=False, id="app.audit_log"),
        Binding("S", "results", "Results", show=False, id="app.results"),
        Binding("r", "refresh_now", "Refresh", id="app.refresh"),
        Binding("p", "toggle_pause", "Pause", show=False, id="app.pause"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True, id="app.quit"),
    ]

    def __init__(
        self,
        starter: Starter,
        *,
        read_only: bool = False,
        clock: Callable[[], datetime] | None = None,
        live_refresh: bool = True,
    ) -> None:
        super().__init__()
        self._starter = starter
        self.session: Session | None = None
        self.engine: FleetEngine | None = None
        self._read_only_flag = read_only
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(timezone.utc))
        self.live_refresh = live_refresh
        self.paused = False
        self.refreshing = False
        self.refresh_done = 0
        self.refresh_total = 0
        self.start_error: str | None = None
        self.last_run: ActionRun | None = None
        self.ocs_results: dict[str, OcsResult] = {}
        self.busy: dict[str, str] = {}
        self._refresh_timer: Any = None
        self._knowledge: Knowledge | None = None
        self._exposures: dict[str, tuple[ServerState | None, ServerFailure | None, list[Exposure]]] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._status_at = 0.0
        self._status_timer: Timer | None = None
        self._pending: dict[str, ServerView] = {}
        self._handed_at = 0.0
        self._batch_due = False
        self._key_at = 0.0
        self._batch_timer: Timer | None = None  # the batch waiting for its time, if one does

    def get_line_filters(self) -> Sequence[LineFilter]:
        """Textual's filters, then one that shows server-sent control characters instead of sending them."""
        from emconsole.screens.controls import SHOW_CONTROL_CHARACTERS

        return [*super().get_line_filters(), SHOW_CONTROL_CHARACTERS]

    # ----- start --------------------------------------------------------------------------------
    def on_mount(self) -> None:
        from emconsole.screens.fleet import FleetScreen

        self.push_screen(FleetScreen())
        # The first frame is drawn before the engine (and the lab) start.
        self.call_after_refresh(self._start)

    def _start(self) -> None:
        self.run_worker(self._boot(), name="start", group="start", exit_on_error=False)

    async def _boot(self) -> None:
        try:
            session = await self._starter()
        except Exception as exc:  # the console stays up and says why
            self.start_error = f"could not start: {exc}"
            self.notify(self.start_error, severity="error", markup=False, timeout=30)
            self._publish_status()
            return
        self.session = session
        self.engine = session.engine
        # Every change of a view (loading, busy, new state) reaches the rows as it happens. The
        # engine calls listeners on this event loop (its asyncio side), never from its threads.
        self._unsubscribe = self.engine.subscribe(self.publish)
        if self._read_only_flag:
            self.engine.read_only = True
        if session.keymap:
            self.set_keymap(session.keymap)
        if session.theme:
            if session.theme in self.available_themes:
                self.theme = session.theme
            else:
                self.notify(f"unknown theme {session.theme!r} in the config; known: "
                            + ", ".join(sorted(self.available_themes)), severity="warning", markup=False)
        # On the app, so that every screen pushed later carries the accent too.
        self.set_class(session.production, "-production")
        for view in self.engine.views():
            self.publish(view)
        self.refresh_bindings()
        self.refresh_fleet()
        if self.live_refresh and session.refresh_interval > 0:
            self._refresh_timer = self.set_interval(session.refresh_interval, self._refresh_tick)

    async def action_quit(self) -> None:
        """Quit; reads in flight are cancelled, changes in flight are waited for (and said so)."""
        self.workers.cancel_group(self, "refresh")
        self.workers.cancel_group(self, "ocs")
        busy = sum(1 for v in self.views() if v.busy)
        if busy:
            self.notify(f"closing: waiting for the change in flight on {busy} server(s) to finish…",
                        timeout=60)
        self.exit()

    async def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.session is not None and self.session.close is not None:
            await self.session.close()

    # ----- state shared by screens ----------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        """Read-only mode: enforced by the engine; the UI greys actions out and shows a badge."""
        return self.engine.read_only if self.engine is not None else self._read_only_flag

    def set_read_only(self, value: bool) -> None:
        """Switch read-only mode everywhere."""
        self._read_only_flag = value
        if self.engine is not None:
            self.engine.read_only = value
        self.refresh_bindings()
        for screen in self.screen_stack:
            screen.refresh_bindings()
        self._publish_status()

    @property
    def knowledge(self) -> Knowledge:
        """The catalogue and build table in force (the session's, or the package's own)."""
        if self.session is not None and self.session.knowledge is not None:
            return self.session.knowledge
        if self._knowledge is None:
            from emconsole.knowledge import load_knowledge

            self._knowledge = load_knowledge()
        return self._knowledge

    @property
    def bulk_threshold(self) -> int:
        """From this many servers on, a change needs the server count typed."""
        return self.session.bulk_threshold if self.session else 3

    def exposures(self, view: ServerView) -> list[Exposure]:
        """The server's cells (one per CVE), assessed once per snapshot: the fleet's Exposure column
        and the Exposure view share them, and a view that only changed its loading or busy flag
        costs nothing, nor does a snapshot that says what the last one said."""
        from emconsole.models import same_reading

        cached = self._exposures.get(view.name)
        if cached is not None and cached[1] is view.failure and same_reading(cached[0], view.state):
            self._exposures[view.name] = (view.state, view.failure, cached[2])
            return cached[2]
        from emconsole.exposure import assess_fleet

        cells = assess_fleet([view], self.knowledge)
        self._exposures[view.name] = (view.state, view.failure, cells)
        return cells

    def views(self) -> list[ServerView]:
        """Every server, in config order (empty before the engine is up)."""
        return self.engine.views() if self.engine is not None else []

    def publish(self, view: ServerView) -> None:
        """Queue one server's new snapshot for every screen that shows servers.

        The screens get the queue in batches, at most every UPDATE_INTERVAL (a newer snapshot of a
        server replaces one still queued): one answer at a time, 500 servers took the event loop
        away from the keys a thousand times per refresh, and a refresh's start (every row to
        "loading" at once) held it for a third of a second. ``hand_over`` empties the queue now.
        """
        self._pending[view.name] = view
        if not self._batch_due:
            self._schedule_batch(self._handed_at + UPDATE_INTERVAL - time.monotonic())

    def _schedule_batch(self, wait: float) -> None:
        """The next batch in ``wait`` seconds, or at the app's next turn when that is no wait."""
        self._batch_due = True
        if wait > MIN_TIMER_S:
            self._batch_timer = self.set_timer(wait, self._hand_over_batch)
        else:
            self.call_later(self._hand_over_batch)

    async def hand_over(self) -> None:
        """Hand every queued snapshot to the screens before going on (a refresh or an action ended),
        whether or not the operator is typing; a batch waiting for its time is called off, one
        already running finds the queue empty; the top bars then show the latest at once. In slices
        with a turn of the event loop between them:
        in one go, the ~500 snapshots a refresh held back while keys were typed took 230-320 ms of
        the loop at its end, and a key typed then waited for all of them (asyncio debug, 500 servers)."""
        if self._batch_timer is not None:
            self._batch_timer.stop()
            self._batch_timer = None
            self._batch_due = False
        key_at = self._key_at
        while self._deliver(UPDATE_SLICE):
            await asyncio.sleep(0)
            if self._key_at != key_at:  # a key came: its frame before the next slice of rows
                key_at = self._key_at
                await asyncio.sleep(KEY_FRAME_S)
        self._publish_status()

    async def _hand_over_batch(self) -> None:
        # Give the event loop a turn first: the app's message queue runs its callbacks back to back,
        # so without it the slices of one batch ran as one and a key reached its widget only after
        # all of them (bench/ui_load.py: 500 rows turning "loading" held a key ~85 ms).
        self._batch_timer = None
        await asyncio.sleep(0)
        quiet = self.typing_for()
        if quiet > MIN_TIMER_S:  # the operator is typing: the rows wait
            self._schedule_batch(quiet)
            return
        self._batch_due = False
        if self._deliver(UPDATE_SLICE):
            self._schedule_batch(0.0)

    def typing_for(self) -> float:
        """Seconds until the operator counts as no longer typing (0: no key for KEY_QUIET_S)."""
        return max(0.0, self._key_at + KEY_QUIET_S - time.monotonic())

    def post_message(self, message: Message) -> bool:
        """Note when the last key came (server batches wait for a pause in the typing): when it is
        queued, not when the app gets to it — a batch that started meanwhile held it a whole slice."""
        if isinstance(message, events.Key):
            self._note_key()
        return super().post_message(message)

    async def on_event(self, event: events.Event) -> None:
        """And again once the screen shows the key: the pause before the next key counts from
        there (a key slower than KEY_QUIET_S to show, `/` laying the screen out, let the rows and
        the top bar in just before the next one)."""
        if isinstance(event, events.Key):
            self.call_after_refresh(self._note_key)
        await super().on_event(event)

    def _note_key(self) -> None:
        self._key_at = time.monotonic()

    def _deliver(self, budget: float) -> bool:
        """Queued snapshots to the screens, oldest first, for ``budget`` wall seconds; True when some
        are left for the caller's next turn of the event loop (keys typed meanwhile come first)."""
        self._handed_at = time.monotonic()
        until = time.perf_counter() + budget
        handlers = [h for h in (getattr(screen, "server_changed", None) for screen in self.screen_stack)
                    if h is not None]
        pending = self._pending
        while pending:
            view = pending.pop(next(iter(pending)))
            for handler in handlers:
                handler(view)
            if pending and time.perf_counter() > until:
                break
        self._publish_status_soon()
        return bool(pending)

    def _publish_status(self) -> None:
        if self._status_timer is not None:
            self._status_timer.stop()
            self._status_timer = None
        self._status_at = time.monotonic()
        for screen in self.screen_stack:
            handler = getattr(screen, "status_changed", None)
            if handler is not None:
                handler()

    def _publish_status_soon(self) -> None:
        """The top bars while servers answer one after another: at once, then at most every
        STATUS_INTERVAL (a refresh of 500 servers redrew them 1,000 times, each counting every
        server), and not while the operator types (as the rows: the frame a key waits for stays its
        own, not one that also redraws the top bar); the last change is always drawn."""
        wait = max(self._status_at + STATUS_INTERVAL - time.monotonic(), self.typing_for())
        if wait <= MIN_TIMER_S:
            self._publish_status()
        elif self._status_timer is None:
            self._status_timer = self.set_timer(wait, self._status_due)

    def _status_due(self) -> None:
        self._status_timer = None
        self._publish_status_soon()  # now, or once the typing pauses

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("refresh_now", "toggle_pause") and self.engine is None:
            return None
        return True

    # ----- refresh ------------------------------------------------------------------------------
    def _refresh_tick(self) -> None:
        """Timer tick: skipped while paused, while a modal is open, or while a refresh runs."""
        if self.paused or self.refreshing or isinstance(self.screen, ModalScreen):
            return
        self.refresh_fleet()

    def refresh_fleet(self, names: Iterable[str] | None = None) -> None:
        """Refresh all servers (or some) in a worker; rows update as each server answers."""
        if self.engine is None or self.refreshing:
            return
        self.refreshing = True
        self._run_refresh(list(names) if names is not None else None)

    @work(group="refresh", exit_on_error=False)
    async def _run_refresh(self, names: list[str] | None) -> None:
        assert self.engine is not None
        engine = self.engine
        targets = names if names is not None else [v.name for v in engine.views()]
        self.refresh_done, self.refresh_total = 0, len(targets)
        self._publish_status()
        try:
            async for _view in engine.refresh(names):  # each view reached the screens via subscribe
                self.refresh_done += 1
                self._publish_status_soon()
        finally:
            try:
                await self.hand_over()
            finally:
                self.refreshing = False
                self._publish_status()
                if self.session is not None and self.session.after_refresh is not None:
                    self.session.after_refresh()

    def action_refresh_now(self) -> None:
        if self.refreshing:
            self.notify("a refresh is already running", timeout=2)
            return
        self.refresh_fleet()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self._publish_status()

    # ----- errors from workers --------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that raised becomes a notification and a command-log entry; the app stays up."""
        if event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        text = f"{event.worker.name or 'task'} failed: {type(error).__name__}: {error}"
        self.notify(text, severity="error", markup=False, timeout=10)
        self._log_console_error(text)

    def _log_console_error(self, text: str) -> None:
        if self.engine is None:
            return
        from emconsole.commandlog import CommandLogEntry

        log = getattr(self.engine, "command_log", None)
        if log is not None:
            log.add(
                CommandLogEntry(
                    target="(console)", started=self.clock(), duration=0.0, round_trips=0, exit_code=None,
                    bytes=0, first_error_line=text.splitlines()[0] if text else "", script="",
                    raw_output=text,
                    failure_kind="console",
                )
            )

    # ----- actions ------------------------------------------------------------------------------
    def start_action(
        self,
        kind: ActionKind | str,
        servers: Sequence[str],
        mitigation_ids: Sequence[str] = (),
        scope: ActionScope | str = "server",
    ) -> None:
        """Plan an action, confirm it with the operator, then run it (or dry-run it).

        ``kind`` and ``scope`` may be given by value ("block", "org"): the screens name them that
        way so that the domain model (pydantic) is imported after the first frame, not before.
        """
        if self.engine is None or not servers:
            return
        from emconsole.models import ActionKind, ActionRequest, ActionScope

        try:
            request = ActionRequest(kind=ActionKind(kind), servers=tuple(servers),
                                    mitigation_ids=tuple(mitigation_ids), scope=ActionScope(scope))
        except ValueError as exc:  # an invalid ID: said, not raised
            self.notify(str(exc), title="refused", severity="error", markup=False)
            return
        self.start_requests([request])

    def start_requests(self, requests: Sequence[ActionRequest]) -> None:
        """Plan requests of one kind (the leftovers of several mitigations: one per set of IDs), confirm
        them as one action, then run them (or dry-run them).

        A request that plans to nothing (every server skipped) drops out; the confirm says which.
        """
        if self.engine is None or not requests:
            return
        plans: list[ActionPlan] = []
        refused: list[str] = []
        for request in requests:
            try:
                plans.append(self.engine.plan(request))
            except Exception as exc:  # ReadOnlyError, PlanError, invalid input: said, not raised
                refused.append(str(exc))
        if not plans:
            self.notify("; ".join(refused), title="refused", severity="error", markup=False)
            return
        from emconsole.screens.confirm import ConfirmScreen, Decision

        def decided(decision: Decision | None) -> None:
            if decision is None or decision is Decision.CANCEL:
                self.notify("cancelled — nothing was sent", timeout=3)
                return
            self._execute(plans, dry_run=decision is Decision.DRY_RUN)

        self.push_screen(ConfirmScreen(plans, bulk_threshold=self.bulk_threshold, refused=refused), decided)

    def start_ocs_test(self, servers: Sequence[str]) -> None:
        """OCS connectivity test: read-only, no confirmation."""
        if self.engine is not None and servers:
            self._run_ocs(list(servers))

    @work(group="ocs", exit_on_error=False)
    async def _run_ocs(self, servers: list[str]) -> None:
        assert self.engine is not None
        for name in servers:
            self.busy[name] = "OCS test"
            self.publish(self.engine.view(name))
        verdicts: dict[bool | None, list[str]] = {True: [], False: [], None: []}
        try:
            async for result in self.engine.test_ocs(servers):
                self.ocs_results[result.server] = result
                self.busy.pop(result.server, None)
                verdicts[result.ok].append(result.server if result.ok else
                                           f"{result.server} ({clip_line(result.message)})")
                self.publish(self.engine.view(result.server))
        finally:
            for name in servers:
                if self.busy.pop(name, None) is not None:
                    self.publish(self.engine.view(name))
            await self.hand_over()
        parts = [f"OCS reachable from {len(verdicts[True])} of {len(servers)}"]
        if verdicts[False]:
            parts.append("not reachable from " + ", ".join(verdicts[False]))
        if verdicts[None]:
            parts.append("no verdict from " + ", ".join(verdicts[None]))
        self.notify("; ".join(parts), severity="warning" if len(parts) > 1 else "information", markup=False)

    def _execute(self, plans: Sequence[ActionPlan], *, dry_run: bool) -> None:
        from emconsole.models import ActionOutcome, OutcomeStatus

        run = ActionRun(title=plans_title(plans), requests=tuple(p.request for p in plans), dry_run=dry_run,
                        started=self.clock())
        self.last_run = run
        if dry_run:
            for plan in plans:
                for step in plan.steps:
                    run.outcomes.append(ActionOutcome(server=step.server, kind=plan.request.kind,
                                                      status=OutcomeStatus.NOT_VERIFIED,
                                                      detail="dry run: nothing was sent"))
            run.finished = True
            self.action_results()
            return
        self._run_action(list(plans), run)

    @work(group="action", exit_on_error=False)
    async def _run_action(self, plans: list[ActionPlan], run: ActionRun) -> None:
        """Never an exclusive worker: a change in flight must not be cancelled by the next one."""
        from emconsole.models import OutcomeStatus

        assert self.engine is not None
        engine = self.engine
        servers = list(dict.fromkeys(step.server for plan in plans for step in plan.steps))
        for name in servers:
            self.busy[name] = run.title
            self.publish(engine.view(name))
        started = time.monotonic()
        try:
            for plan in plans:
                async for outcome in engine.execute(plan):
                    run.outcomes.append(outcome)
                    self.busy.pop(outcome.server, None)
                    self.publish(engine.view(outcome.server))
        finally:
            for name in servers:
                if self.busy.pop(name, None) is not None:
                    self.publish(engine.view(name))
            try:
                await self.hand_over()
            finally:
                run.finished = True
        failed = sum(o.status is OutcomeStatus.FAILED for o in run.outcomes)
        took = time.monotonic() - started
        self.notify(f"{run.title}: {len(run.outcomes)} finished in {took:.1f}s, {failed} failed",
                    severity="error" if failed else "information", markup=False)
        self.action_results()
        from emconsole.models import ActionScope

        # An organisation switch changes what every server reads, not only the one it ran on.
        org = any(p.request.scope is ActionScope.ORG for p in plans)
        self.refresh_after_action([v.name for v in engine.views()] if org else servers)

    def refresh_after_action(self, servers: list[str]) -> None:
        """Read the changed servers back so their rows show the new truth."""
        if self.refreshing:
            return
        self.refresh_fleet(servers)

    # ----- navigation ---------------------------------------------------------------------------
    def action_help(self) -> None:
        from emconsole.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_matrix(self, mitigation: str | None = None) -> None:
        from emconsole.screens.matrix import MatrixScreen

        if isinstance(self.screen, MatrixScreen):
            return
        self.push_screen(MatrixScreen(focus_mitigation=mitigation))

    def action_mitigations(self) -> None:
        from emconsole.screens.matrix import MitigationListScreen

        if not isinstance(self.screen, MitigationListScreen):
            self.push_screen(MitigationListScreen())

    def action_exposure(self, cve: str | None = None) -> None:
        """The Exposure view (CVE × server, worst first); ``cve``: only that CVE's cells."""
        from emconsole.screens.exposure import ExposureScreen

        if isinstance(self.screen, ExposureScreen):
            if cve:
                self.screen.show_cve(cve)
            return
        self.push_screen(ExposureScreen(cve))

    def action_leave_read_only(self) -> None:
        """Leaving read-only mode is a change of its own: ask first."""
        from emconsole.screens.confirm import YesNoScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self.set_read_only(False)

        self.push_screen(YesNoScreen("Leave read-only mode? Changes to servers become possible."), answered)

    def action_command_log(self) -> None:
        from emconsole.screens.logs import CommandLogScreen

        if not isinstance(self.screen, CommandLogScreen):
            self.push_screen(CommandLogScreen())

    def action_audit_log(self) -> None:
        from emconsole.screens.logs import AuditLogScreen

        if not isinstance(self.screen, AuditLogScreen):
            self.push_screen(AuditLogScreen())

    def action_results(self) -> None:
        from emconsole.screens.results import ResultsScreen

        if self.last_run is None:
            self.notify("no action has run yet", timeout=3)
        elif not isinstance(self.screen, ResultsScreen):
            self.push_screen(ResultsScreen(self.last_run))

    def open_server(self, name: str) -> None:
        """Drill into one server."""
        from emconsole.screens.detail import ServerDetailScreen

        if self.engine is not None:
            self.push_screen(ServerDetailScreen(name))

    # ----- command palette ----------------------------------------------------------------------
    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        from emconsole.screens.palette import console_commands

        yield from console_commands(self, screen)
        yield from super().get_system_commands(screen)


def plans_title(plans: Sequence[ActionPlan]) -> str:
    """The confirm title of one action: one request's title, or for several (the leftovers of
    different mitigations) the kind with every ID, on every server any of them reaches."""
    from emconsole.models import ActionRequest

    first = plans[0].request
    if len(plans) == 1:
        return request_title(first)
    ids = tuple(dict.fromkeys(i for p in plans for i in p.request.mitigation_ids))
    servers = tuple(dict.fromkeys(step.server for p in plans for step in p.steps))
    return request_title(ActionRequest(kind=first.kind, servers=servers, mitigation_ids=ids,
                                       also_block=first.also_block))


def request_title(req: ActionRequest) -> str:
    """"Block M2 on 4 servers", "Disable EM for the organisation" — the confirm title."""
    from emconsole.models import ActionKind, ActionScope

    verb = {
        ActionKind.REAPPLY: "Reapply (restart the EM service)",
        ActionKind.BLOCK: "Block",
        ActionKind.UNBLOCK: "Unblock",
        ActionKind.DELETE: "Delete",
        ActionKind.RESTORE: "Restore",
        ActionKind.ENABLE: "Enable EM",
        ActionKind.DISABLE: "Disable EM",
        ActionKind.TEST_OCS: "Test OCS",
    }[req.kind]
    ids = " " + ", ".join(req.mitigation_ids) if req.mitigation_ids else ""
    if req.kind is ActionKind.DELETE and req.also_block:
        ids += " (and block)"
    if req.scope is ActionScope.ORG:
        return f"{verb} for the organisation"
    count = len(req.servers)
    where = req.servers[0] if count == 1 else f"{count} servers"
    return f"{verb}{ids} on {where}"


def clip_line(text: str, limit: int = 80) -> str:
    """The first line of a message, short enough for a notification."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"
