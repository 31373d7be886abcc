"""WS-Management SOAP: read a request envelope, write the responses and faults a Windows server writes.

Parsing uses ElementTree (C accelerated); responses are rendered from string templates, the cheap
way to produce the few fixed shapes WinRS needs.
"""

from __future__ import annotations

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
_RSP_COMMAND_LINE, _RSP_RECEIVE = _qname("rsp", "CommandLine"), _qname("rsp", "Receive")
_RSP_SHELL = _qname("rsp", "Shell")
_RSP_INPUT_STREAMS, _RSP_OUTPUT_STREAMS = _qname("rsp", "InputStreams"), _qname("rsp", "OutputStreams")


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


# -- pywinrm's messages, read without a parser --------------------------------------------------------
# pywinrm (and the console's own WSManProtocol, byte for byte the same) writes every message with the
# same root element and header elements in the same order, and one body per operation. Such a message
# is matched whole by the patterns below and its values are taken where they capture. A value may
# hold no markup or reference, no "]" (so no "]]>"), no control and no non-ASCII character: its text
# is then exactly its bytes, as expat reports it, and the request is the one ``ET.fromstring`` would
# give. Anything else - another client, an escaped value, another shape - is parsed.
_TEXT = rb"[^<&\]\x00-\x1f\x7f-\xff]*"  # character data
_VALUE = rb'[^<&"\x00-\x1f\x7f-\xff]*'  # an attribute value (in double quotes)
_T, _V = b"(" + _TEXT + b")", b"(" + _VALUE + b")"  # captured
_PYWINRM_HEADER = re.compile(
    rb'<\?xml version="1\.0" encoding="utf-8"\?>\n'
    rb'<env:Envelope xmlns:xsd="http://www\.w3\.org/2001/XMLSchema" '
    rb'xmlns:xsi="http://www\.w3\.org/2001/XMLSchema-instance" '
    rb'xmlns:env="http://www\.w3\.org/2003/05/soap-envelope" '
    rb'xmlns:a="http://schemas\.xmlsoap\.org/ws/2004/08/addressing" '
    rb'xmlns:b="http://schemas\.dmtf\.org/wbem/wsman/1/cimbinding\.xsd" '
    rb'xmlns:n="http://schemas\.xmlsoap\.org/ws/2004/09/enumeration" '
    rb'xmlns:x="http://schemas\.xmlsoap\.org/ws/2004/09/transfer" '
    rb'xmlns:w="http://schemas\.dmtf\.org/wbem/wsman/1/wsman\.xsd" '
    rb'xmlns:p="http://schemas\.microsoft\.com/wbem/wsman/1/wsman\.xsd" '
    rb'xmlns:rsp="http://schemas\.microsoft\.com/wbem/wsman/1/windows/shell" '
    rb'xmlns:cfg="http://schemas\.microsoft\.com/wbem/wsman/1/config">'
    rb"<env:Header><a:To>" + _T + rb"</a:To>"
    rb'<a:ReplyTo><a:Address mustUnderstand="true">' + _T + rb"</a:Address></a:ReplyTo>"
    rb'<w:MaxEnvelopeSize mustUnderstand="true">' + _T + rb"</w:MaxEnvelopeSize>"
    rb"<a:MessageID>" + _T + rb"</a:MessageID>"
    rb'<w:Locale mustUnderstand="false" xml:lang="' + _V + rb'"></w:Locale>'
    rb'<p:DataLocale mustUnderstand="false" xml:lang="' + _V + rb'"></p:DataLocale>'
    rb"<w:OperationTimeout>" + _T + rb"</w:OperationTimeout>"
    rb'<w:ResourceURI mustUnderstand="true">' + _T + rb"</w:ResourceURI>"
    rb'<a:Action mustUnderstand="true">' + _T + rb"</a:Action>"
    rb'(?:<w:SelectorSet><w:Selector Name="ShellId">' + _T + rb"</w:Selector></w:SelectorSet>)?"
    rb'(?:<w:OptionSet>((?:<w:Option Name="' + _VALUE + rb'">' + _TEXT + rb"</w:Option>)*)</w:OptionSet>)?"
    rb"</env:Header><env:Body>"
)
_PYWINRM_OPTION = re.compile(rb'<w:Option Name="' + _V + rb'">' + _T + rb"</w:Option>")
_PYWINRM_END = b"</env:Body></env:Envelope>"
_COMMAND = b"<rsp:CommandLine><rsp:Command>"
_COMMAND_LINE_END = b"</rsp:CommandLine>" + _PYWINRM_END
_ARGUMENTS, _ARGUMENTS_END = b"<rsp:Arguments>", b"</rsp:Arguments>" + _COMMAND_LINE_END
# What _TEXT excludes besides non-ASCII, as byte values (``int in bytes`` is a memchr; ``bytes in bytes``
# first fails to read its operand as an int, at the price of a formatted TypeError).
_NOT_IN_TEXT = (*range(0x20), *b"<&]\x7f")


