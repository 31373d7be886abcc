"""WS-Management SOAP: read a request envelope, write the responses and faults a Windows server writes.

Parsing uses ElementTree (C accelerated); responses are rendered from string templates, the cheap
way to produce the few fixed shapes WinRS needs.
"""

from __future__ import annotations

import contextlib
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import NamedTuple
from xml.sax.saxutils import escape, quoteattr

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}
SHELL_NS = NS["rsp"]
RESOURCE_CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
ACTION_CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
ACTION_DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
ACTION_COMMAND = SHELL_NS + "/Command"
ACTION_SEND = SHELL_NS + "/Send"
ACTION_RECEIVE = SHELL_NS + "/Receive"
ACTION_SIGNAL = SHELL_NS + "/Signal"
ACTION_FAULT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
STATE_RUNNING = SHELL_NS + "/CommandState/Running"
STATE_DONE = SHELL_NS + "/CommandState/Done"

_DURATION = re.compile(r"^PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$")


class BadRequest(ValueError):
    """The body is not a WS-Management envelope this server can read."""


def _qname(prefix: str, name: str) -> str:
    """An element name as ElementTree expands it: ``{namespace}name``."""
    return f"{{{NS[prefix]}}}{name}"


S_ENVELOPE, S_HEADER, S_BODY = _qname("s", "Envelope"), _qname("s", "Header"), _qname("s", "Body")
W_SELECTOR_SET, W_SELECTOR = _qname("w", "SelectorSet"), _qname("w", "Selector")
W_OPTION_SET, W_OPTION = _qname("w", "OptionSet"), _qname("w", "Option")
_A_ACTION, _A_MESSAGE_ID = _qname("a", "Action"), _qname("a", "MessageID")
_W_RESOURCE_URI, _W_OPERATION_TIMEOUT = _qname("w", "ResourceURI"), _qname("w", "OperationTimeout")
_HEADER_FIELDS = frozenset((_A_ACTION, _A_MESSAGE_ID, _W_RESOURCE_URI, _W_OPERATION_TIMEOUT))
RSP_COMMAND, RSP_ARGUMENTS = _qname("rsp", "Command"), _qname("rsp", "Arguments")
RSP_STREAM, RSP_DESIRED_STREAM = _qname("rsp", "Stream"), _qname("rsp", "DesiredStream")
RSP_SIGNAL, RSP_CODE, RSP_VARIABLE = _qname("rsp", "Signal"), _qname("rsp", "Code"), _qname("rsp", "Variable")


class Node(NamedTuple):
    """One element below ``s:Body``: what the lab reads of it."""

    tag: str  # expanded: {namespace}name
    attrib: dict[str, str]
    text: str  # the text before its first child ("" if none)


@dataclass
class Request:
    """The parts of a request envelope the lab acts on."""

    action: str
    message_id: str
    resource_uri: str
    shell_id: str | None
    operation_timeout_s: float
    options: dict[str, str]
    body: list[Node]  # every element below s:Body in document order (empty without a Body)

    def body_child(self, tag: str) -> Node | None:
        """The first element below the body with this expanded tag (``RSP_*``), in document order."""
        for node in self.body:
            if node[0] == tag:
                return node
        return None

    def body_all(self, tag: str) -> list[Node]:
        """Every element below the body with this expanded tag, in document order."""
        return [node for node in self.body if node[0] == tag]


def parse_duration(text: str | None, default: float) -> float:
    """An xs:duration like ``PT20S`` or ``PT20.000S`` in seconds."""
    match = _DURATION.match((text or "").strip())
    if not match or not any(match.groups()):
        return default
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


_PROLOGS = (b'<?xml version="1.0" encoding="utf-8"?>', b'<?xml version="1.0" encoding="UTF-8"?>')
_LONG_TEXT = 4096
# Bytes that character data may hold and stand for themselves in it (no markup or reference, no
# carriage return, which XML rewrites; ASCII, the same in UTF-8 and in any encoding that is not used).
_PLAIN_TEXT = bytes(sorted(set(range(0x20, 0x7F)) - set(b"<>&\"'"))) + b"\t\n"
_MARKS = (b"~", b"^", b"`", b"|", b"@")


