"""Config fuzz: hypothesis writes TOML documents around the real schema — the real keys with plausible,
wrong-typed and hostile values, unknown keys, passwords, nested tables where scalars belong — plus
garbage text, damaged valid files and bytes that are not UTF-8. Every one is either accepted or refused
with a ``ConfigError`` whose message names the key (or, for broken TOML, the line and column); never
another exception. A handful go through ``emconsole config check`` in a new process: no traceback.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emconsole.config import Config, ConfigError, load_config, parse_config
from emconsole.textsafe import CONTROL_CHARACTERS

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------------------- TOML out

_BARE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def key(name: str) -> str:
    return name if name and set(name) <= _BARE else string(name)


def string(text: str) -> str:
    """A TOML basic string for any text: JSON's escapes are TOML's, and DEL must be escaped too."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def value(item: Any) -> str:
    """An inline TOML value (tables inline, arrays of anything)."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float):
        if math.isnan(item):
            return "nan"
        return ("inf" if item > 0 else "-inf") if math.isinf(item) else repr(item)
    if isinstance(item, str):
        return string(item)
    if isinstance(item, (datetime, date, time)):
        return item.isoformat()
    if isinstance(item, list):
        return "[" + ", ".join(value(v) for v in item) + "]"
    if isinstance(item, dict):
        return "{ " + ", ".join(f"{key(k)} = {value(v)}" for k, v in item.items()) + " }"
    raise TypeError(type(item))


def document(data: dict[str, Any]) -> str:
    """A whole file: scalars first, then ``[table]``s and ``[[arrays of tables]]`` (as people write it)."""
    head, tail = [], []
    for name, item in data.items():
        if isinstance(item, dict) and item:
            tail += ["", f"[{key(name)}]", *(f"{key(k)} = {value(v)}" for k, v in item.items())]
        elif isinstance(item, list) and item and all(isinstance(v, dict) for v in item):
            for table in item:
                tail += ["", f"[[{key(name)}]]", *(f"{key(k)} = {value(v)}" for k, v in table.items())]
        else:
            head.append(f"{key(name)} = {value(item)}")
    return "\n".join(head + tail) + "\n"


# ---------------------------------------------------------------------------------------- values

HOSTILE_TEXT = st.sampled_from([
    "", " ", "EX01'; Remove-Item C:\\ -Recurse; '", "\u2018x\u2019", "\u201cx\u201d", "$(Stop-Computer)",
    "`n", "a|b;c", "\x00", "\x1b[31m", "\n", "[bold]x[/]", "[@click=app.quit]", "~nosuchuser/x", "~", "/",
    ".", "\\\\server\\share", "A" * 5000, "password", "env:", "env:X", "keyring:", "prompt", "\ud7ff",
])
SCALARS = st.one_of(
    st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats(), HOSTILE_TEXT,
    st.text(max_size=30), st.datetimes(timezones=st.just(timezone.utc)), st.dates(), st.times(),
)
ANY_VALUE = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12)
NAMES = st.one_of(st.sampled_from(["EX01", "ex-02", "EX01", "LAB-EX001", "a" * 63]), HOSTILE_TEXT)
PATHS = st.one_of(st.sampled_from(["ca.pem", "/etc/ssl/ca.pem", "~/ca.pem", "~nosuchuser/ca.pem", "a\x00b"]),
                  HOSTILE_TEXT)

#: Plausible values for the real keys (each key also gets random ones).
SERVER_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "name": NAMES,
    "host": st.one_of(NAMES, st.sampled_from(["10.0.0.1", "::1", "[fe80::1]", "ex01.contoso.com"])),
    "port": st.one_of(st.integers(min_value=-5, max_value=70000), st.just(5986)),
    "scheme": st.sampled_from(["http", "https", "HTTPS", "ftp"]),
    "transport": st.sampled_from(["basic", "ntlm", "kerberos", "credssp", "certificate", "negotiate"]),
    "ems": st.sampled_from(["snapin", "remoteexchange", "both"]),
    "username": st.one_of(st.sampled_from(["admin", "CONTOSO\\admin", "admin@contoso.com"]), HOSTILE_TEXT),
    "password_from": st.sampled_from(["env:EXCH_PW", "keyring:emconsole", "prompt", "env:", "file:/x", ""]),
    "cert_pem": PATHS,
    "cert_key_pem": PATHS,
    "tls_verify": st.booleans(),
    "ca_bundle": PATHS,
    "proxy": st.sampled_from(["http://proxy:3128", "environment", "socks5://p:1080", "proxy:3128", ""]),
    "tags": st.dictionaries(st.one_of(st.sampled_from(["site", "environment"]), HOSTILE_TEXT),
                            st.one_of(st.sampled_from(["ams", "dublin"]), HOSTILE_TEXT), max_size=3),
    "password": st.text(max_size=8),
}
CHECK_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "levels": st.dictionaries(st.sampled_from(["unreachable", "em_off", "exposed", "leftover", "nope"]),
                              st.sampled_from(["critical", "warning", "unknown", "ignore", "ok", "fatal"]),
                              max_size=3),
    "em_off_ok": st.lists(NAMES, max_size=3),
    "critical_threshold": st.integers(min_value=-2, max_value=5),
    "warning_threshold": st.integers(min_value=-2, max_value=5),
}
BUILD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "build": st.sampled_from(["15.2.1748.43", "15.2.1748", "15.02.1748.043", "x", ""]),
    "product": st.sampled_from(["Exchange 2019", "", "Exchange SE"]),
    "cu": st.sampled_from(["CU15", "RTM", ""]),
    "update": st.sampled_from(["Feb26SU", ""]),
    "fixes": st.lists(st.sampled_from(["M2", "CVE-2026-42897", "M2;x", ""]), max_size=3),
}
ARTIFACT_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "kind": st.sampled_from(["rewrite_rule", "rewrite_precondition", "service", "app_pool", "file"]),
    "name": st.one_of(st.sampled_from(["EEMS M9.1 X - inbound", "MSExchangeImap4", "My Pool"]), HOSTILE_TEXT),
    "direction": st.sampled_from(["inbound", "outbound", "sideways"]),
    "pspath": st.sampled_from(["IIS:\\Sites\\Default Web Site", "MACHINE/WEBROOT/APPHOST", ""]),
    "filter": st.sampled_from(["system.webServer/rewrite/rules", ""]),
    "mitigated_when": st.sampled_from(["Stopped", ""]),
}
CATALOGUE_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "id": st.one_of(st.sampled_from(["M9", "M9.1", "LAB-SVC1", "m9"]), HOSTILE_TEXT),
    "kind": st.sampled_from(["url_rewrite", "service", "app_pool", "heartbeat", "unknown", "virus"]),
    "description": HOSTILE_TEXT,
    "cve": st.sampled_from(["CVE-2026-12345", "CVE-26-1", ""]),
    "applied_ids_seen": st.lists(st.one_of(st.sampled_from(["M9.1.0", "M8.1"]), HOSTILE_TEXT), max_size=3),
    "fix": st.one_of(st.fixed_dictionaries({}, optional={
        "update": st.sampled_from(["Feb26SU", ""]),
        "builds": st.dictionaries(st.sampled_from(["Exchange 2019 CU15", "x"]),
                                  st.sampled_from(["15.2.1748.43", "nope"]), max_size=2),
        "fixed_cus": st.lists(st.sampled_from(["Exchange 2019 CU16", ""]), max_size=2),
        "builds_complete": st.booleans()}), ANY_VALUE),
}
TOP_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "refresh_interval": st.one_of(st.floats(), st.integers(min_value=-5, max_value=10**6)),
    "concurrency": st.integers(min_value=-5, max_value=10_000),
    "call_timeout": st.one_of(st.floats(), st.integers(min_value=-5, max_value=10**6)),
    "read_only": st.booleans(),
    "bulk_confirm_threshold": st.integers(min_value=-5, max_value=100),
    "audit_path": PATHS,
    "theme": st.sampled_from(["textual-dark", "", "nord"]),
    "keymap": st.dictionaries(
        st.one_of(st.sampled_from(["app.refresh", "table.filter", "Bad Id", "app.refresh\n"]), HOSTILE_TEXT),
        st.sampled_from(["f5", "ctrl+r", "", "a b", "\x1b"]), max_size=3),
}


def table(spec: dict[str, st.SearchStrategy[Any]],
          **nested: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A table with some of the real keys (plausible or random values) and maybe an unknown key."""
    plausible = st.fixed_dictionaries({}, optional={**spec, **nested})
    keys = list({**spec, **nested})
    extra = st.dictionaries(st.one_of(st.sampled_from(keys), st.text(max_size=12)), ANY_VALUE, max_size=2)
    return st.tuples(plausible, extra).map(lambda pair: {**pair[0], **pair[1]})


