"""`emconsole lab` in a subprocess: the ready line is enough to point plain pywinrm at it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import winrm


def test_lab_command_serves_until_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "lab.toml"
    env = {**os.environ, "EMCONSOLE_LAB_PASSWORD": "S3cret-lab!"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emconsole",
            "lab",
            "--servers",
            "3",
            "--port",
            "0",
            "--scheme",
            "https",
            "--faults",
            "refuse:3",
            "--write-config",
            str(config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.match(
            r"lab ready: 3 servers .*first port (\d+), scheme https, auth basic, user (\S+), "
            r"ca (\S+), config (\S+)$",
            line.strip(),
        )
        assert match, line
        port, user, ca = int(match.group(1)), match.group(2), match.group(3)
        s = winrm.Session(
            f"https://127.0.0.1:{port + 1}/wsman",
            auth=(user, "S3cret-lab!"),
            transport="ssl",
            ca_trust_path=ca,
            proxy=None,
        )
        assert s.run_ps("$env:COMPUTERNAME").std_out == b"LAB-EX02\r\n"
        text = config.read_text()
        assert text.count("[[servers]]") == 3 and 'name = "LAB-EX02"' in text
        assert 'password_from = "env:EMCONSOLE_LAB_PASSWORD"' in text and "S3cret" not in text
        assert f'ca_bundle = "{ca}"' in text
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "lab counters: 5 requests" in out
    assert "S3cret" not in out + err


def test_lab_command_rejects_a_bad_fault_spec() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "emconsole", "lab", "--port", "0", "--faults", "explode"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and "unknown fault 'explode'" in proc.stderr