def _long_text(data: bytes) -> tuple[int, int, bytes] | None:
    """Where a long run of plain character data sits in a UTF-8 document (start, end), with a byte
    found nowhere else in it; None if there is none or the document could be read another way.

    The run is taken around the middle of the document, between the ``>`` and the ``<`` that bound
    it; without comments, CDATA, processing instructions or DOCTYPE (no ``!`` and no ``?`` past the
    declaration) a run of plain bytes right after ``>`` and right before ``<`` is character data
    wherever the document is well-formed, and its text is its bytes.
    """
    prolog = next((len(p) for p in _PROLOGS if data.startswith(p)), 0)
    if len(data) < 2 * _LONG_TEXT or not (prolog or (data[:1] == b"<" and data[1:2] not in (b"?", b"\x00"))):
        return None
    if b"!" in data or data.find(b"?", prolog) >= 0:
        return None
    middle = len(data) // 2
    start, end = data.rfind(b">", 0, middle) + 1, data.find(b"<", middle)
    if start == 0 or end - start < _LONG_TEXT or data[start:end].translate(None, _PLAIN_TEXT):
        return None
    for mark in _MARKS:
        if data.find(mark, 0, start) < 0 and data.find(mark, end) < 0:
            return start, end, mark
    return None


def parse_xml(data: bytes) -> ET.Element:
    """``ET.fromstring(data)``, with a long run of character data (the -EncodedCommand argument of a
    Command, most of the request) kept out of expat, which spends more on it than on all the rest:
    the document is parsed with one unique byte in its place, and the text put back where that byte
    landed. Any parse error is worded from the whole document, as if it had been read directly."""
    cut = _long_text(data)
    if cut is not None:
        start, end, mark_byte = cut
        with contextlib.suppress(ET.ParseError):
            root = ET.fromstring(data[:start] + mark_byte + data[end:])
            mark, text = mark_byte.decode("ascii"), data[start:end].decode("ascii")
            for element in root.iter():
                if element.text and mark in element.text:
                    element.text = element.text.replace(mark, text)
                    return root
                if element.tail and mark in element.tail:
                    element.tail = element.tail.replace(mark, text)
                    return root
    return ET.fromstring(data)


def parse_request(data: bytes) -> Request:
    """Parse a request; raises BadRequest for anything that is not a SOAP envelope with an Action.

    Header fields are the first direct child of ``s:Header`` with their name, selectors and options
    those of its ``w:SelectorSet``/``w:OptionSet`` children; one pass over the children (no path
    queries: they cost more than the parse).
    """
    try:
        root = parse_xml(data)
    except ET.ParseError as exc:
        raise BadRequest(f"malformed XML: {exc}") from exc
    header = root.find(S_HEADER)
    if root.tag != S_ENVELOPE or header is None:
        raise BadRequest("not a SOAP 1.2 envelope")
    fields: dict[str, str] = {}
    shell_id = None
    options: dict[str, str] = {}
    for child in header:
        tag = child.tag
        if tag == W_SELECTOR_SET:
            for selector in child:
                if selector.tag == W_SELECTOR and selector.get("Name") == "ShellId":
                    shell_id = (selector.text or "").strip()
        elif tag == W_OPTION_SET:
            for option in child:
                if option.tag == W_OPTION:
                    options[option.get("Name", "")] = (option.text or "").strip()
        elif tag in _HEADER_FIELDS and tag not in fields:
            fields[tag] = (child.text or "").strip()
    action = fields.get(_A_ACTION, "")
    if not action:
        raise BadRequest("no a:Action header")
    body: list[Node] = []
    element = root.find(S_BODY)
    if element is not None:
        nodes = element.iter()
        next(nodes)  # the body itself
        body = [Node(node.tag, node.attrib, node.text or "") for node in nodes]
    return Request(
        action=action,
        message_id=fields.get(_A_MESSAGE_ID, ""),
        resource_uri=fields.get(_W_RESOURCE_URI, ""),
        shell_id=shell_id,
        operation_timeout_s=parse_duration(fields.get(_W_OPERATION_TIMEOUT), 60.0),
        options=options,
        body=body,
    )


def new_guid() -> str:
    """Windows writes shell and command IDs as upper-case random GUIDs (``str(uuid4()).upper()``,
    formatted directly: the UUID object costs more than the random bytes)."""
    value = int.from_bytes(os.urandom(16), "big") & _GUID_CLEAR | _GUID_SET
    h = f"{value:032X}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_GUID_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))  # RFC 4122 variant and version bits, as uuid.UUID sets
_GUID_SET = (0x8000 << 48) | (4 << 76)
_ENVELOPE_HEAD = (
    '<s:Envelope xml:lang="en-US" xmlns:s="{s}" xmlns:a="{a}" xmlns:x="{x}" xmlns:w="{w}" '
    'xmlns:rsp="{rsp}" xmlns:p="{p}"><s:Header><a:Action>'
).format(**NS)
_ENVELOPE_TO = (
    "</a:MessageID><a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To><a:RelatesTo>"
)


