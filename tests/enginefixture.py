"""An engine on a started lab for engine tests: real pywinrm, real WS-Management, emulated Exchange."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from emconsole.audit import AuditLog
from emconsole.commandlog import CommandLog
from emconsole.engine import FleetEngine, ServerView
from emconsole.labconfig import Lab, lab_backend, lab_config, start_lab


def lab_engine(tmp_path: Path, *, call_timeout: float = 10.0, concurrency: int = 8, read_only: bool = False,
               **lab_fields: Any) -> tuple[Lab, FleetEngine]:
    lab = start_lab(**lab_fields)
    config = lab_config(lab.fleet, concurrency=concurrency, call_timeout=call_timeout, read_only=read_only)
    engine = FleetEngine(config, lab_backend(lab.fleet), audit=AuditLog(tmp_path / "audit.jsonl"),
                         command_log=CommandLog())
    return lab, engine


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in stream]


async def refreshed(engine: FleetEngine, *names: str) -> dict[str, ServerView]:
    return {v.name: v for v in await collect(engine.refresh(names or None))}
