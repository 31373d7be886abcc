"""Exchange shell loading, Exchange cmdlets and the EM scripts in ``$exscripts``.

Errors follow what a server gives: an unknown identity is ManagementObjectNotFoundException; with
the "AD second hop" fault every Exchange cmdlet fails with ADOperationException (no delegated
credentials to reach the domain controller).
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterable
from typing import Any

from emconsole.backends.lab.exchange.cmdbase import as_mapping, as_strings, custom, error, fail, lab_server
from emconsole.backends.lab.exchange.directory import INSTALL_PATH, ServerRecord
from emconsole.backends.lab.exchange.org import LabServer
from emconsole.backends.lab.pwsh.api import CmdletSpec, CommandContext, ErrorRecord, ParamSpec, PSError
from emconsole.backends.lab.pwsh.values import to_bool

SNAPIN = "Microsoft.Exchange.Management.PowerShell.SnapIn"
TASKS = "Microsoft.Exchange.Management.SystemConfigurationTasks"
SCRIPTS = INSTALL_PATH + "Scripts\\"
REMOTE_EXCHANGE = INSTALL_PATH + "bin\\RemoteExchange.ps1"
GET_MITIGATIONS = SCRIPTS + "Get-Mitigations.ps1"
TEST_CONNECTIVITY = SCRIPTS + "Test-MitigationServiceConnectivity.ps1"
OCS_UNREACHABLE_WARNING = "Connection with Mitigation Endpoint was not successful."


def _exchange_error(
    server: LabServer,
    category: str,
    message: str,
    task: str,
    ps_category: str,
    exception: str,
    target: str = "",
) -> PSError:
    """An Exchange task error: ``[Server=..,RequestId=..] [FailureCategory=Cmdlet-X] HEX,Task``."""
    request = uuid.UUID(int=server.org.clock.now().toordinal() * 7919 + len(server.windows.events))
    stamp = server.org.clock.now().strftime("%m/%d/%Y %I:%M:%S %p")
    error_id = (
        f"[Server={server.name},RequestId={request},TimeStamp={stamp}] "
        f"[FailureCategory=Cmdlet-{category}] {zlib.crc32(f'{category}{task}'.encode()):08X}"
    )
    return fail(
        message, error_id, f"{TASKS}.{task}", category=ps_category, exception=exception, target=target
    )


def _check_ad(server: LabServer, task: str) -> None:
    if server.faults.ad_second_hop:
        dc = server.org.directory.dc
        raise _exchange_error(
            server,
            "ADOperationException",
            f"Active Directory operation failed on {dc}. This error is not retriable. "
            "Additional information: Access is denied.\r\nActive directory response: "
            "00000005: SecErr: DSID-03152857, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0",
            task,
            "WriteError",
            "Microsoft.Exchange.Data.Directory.ADOperationException",
        )


def _resolve(server: LabServer, identity: Any, task: str) -> ServerRecord:
    name = str(getattr(identity, "to_string", None) or identity) if identity is not None else ""
    record = server.org.directory.find(name)
    if record is None:
        raise _exchange_error(
            server,
            "ManagementObjectNotFoundException",
            f"The operation couldn't be performed because object '{name}' couldn't be found "
            f"on '{server.org.directory.dc}'.",
            task,
            "NotSpecified",
            "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
            name,
        )
    return record


# -- loading the shell ----------------------------------------------------------------------------
def add_pssnapin(ctx: CommandContext, params: dict[str, Any], _: list[Any]) -> Iterable[Any]:
    server = lab_server(ctx)
    for name in as_strings(params.get("Name")):
        if name.lower() != SNAPIN.lower() or server.faults.ems_unavailable:
            ctx.write_error(_snapin_missing(name))
            continue
        ctx.session.ems_loaded = True
    return []


def _snapin_missing(name: str) -> ErrorRecord:
    return error(
        f"The Windows PowerShell snap-in '{name}' is not installed on this computer.",
        "AddPSSnapInRead",
        "Microsoft.PowerShell.Commands.AddPSSnapinCommand",
        "InvalidArgument",
        "System.Management.Automation.PSArgumentException",
        name,
    )


def remote_exchange(ctx: CommandContext, params: dict[str, Any], _: list[Any]) -> Iterable[Any]:
    """Dot-sourcing RemoteExchange.ps1 defines $exbin/$exinstall/$exscripts and Connect-ExchangeServer."""
    ctx.session.set_variable("exinstall", INSTALL_PATH)
    ctx.session.set_variable("exbin", INSTALL_PATH + "bin\\")
    ctx.session.set_variable("exscripts", SCRIPTS)
    ctx.session.define_command(CONNECT)
    return []


def connect_exchange_server(ctx: CommandContext, params: dict[str, Any], _: list[Any]) -> Iterable[Any]:
    server = lab_server(ctx)
    if server.faults.ems_unavailable:
        raise fail(
            "No Exchange servers are available in any Active Directory sites. You can't connect to "
            "remote Windows PowerShell on a computer that only has the Management Tools role installed.",
            "ConnectExchangeServerFailed",
            "Connect-ExchangeServer",
        )
    ctx.write_host(f"Connecting to {server.record.fqdn}.")
    ctx.write_host(f"Connected to {server.record.fqdn}.")
    ctx.session.ems_loaded = True
    return []


CONNECT = CmdletSpec(
    "Connect-ExchangeServer",
    connect_exchange_server,
    (
        ParamSpec("ServerFqdn", position=0),
        ParamSpec("Auto", switch=True),
        ParamSpec("ClientApplication"),
        ParamSpec("UserName"),
        ParamSpec("Prompt", switch=True),
        ParamSpec("AllowRedirection", switch=True),
    ),
)


# -- Exchange cmdlets -----------------------------------------------------------------------------
def get_exchange_server(ctx: CommandContext, params: dict[str, Any], _: list[Any]) -> Iterable[Any]:
    server = lab_server(ctx)
    _check_ad(server, "GetExchangeServer")
    directory = server.org.directory
    with directory.lock:
        if params.get("Identity") is not None:
            return [directory.server_object(_resolve(server, params["Identity"], "GetExchangeServer"))]
        return [directory.server_object(r) for r in sorted(directory.servers.values(), key=lambda r: r.name)]


def set_exchange_server(ctx: CommandContext, params: dict[str, Any], _: list[Any]) -> Iterable[Any]:
    server = lab_server(ctx)
    _check_ad(server, "SetExchangeServer")
    directory = server.org.directory
    with directory.lock:
        record = _resolve(server, params.get("Identity"), "SetExchangeServer")
        if "MitigationsEnabled" in params:
            record.mitigations_enabled = to_bool(params["MitigationsEnabled"])
        if "MitigationsBlocked" in params:
            record.blocked = _multi_valued(record.blocked, params["MitigationsBlocked"])
        if (
            "MitigationsApplied" in params
        ):  # documented as written by the service only; accepted as on a server
            record.applied = _multi_valued(record.applied, params["MitigationsApplied"])
        if "DataCollectionEnabled" in params:
            record.data_collection = to_bool(params["DataCollectionEnabled"])
        if "InternetWebProxy" in params:
            proxy = params["InternetWebProxy"]
            record.proxy = str(proxy) if proxy else None
        record.when_changed = server.org.clock.now()
    return []


def _multi_valued(current: list[str], value: Any) -> list[str]:
    """A MultiValuedProperty parameter: a new list replaces; ``@{Add=..;Remove=..}`` edits."""
    edits = as_mapping(value)
    if edits is None:
        return list(dict.fromkeys(as_strings(value)))
    lowered = {str(k).lower(): v for k, v in edits.items()}
    out = list(current)
    for item in as_strings(lowered.get("add")):
        if item.lower() not in (c.lower() for c in out):
            out.append(item)
    removed = {r.lower() for r in as_strings(lowered.get("remove"))}
    return [c for c in out if c.lower() not in removed]


def get_organization_config(ctx: CommandContext, params: dict[str, Any], _: list[Any]) -> Iterable[Any]:
    server = lab_server(ctx)
    _check_ad(server, "GetOrganizationConfig")
    with server.org.directory.lock:
        return [server.org.directory.org_object()]


def set_organization_config(ctx: CommandContext, params: dict[str, Any], _: list[Any]) -> Iterable[Any]:
    server = lab_server(ctx)
    _check_ad(server, "SetOrganizationConfig")
    with server.org.directory.lock:
        if "MitigationsEnabled" in params:
            server.org.directory.org.mitigations_enabled = to_bool(params["MitigationsEnabled"])
            server.org.directory.org.when_changed = server.org.clock.now()
    return []


# -- EM scripts -----------------------------------------------------------------------------------
def _require_ems(ctx: CommandContext, server: LabServer, script: str) -> None:
    if not ctx.session.ems_loaded:
        raise fail(
            "The term 'Get-ExchangeServer' is not recognized as the name of a cmdlet, function, script "
            "file, or operable program. Check the spelling of the name, or if a path was included, "
            "verify that the path is correct and try again.",
            "CommandNotFoundException",
            script,
            category="ObjectNotFound",
            exception="System.Management.Automation.CommandNotFoundException",
            target="Get-ExchangeServer",
        )
    _check_ad(server, "GetExchangeServer")


def get_mitigations(ctx: CommandContext, params: dict[str, Any], _: list[Any]) -> Iterable[Any]:
    """Rows Server/ID/Type/Description/Status for applied, blocked and failed mitigations."""
    server = lab_server(ctx)
    _require_ems(ctx, server, "Get-Mitigations.ps1")
    org = server.org
    if server.faults.ocs_unreachable or not server.record.build.can_fetch:
        ctx.write_warning(OCS_UNREACHABLE_WARNING)
    with org.directory.lock:
        if params.get("Identity") is not None:
            records = [_resolve(server, params["Identity"], "GetExchangeServer")]
        else:
            records = sorted(org.directory.servers.values(), key=lambda r: r.name)
        rows = []
        for record in records:
            target = org.servers.get(record.name)
            results = target.results if target else {}
            listed: dict[str, str] = {i: "Applied" for i in record.applied}
            listed.update({i: s for i, s in results.items() if s == "Failed"})
            for blocked in record.blocked:
                listed.setdefault(blocked, "Blocked")
            for full_id, status in listed.items():
                entry = org.catalogue.describe(full_id)
                rows.append(
                    custom(
                        Server=record.name,
                        ID=full_id,
                        Type=entry.kind if entry else "Unknown",
                        Description=entry.desc if entry else "",
                        Status=status,
                    )
                )
    return rows


def test_connectivity(ctx: CommandContext, params: dict[str, Any], _: list[Any]) -> Iterable[Any]:
    server = lab_server(ctx)
    if server.faults.ocs_unreachable:
        ctx.write_host("Result: Failed.")
        ctx.write_host(
            "Message: Unable to connect to the Mitigation Service endpoint "
            "https://officeclient.microsoft.com/getexchangemitigations: Unable to connect to the "
            "remote server."
        )
    elif not server.record.build.can_fetch:
        ctx.write_host("Result: Failed.")
        ctx.write_host("Message: The remote certificate is invalid according to the validation procedure.")
    else:
        ctx.write_host("Result: Success.")
        ctx.write_host(
            "Message: Successfully able to connect to "
            "https://officeclient.microsoft.com/getexchangemitigations."
        )
    return []


def specs() -> list[CmdletSpec]:
    """The commands of this module (scripts are registered by path in ``commands.py``)."""
    return [
        CmdletSpec(
            "Add-PSSnapin",
            add_pssnapin,
            (ParamSpec("Name", position=0, mandatory=True), ParamSpec("PassThru", switch=True)),
        ),
        CmdletSpec(
            "Get-ExchangeServer",
            get_exchange_server,
            (
                ParamSpec("Identity", position=0, pipeline=True),
                ParamSpec("DomainController"),
                ParamSpec("Status", switch=True),
            ),
            requires_ems=True,
        ),
        CmdletSpec(
            "Set-ExchangeServer",
            set_exchange_server,
            (
                ParamSpec("Identity", position=0, mandatory=True, pipeline=True),
                ParamSpec("MitigationsEnabled"),
                ParamSpec("MitigationsBlocked"),
                ParamSpec("MitigationsApplied"),
                ParamSpec("DataCollectionEnabled"),
                ParamSpec("InternetWebProxy"),
                ParamSpec("DomainController"),
            ),
            requires_ems=True,
            should_process=True,
        ),
        CmdletSpec(
            "Get-OrganizationConfig",
            get_organization_config,
            (ParamSpec("Identity", position=0), ParamSpec("DomainController")),
            requires_ems=True,
        ),
        CmdletSpec(
            "Set-OrganizationConfig",
            set_organization_config,
            (ParamSpec("MitigationsEnabled"), ParamSpec("DomainController")),
            requires_ems=True,
            should_process=True,
        ),
    ]


SCRIPT_SPECS: dict[str, CmdletSpec] = {
    REMOTE_EXCHANGE: CmdletSpec("RemoteExchange.ps1", remote_exchange),
    GET_MITIGATIONS: CmdletSpec(
        "Get-Mitigations.ps1", get_mitigations, (ParamSpec("Identity", position=0), ParamSpec("ExportCSV"))
    ),
    TEST_CONNECTIVITY: CmdletSpec("Test-MitigationServiceConnectivity.ps1", test_connectivity),
}
