"""The lab's WS-Management endpoint driven by plain pywinrm: Basic over HTTP, commands, streams."""

from __future__ import annotations

import asyncio
import base64
import math
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import winrm
import xmltodict
from emconsole.backends.lab.fleet import HostFactory, LabFleet
from emconsole.backends.lab.host import CommandRequest, HostResult, ShellContext
from emconsole.backends.lab.wire import cmdline, soap
from emconsole.backends.lab.wire.codepage import encode_console
from labfixture import lab_credentials, stub_host

LabFactory = Callable[..., LabFleet]


class EchoHost:
    """Answers with what it was asked (script, stdin, code page), optionally big or slow."""

    def __init__(self, size: int = 0, duration_s: float = 0.0) -> None:
        self.size = size
        self.duration_s = duration_s
        self.requests: list[tuple[CommandRequest, ShellContext]] = []

    def run(self, request: CommandRequest, context: ShellContext) -> HostResult:
        self.requests.append((request, context))
        text = f"script={request.script!r} server={context.server_name} cp={context.codepage} Jürgen\n"
        out = encode_console(text, context.codepage) + b"x" * self.size
        return HostResult(out, b"", 0, self.duration_s)


def session(fleet: LabFleet, number: int = 1, **kwargs: object) -> winrm.Session:
    return winrm.Session(
        fleet.endpoint(number), auth=lab_credentials(fleet), transport="basic", proxy=None, **kwargs
    )


def protocol(fleet: LabFleet, number: int = 1, **kwargs: Any) -> winrm.Protocol:
    user, password = lab_credentials(fleet)
    return winrm.Protocol(
        fleet.endpoint(number), transport="basic", username=user, password=password, proxy=None, **kwargs
    )


@pytest.mark.parametrize("host", [stub_host, None], ids=["stub", "exchange"])
def test_run_ps_gets_powershell_not_recognized_error(
    lab_factory: LabFactory, host: HostFactory | None
) -> None:
    fleet = lab_factory(servers=2, host_factory=host)
    result = session(fleet, 2).run_ps("$x = 1\nGet-Frobnicator -Name 'a'")
    assert result.status_code == 1
    assert result.std_out == b""
    err = result.std_err.decode()
    assert err.startswith(
        "Get-Frobnicator : The term 'Get-Frobnicator' is not recognized as the name of a cmdlet"
    )
    assert "At line:2 char:1" in err and "CommandNotFoundException" in err
    snap = fleet.counters.snapshot()
    assert snap["by_action"] == {"Create": 1, "Command": 1, "Receive": 1, "Signal": 1, "Delete": 1}
    assert snap["open_shells"] == 0 and snap["running_commands"] == 0


def test_parse_error_is_reported_and_nothing_runs(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=1)
    result = session(fleet).run_ps("if ($x { Get-Date }")
    assert result.status_code == 1
    assert "ParseException" in result.std_err.decode()


def test_host_sees_decoded_script_server_and_codepage(lab_factory: LabFactory) -> None:
    host = EchoHost()
    fleet = lab_factory(servers=3, host_factory=lambda spec: host)
    result = session(fleet, 3).run_ps("Get-Date  # ‘smart’ – text")
    assert result.status_code == 0
    assert host.requests[0][0].script == "Get-Date  # ‘smart’ – text"
    assert host.requests[0][1].server_name == fleet.servers[2].name == "LAB-EX03"
    assert result.std_out.decode("cp437").startswith("script='Get-Date")
    assert "J\x81rgen".encode("latin-1") in result.std_out  # code page 437, as a real shell by default


def test_codepage_65001_and_the_other_powershell_forms(lab_factory: LabFactory) -> None:
    host = EchoHost()
    fleet = lab_factory(servers=1, host_factory=lambda spec: host)
    p = protocol(fleet)
    shell = p.open_shell(codepage=65001)
    encoded = base64.b64encode("'é'".encode("utf-16-le")).decode()
    for line in (
        f"powershell.exe -NoProfile -NonInteractive -EncodedCommand {encoded}",
        f"PowerShell -enc {encoded}",
        f"powershell -e {encoded}",
        f"powershell -ec {encoded}",
    ):
        command = p.run_command(shell, line)
        out, _err, code = p.get_command_output(shell, command)
        p.cleanup_command(shell, command)
        assert code == 0 and "Jürgen" in out.decode("utf-8")
    p.close_shell(shell)
    assert [r.script for r, _ in host.requests] == ["'é'"] * 4
    assert {c.codepage for _, c in host.requests} == {65001}


