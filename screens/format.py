"""How a server's snapshot is shown: cell texts, markers, ages (drift and the facts behind them come
from ``emconsole.serverfacts``).

Pure functions over the engine's ServerView and the domain model, so every screen (and a test)
says "EM off (org)" the same way. Everything that came from a server is wrapped in ``Text`` —
never markup.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from rich.text import Text

from emconsole.models import ActionScope, ServerFailure, ServerState

# One definition each, shared with the headless commands (re-exported for the screens).
from emconsole.serverfacts import Drift as Drift
from emconsole.serverfacts import build_of, ocs_reachable
from emconsole.serverfacts import drift as drift
from emconsole.serverfacts import obsolete_ids as obsolete_ids

if TYPE_CHECKING:
    from emconsole.config import ServerConfig
    from emconsole.engine import OcsResult
    from emconsole.knowledge import Knowledge

OK, WARN, BAD, UNKNOWN, LOADING = "●", "⚠", "✖", "?", "⟳"
DASH = "—"
TRUNCATE = 60


class ViewLike(Protocol):
    """The fields of the engine's ServerView the screens read (read-only: the view is frozen)."""

    @property
    def name(self) -> str: ...
    @property
    def config(self) -> ServerConfig: ...
    @property
    def state(self) -> ServerState | None: ...
    @property
    def failure(self) -> ServerFailure | None: ...
    @property
    def refreshed_at(self) -> datetime | None: ...
    @property
    def loading(self) -> bool: ...
    @property
    def busy(self) -> str | None: ...
    @property
    def pending_check(self) -> tuple[str, ...]: ...


def clip(value: str, limit: int = TRUNCATE) -> str:
    """One line, at most ``limit`` characters; the detail view shows the whole value."""
    line = " ".join(value.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def age(then: datetime | None, now: datetime) -> str:
    """Compact age: 4s, 3m, 2h, 5d."""
    if then is None:
        return DASH
    secs = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def em_label(state: ServerState | None) -> Text:
    """Effective EM (org ∧ server) and which switch is off."""
    if state is None or (state.em_enabled is None and not state.em_off_at):
        return Text(UNKNOWN, style="dim")
    if state.em_enabled:
        return Text("on", style="green")
    off = state.em_off_at
    where = "org+srv" if len(off) == 2 else ("org" if off[0] is ActionScope.ORG else "server")
    return Text(f"off ({where})", style="bold red")


def service_label(state: ServerState | None) -> Text:
    """The MSExchangeMitigation service, as Windows names its status."""
    if state is None or state.service is None:
        return Text(UNKNOWN, style="dim")
    svc = state.service
    if svc.healthy:
        return Text(svc.status)
    return Text(f"{svc.status}/{svc.start_type}", style="bold red")


def ocs_label(state: ServerState | None, tested: OcsResult | None = None) -> Text:
    """OCS reachability: an explicit test wins; otherwise the newest EM event tells.

    1008 is the EM service's error event (OCS unreachable, certificate validation failed);
    1005/1006 mean a check ran and succeeded. A test with no verdict (it did not run, or printed
    nothing recognisable) says so rather than guessing.
    """
    if tested is not None:
        if tested.ok is None:
            return Text("? test", style="yellow")
        return Text("ok", style="green") if tested.ok else Text("✗ test", style="bold red")
    if state is None:
        return Text(UNKNOWN, style="dim")
    reachable = ocs_reachable(state)
    if reachable is None:
        return Text(DASH, style="dim")
    return Text("ok", style="green") if reachable else Text("✗", style="bold red")


def ids_label(ids: Iterable[str]) -> Text:
    """Applied or blocked IDs, space separated; a dash when none."""
    joined = " ".join(ids)
    return Text(joined) if joined else Text(DASH, style="dim")


def health(view: ViewLike, drifts: int = 0) -> Text:
    """The row's marker: loading, error, warning (EM off, service unhealthy, drift), ok."""
    if view.busy:
        return Text(LOADING, style="bold cyan")
    if view.failure is not None:
        return Text(BAD, style="bold red")
    if view.state is None:
        return Text(LOADING if view.loading else UNKNOWN, style="dim")
    st = view.state
    if st.em_enabled is False or (st.service is not None and not st.service.healthy) or drifts:
        return Text(WARN, style="bold yellow")
    return Text(OK, style="green")


def tls_off(config: ServerConfig) -> bool:
    """Whether the operator turned TLS certificate validation off for this server."""
    return config.scheme.value == "https" and not config.tls_verify


def build_name(state: ServerState | None, knowledge: Knowledge, *, short: bool = False) -> str:
    """"Exchange 2019 CU15 Feb26SU" as admins name it (``short`` drops "Exchange ")."""
    if state is None:
        return UNKNOWN
    build = build_of(state)
    if build is None:
        return clip(state.admin_display_version or UNKNOWN)
    name = knowledge.build_info(build).name
    return name.removeprefix("Exchange ") if short else name
