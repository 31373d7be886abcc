"""The configuration file: TOML, validated by pydantic, every problem reported as one ``ConfigError``.

Why so strict: a typo must never silently switch something off (unknown keys are errors), and an
admin in an incident must be able to fix a broken file from one short message — it names the
file, the key path (``servers[3].transport``, indexes counted from 0) and what is allowed, never a
traceback, and never a value that could be a secret. Secrets are not in the file at all: a
``password`` key anywhere is refused; ``password_from`` says where the password comes from at
connect time (``emconsole.credentials``).

Where the file is: ``--config PATH``, else ``$EMCONSOLE_CONFIG``, else the platform config dir
(``~/.config/emconsole/config.toml`` on Linux). Relative paths inside the file (``ca_bundle``,
``cert_pem``, ``cert_key_pem``, ``audit_path``) are taken relative to the file's folder.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from emconsole import paths
from emconsole.knowledge import BuildRecord, CatalogueEntry, Knowledge, load_knowledge
from emconsole.monitoring import CheckSettings
from emconsole.remote import validate
from emconsole.textsafe import CONTROL_CHARACTERS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


class ConfigError(Exception):
    """A configuration problem, already worded for the admin: ``str(error)`` is the whole message."""

    def __init__(
        self, source: str, key_path: str | None, problem: str, more: int = 0, context: str = ""
    ) -> None:
        self.source = source
        self.key_path = key_path
        self.problem = problem
        where = f"{source}: {key_path}" if key_path else source
        where += f" {context}" if context else ""
        tail = f" ({more} more problem{'s' if more > 1 else ''} after this one)" if more else ""
        super().__init__(f"{where}: {problem}{tail}")


class _FieldError(ValueError):
    """Raised by a cross-field check: names the key at fault so the message can point at it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class Scheme(str, Enum):
    HTTP = "http"
    HTTPS = "https"


class Transport(str, Enum):
    BASIC = "basic"
    NTLM = "ntlm"
    KERBEROS = "kerberos"
    CREDSSP = "credssp"
    CERTIFICATE = "certificate"


class EmsMode(str, Enum):
    """How the Exchange Management Shell is loaded in the session (EXCHANGE-EM.md)."""

    SNAPIN = "snapin"
    REMOTE_EXCHANGE = "remoteexchange"