def test_skip_cmd_shell_with_arguments_and_stdin(lab_factory: LabFactory) -> None:
    host = EchoHost()
    fleet = lab_factory(servers=1, host_factory=lambda spec: host)
    p = protocol(fleet)
    shell = p.open_shell()
    command = p.run_command(shell, "powershell.exe", ["-NoProfile", "-Command", "-"], skip_cmd_shell=True)
    p.send_command_input(shell, command, b"Get-Service ", end=False)
    p.send_command_input(shell, command, b"MSExchange*", end=True)
    _out, _err, code = p.get_command_output(shell, command)
    p.cleanup_command(shell, command)
    p.close_shell(shell)
    assert code == 0
    request = host.requests[0][0]
    assert request.script == "Get-Service MSExchange*" and request.stdin == b"Get-Service MSExchange*"
    assert request.command_line == "powershell.exe -NoProfile -Command -"


def test_cmd_exe_refuses_a_line_over_8191_characters(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=1)
    s = session(fleet)
    ok = s.run_ps("#" + "a" * 3000)  # about 8,000 characters encoded: still fits
    assert "not recognized" not in ok.std_err.decode() and ok.status_code == 0
    result = s.run_ps("#" + "a" * 3100)
    assert result.status_code == 1
    assert result.std_err == b"The command line is too long.\r\n"


def test_create_process_limit_is_a_fault_on_the_command(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=1)
    p = protocol(fleet)
    shell = p.open_shell()
    encoded = base64.b64encode(("#" + "a" * 12000).encode("utf-16-le")).decode()
    command = p.run_command(shell, "powershell.exe", ["-EncodedCommand", encoded], skip_cmd_shell=True)
    _out, _err, code = p.get_command_output(shell, command)
    assert code == 0  # 32,000 characters: fits CreateProcess
    encoded = base64.b64encode(("#" + "a" * 12400).encode("utf-16-le")).decode()
    with pytest.raises(winrm.exceptions.WSManFaultError) as info:
        p.run_command(shell, "powershell.exe", ["-EncodedCommand", encoded], skip_cmd_shell=True)
    assert info.value.wsman_fault_code == 2147942606
    p.close_shell(shell)


def test_large_output_comes_in_several_streams_and_receives(lab_factory: LabFactory) -> None:
    host = EchoHost(size=300_000)
    fleet = lab_factory(servers=1, host_factory=lambda spec: host)
    result = session(fleet).run_ps("Get-Big")
    assert result.status_code == 0
    assert result.std_out.endswith(b"x" * 300_000)
    assert fleet.counters.snapshot()["by_action"]["Receive"] >= 4  # 96 KiB of output per Receive


def test_operation_timeout_makes_pywinrm_receive_again(lab_factory: LabFactory) -> None:
    host = EchoHost(duration_s=2.0)
    fleet = lab_factory(servers=1, host_factory=lambda spec: host)
    result = session(fleet, operation_timeout_sec=1, read_timeout_sec=5).run_ps("Start-Sleep 2")
    assert result.status_code == 0
    snap = fleet.counters.snapshot()
    assert snap["faults"].get("TimedOut", 0) >= 1
    assert snap["by_action"]["Receive"] >= 2


