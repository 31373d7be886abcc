"""The host used until the Exchange emulation lands: it parses the script and answers its first
command with PowerShell's "is not recognized" error (CLIXML on stderr, exit 1)."""

from __future__ import annotations

import tree_sitter
from emconsole.backends.lab.host import CommandRequest, HostResult, ShellContext
from emconsole.backends.lab.pwsh.syntax import ParsedScript, parse
from emconsole.backends.lab.wire import clixml
from emconsole.backends.lab.wire.codepage import encode_console


def _first_command(parsed: ParsedScript) -> tree_sitter.Node | None:
    stack = [parsed.tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "command_name":
            return node
        stack.extend(reversed(node.children))
    return None


class StubHost:
    """A PowerShellHost that knows no command at all."""

    def run(self, request: CommandRequest, context: ShellContext) -> HostResult:
        cp = context.codepage
        if request.script is None:
            program = request.command_line.split(" ", 1)[0]
            text = (f"'{program}' is not recognized as an internal or external command,\n"
                    "operable program or batch file.\n")
            return HostResult(b"", encode_console(text, cp), 1)
        parsed = parse(request.script)
        problem = parsed.first_error_message()
        if problem is not None:
            return HostResult(b"", encode_console(clixml.parse_error(problem), cp), 1)
        node = _first_command(parsed)
        if node is None:
            return HostResult(b"", b"", 0)
        name = parsed.text(node)
        line = node.start_point[0] + 1
        start, _ = parsed.char_span(node)
        line_start = parsed.original.rfind("\n", 0, start) + 1
        line_end = parsed.original.find("\n", start)
        source = parsed.original[line_start : len(parsed.original) if line_end < 0 else line_end].rstrip("\r")
        err = clixml.command_not_found(name, line, start - line_start + 1, source)
        return HostResult(b"", encode_console(err, cp), 1)