DEFAULT_PORTS = {Scheme.HTTP: 5985, Scheme.HTTPS: 5986}
PROXY_FROM_ENVIRONMENT = "environment"
_PASSWORD_FROM_RE = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|keyring:\S.*|prompt)$")
_PASSWORD_FROM_RULE = 'must be "env:NAME", "keyring:SERVICE" or "prompt"'
_TAG_KEY_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_TAG_VALUE_MAX = 256
_BINDING_ID_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
_PROXY_RE = re.compile(r"^(https?|socks5h?)://[^\s/@]+(:\d{1,5})?/?$")
_PATH_KEYS = ("cert_pem", "cert_key_pem", "ca_bundle", "audit_path")
_USER_PASSWORD_TRANSPORTS = (Transport.BASIC, Transport.NTLM, Transport.CREDSSP)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerConfig(_Strict):
    """One Exchange server as the console reaches it (``[[servers]]`` merged over ``[defaults]``)."""

    name: str
    host: str
    port: int = Field(ge=1, le=65535)
    scheme: Scheme = Scheme.HTTPS
    transport: Transport = Transport.KERBEROS
    ems: EmsMode = EmsMode.REMOTE_EXCHANGE
    username: str | None = Field(default=None, min_length=1)
    password_from: str | None = None
    cert_pem: Path | None = None
    cert_key_pem: Path | None = None
    tls_verify: bool = True
    ca_bundle: Path | None = None
    proxy: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_other_keys(cls, data: Any) -> Any:
        """``host`` defaults to ``name``; ``port`` to the scheme's WinRM port (5985 / 5986)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "host" not in data and isinstance(data.get("name"), str):
            data["host"] = data["name"]
        if "port" not in data:
            scheme = data.get("scheme", Scheme.HTTPS)
            if isinstance(scheme, str) and scheme in DEFAULT_PORTS:  # a list or table is not hashable
                data["port"] = DEFAULT_PORTS[Scheme(scheme)]
            else:
                data["port"] = DEFAULT_PORTS[Scheme.HTTPS]  # the scheme's own error is the one shown
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        try:
            return validate.identity(value)
        except validate.InvalidInput:
            raise ValueError(
                "must be the Exchange server's name as one DNS label: 1-63 letters, digits or hyphens, "
                "no hyphen at either end (put the FQDN in host)"
            ) from None

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        try:
            return validate.host(value)
        except validate.InvalidInput:
            raise ValueError(
                "must be a DNS name (labels of letters, digits, hyphens) or an IP address"
            ) from None

    @field_validator("cert_pem", "cert_key_pem", "ca_bundle")
    @classmethod
    def _paths(cls, value: Path | None) -> Path | None:
        return _usable_path(value)

    @field_validator("password_from")
    @classmethod
    def _password_from(cls, value: str | None) -> str | None:
        if value is not None and not _PASSWORD_FROM_RE.match(value):
            raise ValueError(_PASSWORD_FROM_RULE)
        return value

    @field_validator("proxy")
    @classmethod
    def _proxy(cls, value: str | None) -> str | None:
        if value is not None and value != PROXY_FROM_ENVIRONMENT and not _PROXY_RE.match(value):
            raise ValueError(
                f'must be a proxy URL such as "http://proxy.example.com:3128", or "{PROXY_FROM_ENVIRONMENT}" '
                "to follow HTTP(S)_PROXY; leave it out for no proxy"
            )
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        """Tag values are shown and matched, never sent to a server: any text a terminal shows as it is."""
        for key, text in value.items():
            if not _TAG_KEY_RE.fullmatch(key):
                raise ValueError(f"tag name {validate.shown(key)} must be 1-64 letters, digits, '.', '_' "
                                 "or '-'")
            if len(text) > _TAG_VALUE_MAX or CONTROL_CHARACTERS.search(text) or "\t" in text or "\n" in text:
                raise ValueError(f"tag {key!r}: a value is text of at most {_TAG_VALUE_MAX} characters, "
                                 "without line breaks or control characters")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ServerConfig:
        if self.transport is Transport.CERTIFICATE:
            if self.scheme is not Scheme.HTTPS:
                raise _FieldError("scheme", 'transport = "certificate" needs scheme = "https"')
            for key in ("cert_pem", "cert_key_pem"):
                if getattr(self, key) is None:
                    raise _FieldError(key, f'transport = "certificate" needs {key} (a PEM file path)')
        else:
            for key in ("cert_pem", "cert_key_pem"):
                if getattr(self, key) is not None:
                    raise _FieldError(key, 'is only used with transport = "certificate"')
        if self.transport in _USER_PASSWORD_TRANSPORTS:
            for key in ("username", "password_from"):
                if getattr(self, key) is None:
                    raise _FieldError(key, f'is required with transport = "{self.transport.value}"')
        if self.password_from is not None and self.username is None:
            raise _FieldError("username", "is required when password_from is set")
        return self

    @property
    def endpoint(self) -> str:
        """The WS-Management URL, e.g. ``https://ex01.contoso.com:5986/wsman``."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{self.scheme.value}://{host}:{self.port}/wsman"


class Config(_Strict):
    """The whole file, with ``[defaults]`` already merged into every server."""

    servers: tuple[ServerConfig, ...] = ()
    refresh_interval: float = Field(default=60.0, ge=0, le=86400)
    concurrency: int = Field(default=32, ge=1, le=512)
    call_timeout: float = Field(default=60.0, gt=0, le=3600)
    read_only: bool = False
    bulk_confirm_threshold: int = Field(default=3, ge=1)
    audit_path: Path | None = None
    theme: str | None = Field(default=None, min_length=1)
    keymap: dict[str, str] = Field(default_factory=dict)
    extra_builds: tuple[BuildRecord, ...] = ()
    extra_catalogue: tuple[CatalogueEntry, ...] = ()
    check: CheckSettings = Field(default_factory=CheckSettings)

    @field_validator("audit_path")
    @classmethod
    def _audit_path(cls, value: Path | None) -> Path | None:
        return _usable_path(value)

    @field_validator("keymap")
    @classmethod
    def _keymap(cls, value: dict[str, str]) -> dict[str, str]:
        for binding, key in value.items():
            if not _BINDING_ID_RE.fullmatch(binding):
                raise ValueError(f"binding id {validate.shown(binding)} must be lower-case letters, digits, "
                                 "'.', '_' or '-'")
            if not key.strip() or any(ch.isspace() for ch in key) or CONTROL_CHARACTERS.search(key):
                raise ValueError(f"the key for {binding!r} must be a key name such as \"ctrl+r\" or \"f5\"")
        return value

    def server(self, name: str) -> ServerConfig | None:
        """The server called ``name`` (case-insensitive, as Windows names are)."""
        key = name.casefold()
        return next((s for s in self.servers if s.name.casefold() == key), None)

    def knowledge(self) -> Knowledge:
        """The catalogue and build table with this file's extras added."""
        return load_knowledge(self.extra_builds, self.extra_catalogue)


# --------------------------------------------------------------------------- error wording


def _quoted_key(part: str, limit: int = 60) -> str:
    """A key as TOML quotes it, escaped (a control character in a key must not reach the terminal)
    and cut (a 5,000-character key stays one short line)."""
    cut = part if len(part) <= limit else part[:limit]
    quoted = CONTROL_CHARACTERS.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(cut, ensure_ascii=False))
    return quoted if cut == part else quoted[:-1] + '…"'