def test_a_hung_command_holds_no_thread_and_is_terminated_by_signal(lab_factory: LabFactory) -> None:
    host = EchoHost(duration_s=math.inf)
    fleet = lab_factory(servers=1, host_factory=lambda spec: host)
    p = protocol(fleet, operation_timeout_sec=1, read_timeout_sec=3)
    shell = p.open_shell()
    command = p.run_command(
        shell, "powershell -encodedcommand " + base64.b64encode("x".encode("utf-16-le")).decode()
    )
    with pytest.raises(winrm.exceptions.WinRMOperationTimeoutError):
        p.get_command_output_raw(shell, command)
    assert fleet.counters.snapshot()["running_commands"] == 1
    threads = fleet.counters.snapshot()["threads"]
    p.cleanup_command(shell, command)
    assert fleet.counters.snapshot()["running_commands"] == 0
    p.close_shell(shell)
    assert fleet.counters.snapshot()["threads"] == threads


@pytest.mark.parametrize("host", [stub_host, None], ids=["stub", "exchange"])
def test_a_command_that_is_not_powershell_is_refused_as_cmd_exe_does(
    lab_factory: LabFactory, host: HostFactory | None
) -> None:
    fleet = lab_factory(servers=1, host_factory=host)
    p = protocol(fleet)
    shell = p.open_shell()
    command = p.run_command(shell, "ipconfig", ["/all"])
    out, err, code = p.get_command_output(shell, command)
    p.cleanup_command(shell, command)
    p.close_shell(shell)
    assert (out, code) == (b"", 1)
    assert err == (
        b"'ipconfig' is not recognized as an internal or external command,\r\n"
        b"operable program or batch file.\r\n"
    )


def test_unknown_shell_and_unsupported_action_are_wsman_faults(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=1)
    p = protocol(fleet)
    with pytest.raises(winrm.exceptions.WSManFaultError) as info:
        p.run_command("00000000-0000-0000-0000-000000000000", "ipconfig")
    assert info.value.wsman_fault_code == 2150858843 and info.value.fault_subcode == "w:InvalidSelectors"
    header = p.build_wsman_header(
        "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate",
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd",
    )
    with pytest.raises(winrm.exceptions.WSManFaultError) as info:
        p.send_message(xmltodict.unparse({"env:Envelope": {**header, "env:Body": {}}}))
    assert info.value.wsman_fault_code == 2150858771
    assert info.value.fault_subcode == "a:ActionNotSupported"


# -- the wire's parts, without a client -------------------------------------------------------------
_ENCODED = base64.b64encode("Get-Date # é".encode("utf-16-le")).decode()


@pytest.mark.parametrize(
    ("line", "script", "error"),
    [
        (f"powershell -enc {_ENCODED}", "Get-Date # é", None),
        (f"powershell -enc {_ENCODED} -NoProfile", "Get-Date # é", None),  # tokens after it: ignored
        (f"powershell -enc\t{_ENCODED}\tmore", "Get-Date # é", None),  # not base64 up to the space
        (f"powershell -enc {_ENCODED}\u00a0more", "Get-Date # é", None),  # Unicode whitespace ends it
        (f"powershell -enc {_ENCODED[:-1]}", None, "not properly encoded"),
        (f'powershell -enc "{_ENCODED}"', None, "not properly encoded"),
        ("powershell -enc ", None, "A command must follow -EncodedCommand"),
        (f"powershell -ep -enc {_ENCODED}", _ENCODED, None),  # -enc is -ep's value: the rest is text
        (f"powershell -nop -ep Bypass -ec {_ENCODED}", "Get-Date # é", None),
    ],
)
def test_encoded_command_is_the_next_token_decoded(line: str, script: str | None, error: str | None) -> None:
    decoded = cmdline.decode(line)
    assert decoded.script == script and decoded.command_line == line
    assert (decoded.error is None) if error is None else (error in (decoded.error or ""))


