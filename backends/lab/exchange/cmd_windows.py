"""Services, Win32_Service, the Application event log and the file cmdlets, as PowerShell 5.1 has them."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from emconsole.backends.lab.exchange.cmdbase import (
    as_mapping,
    as_strings,
    error,
    fail,
    lab_server,
    path_not_found,
)
from emconsole.backends.lab.exchange.org import LabServer
from emconsole.backends.lab.exchange.windows import EM_SERVICE, Service
from emconsole.backends.lab.pwsh.api import CmdletSpec, CommandContext, ParamSpec, PSObject
from emconsole.backends.lab.pwsh.values import wildcard_regex

CMDS = "Microsoft.PowerShell.Commands"
_START_TYPES = {"automatic": "Automatic", "manual": "Manual", "disabled": "Disabled"}


# -- services -------------------------------------------------------------------------------------
def _names(params: dict[str, Any], pipeline: list[Any]) -> list[str]:
    names = as_strings(params.get("Name"))
    for item in pipeline + as_strings(params.get("InputObject")):
        names.append(str(item.get("Name")) if isinstance(item, PSObject) else str(item))
    return names


def _find_services(ctx: CommandContext, server: LabServer, names: list[str], command: str) -> list[Service]:
    found: list[Service] = []
    for name in names:
        if any(c in name for c in "*?["):
            pattern = wildcard_regex(name)
            found += [s for s in server.windows.services.values() if pattern.match(s.name)]
            continue
        service = server.windows.service(name)
        if service is None:
            ctx.write_error(
                error(
                    f"Cannot find any service with service name '{name}'.",
                    "NoServiceFoundForGivenName",
                    f"{CMDS}.{command}",
                    "ObjectNotFound",
                    f"{CMDS}.ServiceCommandException",
                    name,
                )
            )
        else:
            found.append(service)
    return found


def _started(server: LabServer, service: Service) -> None:
    if service.name.lower() == EM_SERVICE.lower():
        server.service_started()


def _start(ctx: CommandContext, server: LabServer, service: Service, command: str) -> bool:
    if service.start_type == "Disabled":
        ctx.write_error(
            error(
                f"Service '{service.display_name} ({service.name})' cannot be started due to the following "
                f"error: "
                f"Cannot start service {service.name} on computer '.'.",
                "CouldNotStartService",
                f"{CMDS}.{command}",
                "OpenError",
                f"{CMDS}.ServiceCommandException",
                service.name,
            )
        )
        return False
    was_running = service.status == "Running"
    server.windows.start(service.name)
    if not was_running:
        _started(server, service)
    return True


def _stop(ctx: CommandContext, server: LabServer, service: Service, force: bool, command: str) -> bool:
    running = [d for d in server.windows.dependents(service.name) if d.status == "Running"]
    if running and not force:
        ctx.write_error(
            error(
                f"Cannot stop service '{service.display_name} ({service.name})' because it has dependent "
                "services. "
                "It can only be stopped if the Force flag is set.",
                "ServiceHasDependentServices",
                f"{CMDS}.{command}",
                "InvalidOperation",
                f"{CMDS}.ServiceCommandException",
                service.name,
            )
        )
        return False
    for dep in running:
        _stop(ctx, server, dep, force, command)
    server.windows.stop(service.name)
    if service.name.lower() == EM_SERVICE.lower():
        server.service_stopped()
    return True


def get_service(ctx: CommandContext, params: dict[str, Any], pipeline: list[Any]) -> Iterable[Any]:
    server = lab_server(ctx)
    names = _names(params, pipeline) or ["*"]
    services = _find_services(ctx, server, names, "GetServiceCommand")
    return [server.windows.service_object(s, ".") for s in services]


def _each_service(
    ctx: CommandContext,
    params: dict[str, Any],
    pipeline: list[Any],
    command: str,
    change: Callable[[LabServer, Service], bool],
) -> list[Any]:
    """``change`` every named service; with -PassThru, the services it changed are the output."""
    server = lab_server(ctx)
    out = []
    for service in _find_services(ctx, server, _names(params, pipeline), command):
        if change(server, service) and params.get("PassThru"):
            out.append(server.windows.service_object(service, "."))
    return out


def start_service(ctx: CommandContext, params: dict[str, Any], pipeline: list[Any]) -> Iterable[Any]:
    command = "StartServiceCommand"
    return _each_service(ctx, params, pipeline, command, lambda server, s: _start(ctx, server, s, command))


def stop_service(ctx: CommandContext, params: dict[str, Any], pipeline: list[Any]) -> Iterable[Any]:
    command, force = "StopServiceCommand", bool(params.get("Force"))
    return _each_service(
        ctx, params, pipeline, command, lambda server, s: _stop(ctx, server, s, force, command)
    )


def restart_service(ctx: CommandContext, params: dict[str, Any], pipeline: list[Any]) -> Iterable[Any]:
    command, force = "RestartServiceCommand", bool(params.get("Force"))
    return _each_service(
        ctx,
        params,
        pipeline,
        command,
        lambda server, s: _stop(ctx, server, s, force, command) and _start(ctx, server, s, command),
    )


def set_service(ctx: CommandContext, params: dict[str, Any], pipeline: list[Any]) -> Iterable[Any]:
    server = lab_server(ctx)
    for service in _find_services(ctx, server, _names(params, pipeline), "SetServiceCommand"):
        if "StartupType" in params:
            wanted = str(params["StartupType"])
            if wanted.lower() not in _START_TYPES:
                raise fail(
                    f"Cannot bind parameter 'StartupType'. Cannot convert value \"{wanted}\" to type "
                    '"System.ServiceProcess.ServiceStartMode". Error: "Unable to match the identifier '
                    f"name {wanted} to a valid enumerator name. Specify one of the following enumerator "
                    'names and try again:\r\nBoot, System, Automatic, Manual, Disabled"',
                    "CannotConvertArgumentNoMessage",
                    f"{CMDS}.SetServiceCommand",
                    category="InvalidArgument",
                    exception="System.Management.Automation.ParameterBindingException",
                )
            service.start_type = _START_TYPES[wanted.lower()]
        if "Status" in params:
            status = str(params["Status"]).lower()
            if status == "running":
                _start(ctx, server, service, "SetServiceCommand")
            elif status == "stopped":
                _stop(ctx, server, service, False, "SetServiceCommand")
    return []


_CIM_FILTER = re.compile(r"""^\s*Name\s*=\s*(['"])(.*)\1\s*$""", re.I)


def get_cim_instance(ctx: CommandContext, params: dict[str, Any], _: list[Any]) -> Iterable[Any]:
    server = lab_server(ctx)
    class_name = str(params.get("ClassName") or "")
    if class_name.lower() != "win32_service":
        raise fail(
            "Invalid class ",
            "HRESULT 0x80041010,Microsoft.Management.Infrastructure.CimCmdlets.GetCimInstanceCommand",
            "Get-CimInstance",
            category="ObjectNotFound",
            exception="Microsoft.Management.Infrastructure.CimException",
            target=f"root\\cimv2:{class_name}",
        )
    services = list(server.windows.services.values())
    if params.get("Filter"):
        match = _CIM_FILTER.match(str(params["Filter"]))
        if match is None:
            raise fail(
                "Invalid query ",
                "HRESULT 0x80041017,Microsoft.Management.Infrastructure.CimCmdlets.GetCimInstanceCommand",
                "Get-CimInstance",
                category="InvalidArgument",
                exception="Microsoft.Management.Infrastructure.CimException",
            )
        services = [s for s in services if s.name.lower() == match.group(2).lower()]
    return [server.windows.cim_object(s) for s in services]


# -- events ---------------------------------------------------------------------------------------
def get_win_event(ctx: CommandContext, params: dict[str, Any], _: list[Any]) -> Iterable[Any]:
    server = lab_server(ctx)
    filters = as_mapping(params.get("FilterHashtable")) or {}
    lowered = {k.lower(): v for k, v in filters.items()}
    logs = {s.lower() for s in as_strings(lowered.get("logname") or params.get("LogName"))}
    providers = {s.lower() for s in as_strings(lowered.get("providername"))}
    ids = {int(i) for i in as_strings(lowered.get("id"))}
    start = lowered.get("starttime")
    events = [
        e
        for e in reversed(server.windows.events)
        if (not logs or e.log.lower() in logs)
        and (not providers or e.provider.lower() in providers)
        and (not ids or e.event_id in ids)
        and (not isinstance(start, datetime) or e.time >= start)
    ]
    if params.get("MaxEvents") is not None:
        events = events[: int(params["MaxEvents"])]
    if not events:
        ctx.write_error(
            error(
                "No events were found that match the specified selection criteria.",
                "NoMatchingEventsFound",
                f"{CMDS}.GetWinEventCommand",
                "ObjectNotFound",
                "System.Exception",
            )
        )
    return [server.windows.event_object(e, server.record.fqdn) for e in events]


# -- files ----------------------------------------------------------------------------------------
def _item(server: LabServer, path: str, is_dir: bool) -> PSObject:
    name = path.rstrip("\\").rpartition("\\")[2]
    content = "" if is_dir else (server.windows.read_file(path) or "")
    props: dict[str, Any] = {
        "Name": name,
        "FullName": path,
        "PSIsContainer": is_dir,
        "Mode": "d-----" if is_dir else "-a----",
        "LastWriteTime": server.windows.mtimes.get(server.windows.norm(path), server.org.clock.start),
    }
    if not is_dir:
        props["Length"] = len(content.encode("utf-8"))
        props["Extension"] = "." + name.rpartition(".")[2] if "." in name else ""
    kind = "System.IO.DirectoryInfo" if is_dir else "System.IO.FileInfo"
    return PSObject(props, type_names=(kind, "System.IO.FileSystemInfo", "System.Object"), to_string=path)


def test_path(ctx: CommandContext, params: dict[str, Any], _: list[Any]) -> Iterable[Any]:
    server = lab_server(ctx)
    kind = str(params.get("PathType") or "Any").lower()
    out = []
    for path in as_strings(params.get("Path")):
        if kind == "container":
            out.append(server.windows.is_dir(path))
        elif kind == "leaf":
            out.append(server.windows.exists(path) and not server.windows.is_dir(path))
        else:
            out.append(server.windows.exists(path))
    return out


def new_item(ctx: CommandContext, params: dict[str, Any], _: list[Any]) -> Iterable[Any]:
    server = lab_server(ctx)
    out = []
    for path in as_strings(params.get("Path")):
        if params.get("Name"):
            path = f"{path.rstrip(chr(92))}\\{params['Name']}"
        directory = str(params.get("ItemType") or "File").lower() == "directory"
        if server.windows.exists(path) and not params.get("Force"):
            ctx.write_error(
                error(
                    f"An item with the specified name {path} already exists.",
                    "DirectoryExist" if directory else "NewItemIOError",
                    f"{CMDS}.NewItemCommand",
                    "ResourceExists",
                    "System.IO.IOException",
                    path,
                )
            )
            continue
        if directory:
            server.windows.make_dir(path)
        else:
            if not server.windows.parent_exists(path):
                ctx.write_error(path_not_found(path.rpartition("\\")[0], f"{CMDS}.NewItemCommand"))
                continue
            server.windows.write_file(path, str(params.get("Value") or ""), server.org.clock.now())
        out.append(_item(server, path, directory))
    return out


def set_content(ctx: CommandContext, params: dict[str, Any], pipeline: list[Any]) -> Iterable[Any]:
    server = lab_server(ctx)
    values = params.get("Value") if "Value" in params else pipeline
    text = "".join(
        f"{v}\r\n" for v in ([] if values is None else values if isinstance(values, list) else [values])
    )
    for path in as_strings(params.get("Path")):
        if not server.windows.parent_exists(path):
            ctx.write_error(
                error(
                    f"Could not find a part of the path '{path}'.",
                    "GetContentWriterDirectoryNotFoundError",
                    f"{CMDS}.SetContentCommand",
                    "ObjectNotFound",
                    "System.IO.DirectoryNotFoundException",
                    path,
                )
            )
            continue
        server.windows.write_file(path, text, server.org.clock.now())
    return []


def get_content(ctx: CommandContext, params: dict[str, Any], _: list[Any]) -> Iterable[Any]:
    server = lab_server(ctx)
    out: list[Any] = []
    for path in as_strings(params.get("Path")):
        content = server.windows.read_file(path)
        if content is None:
            ctx.write_error(path_not_found(path, f"{CMDS}.GetContentCommand"))
            continue
        if params.get("Raw"):
            out.append(content)
        else:
            out += (
                content.replace("\r\n", "\n").split("\n")[:-1]
                if content.endswith("\n")
                else content.split("\n")
            )
    return out


def get_child_item(ctx: CommandContext, params: dict[str, Any], _: list[Any]) -> Iterable[Any]:
    server = lab_server(ctx)
    pattern = str(params.get("Filter") or "*")
    out = []
    for path in as_strings(params.get("Path")) or ["C:\\"]:
        if not server.windows.exists(path):
            ctx.write_error(path_not_found(path, f"{CMDS}.GetChildItemCommand"))
            continue
        for child, is_dir in server.windows.children(path):
            if fnmatch.fnmatch(child.rpartition("\\")[2].lower(), pattern.lower()):
                out.append(_item(server, child, is_dir))
    return out


def specs() -> list[CmdletSpec]:
    name = ParamSpec("Name", position=0, pipeline=True, aliases=("ServiceName",))
    service_params = (
        name,
        ParamSpec("InputObject"),
        ParamSpec("PassThru", switch=True),
        ParamSpec("Force", switch=True),
        ParamSpec("DisplayName"),
    )
    return [
        CmdletSpec(
            "Get-Service",
            get_service,
            (
                ParamSpec("Name", position=0, aliases=("ServiceName",)),
                ParamSpec("InputObject"),
                ParamSpec("DisplayName"),
                ParamSpec("ComputerName"),
            ),
        ),
        CmdletSpec("Start-Service", start_service, service_params, should_process=True),
        CmdletSpec("Stop-Service", stop_service, service_params, should_process=True),
        CmdletSpec("Restart-Service", restart_service, service_params, should_process=True),
        CmdletSpec(
            "Set-Service",
            set_service,
            (
                name,
                ParamSpec("InputObject"),
                ParamSpec("StartupType"),
                ParamSpec("Status"),
                ParamSpec("DisplayName"),
                ParamSpec("PassThru", switch=True),
            ),
            should_process=True,
        ),
        CmdletSpec(
            "Get-CimInstance",
            get_cim_instance,
            (
                ParamSpec("ClassName", position=0),
                ParamSpec("Filter"),
                ParamSpec("Namespace"),
                ParamSpec("ComputerName"),
            ),
        ),
        CmdletSpec(
            "Get-WinEvent",
            get_win_event,
            (
                ParamSpec("LogName", position=0),
                ParamSpec("FilterHashtable"),
                ParamSpec("MaxEvents"),
                ParamSpec("Oldest", switch=True),
                ParamSpec("ComputerName"),
            ),
        ),
        CmdletSpec(
            "Test-Path",
            test_path,
            (ParamSpec("Path", position=0, mandatory=True), ParamSpec("PathType"), ParamSpec("LiteralPath")),
        ),
        CmdletSpec(
            "New-Item",
            new_item,
            (
                ParamSpec("Path", position=0),
                ParamSpec("Name"),
                ParamSpec("ItemType", aliases=("Type",)),
                ParamSpec("Value"),
                ParamSpec("Force", switch=True),
            ),
            should_process=True,
        ),
        CmdletSpec(
            "Set-Content",
            set_content,
            (
                ParamSpec("Path", position=0, mandatory=True),
                ParamSpec("Value", position=1, pipeline=True),
                ParamSpec("Encoding"),
                ParamSpec("Force", switch=True),
                ParamSpec("NoNewline", switch=True),
            ),
            should_process=True,
        ),
        CmdletSpec(
            "Get-Content",
            get_content,
            (
                ParamSpec("Path", position=0, mandatory=True),
                ParamSpec("Raw", switch=True),
                ParamSpec("Encoding"),
            ),
        ),
        CmdletSpec(
            "Get-ChildItem",
            get_child_item,
            (
                ParamSpec("Path", position=0),
                ParamSpec("Filter", position=1),
                ParamSpec("Recurse", switch=True),
                ParamSpec("File", switch=True),
            ),
            aliases=("dir", "ls", "gci"),
        ),
    ]
