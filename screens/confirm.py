"""The confirm modal: what will happen on which servers, and the exact PowerShell that will run.

Destructive default is No (the Cancel button has the focus); from the bulk threshold on, the
operator types the number of servers before the run button works. Dry run shows the plan's result
without sending anything.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, ClassVar

from emconsole.screens.app import plan_title
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


def affected(plan: ActionPlan) -> int:
    """How many servers the change reaches: every server for an organisation change, else one per step."""
    if plan.request.scope is ActionScope.ORG:
        return len(plan.request.servers)
    return len(plan.steps)


def needs_count(plan: ActionPlan, threshold: int) -> int | None:
    """The number to type, or None when the change is small enough to confirm with a key."""
    count = affected(plan)
    return count if threshold > 0 and count >= threshold else None


class ConfirmScreen(ModalScreen[Decision]):
    """Confirm (or dry-run, or cancel) one planned action."""

    BINDING_GROUP_TITLE = "Confirm"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "cancel", "Cancel", id="confirm.cancel"),
        Binding("w", "dry_run", "Dry run", id="confirm.dry_run"),
    ]

    def __init__(self, plan: ActionPlan, *, bulk_threshold: int = 3) -> None:
        super().__init__()
        self.plan = plan
        self.required = needs_count(plan, bulk_threshold)

    def compose(self) -> ComposeResult:
        plan = self.plan
        req = plan.request
        with Vertical(id="dialog"):
            yield Static(Text(plan_title(plan), style="bold"), id="confirm-title")
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
        req = self.plan.request
        servers = [step.server for step in self.plan.steps]
        shown = ", ".join(servers[:8]) + (f" … (+{len(servers) - 8})" if len(servers) > 8 else "")
        text = Text()
        if req.scope is ActionScope.ORG:
            step = self.plan.steps[0]
            text.append(f"organisation-wide, run once on {step.server}; "
                        f"affects all {len(req.servers)} servers")
            if step.fallbacks:
                text.append(f" (if {step.server} cannot be reached: {', '.join(step.fallbacks[:3])}, …)")
            text.append("\n")
        else:
            text.append(f"{len(servers)} server(s): {shown}\n")
        text.append(_WHAT.get(req.kind, ""))
        if req.kind is ActionKind.DELETE and req.also_block:
            text.append(" — and blocks them so they do not come back")
        for name, why in self.plan.skipped[:5]:
            text.append(f"\nleft out: {name}: {why}", style="yellow")
        if len(self.plan.skipped) > 5:
            text.append(f"\n… and {len(self.plan.skipped) - 5} more left out", style="yellow")
        return text

    def _scripts(self) -> Text:
        text = Text()
        steps = list(self.plan.steps)
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