SERVER = table(SERVER_VALUES)
ARTIFACT = table(ARTIFACT_VALUES)
CONFIG = table(
    TOP_VALUES,
    servers=st.one_of(st.lists(SERVER, max_size=3), ANY_VALUE),
    defaults=st.one_of(table(SERVER_VALUES), ANY_VALUE),
    check=st.one_of(table(CHECK_VALUES), ANY_VALUE),
    extra_builds=st.one_of(st.lists(table(BUILD_VALUES), max_size=2), ANY_VALUE),
    extra_catalogue=st.one_of(st.lists(table(CATALOGUE_VALUES, artifacts=st.lists(ARTIFACT, max_size=2)),
                                       max_size=2), ANY_VALUE),
)
def tweaked(base: st.SearchStrategy[dict[str, Any]], spec: dict[str, st.SearchStrategy[Any]]
            ) -> st.SearchStrategy[dict[str, Any]]:
    """A valid table with at most one key changed (plausible, random or unknown): near the schema's
    edges, where an accepted document and a refused one differ by one value."""
    change = st.one_of(
        st.just({}),
        st.sampled_from(sorted(spec)).flatmap(lambda k: spec[k].map(lambda v: {k: v})),
        st.dictionaries(st.one_of(st.sampled_from(sorted(spec)), st.text(max_size=8)), ANY_VALUE,
                        min_size=1, max_size=1),
    )
    return st.tuples(base, change).map(lambda pair: {**pair[0], **pair[1]})


