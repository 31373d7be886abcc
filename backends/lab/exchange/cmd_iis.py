"""WebAdministration cmdlets over the server's IIS model (``iis.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from emconsole.backends.lab.exchange.cmdbase import (
    as_mapping,
    as_strings,
    error,
    fail,
    lab_server,
    path_not_found,
)
from emconsole.backends.lab.exchange.directory import INSTALL_PATH
from emconsole.backends.lab.exchange.iis import CONFIG_ATTRIBUTE, IISPathError, IISTargetError
from emconsole.backends.lab.exchange.org import LabServer
from emconsole.backends.lab.pwsh.api import CmdletSpec, CommandContext, ParamSpec, PSError, PSObject

IIS_CMDS = "Microsoft.IIs.PowerShell.Provider"


def _location(server: LabServer, params: dict[str, Any], command: str) -> str:
    pspath = str(params.get("PSPath") or "MACHINE/WEBROOT/APPHOST")
    try:
        location = server.iis.location(pspath)
    except IISPathError:
        raise PSError(path_not_found(pspath, f"{IIS_CMDS}.{command}")) from None
    if params.get("Location"):
        location = server.iis.location(f"IIS:\\Sites\\{location}\\{params['Location']}".replace("\\\\", "\\"))
    return location


def _target_error(server: LabServer, location: str, xfilter: str, command: str) -> PSError:
    return fail(
        f"Filter '{xfilter}': Target configuration object '{xfilter}' is not found at path "
        f"'{server.iis.pspath_of(location)}'.",
        "Microsoft.IIs.PowerShell.Framework.ConfigurationException",
        f"{IIS_CMDS}.{command}",
        category="NotSpecified",
        exception="System.ArgumentException",
    )


def _found(server: LabServer, location: str, xfilter: str, command: str) -> list[Any]:
    """``server.iis.find`` for the reading cmdlets, with ``_addressing``'s error, in one call:
    Get-WebConfiguration runs ~75 times per status script."""
    try:
        return server.iis.find(location, xfilter)
    except IISTargetError:
        raise _target_error(server, location, xfilter, command) from None


class _addressing:  # lower case: used like the function it replaced
    """A filter that names nothing to write to (or cannot be read) is IIS's target error."""

    def __init__(self, server: LabServer, location: str, xfilter: str, command: str) -> None:
        self._args = (server, location, xfilter, command)

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: Any) -> None:
        if kind is not None and issubclass(kind, IISTargetError):
            raise _target_error(*self._args) from None


def get_web_configuration(ctx: CommandContext, params: dict[str, Any], _: list[Any]) -> Iterable[Any]:
    server = lab_server(ctx)
    location = _location(server, params, "GetConfigurationCommand")
    out = []
    for xfilter in as_strings(params.get("Filter")):
        found = _found(server, location, xfilter, "GetConfigurationCommand")
        out += [server.iis.element_object(e, location, xfilter) for e in found]
    return out


def get_web_configuration_property(
    ctx: CommandContext, params: dict[str, Any], _: list[Any]
) -> Iterable[Any]:
    server = lab_server(ctx)
    location = _location(server, params, "GetConfigurationPropertyCommand")
    xfilter = str(params.get("Filter") or "")
    out: list[Any] = []
    for element in _found(server, location, xfilter, "GetConfigurationPropertyCommand"):
        obj = server.iis.element_object(element, location, xfilter)
        for name in as_strings(params.get("Name")):
            if name == ".":
                out.append(obj)
            elif name.lower() == "collection":
                out += obj.get("Collection") or []
            elif name in obj:
                value = obj[name]
                out.append(
                    value
                    if isinstance(value, PSObject)
                    else PSObject(
                        {
                            "Name": name,
                            "TypeName": type(value).__name__,
                            "Value": value,
                            "IsInheritedFromDefaultValue": name not in element.attrib,
                            "IsProtected": False,
                        },
                        type_names=(CONFIG_ATTRIBUTE, "System.Object"),
                        to_string=str(value),
                    )
                )
            else:
                ctx.write_error(
                    error(
                        f"Property {name} is not found on {xfilter}.",
                        "System.Runtime.InteropServices.COMException",
                        f"{IIS_CMDS}.GetConfigurationPropertyCommand",
                        "NotSpecified",
                        "System.Runtime.InteropServices.COMException",
                    )
                )
    return out


def remove_web_configuration_property(
    ctx: CommandContext, params: dict[str, Any], _: list[Any]
) -> Iterable[Any]:
    server = lab_server(ctx)
    location = _location(server, params, "RemoveConfigurationPropertyCommand")
    for xfilter in as_strings(params.get("Filter")):
        with _addressing(server, location, xfilter, "RemoveConfigurationPropertyCommand"):
            server.iis.remove(location, xfilter, as_mapping(params.get("AtElement")))
    return []


def add_web_configuration_property(
    ctx: CommandContext, params: dict[str, Any], _: list[Any]
) -> Iterable[Any]:
    server = lab_server(ctx)
    location = _location(server, params, "AddConfigurationPropertyCommand")
    xfilter = str(params.get("Filter") or "")
    name = str(params.get("Name") or ".")
    if name not in (".", "Collection"):
        xfilter = f"{xfilter.rstrip('/')}/{name}"
    values = params.get("Value")
    for value in values if isinstance(values, list) else [values]:
        mapping = as_mapping(value)
        if mapping is None:
            raise fail(
                "Value must be a hashtable of the new element's attributes.",
                "InvalidArgument",
                f"{IIS_CMDS}.AddConfigurationPropertyCommand",
                category="InvalidArgument",
            )
        try:
            with _addressing(server, location, xfilter, "AddConfigurationPropertyCommand"):
                server.iis.add(location, xfilter, mapping)
        except FileExistsError as exc:
            ctx.write_error(
                error(
                    str(exc),
                    "Microsoft.IIs.PowerShell.Framework.ConfigurationException",
                    f"{IIS_CMDS}.AddConfigurationPropertyCommand",
                    "ResourceExists",
                    "System.Runtime.InteropServices.COMException",
                )
            )
    return []


