"""Validation refuses anything dangerous; whatever it accepts survives quoting and parsing unchanged."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from emconsole.backends.lab.pwsh.syntax import parse
from hypothesis import given, settings
from hypothesis import strategies as st

from emconsole.remote import validate
from emconsole.remote.quoting import quote, quote_array
from emconsole.remote.scripts import build_block, build_restore, build_status

CHECKS: list[tuple[Callable[..., str], re.Pattern[str]]] = [
    (validate.identity, validate.IDENTITY_RE),
    (validate.mitigation_id, validate.MITIGATION_ID_RE),
    (validate.backup_id, validate.BACKUP_ID_RE),
    (validate.service_name, validate.SERVICE_NAME_RE),
    (validate.app_pool, validate.APP_POOL_RE),
]
DANGEROUS = [
    "'",
    "\u2018",
    "\u2019",
    "\u201a",
    "\u201b",
    '"',
    "\u201c",
    "\u201d",
    "\u201e",
    ";",
    "$(",
    "`",
    "\n",
    "\r",
    "\x00",
    "$",
    "|",
    "&",
    "{",
    "}",
    "@(",
]


def value_of(text: str) -> str:
    """Parse ``$x = <literal>`` and read the literal back by PowerShell's doubling rule."""
    parsed = parse(f"$x = {text}\n")
    assert parsed.errors() == []
    nodes = [parsed.tree.root_node]
    found = []
    while nodes:
        node = nodes.pop()
        if node.type == "verbatim_string_characters":
            found.append(parsed.text(node))
        nodes.extend(node.children)
    assert len(found) == 1
    body, out, i = found[0][1:-1], [], 0
    while i < len(body):
        if body[i] in "'\u2018\u2019\u201a\u201b":
            out.append(body[i + 1])
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_accepted_values_round_trip(data: st.DataObject) -> None:
    check, pattern = data.draw(st.sampled_from(CHECKS))
    value = data.draw(st.from_regex(pattern, fullmatch=True).filter(lambda s: "\n" not in s))
    try:
        accepted = check(value)
    except validate.InvalidInput:
        return  # the regex strategy can produce a trailing-newline twin; refusing is fine
    assert value_of(quote(accepted)) == value


@settings(max_examples=80, deadline=None)
@given(
    st.text(alphabet=st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=40)
)
def test_quoting_alone_keeps_any_text_literal(text: str) -> None:
    """Quoting is the second wall: even refused characters stay inside one literal."""
    assert value_of(quote(text)) == text


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=20), st.sampled_from(DANGEROUS), st.text(max_size=20))
def test_dangerous_characters_are_refused(before: str, bad: str, after: str) -> None:
    for check, _ in CHECKS:
        with pytest.raises(validate.InvalidInput):
            check(before + bad + after)


@pytest.mark.parametrize("bad", ["", "-a", "a-", "a" * 64, "a.b", "a b", "a\n", "EX01\n", 5, None])
def test_identity_refusals(bad: object) -> None:
    with pytest.raises(validate.InvalidInput) as info:
        validate.identity(bad)
    assert "server name" in str(info.value)


def test_hosts() -> None:
    for good in ("ex01", "ex01.contoso.local", "10.0.0.1", "::1", "[fe80::1]", "a" * 63 + ".b"):
        assert validate.host(good) == good
    for bad in ("", "-x.y", "x..y", "a b", "x;y", "a" * 64, "1.2.3.4;rm"):
        with pytest.raises(validate.InvalidInput):
            validate.host(bad)


def test_builders_refuse_before_any_script_exists() -> None:
    with pytest.raises(validate.InvalidInput):
        build_status("EX01'; Remove-Item C:\\ -Recurse; '", "snapin")
    with pytest.raises(validate.InvalidInput):
        build_status("EX01", "cmd")
    with pytest.raises(validate.InvalidInput):
        build_block("EX01", "snapin", ["M1$(x)"], [])
    with pytest.raises(validate.InvalidInput):
        build_block("EX01", "snapin", "M1", [])  # a bare string is not a list of IDs
    with pytest.raises(validate.InvalidInput):
        build_restore("EX01", "../../etc")


def test_quote_array_shapes() -> None:
    assert quote_array([]) == "@()"
    assert quote_array(["a"]) == "@('a')"
    assert quote("it's \u2019") == "'it''s \u2019\u2019'"


def test_backup_ids_are_valid_and_distinct() -> None:
    a, b = validate.new_backup_id(), validate.new_backup_id()
    assert validate.backup_id(a) == a and a != b
