"""Monitoring findings for ``emconsole check``: what is wrong where, how bad, and the plugin verdict.

Nagios/Icinga plugin conventions: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; the worst finding
wins in the order CRITICAL > WARNING > UNKNOWN > OK. Default levels (issue #7, #9):
- critical: EM off where it should be on, the EM service not running, a server that could not be
  read, a server exposed to a CVE;
- warning: a mitigation blocked on a server not fixed for its CVE, OCS unreachable, a mitigation
  applied (listed by EM, artifacts present) on a build that has the fix ("obsolete"), a protection
  at risk, leftovers (artifacts on a fixed build that EM no longer lists). An ID EM still lists on a
  fixed build with nothing left on the server is not a finding: there is nothing to remove;
- unknown: exposure that cannot be decided (build not in the table, fix not known).
Which findings count and how much is policy (``CheckSettings``: config ``[check]`` and options),
kept apart from the facts so the console could show the same findings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from emconsole.exposure import Exposure, ExposureState, Reason, ViewLike, assess_fleet
from emconsole.knowledge import FixStatus, Knowledge
from emconsole.serverfacts import build_of, ids_matching, ocs_reachable


class Level(str, Enum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"
    IGNORE = "ignore"


#: Plugin exit codes.
EXIT_CODES = {Level.OK: 0, Level.WARNING: 1, Level.CRITICAL: 2, Level.UNKNOWN: 3}
#: Which level wins when findings disagree (first wins).
PRECEDENCE = (Level.CRITICAL, Level.WARNING, Level.UNKNOWN, Level.OK)


class FindingCode(str, Enum):
    UNREACHABLE = "unreachable"
    EM_OFF = "em_off"
    SERVICE_NOT_RUNNING = "service_not_running"
    EXPOSED = "exposed"
    BLOCKED = "blocked"
    OCS_UNREACHABLE = "ocs_unreachable"
    OBSOLETE = "obsolete"
    AT_RISK = "at_risk"
    LEFTOVER = "leftover"
    EXPOSURE_UNKNOWN = "exposure_unknown"


DEFAULT_LEVELS: dict[FindingCode, Level] = {
    FindingCode.UNREACHABLE: Level.CRITICAL,
    FindingCode.EM_OFF: Level.CRITICAL,
    FindingCode.SERVICE_NOT_RUNNING: Level.CRITICAL,
    FindingCode.EXPOSED: Level.CRITICAL,
    FindingCode.BLOCKED: Level.WARNING,
    FindingCode.OCS_UNREACHABLE: Level.WARNING,
    FindingCode.OBSOLETE: Level.WARNING,
    FindingCode.AT_RISK: Level.WARNING,
    FindingCode.LEFTOVER: Level.WARNING,
    FindingCode.EXPOSURE_UNKNOWN: Level.UNKNOWN,
}


class CheckSettings(BaseModel):
    """``[check]`` in config (options override it): levels per finding, where EM may be off, thresholds.

    ``critical_threshold``: CRITICAL only when at least this many servers have a critical finding
    (fewer: WARNING). ``warning_threshold``: WARNING only from this many servers with a warning
    finding (fewer: OK, still listed). Defaults 1: any finding counts.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    levels: dict[FindingCode, Level] = Field(default_factory=dict)
    em_off_ok: tuple[str, ...] = ()
    critical_threshold: int = Field(default=1, ge=1)
    warning_threshold: int = Field(default=1, ge=1)

    @field_validator("levels")
    @classmethod
    def _no_ok(cls, value: dict[FindingCode, Level]) -> dict[FindingCode, Level]:
        if Level.OK in value.values():
            raise ValueError('a finding level is "critical", "warning", "unknown" or "ignore"')
        return value

    def level(self, code: FindingCode) -> Level:
        return self.levels.get(code, DEFAULT_LEVELS[code])

    def merged(self, other: CheckSettings) -> CheckSettings:
        """``other`` (the command line) over these settings (config)."""
        fields = other.model_fields_set
        return CheckSettings(
            levels={**self.levels, **other.levels},
            em_off_ok=(*self.em_off_ok, *other.em_off_ok),
            critical_threshold=other.critical_threshold if "critical_threshold" in fields
            else self.critical_threshold,
            warning_threshold=other.warning_threshold if "warning_threshold" in fields
            else self.warning_threshold,
        )


class Finding(BaseModel):
    """One thing wrong on one server (``cve`` / ``mitigation_id`` when it is about one)."""

    model_config = ConfigDict(frozen=True)

    server: str
    code: FindingCode
    level: Level
    text: str
    cve: str | None = None
    mitigation_id: str | None = None


class Verdict(BaseModel):
    """The plugin result: level, exit code, the summary line, perfdata, every counted finding."""

    model_config = ConfigDict(frozen=True)

    level: Level
    exit_code: int
    summary: str
    perfdata: str
    findings: tuple[Finding, ...]
    servers: int


