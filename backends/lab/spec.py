"""The shape of a lab fleet: how many servers, where they listen, how they authenticate, what breaks.

A ``LabSpec`` is built from command-line options, a lab TOML file, or code (tests). Faults are
written in one compact syntax everywhere (``--faults``, the TOML ``faults`` key, per server):

    SPEC    := ITEM (';' ITEM)*
    ITEM    := NAME ['=' VALUE] [':' TARGETS]          (no TARGETS: every server)
    TARGETS := TARGET (',' TARGET)*
    TARGET  := N | N-M | '*' | P '%'                   (server numbers as in LAB-EX03 = 3;
                                                        P% = that share, chosen by the seed)

Transport faults (the wire's): ``latency=MS``, ``hang``, ``refuse``, ``wrong-credentials``,
``tls=wrong-name|expired``, ``expire=SECONDS`` (shell idle timeout: a shell idle that long is gone,
the next request on it gets InvalidSelectors), ``quota=N`` (MaxShellsPerUser), ``http-error=STATUS``
(default 503, HTML body), ``reset`` (connection reset mid-response).
Names in ``HOST_FAULTS`` (registered by the PowerShell/Exchange emulation, which
``host_faults`` imports first) land in ``ServerSpec.host_faults`` for the host factory; any
other name is an error.

A server's table (``per_server[N]``, ``[server.N]`` in a lab file) holds ``faults`` and the
emulation's per-server keys (``build = "..."``, ``blocked = [...]``; also accepted nested as
``[server.N.exchange]``); ``exchange`` holds the organisation's keys and defaults for every server.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

DEFAULT_FIRST_PORT = 15985
DEFAULT_USER = "labadmin"
DEFAULT_PASSWORD = "Lab-Passw0rd!"
DEFAULT_DOMAIN = "LAB"
NAME_PREFIX = "LAB-EX"
MAX_SHELLS_PER_USER = 30
IDLE_TIMEOUT_S = 7200.0  # WinRM's default shell IdleTimeout (PT7200S)

TLS_FAULTS = ("wrong-name", "expired")
AUTH_SCHEMES = ("basic", "ntlm", "certificate")
# Faults handled behind the wire (name -> (usage, what it does)), registered by the host: the
# PowerShell/Exchange emulation adds its own.
HOST_FAULTS: dict[str, tuple[str, str]] = {}


def host_faults() -> dict[str, tuple[str, str]]:
    """Every registered host fault, the Exchange emulation's always among them.

    Why the import here: a spec can be checked before anything imported the emulation (``emconsole
    lab --faults ocs-unreachable``), and its fault names must be known by then.
    """
    import emconsole.backends.lab.exchange.spec  # noqa: F401  (registers its HOST_FAULTS)

    return HOST_FAULTS


class SpecError(ValueError):
    """A lab spec (options, TOML or fault syntax) that cannot be used; the message says why."""


@dataclass(frozen=True)
class TransportFaults:
    """What the wire does wrong for one server. The defaults are a healthy server."""

    latency_s: float = 0.0
    hang: bool = False
    refuse: bool = False
    wrong_credentials: bool = False
    tls: str | None = None
    shell_idle_timeout_s: float = IDLE_TIMEOUT_S
    max_shells: int = MAX_SHELLS_PER_USER
    http_error: int | None = None
    reset: bool = False


@dataclass(frozen=True)
class ServerSpec:
    """One lab server. ``exchange`` and ``host_faults`` are for the host factory, opaque to the wire."""

    number: int
    name: str
    port: int
    faults: TransportFaults = TransportFaults()
    host_faults: dict[str, str] = field(default_factory=dict)
    exchange: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LabSpec:
    """A whole lab. ``first_port`` 0 lets the fleet pick a free range (tests)."""

    servers: int = 3
    first_port: int = DEFAULT_FIRST_PORT
    scheme: str = "http"
    auth: str = "basic"
    username: str = DEFAULT_USER
    password: str = DEFAULT_PASSWORD
    domain: str = DEFAULT_DOMAIN
    allow_unencrypted: bool = True
    seed: int = 0
    latency_ms: float = 0.0
    faults: str = ""
    per_server: dict[int, dict[str, Any]] = field(default_factory=dict)
    exchange: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise SpecError for values no server could run with."""
        if not 1 <= self.servers <= 5000:
            raise SpecError(f"servers must be between 1 and 5000, not {self.servers}")
        if self.scheme not in ("http", "https"):
            raise SpecError(f"scheme must be http or https, not {self.scheme!r}")
        if self.auth not in AUTH_SCHEMES:
            raise SpecError(f"auth must be one of {', '.join(AUTH_SCHEMES)}, not {self.auth!r}")
        if self.auth == "certificate" and self.scheme != "https":
            raise SpecError("auth certificate needs scheme https (client certificates are a TLS feature)")
        if self.first_port and not 1 <= self.first_port <= 65535 - self.servers + 1:
            raise SpecError(
                f"ports {self.first_port}..{self.first_port + self.servers - 1} are not all valid"
            )
        if not self.username or ":" in self.username or "\\" in self.username:
            raise SpecError("username must be non-empty, without ':' or '\\'")
        if self.latency_ms < 0:
            raise SpecError("latency must not be negative")
        parse_faults(self.faults, self.servers, self.seed)
        for number, extra in self.per_server.items():
            if not 1 <= number <= self.servers:
                raise SpecError(f"[server.{number}] is outside 1..{self.servers}")
            parse_faults(str(extra.get("faults", "")), self.servers, self.seed)

    def server_name(self, number: int) -> str:
        """``LAB-EX01``... zero-padded to the fleet's width, a valid DNS label."""
        width = max(2, len(str(self.servers)))
        return f"{NAME_PREFIX}{number:0{width}d}"

    def server_specs(self, first_port: int) -> list[ServerSpec]:
        """Every server with its port and its faults (global spec, then per-server entries)."""
        self.validate()
        base = TransportFaults(latency_s=self.latency_ms / 1000.0)
        chosen = parse_faults(self.faults, self.servers, self.seed)
        specs = []
        for number in range(1, self.servers + 1):
            faults, own_host_faults = base, {}
            items = list(chosen.get(number, []))
            extra = self.per_server.get(number, {})
            items += [
                item
                for n, its in parse_faults(str(extra.get("faults", "")), self.servers, self.seed).items()
                if n == number
                for item in its
            ]
            host_names = host_faults()
            for name, value in items:
                if name in host_names:
                    own_host_faults[name] = value
                else:
                    faults = _apply_transport_fault(faults, name, value)
            own = {k: v for k, v in extra.items() if k not in ("faults", "exchange")}
            exchange = {**self.exchange, **own, **dict(extra.get("exchange", {}))}
            specs.append(
                ServerSpec(
                    number,
                    self.server_name(number),
                    first_port + number - 1,
                    faults,
                    own_host_faults,
                    exchange,
                )
            )
        return specs


