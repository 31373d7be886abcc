"""The stderr of ``powershell.exe -EncodedCommand`` with redirected streams: ``#< CLIXML`` + ``<Objs>``.

Each line of an error's text is one ``<S S="Error">`` element ending in an encoded CRLF
(``_x000D__x000A_``); warnings are ``<S S="warning">``. pywinrm's ``_clean_error_msg`` reads exactly
this shape.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

HEADER = "#< CLIXML\r\n"
_OBJS = '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
_NEEDS_CODE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f_]")


def _encode(text: str) -> str:
    """CLIXML string encoding: XML escapes, control characters (and ``_`` before ``x``) as ``_xHHHH_``."""

    def code(match: re.Match[str]) -> str:
        char = match.group(0)
        start = match.start()
        if char == "_" and not re.match(r"_x[0-9A-Fa-f]{4}_", text[start : start + 7]):
            return "_"
        return f"_x{ord(char):04X}_"

    encoded = _NEEDS_CODE.sub(code, text).replace("\r", "_x000D_").replace("\n", "_x000A_")
    return escape(encoded)


def streams_document(entries: list[tuple[str, str]]) -> str:
    """``entries`` are (stream, text) with stream ``Error`` or ``warning``; one S element per line."""
    parts = [HEADER, _OBJS]
    for stream, text in entries:
        for line in text.replace("\r\n", "\n").split("\n"):
            parts.append(f'<S S="{stream}">{_encode(line + chr(13) + chr(10))}</S>')
    parts.append("</Objs>")
    return "".join(parts)