def _server_findings(view: ViewLike, exposures: Sequence[Exposure], knowledge: Knowledge,
                     settings: CheckSettings) -> list[tuple[FindingCode, str, str | None, str | None]]:
    """(code, text, cve, mitigation ID) of everything wrong on one server, before levels apply."""
    out: list[tuple[FindingCode, str, str | None, str | None]] = []
    state = view.state
    if view.failure is not None or state is None:
        why = view.failure.message if view.failure is not None else "not read"
        return [(FindingCode.UNREACHABLE, f"could not be read: {why}", None, None)]
    allowed_off = {n.casefold() for n in settings.em_off_ok}
    if state.em_off_at and view.name.casefold() not in allowed_off:
        where = " and ".join("the organisation" if s.value == "org" else "the server"
                             for s in state.em_off_at)
        out.append((FindingCode.EM_OFF, f"EM is off at {where}", None, None))
    svc = state.service
    if svc is None or svc.status.casefold() != "running":
        what = "not installed" if svc is None else svc.status.lower()
        out.append((FindingCode.SERVICE_NOT_RUNNING, f"the EM service is {what}", None, None))
    if ocs_reachable(state) is False:
        text = "the EM service's last check could not reach OCS"
        out.append((FindingCode.OCS_UNREACHABLE, text, None, None))
    build = build_of(state)
    for blocked in state.blocked:
        if build is None or knowledge.fix_status(build, blocked).status is not FixStatus.FIXED:
            out.append((FindingCode.BLOCKED, f"{blocked} is blocked", None, blocked))
    for exp in exposures:
        ids = ", ".join(exp.mitigation_ids)
        if exp.state is ExposureState.EXPOSED:
            out.append((FindingCode.EXPOSED, f"exposed to {exp.cve}: {exp.reasons[0].text}", exp.cve, ids))
        elif exp.at_risk:
            why = "; ".join(r.text for r in exp.reasons)
            out.append((FindingCode.AT_RISK, f"{exp.cve} protection at risk: {why}", exp.cve, ids))
        elif exp.state is ExposureState.UNKNOWN and exp.reason_codes != (Reason.NOT_READ,):
            out.append((FindingCode.EXPOSURE_UNKNOWN, f"{exp.cve}: {exp.reasons[0].text}", exp.cve, ids))
        for lo in exp.leftovers:
            listed = ids_matching(state.applied, lo.mitigation_id)
            if listed:  # EM still lists it: a mitigation in effect that the build no longer needs
                text = f"{', '.join(listed)} is applied, but this build has the fix for {exp.cve}"
                out.append((FindingCode.OBSOLETE, text, exp.cve, lo.mitigation_id))
            else:
                text = f"{lo.mitigation_id} left over on a fixed build: {', '.join(lo.artifacts)}"
                out.append((FindingCode.LEFTOVER, text, exp.cve, lo.mitigation_id))
    return out


def findings(views: Iterable[ViewLike], knowledge: Knowledge, settings: CheckSettings | None = None,
             cve: str | None = None) -> list[Finding]:
    """Every finding on every server, with its configured level (ignored ones left out)."""
    settings = settings or CheckSettings()
    out: list[Finding] = []
    for view in views:
        exposures = assess_fleet([view], knowledge, cve)
        for code, text, cve_id, mid in _server_findings(view, exposures, knowledge, settings):
            level = settings.level(code)
            if level is not Level.IGNORE:
                out.append(Finding(server=view.name, code=code, level=level, text=text, cve=cve_id,
                                   mitigation_id=mid))
    return out


def _servers_at(found: Sequence[Finding], level: Level) -> list[str]:
    return list(dict.fromkeys(f.server for f in found if f.level is level))


def verdict(found: Sequence[Finding], servers: int, settings: CheckSettings | None = None) -> Verdict:
    """The worst level after thresholds, the one-line summary and the perfdata."""
    settings = settings or CheckSettings()
    critical, warning = _servers_at(found, Level.CRITICAL), _servers_at(found, Level.WARNING)
    levels = set()
    if critical:
        levels.add(Level.CRITICAL if len(critical) >= settings.critical_threshold else Level.WARNING)
    if warning and len(warning) >= settings.warning_threshold:
        levels.add(Level.WARNING)
    if any(f.level is Level.UNKNOWN for f in found):
        levels.add(Level.UNKNOWN)
    level = next((lv for lv in PRECEDENCE if lv in levels), Level.OK)
    counts = {code: len({f.server for f in found if f.code is code}) for code in FindingCode}
    parts = [f"{n} {code.value.replace('_', ' ')}" for code, n in counts.items() if n]
    text = ", ".join(parts) if parts else f"all {servers} servers fine"
    worst = [f for lv in PRECEDENCE[:3] for f in found if f.level is lv][:3]
    detail = "; ".join(f"{f.server}: {f.text}" for f in worst)
    summary = f"EMCONSOLE {level.value.upper()} - {text}" + (f" ({detail})" if detail else "")
    perf = [f"servers={servers};;;0"]
    perf += [f"{code.value}={counts[code]};;;0;{servers}" for code in FindingCode]
    return Verdict(level=level, exit_code=EXIT_CODES[level], summary=summary, perfdata=" ".join(perf),
                   findings=tuple(found), servers=servers)
