"""Console code pages: the shell's ``WINRS_CODEPAGE`` decides how a command's text becomes bytes.

The wire passes the code page in ``ShellContext.codepage`` and the host encodes its own text with
``encode_console`` (HostResult carries bytes, as a real process writes bytes).
"""

from __future__ import annotations

_CODECS = {437: "cp437", 850: "cp850", 1252: "cp1252", 65001: "utf-8"}


def codec_for(codepage: int) -> str:
    """The Python codec for a Windows code page (cp437 for one the lab does not know, as winrs does)."""
    return _CODECS.get(codepage, "cp437")


def encode_console(text: str, codepage: int) -> bytes:
    """Text as a console process writes it: CRLF line ends, unmappable characters as '?'."""
    text = text.replace("\r\n", "\n").replace("\n", "\r\n")
    return text.encode(codec_for(codepage), errors="replace")


def decode_console(data: bytes, codepage: int) -> str:
    """Bytes a client sent on stdin, read in the shell's code page."""
    return data.decode(codec_for(codepage), errors="replace")
