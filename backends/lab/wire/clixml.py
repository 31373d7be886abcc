"""PowerShell 5.1's error view for the errors the wire itself reports (unknown command, parse error,
a failing host), written as CLIXML on stderr with ``pwsh.clixml.streams_document``."""

from __future__ import annotations

from emconsole.backends.lab.pwsh.clixml import streams_document


def error_stream(text: str) -> str:
    """A whole error text as a CLIXML document of ``S="Error"`` lines (encoding: pwsh/clixml.py)."""
    return streams_document([("Error", text)])


def error_view(
    message: str,
    *,
    command: str = "",
    position: tuple[int, int, str, int] | None = None,
    category: str,
    target: str = "",
    error_id: str,
) -> str:
    """PowerShell 5.1's default error view for an error record.

    ``position`` is (line, column, source line, length) for the ``At line:`` and ``+ ~~~`` lines.
    """
    lines = [f"{command} : {message}" if command else message]
    if position is not None:
        line, column, source, length = position
        lines += [
            f"At line:{line} char:{column}",
            f"+ {source}",
            "+ " + " " * (column - 1) + "~" * max(1, length),
        ]
    lines += [
        f"    + CategoryInfo          : {category}: ({target}) [], {error_id.split(',')[0]}",
        f"    + FullyQualifiedErrorId : {error_id}",
        " ",
    ]
    return "\n".join(lines)


def command_not_found(name: str, line: int, column: int, source_line: str) -> str:
    """The CLIXML stderr PowerShell writes for an unknown command."""
    message = (
        f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable "
        "program. Check the spelling of the name, or if a path was included, verify that the path is "
        "correct and try again."
    )
    return error_stream(
        error_view(
            message,
            command=name,
            position=(line, column, source_line, len(name)),
            category="ObjectNotFound",
            target=f"{name}:String",
            error_id="CommandNotFoundException",
        )
    )


def parse_error(detail: str) -> str:
    """The CLIXML stderr for a script that does not parse (``detail``: first_error_message)."""
    text = detail + "\n    + CategoryInfo          : ParserError: (:) [], ParentContainsErrorRecordException"
    text += "\n    + FullyQualifiedErrorId : ParseException\n "
    return error_stream(text)
