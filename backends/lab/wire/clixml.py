"""PowerShell's CLIXML error stream, as ``powershell.exe`` writes it to stderr when not interactive.

``#< CLIXML\r\n<Objs ...><S S="Error">line_x000D__x000A_</S>...</Objs>``: one ``S`` element per
line of the error view. pywinrm's ``Session._clean_error_msg`` joins the ``S`` texts and turns
``_x000D__x000A_`` back into newlines. Reusable by any host that reports PowerShell errors.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

HEADER = "#< CLIXML\r\n"
_OBJS_OPEN = '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'


def _encode_text(text: str) -> str:
    """XML-escape and write control characters as PowerShell does (``_xHHHH_``)."""
    return "".join(f"_x{ord(c):04X}_" if ord(c) < 0x20 else c for c in escape(text))


def error_stream(text: str) -> str:
    """A whole error text as a CLIXML document of ``S="Error"`` lines (each ends with CRLF)."""
    lines = text.replace("\r\n", "\n").split("\n")
    body = "".join('<S S="Error">' + _encode_text(line + "\r\n") + "</S>" for line in lines)
    return HEADER + _OBJS_OPEN + body + "</Objs>"


def error_view(message: str, *, command: str = "", position: tuple[int, int, str, int] | None = None,
               category: str, target: str = "", error_id: str) -> str:
    """PowerShell 5.1's default error view for an error record.

    ``position`` is (line, column, source line, length) for the ``At line:`` and ``+ ~~~`` lines.
    """
    lines = [f"{command} : {message}" if command else message]
    if position is not None:
        line, column, source, length = position
        lines += [f"At line:{line} char:{column}", f"+ {source}", "+ " + " " * (column - 1) + "~" * max(1, length)]
    lines += [f"    + CategoryInfo          : {category}: ({target}) [], {error_id.split(',')[0]}",
              f"    + FullyQualifiedErrorId : {error_id}", " "]
    return "\n".join(lines)


def command_not_found(name: str, line: int, column: int, source_line: str) -> str:
    """The CLIXML stderr PowerShell writes for an unknown command."""
    message = (f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable "
               "program. Check the spelling of the name, or if a path was included, verify that the path is "
               "correct and try again.")
    return error_stream(error_view(message, command=name, position=(line, column, source_line, len(name)),
                                   category="ObjectNotFound", target=f"{name}:String",
                                   error_id="CommandNotFoundException"))


def parse_error(detail: str) -> str:
    """The CLIXML stderr for a script that does not parse (``detail`` from ParsedScript.first_error_message)."""
    text = detail + "\n    + CategoryInfo          : ParserError: (:) [], ParentContainsErrorRecordException"
    text += "\n    + FullyQualifiedErrorId : ParseException\n "
    return error_stream(text)
