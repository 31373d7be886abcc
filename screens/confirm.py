"""The confirm modal: what will happen on which servers, and the exact PowerShell that will run.

Destructive default is No (the Cancel button has the focus); from the bulk threshold on, the
operator types the number of servers before the run button works. Dry run shows the plan's result
without sending anything. One action may be several plans of one kind (deleting the leftovers of
different mitigations: one plan per set of IDs); they are confirmed, counted and run together.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING, ClassVar

from emconsole.screens.app import plans_title
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from emconsole.models import ActionKind, ActionScope

if TYPE_CHECKING:
    from emconsole.engine import ActionPlan

SCRIPTS_SHOWN = 3  # full scripts shown; the command log keeps every script sent

_WHAT = {
    ActionKind.REAPPLY: "restarts MSExchangeMitigation; EM re-checks OCS about 10 minutes later",
    ActionKind.BLOCK: "blocks future application; what is applied stays until deleted",
    ActionKind.UNBLOCK: "removes the IDs from the block list; EM applies them at its next run",
    ActionKind.DELETE: "backs up, then removes the artifacts on the server",
    ActionKind.ENABLE: "sets MitigationsEnabled to True",
    ActionKind.DISABLE: "sets MitigationsEnabled to False: EM stops applying mitigations",
    ActionKind.RESTORE: "restores artifacts from a backup on the server",
    ActionKind.TEST_OCS: "tests the connection to the Office Config Service",
}


class Decision(str, Enum):
    """What the operator chose."""

    RUN = "run"
    DRY_RUN = "dry_run"
    CANCEL = "cancel"


def affected(plans: Sequence[ActionPlan]) -> int:
    """How many servers the change reaches: every server for an organisation change, else one per
    server with a step."""
    if any(p.request.scope is ActionScope.ORG for p in plans):
        return len({s for p in plans for s in p.request.servers})
    return len({step.server for p in plans for step in p.steps})


def needs_count(plans: Sequence[ActionPlan], threshold: int) -> int | None:
    """The number to type, or None when the change is small enough to confirm with a key."""
    count = affected(plans)
    return count if threshold > 0 and count >= threshold else None


class ConfirmScreen(ModalScreen[Decision]):
    """Confirm (or dry-run, or cancel) one planned action."""

    BINDING_GROUP_TITLE = "Confirm"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "cancel", "Cancel", id="confirm.cancel"),
        Binding("w", "dry_run", "Dry run", id="confirm.dry_run"),
    ]

    def __init__(self, plans: Sequence[ActionPlan], *, bulk_threshold: int = 3,
                 refused: Sequence[str] = ()) -> None:
        super().__init__()
        self.plans = tuple(plans)
        self.refused = tuple(refused)
        self.required = needs_count(self.plans, bulk_threshold)

    def compose(self) -> ComposeResult:
        req = self.plans[0].request
        with Vertical(id="dialog"):
            yield Static(Text(plans_title(self.plans), style="bold"), id="confirm-title")
            yield Static(self._summary(), id="confirm-summary")
            with VerticalScroll(id="confirm-script"):
                yield Static(self._scripts(), id="confirm-script-text")
            with Horizontal(id="confirm-buttons"):
                if self.required is not None:
                    yield Static(Text(f"Type {self.required} to confirm:"), id="confirm-count-label")
                    yield Input(id="confirm-count", restrict=r"\d*",
                                max_length=6)
                yield Button("Dry run", id="dry-run")
                yield Button("Cancel", id="cancel", variant="primary")
                run = Button(_verb(req.kind, req.scope), id="run", variant="error")
                run.disabled = self.required is not None
                yield run

    def on_mount(self) -> None:
        if self.required is not None:
            self.query_one("#confirm-count", Input).focus()
        else:
            self.query_one("#cancel", Button).focus()

    def _summary(self) -> Text:
        plans = self.plans
        req = plans[0].request
        servers = list(dict.fromkeys(step.server for p in plans for step in p.steps))
        text = Text()
        if req.scope is ActionScope.ORG:
            step = plans[0].steps[0]
            text.append(f"organisation-wide, run once on {step.server}; "
                        f"affects all {len(req.servers)} servers")
            if step.fallbacks:
                text.append(f" (if {step.server} cannot be reached: {', '.join(step.fallbacks[:3])}, …)")
            text.append("\n")
        else:
            text.append(f"{len(servers)} server(s): {_some(servers)}\n")
        if len(plans) > 1:
            for plan in plans:
                text.append(f"  {', '.join(plan.request.mitigation_ids)} on "
                            f"{_some([step.server for step in plan.steps])}\n")
        text.append(_WHAT.get(req.kind, ""))
        if req.kind is ActionKind.DELETE and req.also_block:
            text.append(" — and blocks them so they do not come back")
        skipped = [item for plan in plans for item in plan.skipped]
        for name, why in skipped[:5]:
            text.append(f"\nleft out: {name}: {why}", style="yellow")
        if len(skipped) > 5:
            text.append(f"\n… and {len(skipped) - 5} more left out", style="yellow")
        for why in self.refused:
            text.append(f"\nleft out: {why}", style="yellow")
        return text

    def _scripts(self) -> Text:
        text = Text()
        steps = [step for plan in self.plans for step in plan.steps]
        for step in steps[:SCRIPTS_SHOWN]:
            text.append(f"─ PowerShell ({step.server}) ─\n", style="bold")
            if getattr(step, "summary", ""):
                text.append(f"# {step.summary}\n", style="dim")
            text.append(step.script_text.rstrip() + "\n\n")
        if len(steps) > SCRIPTS_SHOWN:
            text.append(f"… {len(steps) - SCRIPTS_SHOWN} more servers get the same body with their own "
                        "inputs; the command log keeps every script sent.\n", style="italic")
        return text

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "confirm-count":
            self.query_one("#run", Button).disabled = event.value.strip() != str(self.required)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "confirm-count" and not self.query_one("#run", Button).disabled:
            self.query_one("#run", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        choices = {"run": Decision.RUN, "dry-run": Decision.DRY_RUN}
        self.dismiss(choices.get(event.button.id or "", Decision.CANCEL))

    def action_cancel(self) -> None:
        self.dismiss(Decision.CANCEL)

    def action_dry_run(self) -> None:
        self.dismiss(Decision.DRY_RUN)


def _some(names: Sequence[str], shown: int = 8) -> str:
    """The first few names, and how many more."""
    return ", ".join(names[:shown]) + (f" … (+{len(names) - shown})" if len(names) > shown else "")


def _verb(kind: ActionKind, scope: ActionScope) -> str:
    word = {ActionKind.ENABLE: "Enable", ActionKind.DISABLE: "Disable"}.get(kind, kind.value.capitalize())
    return f"{word} org" if scope is ActionScope.ORG else word


class YesNoScreen(ModalScreen[bool]):
    """A plain question; No has the focus."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,n", "no", "No", id="yesno.no")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(self.question, style="bold"))
            with Horizontal(id="confirm-buttons"):
                yield Button("No", id="no", variant="primary")
                yield Button("Yes", id="yes", variant="error")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_no(self) -> None:
        self.dismiss(False)