GOOD_SERVER = st.fixed_dictionaries(
    {"name": st.sampled_from(["EX01", "ex-02", "LAB-EX003", "a" * 63]), "transport": st.just("kerberos")},
    optional={"host": st.sampled_from(["10.0.0.1", "::1", "ex01.contoso.com"]),
              "port": st.integers(min_value=1, max_value=65535), "scheme": st.sampled_from(["http", "https"]),
              "ems": st.sampled_from(["snapin", "remoteexchange"]), "tls_verify": st.booleans(),
              "tags": st.dictionaries(st.sampled_from(["site", "env"]), st.text(st.characters(
                  exclude_categories=["Cc", "Cs"]), max_size=20), max_size=2)})
NEAR_VALID = tweaked(
    st.fixed_dictionaries({"servers": st.lists(tweaked(GOOD_SERVER, SERVER_VALUES), min_size=1, max_size=3)},
                          optional={"call_timeout": st.integers(min_value=1, max_value=600),
                                    "concurrency": st.integers(min_value=1, max_value=512),
                                    "check": tweaked(st.just({}), CHECK_VALUES)}),
    TOP_VALUES)
VALID = document({"call_timeout": 30, "servers": [
    {"name": "EX01", "host": "ex01.contoso.com", "transport": "kerberos", "tags": {"site": "ams"}},
    {"name": "EX02", "scheme": "http", "transport": "basic", "username": "admin", "password_from": "env:PW"},
]})


DAMAGE = "[]=\"'{},.\n #\\x0"


@st.composite
def damaged(draw: st.DrawFn) -> str:
    """A valid file with a few characters cut out or dropped in."""
    text = VALID
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        if draw(st.booleans()):
            text = text[:at] + text[at + draw(st.integers(min_value=1, max_value=8)):]
        else:
            text = text[:at] + draw(st.text(alphabet=DAMAGE, min_size=1, max_size=4)) + text[at:]
    return text


STRUCTURED = st.one_of(CONFIG, NEAR_VALID)
DOCUMENTS = st.one_of(STRUCTURED.map(document), st.text(max_size=300), damaged())

# ---------------------------------------------------------------------------------------- the rule


def top_keys(text: str) -> set[str]:
    """The document's top-level keys (as written), for checking that an error names a real one."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return set(tomllib.loads(text))


def names_a_key(path: str, keys: set[str]) -> bool:
    """Whether the key path's first part is one of ``keys`` (quoted parts are JSON-escaped, long ones
    cut with '…')."""
    if path.startswith('"'):
        first, _ = json.JSONDecoder().raw_decode(path)
    else:
        first = re.split(r"[.\[]", path, maxsplit=1)[0]
    return first in keys or (first.endswith("…") and any(k.startswith(first[:-1]) for k in keys))


def check_outcome(text: str, source: str = "fuzz.toml") -> Config | ConfigError:
    """Accepted, or refused with a message that names the key or the TOML position; nothing else."""
    try:
        return parse_config(text, source)
    except ConfigError as error:
        message = str(error)
        assert message.startswith(f"{source}: "), message
        assert not CONTROL_CHARACTERS.search(message) and "\n" not in message, repr(message[:300])
        assert len(message) < 2000, message[:300]
        if error.key_path is None:
            assert "not valid TOML" in message, message
            assert ("(at line " in message and ", column " in message) or "(at end of document)" in message
        else:
            assert f"{source}: {error.key_path}" in message
            assert names_a_key(error.key_path, top_keys(text)), (error.key_path, message)
        return error


@FUZZ
@given(DOCUMENTS)
def test_every_document_is_accepted_or_refused_naming_the_key(text: str) -> None:
    check_outcome(text)


@FUZZ
@given(STRUCTURED)
def test_every_structured_document_is_refused_only_for_a_named_key(data: dict[str, Any]) -> None:
    outcome = check_outcome(document(data))
    if isinstance(outcome, Config):  # accepted: what was read is what the file says
        assert len(outcome.servers) == len(data.get("servers") or [])


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_on_disk(tmp_path_factory: Any, raw: bytes) -> None:
    path = tmp_path_factory.mktemp("cfg") / "config.toml"
    path.write_bytes(raw)
    try:
        load_config(path)
    except ConfigError as error:
        assert str(error).startswith(str(path)) and not CONTROL_CHARACTERS.search(str(error))


@settings(max_examples=6, deadline=None)
@given(st.one_of(STRUCTURED.map(document), damaged()))
def test_config_check_in_a_new_process_never_shows_a_traceback(tmp_path_factory: Any, text: str) -> None:
    path: Path = tmp_path_factory.mktemp("cfg") / "config.toml"
    path.write_text(text, encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "emconsole", "config", "check", "--config", str(path)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-2000:]
    expected = check_outcome(text, str(path))
    if isinstance(expected, ConfigError):
        assert result.returncode == 2 and result.stderr.startswith("error: "), result.stderr[-500:]
    else:
        assert result.returncode == 0 and f"{path}: valid" in result.stdout, result.stderr[-500:]
