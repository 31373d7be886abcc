"""The operator's actions, shared by the fleet, detail and matrix screens.

A screen says which servers (cursor row or marked set) and, where it knows, which mitigation; this
mixin turns a key into ``app.start_action`` (plan → confirm → execute). Kinds are named by value
("block") so this module, part of the first frame, does not import the domain model. In read-only mode
``check_action`` returns None, which greys the key out in the footer and blocks it; the engine
refuses as well.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from emconsole.screens.app import CHANGE_ACTIONS
from textual.binding import Binding, BindingType
from textual.screen import Screen

if TYPE_CHECKING:
    from emconsole.screens.app import EmConsoleApp

ACTION_BINDINGS: list[BindingType] = [
    Binding("a", "reapply", "Reapply", id="action.reapply"),
    Binding("b", "block", "Block", id="action.block"),
    Binding("u", "unblock", "Unblock", id="action.unblock"),
    Binding("d", "delete", "Delete", id="action.delete"),
    Binding("e", "enable_em", "EM on", id="action.enable_em"),
    Binding("x", "disable_em", "EM off", id="action.disable_em"),
    Binding("E", "enable_org", "Org EM on", show=False, id="action.enable_org"),
    Binding("X", "disable_org", "Org EM off", show=False, id="action.disable_org"),
    Binding("o", "test_ocs", "OCS test", show=False, id="action.test_ocs"),
]


class ServerActions(Screen[None]):
    """Mixin base for screens whose rows are (or point at) servers."""

    ACTION_BINDINGS: ClassVar[list[BindingType]] = ACTION_BINDINGS
    #: (action, title, help) the command palette offers on this screen besides the common actions.
    PALETTE_ACTIONS: ClassVar[list[tuple[str, str, str]]] = []

    def target_servers(self) -> list[str]:
        """The marked servers, or the one under the cursor."""
        raise NotImplementedError

    def target_mitigations(self) -> list[str] | None:
        """The mitigation under the cursor, or None: ask the operator."""
        return None

    def candidate_mitigations(self) -> list[str]:
        """IDs to offer when the screen cannot tell which mitigation is meant."""
        app = cast("EmConsoleApp", self.app)
        ids: dict[str, None] = {}
        targets = set(self.target_servers())
        for view in app.views():
            if view.name in targets and view.state is not None:
                for mid in (*view.state.applied, *view.state.blocked):
                    ids.setdefault(mid, None)
        for entry in app.knowledge.catalogue.entries:
            ids.setdefault(entry.id, None)
        return list(ids)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        app = cast("EmConsoleApp", self.app)
        if action in CHANGE_ACTIONS and app.read_only:
            return None
        if (action in CHANGE_ACTIONS or action == "test_ocs") and app.engine is None:
            return None
        return True

    def palette_action(self, action: str) -> None:
        """Run one of the action_* methods by name (the command palette)."""
        if self.check_action(action, ()) is True:
            getattr(self, f"action_{action}")()

    def _with_ids(self, kind: str) -> None:
        app = cast("EmConsoleApp", self.app)
        servers = self.target_servers()

        def start(ids: list[str]) -> None:
            app.start_action(kind, servers, ids)

        ids = self.target_mitigations()
        if ids:
            start(ids)
            return
        from emconsole.screens.picker import MitigationPicker

        def picked(chosen: list[str] | None) -> None:
            if chosen:
                start(chosen)

        app.push_screen(MitigationPicker(kind, self.candidate_mitigations()), picked)

    def action_reapply(self) -> None:
        cast("EmConsoleApp", self.app).start_action("reapply", self.target_servers())

    def action_block(self) -> None:
        self._with_ids("block")

    def action_unblock(self) -> None:
        self._with_ids("unblock")

    def action_delete(self) -> None:
        self._with_ids("delete")

    def action_enable_em(self) -> None:
        cast("EmConsoleApp", self.app).start_action("enable", self.target_servers())

    def action_disable_em(self) -> None:
        cast("EmConsoleApp", self.app).start_action("disable", self.target_servers())

    def _org(self, kind: str) -> None:
        app = cast("EmConsoleApp", self.app)
        servers = [v.name for v in app.views()]
        app.start_action(kind, servers, scope="org")

    def action_enable_org(self) -> None:
        self._org("enable")

    def action_disable_org(self) -> None:
        self._org("disable")

    def action_test_ocs(self) -> None:
        cast("EmConsoleApp", self.app).start_ocs_test(self.target_servers())