def _recorded_messages(fleet: LabFleet, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """What pywinrm sends for run_ps and for a command with arguments, as the lab receives it."""
    messages: list[bytes] = []
    parse = soap.parse_request

    def record(data: bytes) -> soap.Request:
        messages.append(data)
        return parse(data)

    monkeypatch.setattr(soap, "parse_request", record)
    session(fleet).run_ps("Get-Date")
    p = protocol(fleet)
    shell = p.open_shell(codepage=65001)
    command = p.run_command(shell, "powershell.exe", ["-NoProfile", "-EncodedCommand", _ENCODED])
    p.get_command_output(shell, command)
    p.cleanup_command(shell, command)
    p.close_shell(shell)
    monkeypatch.setattr(soap, "parse_request", parse)
    return messages


def test_pywinrm_messages_are_read_without_a_parser_as_the_parser_reads_them(
    lab_factory: LabFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = _recorded_messages(lab_factory(servers=1, host_factory=stub_host), monkeypatch)
    actions = [soap.parse_request(m).action.rsplit("/", 1)[-1] for m in messages]
    assert actions == ["Create", "Command", "Receive", "Signal", "Delete"] * 2
    for message in messages:
        known = soap._pywinrm_request(message)  # None if pywinrm's messages changed shape
        assert known is not None and known == soap._parse_with_elementtree(message)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"<a:MessageID>uuid:", b"<a:MessageID> uuid:"),
        (b"<a:MessageID>uuid:", b"<a:MessageID> uuid:&amp;"),
        (b"<a:MessageID>uuid:", b"<a:MessageID>\t]]uuid:"),
        (b"<w:OperationTimeout>PT", b"<w:OperationTimeout> PT1M"),
        (b'CommandId="', b'CommandId="&lt;'),
        (b'CommandId="', b'CommandId="a\tb'),
        (b'CommandId="', b'CommandId="\xc3\xa9'),
        (b">stdout stderr<", b">stdout\r\nstderr<"),
        (b">stdout stderr<", b">]]>stdout<"),
        (b"-encodedcommand ", b"-encodedcommand &#65;"),
        (b"-encodedcommand ", b"-encodedcommand </rsp:Command><rsp:Command>"),
        (b"-encodedcommand ", b"-encodedcommand ]"),
        (b"-EncodedCommand ", b"-EncodedCommand &#65;"),
        (b"-EncodedCommand ", b"-EncodedCommand \xc3\xa9"),
        (b"-EncodedCommand ", b"-EncodedCommand </rsp:Arguments><rsp:Arguments>"),
        (b"-EncodedCommand ", b"-EncodedCommand <x/>"),
        (b"-EncodedCommand ", b"-EncodedCommand \x01"),
        (b"<rsp:Arguments>", b"<rsp:Arguments a='1'>"),
        (b"<env:Body>", b"<env:Body><!-- a comment -->"),
        (b"<env:Body>", b"<env:Body>\n"),
        (b'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"', b'xmlns:rsp="urn:other"'),
        (b'<?xml version="1.0" encoding="utf-8"?>\n', b""),
        (b"</env:Envelope>", b"</env:Envelope>\n"),
        (b"</env:Envelope>", b""),
        (b"/Signal</a:Action>", b"/Signal </a:Action>"),
        (b"/Signal</a:Action>", b"/Signal</a:Action><a:Action>x</a:Action>"),
        (
            b'<a:Action mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal',
            b'<a:Action mustUnderstand="true">',
        ),
    ],
)
def test_messages_not_quite_pywinrm_s_are_read_as_the_parser_reads_them(
    lab_factory: LabFactory, monkeypatch: pytest.MonkeyPatch, old: bytes, new: bytes
) -> None:
    """A changed value or shape is read (or refused) exactly as ElementTree reads it."""
    messages = _recorded_messages(lab_factory(servers=1, host_factory=stub_host), monkeypatch)
    changed = [m.replace(old, new, 1) for m in messages if old in m]
    assert changed
    for message in changed:
        try:
            expected: object = soap._parse_with_elementtree(message)
        except soap.BadRequest as exc:
            expected = str(exc)
        try:
            got: object = soap.parse_request(message)
        except soap.BadRequest as exc:
            got = str(exc)
        assert got == expected


