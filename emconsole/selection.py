"""Which servers a command is about: ``--server NAME`` (globs allowed), ``--tag KEY=VALUE``, ``--all``.

One definition for the headless commands and the console's command palette. Names match
case-insensitively (Windows names do); several tags must all match; names and tags add up. A name
or glob that matches nothing is an error (a typo must not silently shrink a change).
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Sequence

from emconsole.config import Config, ServerConfig


class SelectionError(ValueError):
    """The selection cannot be used; the message says why and what exists."""


def parse_tag(text: str) -> tuple[str, str]:
    """``"site=ams"`` -> ``("site", "ams")``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise SelectionError(f"--tag takes KEY=VALUE, not {text!r}")
    return key.strip(), value.strip()


def _has_tags(server: ServerConfig, tags: Sequence[tuple[str, str]]) -> bool:
    return all(server.tags.get(k, "").casefold() == v.casefold() for k, v in tags)


def select(config: Config, names: Sequence[str] = (), tags: Sequence[str] = (), *, all_servers: bool = False,
           default_all: bool = True) -> tuple[ServerConfig, ...]:
    """The selected servers in config order.

    Nothing given: every server when ``default_all`` (read-only commands), else an error — a change
    needs ``--server``, ``--tag`` or ``--all`` spelled out.
    """
    if not config.servers:
        raise SelectionError("the configuration has no [[servers]]")
    if all_servers or not (names or tags):
        if not (all_servers or default_all):
            raise SelectionError("say which servers: --server NAME, --tag KEY=VALUE or --all")
        return config.servers
    chosen: set[str] = set()
    every = [s.name for s in config.servers]
    for pattern in names:
        hits = [n for n in every if fnmatch.fnmatchcase(n.casefold(), pattern.strip().casefold())]
        if not hits:
            close = difflib.get_close_matches(pattern.upper(), [n.upper() for n in every], n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise SelectionError(f"no server called {pattern!r} in the configuration{hint}")
        chosen.update(hits)
    if tags:
        parsed = [parse_tag(t) for t in tags]
        hits = [s.name for s in config.servers if _has_tags(s, parsed)]
        if not hits:
            raise SelectionError(f"no server has the tags {', '.join(tags)}")
        chosen.update(hits)
    return tuple(s for s in config.servers if s.name in chosen)
