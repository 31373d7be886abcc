"""A console killed (SIGKILL) while the lab holds its command leaves an intent with no result, which
the next start lists as "outcome unknown"."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from emconsole.audit import AuditLog
from emconsole.labconfig import LAB_PASSWORD_ENV, start_lab

CHILD = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from emconsole.audit import AuditLog
    from emconsole.backends.winrm.backend import WinRMBackend
    from emconsole.commandlog import CommandLog
    from emconsole.config import parse_config
    from emconsole.credentials import PasswordSource
    from emconsole.engine import FleetEngine
    from emconsole.models import ActionKind, ActionRequest

    async def main() -> None:
        config = parse_config(Path(sys.argv[1]).read_text())
        source = PasswordSource()
        backend = WinRMBackend(lambda s: source.password(s.password_from, s.username, s.name))
        engine = FleetEngine(config, backend, audit=AuditLog(sys.argv[2]), command_log=CommandLog())
        plan = engine.plan(ActionRequest(kind=ActionKind.REAPPLY, servers=("LAB-EX01",)))
        async for _ in engine.execute(plan):
            pass

    asyncio.run(main())
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX only")
def test_sigkill_mid_change_leaves_outcome_unknown(tmp_path: Path) -> None:
    from emconsole.cli.lab_cmd import config_text

    lab = start_lab(servers=1, faults="slow=inf:1")
    try:
        config = tmp_path / "config.toml"
        config.write_text(config_text(lab.fleet))
        audit = tmp_path / "audit.jsonl"
        env = {**os.environ, LAB_PASSWORD_ENV: lab.fleet.spec.password}
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(config), str(audit)], env=env)
        try:
            deadline = time.monotonic() + 30
            while lab.fleet.counters.snapshot()["running_commands"] < 1:
                assert child.poll() is None, "the console exited before sending its change"
                assert time.monotonic() < deadline, "the change never reached the lab"
                time.sleep(0.05)
            child.send_signal(signal.SIGKILL)
        finally:
            child.wait(10)
        unknown = AuditLog(audit).unknown_outcomes()
        assert [(u.target, u.action) for u in unknown] == [("LAB-EX01", "reapply")]
        assert unknown[0].pid == child.pid
    finally:
        lab.stop()
