"""`emconsole lab` in a subprocess: the ready line alone is enough to point plain pywinrm at it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import winrm

from emconsole.config import load_config


def test_lab_command_serves_until_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "lab.toml"
    env = {**os.environ, "EMCONSOLE_LAB_PASSWORD": "S3cret-lab!"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "emconsole", "lab", "--servers", "3", "--port", "0", "--scheme", "https",
         "--faults", "refuse:3;ocs-unreachable:2", "--clock-rate", "0", "--write-config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        match = re.match(
            r"lab ready: 3 servers \(LAB-EX01\.\.LAB-EX03\), first port (\d+), scheme https, auth basic, "
            r"user labadmin, password from \$EMCONSOLE_LAB_PASSWORD, ca (\S+), config (\S+); "
            r"pywinrm: (winrm\.Session\(.*\))$",
            line,
        )
        assert match, line
        port, ca, call = int(match.group(1)), match.group(2), match.group(4)
        assert match.group(3) == str(config)
        # the printed call, as a reviewer would paste it, reaches the first server
        first = eval(call, {"winrm": winrm, "PASSWORD": "S3cret-lab!"})
        assert first.run_ps("$env:COMPUTERNAME").std_out == b"LAB-EX01\r\n"
        second = winrm.Session(
            f"https://127.0.0.1:{port + 1}/wsman", auth=("labadmin", "S3cret-lab!"), transport="ssl",
            ca_trust_path=ca, proxy=None,
        )
        result = second.run_ps(
            "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.SnapIn\n"
            "& (Join-Path $env:ExchangeInstallPath 'Scripts\\Test-MitigationServiceConnectivity.ps1')"
        )
        assert result.status_code == 0 and b"Result: Failed." in result.std_out  # the host fault
        loaded, _ = load_config(config, environ={})
        assert [s.name for s in loaded.servers] == ["LAB-EX01", "LAB-EX02", "LAB-EX03"]
        assert loaded.servers[1].endpoint == f"https://127.0.0.1:{port + 1}/wsman"
        assert str(loaded.servers[0].ca_bundle) == ca and "S3cret" not in config.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "lab counters: 10 requests" in out
    assert "S3cret" not in out + err


def test_lab_command_rejects_a_bad_fault_spec() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "emconsole", "lab", "--port", "0", "--faults", "explode"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and "unknown fault 'explode'" in proc.stderr
    assert "ocs-unreachable" in proc.stderr  # the known names include the PowerShell-level ones


def test_ctrl_c_stops_the_lab_cleanly_even_as_a_background_job() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "emconsole", "lab", "--servers", "1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # as a shell starts a '&' job
    )
    assert proc.stdout is not None and proc.stdout.readline().startswith("lab ready: 1 servers")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "lab counters: 0 requests" in out, err