# name -> (usage, what it does): the wire's own faults.
TRANSPORT_FAULTS: dict[str, tuple[str, str]] = {
    "latency": ("latency=MS", "add MS milliseconds to every request"),
    "hang": ("hang", "read requests, never answer (the client's read timeout fires)"),
    "refuse": ("refuse", "the port is bound but not listening: connections are refused"),
    "wrong-credentials": ("wrong-credentials", "answer 401 to the right password or certificate too"),
    "tls": ("tls=wrong-name|expired", "https: a certificate for another name, or an expired one"),
    "expire": ("expire=SECONDS", "shells idle that long are gone (the next request: InvalidSelectors)"),
    "quota": ("quota=N", f"MaxShellsPerUser (default {MAX_SHELLS_PER_USER}): one more Create is a fault"),
    "http-error": ("http-error=STATUS", "a 5xx with an HTML body before authentication (default 503)"),
    "reset": ("reset", "reset the connection in the middle of every response"),
}
_TRANSPORT_FAULTS = tuple(TRANSPORT_FAULTS)


def _known_faults() -> str:
    return ", ".join(_TRANSPORT_FAULTS + tuple(sorted(host_faults())))


def _apply_transport_fault(faults: TransportFaults, name: str, value: str) -> TransportFaults:
    try:
        if name == "latency":
            return replace(faults, latency_s=float(value or 0) / 1000.0)
        if name == "hang":
            return replace(faults, hang=True)
        if name == "refuse":
            return replace(faults, refuse=True)
        if name == "reset":
            return replace(faults, reset=True)
        if name == "wrong-credentials":
            return replace(faults, wrong_credentials=True)
        if name == "tls":
            if (value or "wrong-name") not in TLS_FAULTS:
                raise SpecError(f"tls fault must be one of {', '.join(TLS_FAULTS)}, not {value!r}")
            return replace(faults, tls=value or "wrong-name")
        if name == "expire":
            return replace(faults, shell_idle_timeout_s=float(value or 0))
        if name == "quota":
            return replace(faults, max_shells=int(value or 0))
        if name == "http-error":
            status = int(value or 503)
            if not 500 <= status <= 599:
                raise SpecError(f"http-error must be a 5xx status, not {status}")
            return replace(faults, http_error=status)
    except ValueError as exc:
        if isinstance(exc, SpecError):
            raise
        raise SpecError(f"fault {name}: bad value {value!r}") from exc
    raise SpecError(f"unknown fault {name!r} (known: {_known_faults()})")


