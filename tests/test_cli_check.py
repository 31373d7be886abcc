"""`emconsole check` against one scripted lab fleet: the exact plugin exit code for each monitoring
situation, the worst finding winning (CRITICAL > WARNING > UNKNOWN > OK), levels, thresholds and
allowed EM-off servers from options and from config, perfdata, JSON, and UNKNOWN when it cannot run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from cliharness import CliLab, running_cli_lab, write_config
from emconsole.backends.lab.exchange.builds import Build

from emconsole.cli.jsonout import CheckDoc

CU15, SE45 = "2019 CU15 Feb26SU", "Exchange SE RTM Jul26SU"
FLEET = {
    1: {"exchange": {"build": CU15}},                                         # protected: fine
    2: {"exchange": {"build": CU15, "applied": ["M2"], "blocked": ["M2"]}},    # blocked, at risk
    3: {"exchange": {"build": SE45}, "faults": "ocs-unreachable"},            # fixed, OCS unreachable
    4: {"exchange": {"build": SE45, "applied": ["M2"]}},                      # obsolete (listed + rule)
    5: {"exchange": {"build": SE45, "applied": ["M2"]}},                      # leftover (EM list cleared)
    6: {"exchange": {"build": CU15, "applied": ["M2"], "mitigations_enabled": False}},  # EM off
    7: {"exchange": {"build": CU15, "applied": ["M2"], "service": "stopped"}},          # service
    8: {"exchange": {"build": CU15}, "faults": "refuse"},                     # unreachable
    9: {"exchange": {"build": CU15, "applied": [], "blocked": ["M2"]}},       # exposed
    10: {"exchange": {"build": CU15}},                                        # a CU the table lacks
}
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliLab]:
    """One lab for the whole module (each check reads only the servers it names)."""
    with running_cli_lab(tmp_path_factory.mktemp("check"), servers=len(FLEET), per_server=FLEET) as lab:
        org = lab.lab.org
        org.server("LAB-EX05").record.applied.remove("M2.1.0")  # EM's list cleared, the rule left behind
        org.server("LAB-EX10").record.build = Build("Exchange 2019", "CU16", "", "15.2.1900.5",
                                                    date(2026, 6, 1))
        yield lab


def check(fleet: CliLab, *servers: int, opts: tuple[str, ...] = ()) -> tuple[int, str]:
    args = [a for n in servers for a in ("--server", f"LAB-EX{n:02d}")]
    code, out, err = fleet.run("check", *args, *opts)
    assert "Traceback" not in err
    return code, out


@pytest.mark.parametrize(
    ("servers", "expected", "words"),
    [
        ((1,), OK, "all 1 servers fine"),
        ((2,), WARNING, "1 blocked, 1 at risk"),
        ((3,), WARNING, "1 ocs unreachable"),
        ((4,), WARNING, "1 obsolete"),
        ((5,), WARNING, "1 leftover"),
        ((6,), CRITICAL, "1 em off"),
        ((7,), CRITICAL, "1 service not running"),
        ((8,), CRITICAL, "1 unreachable"),
        ((9,), CRITICAL, "1 exposed"),
        ((10,), UNKNOWN, "1 exposure unknown"),
        ((3, 10), WARNING, "WARNING"),             # WARNING beats UNKNOWN
        ((1, 2, 9, 10), CRITICAL, "CRITICAL"),      # CRITICAL beats everything
        ((1, 10), UNKNOWN, "UNKNOWN"),             # UNKNOWN beats OK
    ],
)
def test_exit_code_per_situation(fleet: CliLab, servers: tuple[int, ...], expected: int, words: str) -> None:
    code, out = check(fleet, *servers)
    assert code == expected, out
    status = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}[expected]
    assert out.startswith(f"EMCONSOLE {status} - "), out
    assert words in out
    assert len(out.splitlines()) == 1, "one summary line (details only with -v)"


def test_perfdata_and_verbose_lines(fleet: CliLab) -> None:
    code, out = check(fleet, 1, 2, 9, opts=("-v",))
    assert code == CRITICAL
    first, *details = out.splitlines()
    _, _, perf = first.partition(" | ")
    values = dict(re.findall(r"(\w+)=(\d+);;;0", perf))
    assert values["servers"] == "3" and values["exposed"] == "1" and values["blocked"] == "2"
    assert values["at_risk"] == "1" and values["em_off"] == "0"
    assert "[CRITICAL] LAB-EX09: exposed to CVE-2026-42897: blocked (M2)" in details
    assert any(d.startswith("[WARNING] LAB-EX02:") for d in details)


def test_levels_thresholds_and_em_off_ok(fleet: CliLab) -> None:
    assert check(fleet, 2, opts=("--ignore", "blocked", "--level", "at_risk=ignore"))[0] == OK
    assert check(fleet, 3, opts=("--level", "ocs_unreachable=critical"))[0] == CRITICAL
    # two servers with critical findings, CRITICAL only from three: WARNING
    assert check(fleet, 6, 7, opts=("--critical-threshold", "3"))[0] == WARNING
    assert check(fleet, 6, 7, opts=("-c", "2"))[0] == CRITICAL
    assert check(fleet, 2, 3, opts=("-w", "3"))[0] == OK
    # EM meant to be off there: what is left is the protection being at risk (EM would not restore it)
    code, out = check(fleet, 6, opts=("--em-off-ok", "lab-ex06"))
    assert code == WARNING and "em off" not in out and "1 at risk" in out


def test_policy_from_config_and_options_win(fleet: CliLab, tmp_path: Path) -> None:
    config = tmp_path / "policy.toml"
    write_config(fleet.lab, config, fleet.audit_path,
                 '[check]\nlevels = { ocs_unreachable = "ignore" }\nem_off_ok = ["LAB-EX06"]\n')
    policy = CliLab(fleet.lab, config, fleet.audit_path)
    assert policy.run("check", "--server", "LAB-EX03")[0] == OK
    assert policy.run("check", "--server", "LAB-EX06")[0] == WARNING
    assert policy.run("check", "--server", "LAB-EX03", "--level", "ocs_unreachable=warning")[0] == WARNING


def test_json_verdict_matches_its_schema(fleet: CliLab) -> None:
    code, out, _ = fleet.run("check", "--server", "LAB-EX02", "--server", "LAB-EX09", "--format", "json")
    doc = CheckDoc.model_validate_json(out)
    assert code == CRITICAL == doc.exit_code and doc.status == "CRITICAL" and doc.servers == 2
    assert {(f.server, f.code.value, f.level) for f in doc.findings} == {
        ("LAB-EX02", "blocked", "warning"), ("LAB-EX02", "at_risk", "warning"),
        ("LAB-EX09", "blocked", "warning"), ("LAB-EX09", "exposed", "critical")}


def test_a_check_that_cannot_run_is_unknown(fleet: CliLab, tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("concurrency = 'many'\n", encoding="utf-8")
    code, out, err = fleet.run("check", "--config", str(broken), config=False)
    assert code == UNKNOWN and out.startswith("EMCONSOLE UNKNOWN - ") and "concurrency" in err
    for bad in (("--level", "nonsense=critical"), ("--level", "blocked=ok"), ("--server", "NOPE"),
                ("--cve", "CVE-1999-0001"), ("-c", "0")):
        code, out, err = fleet.run("check", *bad)
        assert code == UNKNOWN, bad
        assert out.startswith("EMCONSOLE UNKNOWN - ") and err.startswith("emconsole: ")
        assert "Traceback" not in err
