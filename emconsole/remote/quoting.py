"""PowerShell literals for validated values: the only way a value enters a script's text.

PowerShell's tokenizer takes U+2018..U+201B as ``'`` too, so each of them is doubled like ``'``
(a doubled quote inside a single-quoted string stands for the character once; doubling the smart
one keeps it as written). Validation refuses these characters in names anyway: quoting is the
second wall, not the first.
"""

from __future__ import annotations

from collections.abc import Iterable

SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"


def quote(value: str) -> str:
    """``value`` as a single-quoted PowerShell string literal."""
    return "'" + "".join(c + c if c in SINGLE_QUOTES else c for c in value) + "'"


def quote_array(values: Iterable[str]) -> str:
    """``@('a', 'b')``, or ``@()`` when empty (an array even with one item)."""
    return "@(" + ", ".join(quote(v) for v in values) + ")"


def quote_bool(value: bool) -> str:
    return "$true" if value else "$false"
