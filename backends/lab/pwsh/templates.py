"""From script text to something to run, as cheaply as possible: ``prepare``.

The console sends each server its own copy of the same script: the texts differ only inside plain
single-quoted strings (``$Identity = 'EX01'``). Parsing, checking and compiling a 7 KB script costs
~20 ms (tree-sitter alone ~4 ms); done for every server of a fleet it was most of the lab's work in a
cold refresh, and every compiled program it kept made the garbage collector slower. So a compiled
program is a ``Template``: any text equal to its text outside the contents of those strings, with
contents a single-quoted string may hold unchanged in meaning, runs the same program with its own
string values and positions.

Why that is the same program: tree-sitter-pwsh reads ``'...'`` up to the first quote character
(``'`` or U+2018..U+201B, mapped to ``'`` before parsing; ``''`` is an escaped quote), so a content
without quote characters ends where the text says, and the rest is the same text, tokenised the
same way. Contents without line breaks keep every line number. Nothing the subset check looks at is
inside such a string, so the same check holds. And the compiler reads these strings only through
``it.literals`` (``Compiler.consumed`` proves it, or there is no template), takes script-block text
and error positions from the run's ``Source``, and bakes no other text that could contain them.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache

from emconsole.backends.lab.pwsh.api import ErrorRecord
from emconsole.backends.lab.pwsh.compiler import Compiler, Program
from emconsole.backends.lab.pwsh.positions import Source
from emconsole.backends.lab.pwsh.subset import first_refusal
from emconsole.backends.lab.pwsh.syntax import SyntaxNode, parse, syntax_tree

#: what a string content may hold and still mean the same text to the parser (no quote character,
#: no line break; tree-sitter-pwsh stops at NUL, Python cannot encode lone surrogates)
_CONTENT = re.compile("[^'\u2018\u2019\u201a\u201b\r\n\x00\ud800-\udfff]*")
_KEPT = 64  # templates tried before parsing (the console has a dozen script shapes)


@dataclass(frozen=True)
class Runnable:
    """A compiled program, the text it runs for, and that text's string values."""

    program: Program
    source: Source
    literals: tuple[str, ...]


@dataclass(frozen=True)
class Refused:
    """A script that does not run: a parse error or a construct outside the subset.

    Its record is shared between runs: callers only render it.
    """

    record: ErrorRecord


Prepared = Runnable | Refused


class Template:
    """A program and the text it was compiled from, cut around its replaceable string contents."""

    def __init__(self, program: Program, text: str, spans: list[tuple[int, int]]) -> None:
        self.program = program
        self._ends = tuple(end for _, end in spans)
        self._lengths = tuple(end - start for start, end in spans)
        cuts = [0] + [offset for span in spans for offset in span] + [len(text)]
        #: the fixed text around the contents: len(spans) + 1 pieces
        self._pieces = tuple(text[cuts[i] : cuts[i + 1]] for i in range(0, len(cuts), 2))

    def instance(self, text: str) -> Runnable | None:
        """The program for ``text`` if it is this template's text with other contents, else None."""
        pieces = self._pieces
        if not text.startswith(pieces[0]):
            return None
        position = len(pieces[0])
        contents: list[str] = []
        for piece in pieces[1:]:
            found = _CONTENT.match(text, position)
            assert found is not None  # the pattern matches the empty string
            position = found.end()
            if not text.startswith(piece, position):
                return None
            contents.append(found.group())
            position += len(piece)
        if position != len(text):
            return None
        shifts = [0]
        for content, length in zip(contents, self._lengths, strict=True):
            shifts.append(shifts[-1] + len(content) - length)
        return Runnable(self.program, Source(text, self._ends, shifts), tuple(contents))


_templates: list[Template] = []
_templates_lock = threading.Lock()


def _strings(root: SyntaxNode) -> list[SyntaxNode]:
    """Every single-quoted string, in the order of the text."""
    found: list[SyntaxNode] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "verbatim_string_characters":
            found.append(node)
        stack.extend(reversed(node.children))
    return found


def _parse_error(message: str) -> ErrorRecord:
    return ErrorRecord(
        message=message,
        fully_qualified_error_id="ParseException",
        category="ParserError",
        exception_type="System.Management.Automation.ParseException",
    )


def _compile(text: str) -> Prepared:
    parsed = parse(text)
    message = parsed.first_error_message()
    if message is not None:
        return Refused(_parse_error(message))
    root = syntax_tree(parsed)
    refused = first_refusal(parsed.original, root)
    if refused is not None:
        return Refused(refused)
    spans = [
        (node.start + 1, node.end - 1)
        for node in _strings(root)
        if _CONTENT.fullmatch(text, node.start + 1, node.end - 1)
    ]
    compiler = Compiler(parsed.original, parsed.mapped, {start - 1: i for i, (start, _) in enumerate(spans)})
    program = Program(compiler.block(root))
    if spans and len(compiler.consumed) == len(spans):
        with _templates_lock:
            _templates.insert(0, Template(program, text, spans))
            del _templates[_KEPT:]
    return Runnable(program, Source(text), tuple(text[start:end] for start, end in spans))


@lru_cache(maxsize=512)
def prepare(text: str) -> Prepared:
    """What to run for a script text: a known template's program when the text fits one, else the
    text parsed, checked and compiled (and kept as a template). Cached by text."""
    for template in tuple(_templates):
        found = template.instance(text)
        if found is not None:
            return found
    return _compile(text)
