"""The operator audit trail: append-only JSON lines, one ``intent`` before a change, one ``result`` after.

Why this shape: a change must be recorded *before* it is sent (so a crash mid-change still leaves a
trace) and its outcome after. An ``intent`` with no matching ``result`` is therefore a change whose
outcome nobody saw: the next start lists it as "outcome unknown". Two emconsole processes may append
at once, so every record is one ``os.write`` on an ``O_APPEND`` descriptor under an exclusive file
lock, then ``fsync``. No secret ever reaches the file: records carry hashes of scripts, never text
that could hold one, and keys that look like secrets are refused.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA = 1
#: The outcome recorded when the console itself could not see how a change ended (cancelled).
UNKNOWN_OUTCOME = "unknown"
#: The outcome of a change whose intent was recorded with its plan but that was cancelled before it was sent.
NOT_SENT_OUTCOME = "not_sent"
_SECRET_WORDS = ("password", "secret", "credential", "token", "passphrase")


def default_audit_path() -> Path:
    """The platform state dir (XDG_STATE_HOME on Linux, AppData on Windows)."""
    import platformdirs

    return Path(platformdirs.user_state_dir("emconsole", appauthor=False)) / "audit.jsonl"


def operator_name() -> str:
    """The OS user running the console (``user@host``): who made the change."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name in a stripped-down container: still record something
        user = f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


@contextmanager
def _locked(fd: int) -> Iterator[None]:
    """Exclusive lock on the whole file: fcntl on POSIX, msvcrt on Windows."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # type: ignore[attr-defined]
        try:
            yield
        finally:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _check_no_secret(data: Mapping[str, Any], where: str = "") -> None:
    for key, value in data.items():
        if any(word in key.lower() for word in _SECRET_WORDS):
            raise ValueError(f"audit records never hold secrets: key {where}{key!r} refused")
        if isinstance(value, Mapping):
            _check_no_secret(value, f"{where}{key}.")


@dataclass(frozen=True)
class Change:
    """A change about to be sent: what its intent record says."""

    target: str
    action: str
    mitigation_ids: tuple[str, ...] = ()
    script_sha256: str = ""
    details: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class UnknownOutcome:
    """A change that was sent (or about to be) but whose result was never recorded."""

    intent_id: str
    time: str
    operator: str
    target: str
    action: str
    mitigation_ids: tuple[str, ...]
    pid: int


class AuditLog:
    """Append-only audit log; ``intents()`` returns the ids that ``result()`` closes."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_audit_path()
        self._mutex = threading.Lock()
        self._pending: set[str] = set()

    def _append(self, records: Sequence[dict[str, Any]]) -> None:
        """Every record in one ``os.write`` under the lock, then one ``fsync``: a plan's intents land
        together, so a crash after the first change was sent cannot leave the rest of the plan unrecorded."""
        for record in records:
            _check_no_secret(record)
        data = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True, default=str) + "\n" for r in records)
        line = data.encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
        with self._mutex:
            fd = os.open(self.path, flags, 0o600)
            try:
                with _locked(fd):
                    os.lseek(fd, 0, os.SEEK_END)  # msvcrt locking moved the offset; O_APPEND wins on POSIX
                    written = os.write(fd, line)
                    if written != len(line):
                        raise OSError(f"short write to audit log {self.path}: {written}/{len(line)} bytes")
                    os.fsync(fd)
            finally:
                os.close(fd)

    @staticmethod
    def _record(kind: str, record_id: str, target: str, action: str, **fields: Any) -> dict[str, Any]:
        """An intent or result: what both carry (who, when, which process, what), then its own fields."""
        return {
            "schema": SCHEMA,
            "kind": kind,
            "id": record_id,
            "time": datetime.now(timezone.utc).isoformat(),
            "operator": operator_name(),
            "pid": os.getpid(),
            "target": target,
            "action": action,
            **fields,
        }

    def intents(self, changes: Sequence[Change]) -> list[str]:
        """Record (in one fsync'd write) that these changes are about to be sent; returns their ids."""
        ids = [uuid.uuid4().hex for _ in changes]
        self._append([
            self._record("intent", intent_id, c.target, c.action, mitigation_ids=list(c.mitigation_ids),
                         script_sha256=c.script_sha256, details=dict(c.details or {}))
            for intent_id, c in zip(ids, changes, strict=True)
        ])
        self._pending.update(ids)
        return ids

    def result(
        self,
        intent_id: str,
        *,
        outcome: str,
        duration_s: float,
        detail: str = "",
        backups: Sequence[Mapping[str, Any]] = (),
        target: str = "",
        action: str = "",
    ) -> None:
        """Record how the change identified by ``intent_id`` ended."""
        self._append([self._record(
            "result",
            intent_id,
            target,
            action,
            outcome=outcome,
            duration_s=round(duration_s, 3),
            detail=detail,
            backups=[dict(b) for b in backups],
        )])
        self._pending.discard(intent_id)

    def records(self) -> list[dict[str, Any]]:
        """Every record in file order; a torn or foreign line is skipped, never fatal."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out: list[dict[str, Any]] = []
        for line in raw.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and rec.get("kind") in ("intent", "result"):
                out.append(rec)
        return out

    def unknown_outcomes(self) -> list[UnknownOutcome]:
        """Intents with no result (or an "unknown" one), except those this process is still carrying out."""
        records = self.records()
        closed = {r.get("id") for r in records
                  if r["kind"] == "result" and r.get("outcome") != UNKNOWN_OUTCOME}
        out = []
        for r in records:
            rid = str(r.get("id", ""))
            if r["kind"] != "intent" or rid in closed or rid in self._pending:
                continue
            out.append(
                UnknownOutcome(
                    intent_id=rid,
                    time=str(r.get("time", "")),
                    operator=str(r.get("operator", "")),
                    target=str(r.get("target", "")),
                    action=str(r.get("action", "")),
                    mitigation_ids=tuple(str(i) for i in r.get("mitigation_ids") or ()),
                    pid=int(r.get("pid") or 0),
                )
            )
        return out
