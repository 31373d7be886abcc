"""Output helpers without a lab: a rich table on a terminal, plain text in a pipe, hostile cell text
cleaned in every format, server selection rules, --since parsing."""

from __future__ import annotations

import io
from datetime import datetime, timezone

import pytest

from emconsole.cli.common import CliError, parse_since
from emconsole.cli.render import Table, clean, csv_text, html_table, markdown, write_table
from emconsole.config import parse_config
from emconsole.models import MitigationStatus
from emconsole.selection import SelectionError, select

HOSTILE = "EEMS M9 \x1b[31mred\x1b[0m\r\nnext line \u202egnp.exe <script>|x"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def table() -> Table:
    t = Table(["SERVER", "NAME"])
    t.add("EX01", HOSTILE)
    t.add("EX02", MitigationStatus.APPLIED)
    return t


def test_rich_on_a_terminal_plain_in_a_pipe() -> None:
    tty, pipe = Tty(), io.StringIO()
    write_table(table(), "table", tty)
    write_table(table(), "table", pipe)
    assert "┃" in tty.getvalue() or "│" in tty.getvalue()
    assert pipe.getvalue().splitlines()[0].split() == ["SERVER", "NAME"]
    assert "applied" in pipe.getvalue(), "enums are shown by value"
    for out in (tty.getvalue(), pipe.getvalue()):
        assert "\x1b[31m" not in out and "\u202e" not in out and "\r" not in out


def test_hostile_text_is_cleaned_in_every_format() -> None:
    assert clean(HOSTILE) == "EEMS M9 ?[31mred?[0m next line ?gnp.exe <script>|x"
    md = markdown(table())
    assert "&lt;script&gt;" in md and "\\|x" in md and "\x1b" not in md
    assert "&lt;script&gt;" in html_table(table()) and "<script>" not in html_table(table())
    formula = Table(["A"])
    formula.add("=HYPERLINK(\"http://x\")")
    formula.add("+1")
    assert csv_text(formula).splitlines()[1:] == ["\"'=HYPERLINK(\"\"http://x\"\")\"", "'+1"]


CONFIG = """
[defaults]
transport = "basic"
username = "u"
password_from = "env:P"
[[servers]]
name = "EX01"
tags = { site = "ams", env = "prod" }
[[servers]]
name = "EX02"
tags = { site = "dub", env = "prod" }
[[servers]]
name = "LAB01"
tags = { site = "ams", env = "test" }
"""


def test_selection() -> None:
    config = parse_config(CONFIG)

    def names(*args: object, **kw: object) -> list[str]:
        return [s.name for s in select(config, *args, **kw)]  # type: ignore[arg-type]

    assert names() == ["EX01", "EX02", "LAB01"]
    assert names(["ex0*"]) == ["EX01", "EX02"]
    assert names([], ["site=AMS", "env=prod"]) == ["EX01"]
    assert names(["LAB01"], ["site=dub"]) == ["EX02", "LAB01"], "names and tags add up, config order"
    assert names([], [], all_servers=True, default_all=False) == ["EX01", "EX02", "LAB01"]
    with pytest.raises(SelectionError, match="say which servers"):
        names(default_all=False)
    with pytest.raises(SelectionError, match="did you mean EX01"):
        names(["EX1"])
    with pytest.raises(SelectionError, match="no server has the tags"):
        names([], ["site=nowhere"])
    with pytest.raises(SelectionError, match="KEY=VALUE"):
        names([], ["site"])


def test_since() -> None:
    now = datetime(2026, 8, 3, 12, 0, tzinfo=timezone.utc)
    assert parse_since("24h", now) == datetime(2026, 8, 2, 12, 0, tzinfo=timezone.utc)
    assert parse_since("2w", now) == datetime(2026, 7, 20, 12, 0, tzinfo=timezone.utc)
    assert parse_since("2026-08-01", now) == datetime(2026, 8, 1, tzinfo=timezone.utc)
    assert parse_since("2026-08-01T10:00Z", now) == datetime(2026, 8, 1, 10, tzinfo=timezone.utc)
    assert parse_since(None, now) is None
    with pytest.raises(CliError):
        parse_since("last week", now)
