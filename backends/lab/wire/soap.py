"""WS-Management SOAP: read a request envelope, write the responses and faults a Windows server writes.

Parsing uses ElementTree (C accelerated); responses are rendered from string templates, the cheap
way to produce the few fixed shapes WinRS needs.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
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


@dataclass
class Request:
    """The parts of a request envelope the lab acts on."""

    action: str
    message_id: str
    resource_uri: str
    shell_id: str | None
    operation_timeout_s: float
    options: dict[str, str]
    body: ET.Element | None
    root: ET.Element = field(repr=False)

    def body_child(self, tag: str) -> ET.Element | None:
        """The first descendant of the body with the given ``prefix:name`` tag."""
        if self.body is None:
            return None
        prefix, name = tag.split(":")
        return self.body.find(f".//{{{NS[prefix]}}}{name}")


def parse_duration(text: str | None, default: float) -> float:
    """An xs:duration like ``PT20S`` or ``PT20.000S`` in seconds."""
    match = _DURATION.match((text or "").strip())
    if not match or not any(match.groups()):
        return default
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def parse_request(data: bytes) -> Request:
    """Parse a request; raises BadRequest for anything that is not a SOAP envelope with an Action."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise BadRequest(f"malformed XML: {exc}") from exc
    header = root.find(f"{{{NS['s']}}}Header")
    if root.tag != f"{{{NS['s']}}}Envelope" or header is None:
        raise BadRequest("not a SOAP 1.2 envelope")

    def text(path: str) -> str:
        node = header.find(path, NS)
        return (node.text or "").strip() if node is not None else ""

    action = text("a:Action")
    if not action:
        raise BadRequest("no a:Action header")
    shell_id = None
    for selector in header.iterfind("w:SelectorSet/w:Selector", NS):
        if selector.get("Name") == "ShellId":
            shell_id = (selector.text or "").strip()
    options = {
        opt.get("Name", ""): (opt.text or "").strip() for opt in header.iterfind("w:OptionSet/w:Option", NS)
    }
    return Request(
        action=action,
        message_id=text("a:MessageID"),
        resource_uri=text("w:ResourceURI"),
        shell_id=shell_id,
        operation_timeout_s=parse_duration(text("w:OperationTimeout"), 60.0),
        options=options,
        body=root.find(f"{{{NS['s']}}}Body"),
        root=root,
    )


def new_guid() -> str:
    """Windows writes shell and command IDs as upper-case GUIDs."""
    return str(uuid.uuid4()).upper()


def _envelope(action: str, relates_to: str, body: str) -> bytes:
    return (
        (
            '<s:Envelope xml:lang="en-US" xmlns:s="{s}" xmlns:a="{a}" xmlns:x="{x}" xmlns:w="{w}" '
            'xmlns:rsp="{rsp}" xmlns:p="{p}"><s:Header><a:Action>{action}</a:Action>'
            "<a:MessageID>uuid:{mid}</a:MessageID>"
            "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
            "<a:RelatesTo>{rel}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>"
        )
        .format(action=action, mid=new_guid(), rel=escape(relates_to), body=body, **NS)
        .encode("utf-8")
    )


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
