"""The backend protocol: run one remote script on one server, get raw output or a typed failure.

Why a protocol: the engine must not know how a server is reached (WinRM today, perhaps PSRP later),
and every failure must arrive already classified (``ServerFailure``) so that no transport
exception ever reaches the engine or the UI.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from emconsole.models import ServerFailure

if TYPE_CHECKING:
    from emconsole.config import ServerConfig
    from emconsole.remote.scripts import RemoteScript


@dataclass(frozen=True)
class RawResult:
    """What one script printed, and what it cost on the wire."""

    stdout: str
    stderr: str
    exit_code: int
    duration_s: float
    round_trips: int
    bytes_sent: int
    bytes_received: int
    shell_opened: bool = False


class BackendFailure(Exception):
    """A classified failure; carries the wire cost so the command log can still record it.

    ``may_have_run``: the script was (or may have been) handed to the server before the failure (a
    deadline while waiting for output, an answer lost or garbled), so whatever it changes may have
    happened; False when nothing reached the server or the script reported its own failure.
    """

    def __init__(
        self,
        failure: ServerFailure,
        *,
        duration_s: float = 0.0,
        round_trips: int = 0,
        stdout: str = "",
        stderr: str = "",
        exit_code: int | None = None,
        may_have_run: bool = False,
    ) -> None:
        super().__init__(failure.message)
        self.failure = failure
        self.may_have_run = may_have_run
        self.duration_s = duration_s
        self.round_trips = round_trips
        self.stdout = stdout
        self.stderr = stderr
        self.exit_code = exit_code


class Backend(Protocol):
    """How the engine reaches servers. ``run`` blocks (the engine calls it from its thread pool)."""

    def run(
        self,
        server: ServerConfig,
        script: RemoteScript,
        deadline_s: float,
        cancel: threading.Event | None = None,
    ) -> RawResult:
        """Run ``script`` on ``server`` within ``deadline_s`` seconds, or raise ``BackendFailure``."""
        ...

    def close(self) -> None:
        """Close every shell and session; waits for pending cleanups."""
        ...