def _format_path(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]{1,60}", part):
            out += f".{part}" if out else part
        else:
            out += f".{_quoted_key(part)}" if out else _quoted_key(part)
    return out


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    stack = [annotation]
    while stack:
        item = stack.pop()
        if isinstance(item, type) and issubclass(item, BaseModel):
            return item
        stack.extend(get_args(item))
    return None


def _allowed_keys(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The keys the table at ``loc`` may hold (for "unknown key" messages)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int):
            continue
        if current is None or part not in current.model_fields:
            return []
        current = _inner_model(current.model_fields[part].annotation)
    return list(current.model_fields) if current is not None else []


def _secret_like(loc: tuple[str | int, ...]) -> bool:
    return any(isinstance(p, str) and "password" in p.casefold() for p in loc)


def _describe(
    err: Mapping[str, Any], model: type[BaseModel], extra_allowed: tuple[str, ...] = ()
) -> tuple[tuple[str | int, ...], str, bool]:
    """(key path, problem sentence, cross-field?) for one pydantic error."""
    loc: tuple[str | int, ...] = tuple(p for p in err["loc"] if p != "[key]")
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, _FieldError):
        return (*loc, cause.field), str(cause), True
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = sorted({*_allowed_keys(model, loc[:-1]), *extra_allowed})
        name = str(loc[-1])
        close = difflib.get_close_matches(name, allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return loc, f"unknown key{hint} Allowed here: {', '.join(allowed)}.", False
    if kind == "missing":
        return loc, "is required but missing", False
    text = str(err["msg"]).removeprefix("Value error, ")
    value = err.get("input")
    if not _secret_like(loc) and isinstance(value, (str, int, float)) and len(repr(value)) <= 60:
        text += f" (got {value!r})"
    return loc, text, False


# --------------------------------------------------------------------------- parsing


def _refuse_passwords(node: Any, source: str, loc: tuple[str | int, ...] = ()) -> None:
    """A ``password`` key anywhere is an error; its value is never read into a message."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.casefold() in ("password", "passwd", "pass"):
                raise ConfigError(
                    source,
                    _format_path((*loc, key)),
                    "passwords never go in the config file: set password_from = \"env:NAME\", "
                    "\"keyring:SERVICE\" or \"prompt\" instead (the value was not read)",
                )
            _refuse_passwords(value, source, (*loc, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _refuse_passwords(value, source, (*loc, index))


def _resolve_paths(table: dict[str, Any], base: Path | None) -> dict[str, Any]:
    out = dict(table)
    for key in _PATH_KEYS:
        value = out.get(key)
        if isinstance(value, str) and value:
            try:
                path = Path(value).expanduser()
            except RuntimeError:  # "~user" of no such user: left as written, refused by _usable_path
                continue
            out[key] = path if base is None or path.is_absolute() else base / path
    return out


def _usable_path(value: Path | None) -> Path | None:
    """A path field's value must be one the OS can open (checked when read, not at first use)."""
    if value is None:
        return None
    if "\x00" in str(value):
        raise ValueError("a path cannot contain a NUL character")
    if value.parts and value.parts[0].startswith("~"):
        raise ValueError(f"{value.parts[0]} cannot be expanded: no such user's home directory")
    return value


def _merge_server(defaults: dict[str, Any], server: dict[str, Any]) -> dict[str, Any]:
    merged = {**defaults, **server}
    d_tags, s_tags = defaults.get("tags", {}), server.get("tags", {})
    if isinstance(d_tags, dict) and isinstance(s_tags, dict) and (d_tags or s_tags):
        merged["tags"] = {**d_tags, **s_tags}
    return merged


class _Problems:
    """Collects (key path, problem) pairs in file order, each once."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str, str], None] = {}

    def add(self, path: str, problem: str, context: str = "") -> None:
        self.items.setdefault((path, problem, context), None)

    def raise_if_any(self, source: str) -> None:
        if self.items:
            (path, problem, context), *rest = self.items
            raise ConfigError(source, path or None, problem, more=len(rest), context=context)


def _check_defaults(defaults: dict[str, Any], problems: _Problems) -> None:
    for key in ("name", "host"):
        if key in defaults:
            problems.add(f"defaults.{key}", "cannot be set in [defaults]: every server has its own")
    probe = {k: v for k, v in defaults.items() if k not in ("name", "host")}
    try:
        ServerConfig.model_validate({**probe, "name": "defaults"})
    except ValidationError as exc:
        for err in exc.errors():
            loc, text, cross = _describe(err, ServerConfig)
            if not cross and loc and loc[0] in defaults:  # cross-field checks belong to each server
                problems.add(_format_path(("defaults", *loc)), text)


def _check_servers(
    defaults: dict[str, Any], servers_raw: list[Any], base: Path | None, problems: _Problems
) -> list[ServerConfig]:
    servers: list[ServerConfig] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(servers_raw):
        if not isinstance(raw, dict):
            problems.add(f"servers[{index}]", "must be a table: write each server as a [[servers]] block")
            continue
        label = f"(server {validate.shown(raw['name'])})" if isinstance(raw.get("name"), str) else ""
        try:
            server = ServerConfig.model_validate(_resolve_paths(_merge_server(defaults, raw), base))
        except ValidationError as exc:
            for err in exc.errors():
                loc, text, cross = _describe(err, ServerConfig)
                key = loc[0] if loc else None
                path = _format_path(("servers", index, *loc))
                if key in ("host", "port") and key not in raw and key not in defaults:
                    continue  # derived from name / scheme, whose own error is reported
                if key in raw or key not in defaults:
                    problems.add(path, text, label)
                elif cross:  # caused by an inherited value; plain errors were reported under defaults
                    problems.add(path, f"{text} (the value comes from [defaults])", label)
            continue
        first = seen.setdefault(server.name.casefold(), index)
        if first != index:
            problems.add(
                f"servers[{index}].name",
                f"duplicate server name {server.name!r} (also servers[{first}]); names must be unique",
            )
            continue
        servers.append(server)
    return servers


def parse_config(text: str, source: str = "<config>", base_dir: Path | None = None) -> Config:
    """Validate the TOML ``text``; ``source`` names it in messages, ``base_dir`` anchors relative paths."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, None, f"not valid TOML: {exc}") from None
    _refuse_passwords(raw, source)
    problems = _Problems()
    defaults = raw.pop("defaults", {})
    if not isinstance(defaults, dict):
        problems.add("defaults", "must be a table: write it as [defaults]")
        defaults = {}
    servers_raw = raw.pop("servers", [])
    if not isinstance(servers_raw, list):
        problems.add("servers", "must be an array of tables: write each server as a [[servers]] block")
        servers_raw = []
    _check_defaults(defaults, problems)
    servers = _check_servers(defaults, servers_raw, base_dir, problems)
    config: Config | None = None
    try:
        config = Config.model_validate({**_resolve_paths(raw, base_dir), "servers": servers})
    except ValidationError as exc:
        for err in exc.errors():
            loc, problem, _ = _describe(err, Config, extra_allowed=("defaults",))
            problems.add(_format_path(loc), problem)
    problems.raise_if_any(source)
    assert config is not None  # every validation error was raised just above
    return config


# --------------------------------------------------------------------------- locating


@dataclass(frozen=True)
class ConfigLocation:
    """One place the config is looked for: ``origin`` says why (``--config``, the env var, default)."""

    path: Path
    origin: str

    @property
    def exists(self) -> bool:
        return self.path.is_file()


def config_locations(explicit: str | os.PathLike[str] | None = None,
                     environ: Mapping[str, str] | None = None) -> list[ConfigLocation]:
    """Every place in lookup order; the first one given (explicit, env var) wins even if missing."""
    env = os.environ if environ is None else environ
    found: list[ConfigLocation] = []
    if explicit:
        found.append(ConfigLocation(Path(explicit).expanduser(), "--config"))
    if env.get(paths.CONFIG_ENV):
        found.append(ConfigLocation(Path(env[paths.CONFIG_ENV]).expanduser(), f"${paths.CONFIG_ENV}"))
    found.append(ConfigLocation(paths.user_config_file(), "user config dir"))
    return found


def find_config(explicit: str | os.PathLike[str] | None = None,
                environ: Mapping[str, str] | None = None) -> ConfigLocation | None:
    """The location in force: ``--config``, else ``$EMCONSOLE_CONFIG``, else the default if it exists.

    A path the user named is returned even when missing (loading it then says so) rather than
    silently falling back to another file.
    """
    first = config_locations(explicit, environ)[0]
    if first.origin != "user config dir" or first.exists:
        return first
    return None


def load_config(explicit: str | os.PathLike[str] | None = None,
                environ: Mapping[str, str] | None = None) -> tuple[Config, ConfigLocation]:
    """Find, read and validate the config; every failure is a ``ConfigError``."""
    location = find_config(explicit, environ)
    if location is None:
        default = paths.user_config_file()
        raise ConfigError(
            str(default), None,
            f"no configuration file (looked at --config, ${paths.CONFIG_ENV}, then this path); "
            "copy config.example.toml there or pass --config PATH",
        )
    try:
        text = location.path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(location.path), None, f"file not found (given by {location.origin})") from None
    except UnicodeDecodeError:
        raise ConfigError(str(location.path), None, "not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(str(location.path), None, f"cannot be read: {exc.strerror or exc}") from None
    return parse_config(text, str(location.path), location.path.parent), location
