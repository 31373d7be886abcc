"""Texts that differ only inside plain single-quoted strings share one compiled program (templates.py)
and still behave exactly as if each had been compiled on its own: values, error positions, block text."""

from __future__ import annotations

import uuid

from emconsole.backends.lab.pwsh.templates import Runnable, prepare
from test_lab_pwsh import lines, run


def unique(script: str) -> str:
    """A text no earlier test compiled (the cache and the templates are per process)."""
    return f"# {uuid.uuid4()}\n{script}"


def program_of(text: str) -> object:
    prepared = prepare(text)
    assert isinstance(prepared, Runnable)
    return prepared.program


def test_same_shape_other_strings_share_the_program_with_their_own_values() -> None:
    first = unique("$Identity = 'EX1'\n$Ids = @('M1', 'M2')\n\"$Identity $($Ids.Count) $($Ids[1])\"")
    second = first.replace("'EX1'", "'LAB-EX200 é–$x'").replace("'M2'", "''")
    assert program_of(first) is program_of(second)  # compiled from the first, the second fits it
    assert lines(run(first)) == ["EX1 2 M2"]
    assert lines(run(second)) == ["LAB-EX200 é–$x 2 "]


def test_error_positions_follow_the_longer_or_shorter_strings() -> None:
    first = unique("$a = 'x'; Get-Nope\n$b = 'y'; $c = 'z' + (Get-Nope)")
    second = first.replace("'x'", "'wider'").replace("'z'", "''")
    assert program_of(first) is program_of(second)  # compiled from the first, the second fits it
    errors = run(second).stderr  # line 1 is unique()'s comment
    assert "At line:2 char:15" in errors and "+ $a = 'wider'; Get-Nope" in errors
    assert "At line:3 char:21" in errors and "+ $b = 'y'; $c = '' + (Get-Nope)" in errors
    assert "At line:2 char:11" not in errors and "At line:3 char:22" not in errors  # the first text's


def test_a_script_block_shows_its_own_text() -> None:
    first = unique("$b = { 'in the block' }\n[string]$b")
    second = first.replace("'in the block'", "'other'")
    assert program_of(first) is program_of(second)  # compiled from the first, the second fits it
    assert lines(run(second)) == [" 'other' "]


def test_a_string_with_quotes_or_a_line_break_is_not_a_template_hole() -> None:
    first = unique("$a = 'plain'\n$a")
    quoted = first.replace("'plain'", "'it''s'")
    broken = first.replace("'plain'", "'two\nlines'")
    assert program_of(quoted) is not program_of(first) and program_of(broken) is not program_of(first)
    assert lines(run(quoted)) == ["it's"] and lines(run(broken)) == ["two\nlines"]


def test_other_text_outside_the_strings_is_another_program() -> None:
    first = unique("$a = 'x'\n$a")
    assert program_of(first.replace("= 'x'", "= 'x' ")) is not program_of(first)
    assert program_of(first + "\n'more'") is not program_of(first)