def parse_faults(text: str, servers: int, seed: int) -> dict[int, list[tuple[str, str]]]:
    """Parse the fault syntax into server number -> [(name, value)], checking every name and value."""
    result: dict[int, list[tuple[str, str]]] = {}
    rng = random.Random(seed)
    host_names = host_faults()
    for raw in text.split(";"):
        item = raw.strip()
        if not item:
            continue
        head, _, targets = item.partition(":")
        name, _, value = head.partition("=")
        name, value = name.strip().lower(), value.strip()
        if name not in _TRANSPORT_FAULTS and name not in host_names:
            raise SpecError(f"unknown fault {name!r} in {item!r} (known: {_known_faults()})")
        if name not in host_names:
            _apply_transport_fault(TransportFaults(), name, value)  # validates the value
        for number in _parse_targets(targets.strip(), servers, rng, item):
            result.setdefault(number, []).append((name, value))
    return result


def _parse_targets(text: str, servers: int, rng: random.Random, item: str) -> list[int]:
    if not text or text in ("*", "all"):
        return list(range(1, servers + 1))
    numbers: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        try:
            if part.endswith("%"):
                share = float(part[:-1])
                count = round(servers * share / 100.0)
                numbers.update(rng.sample(range(1, servers + 1), min(servers, max(0, count))))
            elif "-" in part:
                low, high = (int(x) for x in part.split("-", 1))
                numbers.update(range(low, high + 1))
            else:
                numbers.add(int(part))
        except ValueError as exc:
            raise SpecError(f"bad server list {text!r} in {item!r}") from exc
    outside = sorted(n for n in numbers if not 1 <= n <= servers)
    if outside:
        raise SpecError(f"server {outside[0]} in {item!r} is outside 1..{servers}")
    return sorted(numbers)


_TOML_KEYS = {
    "servers",
    "first_port",
    "scheme",
    "auth",
    "username",
    "domain",
    "allow_unencrypted",
    "seed",
    "latency_ms",
    "faults",
    "server",
    "exchange",
}


def load_lab_toml(path: Path, base: LabSpec | None = None) -> LabSpec:
    """Read a lab TOML file over ``base``. Passwords are not read from it (options or env only).

    Keys: servers, first_port, scheme, auth, username, domain, allow_unencrypted, seed, latency_ms,
    faults (the syntax above), [exchange] (for every server), [server.N] with faults / [server.N.exchange].
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"{path}: {exc}") from exc
    unknown = sorted(set(data) - _TOML_KEYS)
    if unknown:
        raise SpecError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_TOML_KEYS))})")
    spec = base or LabSpec()
    updates: dict[str, Any] = {k: v for k, v in data.items() if k not in ("server", "exchange")}
    try:
        per_server = {int(k): dict(v) for k, v in dict(data.get("server", {})).items()}
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{path}: [server.N] needs a server number") from exc
    spec = replace(spec, **updates, per_server=per_server, exchange=dict(data.get("exchange", {})))
    spec.validate()
    return spec
