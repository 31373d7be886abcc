"""The EM service's run: fetch the catalogue (if OCS answers), apply what fits, record what happened.

Runs hourly and about 10 minutes after the service starts, at lab-clock times scheduled by
``Organisation.sync``. Blocking only stops future application; a deleted rule comes back at the
next run unless blocked; builds older than March 2023 cannot fetch since the January 2025 change.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from emconsole.backends.lab.exchange.catalogue import Entry, parse_eocs
from emconsole.backends.lab.exchange.iis import IISPathError

if TYPE_CHECKING:
    from emconsole.backends.lab.exchange.org import LabServer

RUN_INTERVAL = timedelta(hours=1)
START_DELAY = timedelta(minutes=10)
LOG_DIR = "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\Logging\\MitigationService"


def run_em(server: LabServer, at: datetime) -> None:
    """One run of the EM service on ``server`` at lab time ``at``."""
    org = server.org
    record = server.record
    server.last_run = at
    if server.faults.ocs_unreachable or not record.build.can_fetch:
        server.ocs_ok = False
        reason = (
            "Unable to connect to the remote server (officeclient.microsoft.com:443)"
            if server.faults.ocs_unreachable
            else "The remote certificate is invalid according to the validation procedure."
        )
        _log(
            server, at, "Error", 1008, f"Failed to fetch mitigations from the Office Config Service. {reason}"
        )
        return
    server.ocs_ok = True
    entries = parse_eocs(org.catalogue.xml())
    server.known = {e.id: e for e in entries}
    enabled = org.directory.org.mitigations_enabled and record.mitigations_enabled
    if not enabled:
        where = "organization" if not org.directory.org.mitigations_enabled else "server"
        _log(
            server,
            at,
            "Information",
            1005,
            f"Fetched {len(entries)} mitigation(s). Mitigations are disabled at the {where} level; "
            "nothing was applied.",
        )
        return
    results: dict[str, str] = {}
    for entry in entries:
        if not entry.fits(record.build):
            results[entry.id] = "NotApplicable"
        elif org.directory.is_blocked(entry.id, record):
            results[entry.id] = "Blocked"
        else:
            results[entry.id] = apply_entry(server, entry, at)
    server.results = results
    applied = [i for i, s in results.items() if s == "Applied"]
    blocked = [i for i, s in results.items() if s == "Blocked"]
    _log(
        server,
        at,
        "Information",
        1005,
        f"Mitigation check completed. Fetched {len(entries)} mitigation(s); applicable and applied: "
        f"{', '.join(applied) or 'none'}; blocked: {', '.join(blocked) or 'none'}.",
    )


def apply_entry(server: LabServer, entry: Entry, at: datetime) -> str:
    """Apply one entry; returns Applied or Failed and records 1006 when something changed."""
    changed: list[str] = []
    try:
        for action in entry.actions:
            if action.type == "IISUrlRewrite":
                changed += server.iis.merge_rewrite(server.iis.location(action.target), action.value)
            elif action.type == "Service":
                service = server.windows.service(action.value)
                if service is None:
                    raise LookupError(f"service {action.value} not found")
                if service.status != "Stopped" or service.start_type != "Disabled":
                    server.windows.stop(service.name)
                    service.start_type = "Disabled"
                    changed.append(service.name)
            elif action.type == "AppPool":
                if action.value not in server.iis.pools:
                    raise LookupError(f"application pool {action.value} not found")
                if server.iis.pools[action.value] != "Stopped":
                    server.iis.pools[action.value] = "Stopped"
                    changed.append(action.value)
    except (IISPathError, LookupError) as exc:
        _log(server, at, "Error", 1008, f"Failed to apply mitigation {entry.id}: {exc}")
        return "Failed"
    with server.org.directory.lock:
        record = server.record
        if entry.id not in record.applied:
            record.applied.append(entry.id)
            changed.append(entry.id)
        if changed:
            record.applied_time = at
    if changed and entry.id != "PING1":
        _log(server, at, "Information", 1006, f"Mitigation {entry.id} applied successfully. {entry.desc}")
    return "Applied"


def _log(server: LabServer, at: datetime, level: str, event_id: int, message: str) -> None:
    server.windows.write_event(event_id, at, level, message)
    path = f"{LOG_DIR}\\MitigationService_{at:%Y%m%d}-1.LOG"
    old = server.windows.read_file(path) or ""
    kind = "FetchMitigation" if event_id != 1006 else "ApplyMitigation"
    log_level = "Warning" if level == "Error" else "Info"
    line = f"{at:%Y-%m-%dT%H:%M:%S.000Z},{kind},S:LogLevel={log_level};S:Message={message}\r\n"
    server.windows.write_file(path, old + line, at)