def _envelope(action: str, relates_to: str, body: str) -> bytes:
    return (
        f"{_ENVELOPE_HEAD}{action}</a:Action><a:MessageID>uuid:{new_guid()}{_ENVELOPE_TO}"
        f"{escape(relates_to)}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def create_response(
    req: Request, shell_id: str, address: str, owner: str, client_ip: str, idle_timeout_s: float
) -> bytes:
    """CreateResponse: ResourceCreated with the ShellId selector (what pywinrm reads) and the shell."""
    body = (
        f"<x:ResourceCreated><a:Address>{escape(address)}</a:Address><a:ReferenceParameters>"
        f"<w:ResourceURI>{RESOURCE_CMD}</w:ResourceURI><w:SelectorSet>"
        f'<w:Selector Name="ShellId">{shell_id}</w:Selector>'
        "</w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>"
        f"<rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId><rsp:ResourceUri>{RESOURCE_CMD}</rsp:ResourceUri>"
        f"<rsp:Owner>{escape(owner)}</rsp:Owner><rsp:ClientIP>{escape(client_ip)}</rsp:ClientIP>"
        f"<rsp:IdleTimeOut>PT{idle_timeout_s:.3f}S</rsp:IdleTimeOut><rsp:InputStreams>stdin</rsp:InputStreams>"
        "<rsp:OutputStreams>stdout stderr</rsp:OutputStreams><rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>"
        "<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>"
    )
    return _envelope(ACTION_CREATE + "Response", req.message_id, body)


def command_response(req: Request, command_id: str) -> bytes:
    body = f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>"
    return _envelope(ACTION_COMMAND + "Response", req.message_id, body)


def send_response(req: Request) -> bytes:
    return _envelope(ACTION_SEND + "Response", req.message_id, "<rsp:SendResponse/>")


def signal_response(req: Request) -> bytes:
    return _envelope(ACTION_SIGNAL + "Response", req.message_id, "<rsp:SignalResponse/>")


def delete_response(req: Request) -> bytes:
    return _envelope(ACTION_DELETE + "Response", req.message_id, "")


def receive_response(
    req: Request, command_id: str, streams: list[tuple[str, str, bool]], exit_code: int | None
) -> bytes:
    """ReceiveResponse. ``streams``: (name, base64 text, end); ``exit_code`` None = still running."""
    parts = ["<rsp:ReceiveResponse>"]
    for name, data, end in streams:
        end_attr = ' End="true"' if end else ""
        parts.append(f'<rsp:Stream Name="{name}" CommandId="{command_id}"{end_attr}>{data}</rsp:Stream>')
    if exit_code is None:
        parts.append(f'<rsp:CommandState CommandId="{command_id}" State="{STATE_RUNNING}"/>')
    else:
        parts.append(
            f'<rsp:CommandState CommandId="{command_id}" State="{STATE_DONE}">'
            f"<rsp:ExitCode>{exit_code}</rsp:ExitCode></rsp:CommandState>"
        )
    parts.append("</rsp:ReceiveResponse>")
    return _envelope(ACTION_RECEIVE + "Response", req.message_id, "".join(parts))


@dataclass(frozen=True)
class Fault:
    """A WS-Management fault as Windows reports it (HTTP 500, ``s:Fault``, ``f:WSManFault``)."""

    code: int
    subcode: str
    reason: str
    message: str = ""
    sender: bool = True


def fault_response(relates_to: str, fault: Fault, machine: str) -> bytes:
    """The fault envelope; pywinrm reads ``f:WSManFault/@Code``, the subcode and the reason text."""
    body = (
        "<s:Fault><s:Code><s:Value>{value}</s:Value><s:Subcode><s:Value>{sub}</s:Value></s:Subcode></s:Code>"
        '<s:Reason><s:Text xml:lang="en-US">{reason}</s:Text></s:Reason><s:Detail>'
        '<f:WSManFault xmlns:f="{f}" Code="{code}" Machine={machine}><f:Message>{message}</f:Message>'
        "</f:WSManFault></s:Detail></s:Fault>"
    ).format(
        value="s:Sender" if fault.sender else "s:Receiver",
        sub=fault.subcode,
        reason=escape(fault.reason),
        f=NS["f"],
        code=fault.code,
        machine=quoteattr(machine),
        message=escape(fault.message or fault.reason),
    )
    return _envelope(ACTION_FAULT, relates_to, body)
