"""The command log (every script sent) and the audit log (every change, newest first).

Both poll their source once a second instead of subscribing: the command log's listeners run on
the engine's worker threads, and a poll of a bounded in-memory list is cheaper than marshalling
each entry across threads while a 500-server refresh streams in.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from emconsole.screens.base import TableScreen
from emconsole.screens.format import DASH, clip
from emconsole.screens.grid import Column, Grid
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

if TYPE_CHECKING:
    from emconsole.audit import AuditLog
    from emconsole.commandlog import CommandLog, CommandLogEntry


class TextViewer(ModalScreen[None]):
    """A scrollable plain-text view (full script and raw output, a whole audit record)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "close", "Close", id="viewer.close")]
    AUTO_FOCUS = "VerticalScroll"

    def __init__(self, title: str, body: Text) -> None:
        super().__init__()
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(self.title_text, style="bold"))
            with VerticalScroll():
                yield Static(self.body)

    def action_close(self) -> None:
        self.dismiss(None)


class CommandLogScreen(TableScreen):
    """Target, time, duration, exit, first error line; enter shows the script and raw output."""

    TITLE_TEXT = "Command log"
    BINDING_GROUP_TITLE = "Command log"

    def __init__(self) -> None:
        super().__init__()
        self._count = 0
        self._entries: list[CommandLogEntry] = []

    def columns(self) -> list[Column]:
        return [
            Column("time", "Started (UTC)", max_width=19),
            Column("target", "Target", max_width=20),
            Column("took", "Took", max_width=7),
            Column("trips", "Trips", max_width=5),
            Column("exit", "Exit", max_width=5),
            Column("bytes", "Bytes", max_width=8),
            Column("error", "First error line", max_width=100),
        ]

    def _log(self) -> CommandLog | None:
        engine = self.console_app.engine
        return getattr(engine, "command_log", None) if engine is not None else None

    def on_mount(self) -> None:
        super().on_mount()
        self._poll()
        self.set_interval(1.0, self._poll)

    def _poll(self) -> None:
        log = self._log()
        entries = log.entries() if log is not None else []
        if entries and len(entries) == self._count and entries[-1] is self._entries[-1]:
            return
        self._entries = entries
        self._count = len(entries)
        self.grid.clear()
        # Newest first; the key is the position so enter finds the entry.
        for i in range(len(entries) - 1, -1, -1):
            e = entries[i]
            exit_style = "red" if e.exit_code not in (0, None) or e.failure_kind else ""
            self.grid.set_row(str(i), [
                Text(f"{e.started:%Y-%m-%d %H:%M:%S}"), Text(e.target), Text(f"{e.duration:.2f}s"),
                Text(str(e.round_trips)),
                Text(DASH if e.exit_code is None else str(e.exit_code), style=exit_style),
                Text(str(e.bytes)), Text(clip(e.first_error_line or e.failure_kind, 100), style="red"),
            ], highlight=False)

    def on_grid_selected(self, event: Grid.Selected) -> None:
        e = self._entries[int(event.key)]
        body = Text()
        body.append(f"{e.target} · {e.started:%Y-%m-%d %H:%M:%S} UTC · {e.duration:.2f}s · exit {e.exit_code}"
                    f" · {e.round_trips} round trips · {e.bytes} bytes\n", style="bold")
        if e.first_error_line:
            body.append(e.first_error_line + "\n", style="red")
        body.append("\n─ script ─\n", style="bold")
        body.append(e.script + "\n")
        body.append("\n─ raw output ─\n", style="bold")
        body.append(e.raw_output)
        self.app.push_screen(TextViewer(f"Command on {e.target}", body))


class AuditLogScreen(TableScreen):
    """Each change: intent and result joined; an intent with no result is "outcome unknown"."""

    TITLE_TEXT = "Audit log"
    BINDING_GROUP_TITLE = "Audit log"

    def __init__(self) -> None:
        super().__init__()
        self._records: dict[str, dict[str, Any]] = {}
        self._record_count = -1

    def columns(self) -> list[Column]:
        return [
            Column("time", "Time (UTC)", max_width=19),
            Column("operator", "Operator", max_width=14),
            Column("action", "Action", max_width=12),
            Column("target", "Target", max_width=20),
            Column("ids", "IDs", max_width=16),
            Column("outcome", "Outcome", max_width=16),
            Column("detail", "Detail", max_width=80),
        ]

    def _audit(self) -> AuditLog | None:
        engine = self.console_app.engine
        return getattr(engine, "audit", None) if engine is not None else None

    def on_mount(self) -> None:
        super().on_mount()
        self._poll()
        self.set_interval(2.0, self._poll)

    def _poll(self) -> None:
        audit = self._audit()
        records = audit.records() if audit is not None else []
        if len(records) == self._record_count:
            return
        self._record_count = len(records)
        unknown = {u.intent_id for u in audit.unknown_outcomes()} if audit is not None else set()
        results = {r.get("id"): r for r in records if r.get("kind") == "result"}
        intents = [r for r in records if r.get("kind") == "intent"]
        self.grid.clear()
        self._records.clear()
        for rec in reversed(intents):
            rid = str(rec.get("id", ""))
            res = results.get(rid)
            if res is not None:
                outcome = Text(str(res.get("outcome", "")),
                               style="red" if res.get("outcome") == "failed" else "")
            elif rid in unknown:
                outcome = Text("outcome unknown", style="bold red")
            else:
                outcome = Text("running", style="cyan")
            self._records[rid] = {"intent": rec, "result": res}
            self.grid.set_row(rid, [
                Text(str(rec.get("time", ""))[:19].replace("T", " ")), Text(str(rec.get("operator", ""))),
                Text(str(rec.get("action", ""))), Text(str(rec.get("target", ""))),
                Text(" ".join(str(i) for i in rec.get("mitigation_ids") or ())), outcome,
                Text(clip(str((res or {}).get("detail", "")), 80)),
            ], highlight=False)

    def on_grid_selected(self, event: Grid.Selected) -> None:
        pair = self._records.get(event.key)
        if pair is not None:
            body = Text(json.dumps(pair, indent=2, ensure_ascii=False, default=str))
            self.app.push_screen(TextViewer("Audit record", body))