def test_responses_are_the_windows_envelopes() -> None:
    request = soap.parse_request(
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        b'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"><s:Header>'
        b"<a:Action>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal</a:Action>"
        b"<a:MessageID>uuid:1&amp;2</a:MessageID></s:Header><s:Body/></s:Envelope>"
    )
    answer = soap.signal_response(request).decode()
    message_id = answer.split("<a:MessageID>uuid:")[1][:36]
    assert uuid.UUID(message_id).version == 4 and message_id == message_id.upper()
    assert answer == (
        '<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" '
        'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
        'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" '
        'xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"><s:Header>'
        "<a:Action>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SignalResponse</a:Action>"
        f"<a:MessageID>uuid:{message_id}</a:MessageID>"
        "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
        "<a:RelatesTo>uuid:1&amp;2</a:RelatesTo></s:Header><s:Body><rsp:SignalResponse/></s:Body></s:Envelope>"
    )


def test_requests_sent_back_to_back_are_answered_in_order_even_after_the_client_half_closes(
    lab_factory: LabFactory,
) -> None:
    fleet = lab_factory(servers=1, host_factory=stub_host, faults="latency=20")
    user, password = lab_credentials(fleet)
    header = protocol(fleet).build_wsman_header(
        "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create",
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd",
    )
    body = xmltodict.unparse({"env:Envelope": {**header, "env:Body": {"rsp:Shell": {}}}}).encode()
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = (
        f"POST /wsman HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n"
        f"Content-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", fleet.server(1).port), timeout=10) as sock:
        sock.sendall(request * 2)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.count(b"HTTP/1.1 200 OK\r\n") == 2 and received.count(b"<rsp:ShellId>") == 2
    assert fleet.counters.snapshot()["open_shells"] == 2


def test_commands_start_once_created_one_per_loop_pass_unless_signalled_or_waiting_for_stdin() -> None:
    """WinRS starts the process at Command: the host runs without a Receive, one command per pass of
    the loop (requests are read in between); not for a signalled command or one whose script is stdin."""
    from emconsole.backends.lab.wire.counters import Counters
    from emconsole.backends.lab.wire.shells import ShellTable, early_starts

    ran: list[str | None] = []

    class CountingHost:
        def run(self, request: CommandRequest, context: ShellContext) -> HostResult:
            ran.append(request.script)
            return HostResult(b"", b"", 0)

    async def scenario() -> list[list[str | None]]:
        table = ShellTable("EX01", "basic", CountingHost(), Counters(), 60.0, 5)
        shell = table.create("user", 65001, {})
        assert shell is not None
        starts = early_starts()
        assert early_starts() is starts  # one queue per loop, for every server it serves
        commands = {}
        for script in ("'one'", "'two'", "'three'"):
            line = "powershell.exe -EncodedCommand " + base64.b64encode(script.encode("utf-16-le")).decode()
            commands[script] = table.start(shell, cmdline.decode(line), None)
            starts.add(table, shell, commands[script])
        from_stdin = table.start(shell, cmdline.decode("powershell.exe -Command -"), None)
        assert from_stdin.decoded.script_from_stdin  # the server adds no such command to the queue
        table.signal(shell, commands["'two'"].id)
        seen = []
        for _ in range(4):
            await asyncio.sleep(0)
            seen.append(list(ran))
        assert commands["'one'"].result is not None and commands["'two'"].result is None
        assert from_stdin.result is None
        return seen

    seen = asyncio.run(scenario())
    assert seen[0] == ["'one'"]  # one command per pass
    assert seen[-1] == ["'one'", "'three'"]  # the signalled one never ran


def test_the_server_runs_a_command_at_command_not_at_its_first_receive(lab_factory: LabFactory) -> None:
    host = EchoHost()
    fleet = lab_factory(servers=1, host_factory=lambda spec: host)
    proto = protocol(fleet)
    shell = proto.open_shell(codepage=65001)
    script = base64.b64encode("Get-Date".encode("utf-16-le")).decode()
    command = proto.run_command(shell, "powershell.exe", ["-EncodedCommand", script], skip_cmd_shell=True)
    for _ in range(200):  # the run is queued on the lab's loop right after the answer went out
        if host.requests:
            break
        time.sleep(0.01)
    assert [r.script for r, _ in host.requests] == ["Get-Date"]
    stdout, _, code = proto.get_command_output(shell, command)
    assert code == 0 and b"script='Get-Date'" in stdout and len(host.requests) == 1  # not run again
    proto.cleanup_command(shell, command)
    proto.close_shell(shell)