def set_web_configuration_property(
    ctx: CommandContext, params: dict[str, Any], _: list[Any]
) -> Iterable[Any]:
    server = lab_server(ctx)
    location = _location(server, params, "SetConfigurationPropertyCommand")
    xfilter = str(params.get("Filter") or "")
    value = params.get("Value")
    mapping = as_mapping(value)
    if isinstance(value, list):
        value = [as_mapping(v) or v for v in value]
    with _addressing(server, location, xfilter, "SetConfigurationPropertyCommand"):
        server.iis.set(
            location,
            xfilter,
            str(params.get("Name")),
            mapping if mapping is not None else value,
            as_mapping(params.get("AtElement")),
        )
    return []


def get_web_application(ctx: CommandContext, params: dict[str, Any], _: list[Any]) -> Iterable[Any]:
    server = lab_server(ctx)
    sites = as_strings(params.get("Site")) or list(server.iis.apps)
    wanted = {n.strip("/").lower() for n in as_strings(params.get("Name"))}
    out = []
    for site in sites:
        try:
            apps = server.iis.applications(site)
        except IISPathError:
            continue
        for path, pool in apps:
            if wanted and path.lower() not in wanted:
                continue
            out.append(
                PSObject(
                    {
                        "path": f"/{path}",
                        "applicationPool": pool,
                        "enabledProtocols": "http",
                        "serviceAutoStartEnabled": False,
                        "serviceAutoStartProvider": "",
                        "preloadEnabled": False,
                        "PhysicalPath": f"{INSTALL_PATH}FrontEnd\\HttpProxy\\{path}",
                        "ItemXPath": (
                            f"/system.applicationHost/sites/site[@name='{site}']/application[@path='/{path}']"
                        ),
                        "PSPath": "MACHINE/WEBROOT/APPHOST",
                        "Location": "",
                        "ElementTagName": "application",
                    },
                    type_names=("Microsoft.IIs.PowerShell.Framework.ConfigurationElement", "System.Object"),
                )
            )
    return out


def _pool(ctx: CommandContext, server: LabServer, name: str, command: str) -> str | None:
    if name in server.iis.pools:
        return name
    ctx.write_error(path_not_found(f"IIS:\\AppPools\\{name}", f"{IIS_CMDS}.{command}"))
    return None


def get_web_app_pool_state(ctx: CommandContext, params: dict[str, Any], _: list[Any]) -> Iterable[Any]:
    server = lab_server(ctx)
    names = as_strings(params.get("Name")) or list(server.iis.pools)
    return [
        PSObject(
            {"Value": server.iis.pools[n]},
            type_names=("Microsoft.IIs.PowerShell.Framework.CodeProperty", "System.Object"),
            to_string=server.iis.pools[n],
        )
        for n in names
        if _pool(ctx, server, n, "GetAppPoolStateCommand")
    ]


def _set_pool(state: str, command: str) -> Any:
    def run(ctx: CommandContext, params: dict[str, Any], _: list[Any]) -> Iterable[Any]:
        server = lab_server(ctx)
        for name in as_strings(params.get("Name")):
            if _pool(ctx, server, name, command):
                server.iis.pools[name] = state
        return []

    return run


def specs() -> list[CmdletSpec]:
    config = (ParamSpec("PSPath"), ParamSpec("Filter", position=0), ParamSpec("Location"))
    name, value = ParamSpec("Name", mandatory=True), ParamSpec("Value", mandatory=True)
    at_element, at_index = ParamSpec("AtElement"), ParamSpec("AtIndex")
    force = ParamSpec("Force", switch=True)
    pool_params = (
        ParamSpec("Name", position=0, mandatory=True, pipeline=True),
        ParamSpec("Passthru", switch=True),
    )
    return [
        CmdletSpec(
            "Get-WebConfiguration", get_web_configuration, (*config, ParamSpec("Recurse", switch=True))
        ),
        CmdletSpec("Get-WebConfigurationProperty", get_web_configuration_property, (*config, name)),
        CmdletSpec(
            "Remove-WebConfigurationProperty",
            remove_web_configuration_property,
            (*config, name, at_element, at_index, force),
            should_process=True,
        ),
        CmdletSpec(
            "Add-WebConfigurationProperty",
            add_web_configuration_property,
            (*config, name, value, at_index, force),
            should_process=True,
        ),
        CmdletSpec(
            "Set-WebConfigurationProperty",
            set_web_configuration_property,
            (*config, name, value, at_element, at_index, force),
            should_process=True,
        ),
        CmdletSpec(
            "Get-WebApplication", get_web_application, (ParamSpec("Name", position=0), ParamSpec("Site"))
        ),
        CmdletSpec(
            "Get-WebAppPoolState", get_web_app_pool_state, (ParamSpec("Name", position=0, pipeline=True),)
        ),
        *(
            CmdletSpec(
                f"{verb}-WebAppPool",
                _set_pool(state, f"{verb}AppPoolCommand"),
                pool_params,
                should_process=True,
            )
            for verb, state in (("Start", "Started"), ("Stop", "Stopped"))
        ),
    ]
