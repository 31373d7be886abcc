"""Command palette entries that depend on the state: servers, mitigations, actions, modes.

Servers and mitigations are searchable but not listed on an empty query (``discover=False``), so a
500-server fleet does not flood the palette.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.app import SystemCommand
from textual.screen import Screen

if TYPE_CHECKING:
    from emconsole.screens.app import EmConsoleApp

_ACTIONS = [
    ("reapply", "Reapply", "restart the EM service on the selected servers"),
    ("block", "Block", "block a mitigation on the selected servers"),
    ("unblock", "Unblock", "unblock a mitigation on the selected servers"),
    ("delete", "Delete", "remove a mitigation's artifacts (and block it) on the selected servers"),
    ("enable_em", "Enable EM on servers", "set MitigationsEnabled on the selected servers"),
    ("disable_em", "Disable EM on servers", "clear MitigationsEnabled on the selected servers"),
    ("enable_org", "Enable EM for the organisation", "Set-OrganizationConfig -MitigationsEnabled $true"),
    ("disable_org", "Disable EM for the organisation", "Set-OrganizationConfig -MitigationsEnabled $false"),
    ("test_ocs", "Test OCS connectivity", "from the selected servers (read-only)"),
]


def console_commands(app: EmConsoleApp, screen: Screen[Any]) -> Iterable[SystemCommand]:
    """The console's own palette commands for ``screen``."""
    from emconsole.screens.actions import ServerActions

    if isinstance(screen, ServerActions):
        for action, title, help_text in [*_ACTIONS, *screen.PALETTE_ACTIONS]:
            if screen.check_action(action, ()) is True:
                yield SystemCommand(title, help_text, partial(screen.palette_action, action))
    if app.read_only:
        yield SystemCommand("Read-write mode", "allow changes again (asks first)", app.action_leave_read_only)
    else:
        yield SystemCommand("Read-only mode", "refuse every change from now on",
                            partial(app.set_read_only, True))
    yield SystemCommand("Pause / resume auto-refresh", "keep the screen still", app.action_toggle_pause)
    yield SystemCommand("Refresh now", "read every server again", app.action_refresh_now)
    yield SystemCommand("Matrix", "mitigations × servers", app.action_matrix)
    yield SystemCommand("Mitigation list", "every mitigation on every server", app.action_mitigations)
    yield SystemCommand("Exposure", "which servers are exposed to which CVE, and why", app.action_exposure)
    yield SystemCommand("Command log", "every script sent", app.action_command_log)
    yield SystemCommand("Audit log", "every change, newest first", app.action_audit_log)
    yield SystemCommand("Last action results", "reopen the summary", app.action_results)
    for view in app.views():
        yield SystemCommand(f"Go to server {view.name}", "open its detail",
                            partial(app.open_server, view.name), discover=False)
    for entry in app.knowledge.catalogue.entries:
        yield SystemCommand(f"Go to mitigation {entry.id}", entry.description[:80] or "in the matrix",
                            partial(app.action_matrix, entry.id), discover=False)
    for cve in app.knowledge.catalogue.cves():
        yield SystemCommand(f"Exposure to {cve}", "its cells in the Exposure view, worst first",
                            partial(app.action_exposure, cve), discover=False)
