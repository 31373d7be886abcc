"""The fleet screen (home): one row per server, updated in place as each server answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from emconsole.screens.actions import ACTION_BINDINGS, ServerActions
from emconsole.screens.base import TableScreen
from emconsole.screens.grid import Column, Grid
from rich.text import Text
from textual.binding import BindingType
from textual.screen import ModalScreen

if TYPE_CHECKING:
    from emconsole.engine import ServerView
    from emconsole.models import ServerState


def _site(view: ServerView) -> str:
    tags = view.config.tags
    rest = [f"{k}={v}" for k, v in tags.items() if k not in ("site", "environment")]
    return " ".join([tags.get("site", ""), *rest]).strip() or DASH


AGE_COLUMN = 11
DASH = "—"


def _exposure_key(cell: Text) -> Any:
    """Worst exposure first (imported on the first sort: the first frame does without it)."""
    from emconsole.screens.exposure import word_order

    return word_order(cell)


class FleetScreen(TableScreen, ServerActions):
    """Every server at a glance; actions on the cursor row or the marked set."""

    TITLE_TEXT = "Fleet"
    BINDING_GROUP_TITLE = "Fleet"
    BINDINGS: ClassVar[list[BindingType]] = [*TableScreen.MARK_BINDINGS, *ACTION_BINDINGS]

    def columns(self) -> list[Column]:
        return [
            Column("health", "●", max_width=1),
            Column("name", "Server", max_width=24),
            Column("site", "Site", max_width=12),
            Column("build", "Build", max_width=30),
            Column("em", "EM", max_width=12),
            Column("service", "Service", max_width=16),
            Column("ocs", "OCS", max_width=6),
            Column("applied", "Applied", max_width=16),
            Column("blocked", "Blocked", max_width=14),
            Column("drift", "Drift", max_width=6),
            Column("exposure", "Exposure", max_width=16, sort_key=_exposure_key),
            Column("age", "Age", max_width=4, sort_key=_age_key),
            Column("error", "Error", max_width=60),
        ]

    def __init__(self) -> None:
        super().__init__()
        self._shown_state: set[str] = set()
        self._exposed: set[str] = set()  # servers with an exposed cell (the top bar counts them)
        #: Per server: what its cells were made from (see _inputs), its state, and the cells.
        self._made: dict[str, tuple[tuple[object, ...], ServerState | None, list[Text]]] = {}

    def markable(self) -> bool:
        return True

    def on_mount(self) -> None:
        super().on_mount()
        for view in self.console_app.views():
            self.server_changed(view, highlight=False)
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        """The clock and ages move once a second; only the age cells are rewritten. Not while another
        screen covers this one: rewriting 500 hidden age cells stalled the keys typed there ~90 ms;
        nor while the operator types here (a tick took 8-20 ms of the event loop with 500 servers)."""
        from emconsole.screens.format import age as age_text

        top = self.app.screen
        if (top is not self and not isinstance(top, ModalScreen)) or self.console_app.typing_for():
            return
        self.status_changed()
        now = self.console_app.clock()
        self.grid.set_cells(AGE_COLUMN, [(view.name, Text(age_text(view.refreshed_at, now)))
                                         for view in self.console_app.views() if not view.loading])

    def server_changed(self, view: ServerView, *, highlight: bool = True) -> None:
        """One server's new snapshot: rewrite its row (changed cells light up briefly).

        Only a change to data already shown lights up; the first answer replacing "loading" does not.
        """
        cells = self.row_cells(view)
        known = view.name in self._shown_state
        if view.state is not None:
            self._shown_state.add(view.name)
        self.grid.set_row(view.name, cells, highlight=highlight and known)

    def row_cells(self, view: ServerView) -> list[Text]:
        """The row's cells; made again only when what they show changed, but for the age.

        A refresh first turns every row to "loading" (same state, same failure): made again, 500
        rows cost ~0.4 ms each (exposure, drift, build name) for one changed cell.
        """
        from emconsole.screens.format import LOADING
        from emconsole.screens.format import age as age_text

        from emconsole.models import same_reading

        app = self.console_app
        inputs = self._inputs(view)
        made = self._made.get(view.name)
        if (made is not None and all(a is b for a, b in zip(made[0], inputs, strict=True))
                and same_reading(made[1], view.state)):
            cells = made[2]
        else:
            cells = self._make_cells(view)
        self._made[view.name] = (inputs, view.state, cells)
        cells = list(cells)
        cells[AGE_COLUMN] = (Text(LOADING, style="cyan") if view.loading
                             else Text(age_text(view.refreshed_at, app.clock())))
        return cells

    def _inputs(self, view: ServerView) -> tuple[object, ...]:
        """Everything but the clock and the state that a row shows, compared by identity (a frozen
        snapshot; the state is compared by ``same_reading``)."""
        app = self.console_app
        return (view.config, view.failure, view.pending_check, view.busy,
                app.busy.get(view.name), app.ocs_results.get(view.name), view.loading and view.state is None,
                app.knowledge)

    def _make_cells(self, view: ServerView) -> list[Text]:
        # Imported here: the format helpers pull in the domain model (pydantic), which the first
        # frame does not need — the first rows arrive after the engine is up.
        from emconsole.screens.exposure import fleet_cell
        from emconsole.screens.format import (
            LOADING,
            build_name,
            clip,
            drift,
            em_label,
            health,
            ids_label,
            obsolete_ids,
            ocs_label,
            service_label,
            tls_off,
        )

        from emconsole.exposure import ExposureState

        app = self.console_app
        state = view.state
        knowledge = app.knowledge
        drifts = drift(state, obsolete_ids(state, knowledge)) if state is not None else []
        busy = app.busy.get(view.name) or view.busy
        name = Text(view.name)
        if tls_off(view.config):
            name.append(" ⚠tls", style="bold yellow")
        if busy:
            error = Text(f"{LOADING} {busy}", style="cyan")
        elif view.failure is not None:
            error = Text(clip(view.failure.message), style="red")
        elif view.loading and state is None:
            error = Text(f"{LOADING} loading…", style="dim")
        elif view.pending_check:
            ids = " ".join(i for i in view.pending_check if i != "*")
            error = Text(f"pending next EM check {ids}".rstrip(), style="cyan")
        else:
            error = Text("")
        exposures = app.exposures(view)
        if any(e.state is ExposureState.EXPOSED for e in exposures):
            self._exposed.add(view.name)
        else:
            self._exposed.discard(view.name)
        marker = health(view, len(drifts))
        if busy:
            marker = Text(LOADING, style="bold cyan")
        return [
            marker,
            name,
            Text(_site(view)),
            Text(build_name(state, knowledge, short=True)) if state else Text(DASH, style="dim"),
            em_label(state),
            service_label(state),
            ocs_label(state, app.ocs_results.get(view.name)),
            ids_label(state.applied if state else ()),
            ids_label(state.blocked if state else ()),
            Text(f"≠{len(drifts)}", style="bold yellow") if drifts else Text(DASH, style="dim"),
            fleet_cell(exposures, read=state is not None and view.failure is None),
            Text(""),  # the age: row_cells
            error,
        ]

    def totals(self) -> Text:
        views = self.console_app.views()
        states = [v.state for v in views if v.state is not None]
        em_off = sum(1 for s in states if s.em_enabled is False)
        errors = sum(1 for v in views if v.failure is not None)
        applied = sum(len(s.applied) for s in states)
        out = Text(f" {len(views)} servers · ")
        out.append(f"EM off {em_off}", style="bold red" if em_off else "")
        out.append(" · ")
        exposed = len(self._exposed)
        out.append(f"exposed {exposed}", style="bold red" if exposed else "")
        out.append(" · ")
        out.append(f"errors {errors}", style="bold red" if errors else "")
        out.append(f" · applied {applied}")
        return out

    # ----- targets ------------------------------------------------------------------------------
    def target_servers(self) -> list[str]:
        grid = self.grid
        if grid.marks:
            return [k for k in grid.row_keys if k in grid.marks]
        return [grid.cursor_key] if grid.cursor_key else []

    def on_grid_selected(self, event: Grid.Selected) -> None:
        self.console_app.open_server(event.key)


def _age_key(cell: Text) -> Any:
    """Ages sort by seconds (4s < 3m < 2h); loading and unknown last."""
    text = cell.plain
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text and text[-1] in units and text[:-1].isdigit():
        return (0, int(text[:-1]) * units[text[-1]])
    return (1, 0)