def _body_pattern(*parts: bytes) -> re.Pattern[bytes]:
    return re.compile(b"".join(parts) + re.escape(_PYWINRM_END))


_PYWINRM_BODIES = {
    ACTION_RECEIVE: _body_pattern(
        b'<rsp:Receive><rsp:DesiredStream CommandId="', _V, b'">', _T, b"</rsp:DesiredStream></rsp:Receive>"
    ),
    ACTION_SIGNAL: _body_pattern(
        b'<rsp:Signal CommandId="', _V, b'"><rsp:Code>', _T, b"</rsp:Code></rsp:Signal>"
    ),
    ACTION_CREATE: _body_pattern(
        b"<rsp:Shell><rsp:InputStreams>",
        _T,
        b"</rsp:InputStreams><rsp:OutputStreams>",
        _T,
        b"</rsp:OutputStreams></rsp:Shell>",
    ),
    ACTION_DELETE: _body_pattern(),
}


def _plain_text(data: bytes, start: int, end: int) -> str | None:
    """``data[start:end]`` as text if _TEXT allows all of it (checked in C, byte value by byte value:
    a command line is most of its message, too long for a pattern)."""
    text = data[start:end]
    if not text.isascii() or any(map(text.__contains__, _NOT_IN_TEXT)):
        return None
    return text.decode("ascii")


def _pywinrm_command_line(data: bytes, start: int) -> list[Node] | None:
    """The body of a Command: ``rsp:Command``, then ``rsp:Arguments`` if there are any."""
    if not data.startswith(_COMMAND, start):
        return None
    start += len(_COMMAND)
    end = data.find(b"<", start)
    command = _plain_text(data, start, end) if data.startswith(b"</rsp:Command>", end) else None
    if command is None:
        return None
    nodes = [Node(_RSP_COMMAND_LINE, {}, ""), Node(RSP_COMMAND, {}, command)]
    rest = end + len(b"</rsp:Command>")
    if len(data) - rest == len(_COMMAND_LINE_END) and data.endswith(_COMMAND_LINE_END):
        return nodes
    if not data.startswith(_ARGUMENTS, rest) or not data.endswith(_ARGUMENTS_END):
        return None
    arguments = _plain_text(data, rest + len(_ARGUMENTS), len(data) - len(_ARGUMENTS_END))
    return None if arguments is None else [*nodes, Node(RSP_ARGUMENTS, {}, arguments)]


def _pywinrm_body(action: str, data: bytes, start: int) -> list[Node] | None:
    """The body of a pywinrm message from ``start`` (after ``<env:Body>``), or None if it is not one."""
    if action == ACTION_COMMAND:
        return _pywinrm_command_line(data, start)
    pattern = _PYWINRM_BODIES.get(action)
    match = pattern.fullmatch(data, start) if pattern is not None else None
    if match is None:
        return None
    values = [value.decode("ascii") for value in match.groups()]
    if action == ACTION_RECEIVE:
        return [Node(_RSP_RECEIVE, {}, ""), Node(RSP_DESIRED_STREAM, {"CommandId": values[0]}, values[1])]
    if action == ACTION_SIGNAL:
        return [Node(RSP_SIGNAL, {"CommandId": values[0]}, ""), Node(RSP_CODE, {}, values[1])]
    if action == ACTION_CREATE:
        streams = [Node(_RSP_INPUT_STREAMS, {}, values[0]), Node(_RSP_OUTPUT_STREAMS, {}, values[1])]
        return [Node(_RSP_SHELL, {}, ""), *streams]
    return []


def _pywinrm_request(data: bytes) -> Request | None:
    """The request in a message as pywinrm writes it; None for any other message."""
    header = _PYWINRM_HEADER.match(data)
    if header is None:
        return None
    _to, _reply_to, _max_size, message_id, _locale, _data_locale, timeout, uri, action, shell_id, options = (
        header.groups()
    )
    action_text = action.decode("ascii").strip()
    body = _pywinrm_body(action_text, data, header.end()) if action_text else None
    if body is None:
        return None
    return Request(
        action=action_text,
        message_id=message_id.decode("ascii").strip(),
        resource_uri=uri.decode("ascii").strip(),
        shell_id=shell_id.decode("ascii").strip() if shell_id is not None else None,
        operation_timeout_s=parse_duration(timeout.decode("ascii"), 60.0),
        options={
            name.decode("ascii"): value.decode("ascii").strip()
            for name, value in _PYWINRM_OPTION.findall(options or b"")
        },
        body=body,
    )


def parse_request(data: bytes) -> Request:
    """Parse a request; raises BadRequest for anything that is not a SOAP envelope with an Action.

    Header fields are the first direct child of ``s:Header`` with their name, selectors and options
    those of its ``w:SelectorSet``/``w:OptionSet`` children; one pass over the children (no path
    queries: they cost more than the parse). A message as pywinrm writes it is read without parsing.
    """
    known = _pywinrm_request(data)
    return known if known is not None else _parse_with_elementtree(data)


def _parse_with_elementtree(data: bytes) -> Request:
    try:
        root = ET.fromstring(data)
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
