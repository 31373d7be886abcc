"""Characters that must never reach a terminal as they are: one definition for every output.

Text from a server (rule names, descriptions, event messages, error lines, raw output) may hold
control characters; written raw, an escape sequence would repaint or retitle the operator's
terminal and a bidi override would make one name read as another. The headless renderers replace
them with ``?`` (``emconsole.cli.render.clean``), the console shows them the same way, and the
config refuses them where no one should type them (tag values). Tab and newline are not in the set:
each output decides how to lay lines out.
"""

from __future__ import annotations

import re

#: C0 controls but tab and newline, DEL, C1 controls, line/paragraph separators, bidi embeddings,
#: overrides and isolates.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: What each of them is shown as (one character for one, so columns stay aligned).
SHOWN_AS = "?"


def visible(text: str) -> str:
    """``text`` with every control character replaced by ``SHOWN_AS``; newlines and tabs kept."""
    return CONTROL_CHARACTERS.sub(SHOWN_AS, text)
