"""Parse PowerShell text with tree-sitter-pwsh the way PowerShell's tokenizer sees it.

PowerShell treats U+2018..U+201B as ``'``, U+201C..U+201E as ``"`` and U+2013..U+2015 as ``-``.
The grammar does not, so we parse a copy with those characters mapped to ASCII; every one of them is
a single code point like its ASCII twin, so character offsets are shared and literal values are
read from the *original* text (``'a–b'`` stays ``a–b``). Used by the lab's interpreter and by the
tests that check the console's scripts.

``syntax_tree`` copies a clean parse into plain Python objects once: every ``type``/``children``
access on a tree-sitter node is a call into the bindings, too slow to repeat for every run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import tree_sitter
import tree_sitter_pwsh

SMART_SINGLE = "\u2018\u2019\u201a\u201b"
SMART_DOUBLE = "\u201c\u201d\u201e"
SMART_DASH = "\u2013\u2014\u2015"
_MAP = str.maketrans(
    {**dict.fromkeys(SMART_SINGLE, "'"), **dict.fromkeys(SMART_DOUBLE, '"'), **dict.fromkeys(SMART_DASH, "-")}
)

LANGUAGE = tree_sitter.Language(tree_sitter_pwsh.language())


def map_smart_characters(text: str) -> str:
    """Map the quote and dash look-alikes PowerShell accepts to their ASCII twins."""
    return text.translate(_MAP)


@dataclass
class ParsedScript:
    """A parse of one script: the tree of the mapped text plus a way back to the original text."""

    original: str
    mapped: str
    tree: tree_sitter.Tree
    #: byte offset -> character offset; None when the text is ASCII (they are the same)
    _byte_to_char: list[int] | None = field(repr=False, default=None)

    def char_span(self, node: tree_sitter.Node) -> tuple[int, int]:
        """Character offsets of a node (tree-sitter reports UTF-8 byte offsets)."""
        if self._byte_to_char is None:
            return node.start_byte, node.end_byte
        return self._byte_to_char[node.start_byte], self._byte_to_char[node.end_byte]

    def text(self, node: tree_sitter.Node) -> str:
        """The node's text as written in the original script (smart characters kept)."""
        start, end = self.char_span(node)
        return self.original[start:end]

    def errors(self) -> list[tree_sitter.Node]:
        """Every ERROR or MISSING node: any one of them makes the script a parse error."""
        found: list[tree_sitter.Node] = []
        stack = [self.tree.root_node]
        while stack:
            node = stack.pop()
            if node.is_error or node.is_missing:
                found.append(node)
                continue
            if node.has_error:
                stack.extend(node.children)
        return found

    def first_error_message(self) -> str | None:
        """A PowerShell-like parse error message for the first error, or None when the parse is clean."""
        errors = self.errors()
        if not errors:
            return None
        node = min(errors, key=lambda n: n.start_byte)
        line = node.start_point[0] + 1
        start, _ = self.char_span(node)
        line_start = self.original.rfind("\n", 0, start) + 1
        column = start - line_start + 1
        if node.is_missing:
            what = f"Missing '{node.type}'"
        else:
            what = f"Unexpected token '{self.text(node)[:40]}' in expression or statement"
        return f"At line:{line} char:{column}\n{what}."


class SyntaxNode:
    """A plain copy of one tree-sitter node: its kind, character span, field and children.

    No link to the parent (only its kind): a tree without cycles is freed as soon as it is
    compiled, without work for the garbage collector. A node's line is ``text.count("\n", 0, start)``.
    """

    __slots__ = ("children", "end", "field", "is_named", "named_children", "parent_type", "start", "type")

    def __init__(
        self, kind: str, is_named: bool, start: int, end: int, field: str | None, parent_type: str | None
    ) -> None:
        self.type = kind
        self.is_named = is_named
        self.start = start
        self.end = end
        #: the field name the parent gives this child (``condition``, ``value``, ...), if any
        self.field = field
        self.parent_type = parent_type
        self.children: list[SyntaxNode] = []
        self.named_children: list[SyntaxNode] = []

    def child_by_field_name(self, name: str) -> SyntaxNode | None:
        """The first child in field ``name`` (as tree-sitter's ``child_by_field_name``)."""
        return next((child for child in self.children if child.field == name), None)

    def __repr__(self) -> str:
        return f"SyntaxNode({self.type}, {self.start}..{self.end})"


#: kind id -> (kind, is named); field id -> field name (asking the node for them costs more)
_KINDS = [
    (LANGUAGE.node_kind_for_id(kind) or "", LANGUAGE.node_kind_is_named(kind))
    for kind in range(LANGUAGE.node_kind_count)
]
_FIELDS = [LANGUAGE.field_name_for_id(field_id) for field_id in range(LANGUAGE.field_count + 1)]


def syntax_tree(parsed: ParsedScript) -> SyntaxNode:
    """The whole tree as ``SyntaxNode`` objects (one walk with a tree cursor, no recursion)."""
    to_char = parsed._byte_to_char
    cursor = parsed.tree.walk()
    kinds, fields = _KINDS, _FIELDS

    def copy(parent: SyntaxNode | None) -> SyntaxNode:
        node = cursor.node
        assert node is not None
        kind, named = kinds[node.kind_id]
        start, end = node.start_byte, node.end_byte
        if to_char is not None:
            start, end = to_char[start], to_char[end]
        field_id = cursor.field_id
        made = SyntaxNode(
            kind,
            named,
            start,
            end,
            None if field_id is None else fields[field_id],
            None if parent is None else parent.type,
        )
        if parent is not None:
            parent.children.append(made)
            if named:
                parent.named_children.append(made)
        return made

    root = copy(None)
    path = [root]
    while True:
        if cursor.goto_first_child():
            path.append(copy(path[-1]))
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return root
            path.pop()
        path[-1] = copy(path[-2])


def _byte_to_char_table(text: str) -> list[int] | None:
    """None for ASCII text; else the character offset of every UTF-8 byte offset."""
    if text.isascii():
        return None
    table: list[int] = []
    for index, char in enumerate(text):
        code = ord(char)
        table.extend([index] * (1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4))
    table.append(len(text))
    return table


@lru_cache(maxsize=512)
def parse(text: str) -> ParsedScript:
    """Parse a script (cached by its text: the console sends the same bodies again and again)."""
    mapped = map_smart_characters(text)
    parser = tree_sitter.Parser(LANGUAGE)
    tree = parser.parse(mapped.encode("utf-8"))
    return ParsedScript(text, mapped, tree, _byte_to_char_table(mapped))
