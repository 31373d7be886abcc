"""Server detail: the facts, its mitigations with what was found on the server, drift, events, errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from emconsole.screens.actions import ACTION_BINDINGS, ServerActions
from emconsole.screens.base import KeysFooter, TableScreen, TopBar, filter_bar
from emconsole.screens.format import DASH, build_name, build_of, drift, em_label, obsolete_ids, tls_off
from emconsole.screens.grid import Column
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from emconsole.models import Artifact, ArtifactKind, Mitigation, MitigationStatus

if TYPE_CHECKING:
    from emconsole.engine import ServerView

EVENTS_SHOWN = 8

_STATUS_STYLE = {
    MitigationStatus.APPLIED: "green",
    MitigationStatus.BLOCKED: "yellow",
    MitigationStatus.FAILED: "bold red",
    MitigationStatus.PENDING: "cyan",
}


def artifact_text(art: Artifact) -> str:
    """"outbound EEMS M2.1 OWA CSP - outbound (Default Web Site/owa)", "service X Stopped/Disabled"."""
    if art.kind in (ArtifactKind.REWRITE_RULE, ArtifactKind.REWRITE_PRECONDITION):
        where = (art.pspath or "").replace("MACHINE/WEBROOT/APPHOST", "").replace("IIS:\\Sites\\", "")
        where = where.strip("/\\")
        kind = art.direction.value if art.direction else "rule"
        if art.kind is ArtifactKind.REWRITE_PRECONDITION:
            kind = "precondition"
        return f"{kind} {art.name} ({where or 'server'})"
    if art.kind is ArtifactKind.SERVICE:
        return f"service {art.name} {art.service_status or '?'}/{art.start_type or '?'}"
    return f"app pool {art.name} {art.app_pool_state or '?'}"


class ServerDetailScreen(TableScreen, ServerActions):
    """One server; actions default to the mitigation under the cursor."""

    TITLE_TEXT = "Server"
    BINDING_GROUP_TITLE = "Server"
    BINDINGS: ClassVar[list[BindingType]] = [*TableScreen.MARK_BINDINGS, *ACTION_BINDINGS]

    def __init__(self, name: str) -> None:
        self.server_name = name
        super().__init__()
        self.TITLE_TEXT = name

    def columns(self) -> list[Column]:
        return [
            Column("id", "ID", max_width=12),
            Column("type", "Type", max_width=12),
            Column("status", "Status", max_width=16),
            Column("fix", "Fix", max_width=24),
            Column("found", "Found on server", max_width=70),
            Column("desc", "Description", max_width=80),
        ]

    def compose(self) -> ComposeResult:
        yield TopBar(id="topbar")
        yield Static(id="facts")
        yield filter_bar(self.grid, "regex filter — ! in front inverts")
        yield self.grid
        with VerticalScroll(id="events"):
            yield Static(id="events-text")
        yield KeysFooter()

    def on_mount(self) -> None:
        super().on_mount()
        engine = self.console_app.engine
        if engine is not None:
            self.server_changed(engine.view(self.server_name), highlight=False)

    def server_changed(self, view: ServerView, *, highlight: bool = True) -> None:
        if view.name != self.server_name or not self.ready:
            return
        app = self.console_app
        state = view.state
        self.query_one("#facts", Static).update(self._facts(view))
        if state is None:
            self.query_one("#events-text", Static).update(self._errors(view))
            return
        knowledge = app.knowledge
        for mit in self._mitigations(view):
            found = "; ".join(artifact_text(a) for a in mit.artifacts) or DASH
            entry = knowledge.catalogue.get(mit.id)
            fix = DASH
            if entry is not None and entry.cve:
                verdict = knowledge.fix_status(build_of(state), mit.id)
                fix = f"{entry.cve} {verdict.status.value.replace('_', ' ')}"
            status = mit.raw_status or mit.status.value.replace("_", " ")
            self.grid.set_row(mit.id, [
                Text(mit.id), Text(mit.kind.value.replace("_", " ")),
                Text(status, style=_STATUS_STYLE.get(mit.status, "")),
                Text(fix), Text(found), Text(" ".join(mit.description.split())),
            ], highlight=highlight)
        self.query_one("#events-text", Static).update(self._events(view))

    def _mitigations(self, view: ServerView) -> list[Mitigation]:
        """The server's list, plus applied or blocked IDs it did not describe."""
        state = view.state
        assert state is not None
        out = list(state.mitigations)
        known = {m.id.casefold() for m in out}
        for mid in state.applied:
            if mid.casefold() not in known:
                out.append(Mitigation(id=mid, status=MitigationStatus.APPLIED))
                known.add(mid.casefold())
        for mid in state.blocked:
            if mid.casefold() not in known:
                out.append(Mitigation(id=mid, status=MitigationStatus.BLOCKED))
                known.add(mid.casefold())
        return out

    def _facts(self, view: ServerView) -> Text:
        app = self.console_app
        state = view.state
        text = Text()
        text.append(view.name, style="bold")
        if tls_off(view.config):
            text.append("  ⚠ TLS certificate validation is OFF for this server", style="bold yellow")
        if state is None:
            text.append("  loading…" if view.loading else "  not read yet", style="dim")
            return text
        build = build_of(state) or "?"
        text.append(f" · {build_name(state, app.knowledge)} ({build}) · EM ")
        text.append_text(em_label(state))
        org = {True: "✓", False: "✗", None: "?"}
        text.append(f" (org {org[state.org_enabled]} server {org[state.server_enabled]})")
        if state.service is not None:
            text.append(f" · MSExchangeMitigation {state.service.status}/{state.service.start_type}")
        applied_at = f"{state.applied_time:%Y-%m-%d %H:%M} UTC" if state.applied_time else DASH
        text.append(f"\napplied: {applied_at} · blocked: {' '.join(state.blocked) or DASH} · "
                    f"data collection: {state.data_collection if state.data_collection is not None else '?'}"
                    " · proxy: "
                    f"{state.proxy or DASH}")
        for d in drift(state, obsolete_ids(state, app.knowledge)):
            text.append(f"\n≠ {d.mitigation_id}: {d.what}", style="yellow")
        return text

    def _events(self, view: ServerView) -> Text:
        text = self._errors(view)
        state = view.state
        events = sorted(state.events, key=lambda e: e.time, reverse=True)[:EVENTS_SHOWN] if state else []
        text.append("Events\n", style="bold")
        if not events:
            text.append("  none\n", style="dim")
        for ev in events:
            style = "red" if ev.id == 1008 else ""
            text.append(f"  {ev.time:%Y-%m-%d %H:%M} {ev.id} ", style=style)
            text.append(" ".join(ev.message.split()) + "\n", style=style)
        return text

    def _errors(self, view: ServerView) -> Text:
        text = Text()
        if view.failure is not None:
            text.append(f"Last error ({view.failure.kind.value}): ", style="bold red")
            text.append(view.failure.message + "\n", style="red")
            if view.failure.detail:
                text.append(view.failure.detail + "\n", style="dim")
        return text

    def target_servers(self) -> list[str]:
        return [self.server_name]

    def target_mitigations(self) -> list[str] | None:
        grid = self.grid
        if grid.marks:
            return [k for k in grid.row_keys if k in grid.marks]
        return [grid.cursor_key] if grid.cursor_key else None

    def markable(self) -> bool:
        return True
