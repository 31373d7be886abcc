"""Every remote script, built with hostile-but-valid inputs, checked on tree-sitter's parse.

The checker below is written from POWERSHELL-SUBSET.md, not from the scripts: node types, tokens,
commands and their parameters, type literals, static members, methods and variables.
"""

from __future__ import annotations

import base64

import pytest
import tree_sitter
from emconsole.backends.lab.pwsh.syntax import ParsedScript, parse

from emconsole.models import artifact_match_ids
from emconsole.remote import scripts as S
from emconsole.remote.validate import InvalidInput

BID = "20260131T235959Z-0123abcd"
NAME = "a-" + "9" * 60 + "z"  # 63 characters, hyphen inside

NODE_TYPES = {
    "additive_expression",
    "argument_expression",
    "argument_expression_list",
    "argument_list",
    "array_expression",
    "array_literal_expression",
    "assignment_expression",
    "assignment_operator",
    "assignment_value",
    "cast_expression",
    "catch_clause",
    "catch_clauses",
    "command",
    "command_argument_sep",
    "command_elements",
    "command_invocation_operator",
    "command_name",
    "command_name_expr",
    "command_parameter",
    "comment",
    "comparison_expression",
    "comparison_operator",
    "decimal_integer_literal",
    "else_clause",
    "elseif_clause",
    "elseif_clauses",
    "empty_statement",
    "expandable_string_literal",
    "expression_with_unary_operator",
    "foreach_statement",
    "generic_token",
    "hash_entry",
    "hash_literal_body",
    "hash_literal_expression",
    "if_statement",
    "integer_literal",
    "invocation_expression",
    "key_expression",
    "left_assignment_expression",
    "logical_expression",
    "member_access",
    "member_name",
    "merging_redirection_operator",
    "parenthesized_expression",
    "pipeline",
    "pipeline_chain",
    "program",
    "redirection",
    "script_block",
    "script_block_body",
    "script_block_expression",
    "simple_name",
    "statement_block",
    "statement_list",
    "string_literal",
    "try_statement",
    "type_identifier",
    "type_literal",
    "type_name",
    "type_spec",
    "unary_expression",
    "variable",
    "verbatim_string_characters",
    "element_access",
    "array_type_name",
    "flow_control_statement",
}
TOKENS = {
    " ",
    '"',
    "$_",
    "&",
    "(",
    ")",
    "*>&1",
    "2>&1",
    "+",
    ",",
    ".",
    ":",
    "::",
    ";",
    "=",
    "@(",
    "@{",
    "[",
    "]",
    "{",
    "}",
    "|",
    "catch",
    "else",
    "elseif",
    "foreach",
    "if",
    "in",
    "try",
    "exit",
    "!",
    "-eq",
    "-ne",
    "-gt",
    "-ge",
    "-lt",
    "-le",
    "-like",
    "-notlike",
    "-match",
    "-notmatch",
    "-in",
    "-notin",
    "-contains",
    "-and",
    "-or",
    "-not",
}
COMMON = {"-ErrorAction", "-WarningAction", "-Confirm"}
PARAMS: dict[str, set[str]] = {
    "Add-PSSnapin": set(),
    "Connect-ExchangeServer": {"-Auto", "-ClientApplication"},
    "Get-ExchangeServer": {"-Identity"},
    "Set-ExchangeServer": {
        "-Identity",
        "-MitigationsEnabled",
        "-MitigationsBlocked",
        "-DataCollectionEnabled",
        "-InternetWebProxy",
    },
    "Get-OrganizationConfig": set(),
    "Set-OrganizationConfig": {"-MitigationsEnabled"},
    "Get-Service": {"-Name"},
    "Start-Service": {"-Name"},
    "Stop-Service": {"-Name"},
    "Restart-Service": {"-Name"},
    "Set-Service": {"-Name", "-StartupType"},
    "Get-WebApplication": {"-Site"},
    "Get-WebConfiguration": {"-PSPath", "-Filter"},
    "Get-WebConfigurationProperty": {"-PSPath", "-Filter", "-Name"},
    "Remove-WebConfigurationProperty": {"-PSPath", "-Filter", "-Name", "-AtElement"},
    "Add-WebConfigurationProperty": {"-PSPath", "-Filter", "-Name", "-Value"},
    "Set-WebConfigurationProperty": {"-PSPath", "-Filter", "-Name", "-Value"},
    "Get-WebAppPoolState": {"-Name"},
    "Start-WebAppPool": {"-Name"},
    "Stop-WebAppPool": {"-Name"},
    "Get-WinEvent": {"-FilterHashtable", "-MaxEvents"},
    "Join-Path": set(),
    "Test-Path": set(),
    "New-Item": {"-ItemType", "-Force", "-Path"},
    "Set-Content": {"-Path", "-Value", "-Encoding"},
    "Get-Content": {"-Raw", "-Path"},
    "Get-ChildItem": {"-Path", "-Filter"},
    "Get-CimInstance": {"-ClassName", "-Filter"},
    "Select-Object": {"-First", "-ExpandProperty", "-Unique", "-Property"},
    "Where-Object": set(),
    "ForEach-Object": set(),
    "Sort-Object": set(),
    "Measure-Object": set(),
    "ConvertTo-Json": {"-Depth", "-Compress"},
    "ConvertFrom-Json": set(),
    "Get-Date": set(),
    "Write-Output": set(),
    "Out-Null": set(),
    "New-Object": set(),
}
TYPES = {
    "console",
    "string",
    "int",
    "bool",
    "datetime",
    "string[]",
    "pscustomobject",
    "ordered",
    "text.encoding",
}
STATIC = {("console", "OutputEncoding"), ("text.encoding", "UTF8")}
METHODS = {"ToString", "ToUniversalTime", "Trim", "Split"}
SCRIPT_PATHS = {
    "bin\\RemoteExchange.ps1",
    "Scripts\\Get-Mitigations.ps1",
    "Scripts\\Test-MitigationServiceConnectivity.ps1",
}
AUTOMATIC = {
    "$_",
    "$psitem",
    "$true",
    "$false",
    "$null",
    "$erroractionpreference",
    "$progresspreference",
    "$env:exchangeinstallpath",
    "$env:programdata",
    "$env:computername",
}

EXCHANGE = {"Add-PSSnapin", "Join-Path", "Connect-ExchangeServer", "Out-Null"}
BASE = {"New-Object", "Get-Date", "ConvertTo-Json", "ForEach-Object"}
EXPECTED_COMMANDS = {
    "status": BASE
    | EXCHANGE
    | {
        "Get-ExchangeServer",
        "Where-Object",
        "Get-OrganizationConfig",
        "Get-CimInstance",
        "Get-WebAppPoolState",
        "Get-WebApplication",
        "Get-WebConfiguration",
        "Get-WinEvent",
        "Test-Path",
        "Get-ChildItem",
    },
    "block": BASE | EXCHANGE | {"Get-ExchangeServer", "Where-Object", "Set-ExchangeServer"},
    "reapply": BASE | {"Get-CimInstance", "Restart-Service"},
    "delete": BASE
    | EXCHANGE
    | {
        "Get-ExchangeServer",
        "Where-Object",
        "Set-ExchangeServer",
        "Get-CimInstance",
        "Get-WebAppPoolState",
        "Get-WebApplication",
        "Get-WebConfiguration",
        "Test-Path",
        "New-Item",
        "Set-Content",
        "Remove-WebConfigurationProperty",
        "Set-Service",
        "Start-Service",
        "Start-WebAppPool",
    },
    "restore": BASE
    | {
        "Join-Path",
        "Test-Path",
        "Get-Content",
        "ConvertFrom-Json",
        "Where-Object",
        "Get-WebConfiguration",
        "Add-WebConfigurationProperty",
        "Set-WebConfigurationProperty",
        "Set-Service",
        "Stop-Service",
        "Get-CimInstance",
        "Stop-WebAppPool",
        "Get-WebAppPoolState",
    },
    "set_enabled": BASE
    | EXCHANGE
    | {"Get-OrganizationConfig", "Set-OrganizationConfig", "Get-ExchangeServer", "Set-ExchangeServer"},
    "test_ocs": BASE | EXCHANGE,
    "discover": BASE | EXCHANGE | {"Get-ExchangeServer"},
}
EXPECTED_COMMANDS["unblock"] = EXPECTED_COMMANDS["block"]


def hostile_scripts() -> list[tuple[S.RemoteScript, dict[str, object]]]:
    ids = ["0", "a.b-c_D", "M2.1.0", "Z" * 64]
    pools = ["My Pool 1", "x.y-z_"]
    svcs = ["s.-_1", "MSExchangeImap4"]
    return [
        (
            S.build_status(NAME, "remoteexchange", svcs, pools, max_events=500),
            {
                "Identity": NAME,
                "Ems": "remoteexchange",
                "Services": [S.EM_SERVICE, *svcs],
                "AppPools": pools,
                "MaxEvents": 500,
            },
        ),
        (
            S.build_block(NAME, "snapin", ids, ids[:2]),
            {"Identity": NAME, "Mode": "block", "Expected": ids[:2], "BlockIds": ids},
        ),
        (
            S.build_unblock("X", "snapin", ids[:1], []),
            {"Identity": "X", "Mode": "unblock", "Expected": [], "BlockIds": ids[:1]},
        ),
        (S.build_reapply(NAME), {"Identity": NAME}),
        (
            S.build_delete(
                NAME, "snapin", ids, BID, services=svcs, app_pools=pools, block_ids=ids, expected=[]
            ),
            {
                "Identity": NAME,
                "Ids": list(artifact_match_ids(ids)),  # rule names are matched by base ID
                "BackupId": BID,
                "Services": svcs,
                "AppPools": pools,
                "Mode": "block",
                "BlockIds": ids,
                "Expected": [],
                "NeedEms": True,
            },
        ),
        (
            S.build_delete(NAME, "snapin", ids[:1], BID, block=False),
            {"Ids": ids[:1], "Mode": "", "BlockIds": [], "NeedEms": False},
        ),
        (S.build_restore(NAME, BID), {"Identity": NAME, "BackupId": BID}),
        (S.build_set_enabled(NAME, "snapin", "org", False), {"Scope": "org", "Enabled": False}),
        (S.build_test_ocs(NAME, "snapin"), {"Identity": NAME, "Ems": "snapin"}),
        (S.build_discover(NAME, "remoteexchange"), {"Identity": NAME, "Ems": "remoteexchange"}),
    ]


def walk(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        out.append(n)
        stack.extend(reversed(n.children))
    return out


def string_value(p: ParsedScript, node: tree_sitter.Node) -> str:
    """A single-quoted literal's value by PowerShell's rule: a quote followed by a quote stands for one."""
    text = p.text(node)
    assert text[0] in "'\u2018\u2019\u201a\u201b" and text[-1] in "'\u2018\u2019\u201a\u201b", text
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        if body[i] in "'\u2018\u2019\u201a\u201b":
            assert i + 1 < len(body) and body[i + 1] in "'\u2018\u2019\u201a\u201b", text
            out.append(body[i + 1])
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def literal(p: ParsedScript, node: tree_sitter.Node) -> object:
    """The value of a header right-hand side: string, int, bool or array of strings."""
    kinds = [
        n
        for n in walk(node)
        if n.type in ("verbatim_string_characters", "decimal_integer_literal", "variable", "array_expression")
    ]
    if kinds and kinds[0].type == "array_expression":
        return [string_value(p, n) for n in walk(kinds[0]) if n.type == "verbatim_string_characters"]
    first = kinds[0]
    if first.type == "verbatim_string_characters":
        return string_value(p, first)
    if first.type == "decimal_integer_literal":
        return int(p.text(first))
    return {"$true": True, "$false": False}[p.text(first).lower()]


def header(p: ParsedScript) -> dict[str, object]:
    values: dict[str, object] = {}
    statements = next(c for c in p.tree.root_node.children if c.type == "statement_list")
    for stmt in statements.children:
        if stmt.type != "pipeline":
            continue
        assign = stmt.children[0]
        if assign.type != "assignment_expression":
            continue
        name = p.text(assign.children[0]).lstrip("$")
        if name == "ErrorActionPreference":
            break
        values[name] = literal(p, assign.children[2])
    return values


def check_subset(p: ParsedScript) -> set[str]:
    """Fail on anything outside POWERSHELL-SUBSET.md; return the command names used."""
    nodes = walk(p.tree.root_node)
    commands: set[str] = set()
    assigned: set[str] = set()
    for n in nodes:
        if n.is_named:
            assert n.type in NODE_TYPES, f"{n.type}: {p.text(n)[:60]!r}"
        else:
            assert n.type in TOKENS or n.type.isspace(), f"token {n.type!r}"
        if n.type == "flow_control_statement":
            assert p.text(n).split()[0].lower() == "exit", p.text(n)
        if n.type == "assignment_operator":
            assert p.text(n) == "="
        if n.type == "command":
            name_node = next(c for c in n.children if c.type in ("command_name", "command_name_expr"))
            params = {
                p.text(c)
                for c in walk(n)
                if c.type == "command_parameter" and c.parent is not None and c.parent.parent == n
            }
            if name_node.type == "command_name":
                name = p.text(name_node)
                assert name in PARAMS, f"command {name} is outside the subset"
                assert params <= PARAMS[name] | COMMON, f"{name} {params - PARAMS[name]}"
                commands.add(name)
            else:  # & (Join-Path $env:ExchangeInstallPath '<script>') / . (...)
                inner = [c for c in walk(name_node) if c.type == "verbatim_string_characters"]
                assert [p.text(v) for v in walk(name_node) if v.type == "variable"] == [
                    "$env:ExchangeInstallPath"
                ]
                assert len(inner) == 1 and string_value(p, inner[0]) in SCRIPT_PATHS
        if n.type == "type_literal":
            assert p.text(n)[1:-1].lower() in TYPES, p.text(n)
        if n.type == "member_access" and any(c.type == "::" for c in n.children):
            assert (p.text(n.children[0])[1:-1].lower(), p.text(n.children[-1])) in STATIC
        if n.type == "invocation_expression":
            method = next(c for c in n.children if c.type == "member_name")
            assert p.text(method) in METHODS, p.text(method)
        if n.type == "variable" and n.parent is not None:
            name = p.text(n).lower()
            if (
                n.parent.type == "unary_expression"
                and n.parent.parent is not None
                and n.parent.parent.type == "left_assignment_expression"
            ) or n.parent.type == "foreach_statement":
                assigned.add(name)
            elif name not in AUTOMATIC and not name.startswith("$_"):
                assert name in assigned, f"{p.text(n)} read before any assignment"
    return commands


@pytest.mark.parametrize(("built", "inputs"), hostile_scripts(), ids=lambda v: getattr(v, "operation", ""))
def test_script_parses_within_subset(built: S.RemoteScript, inputs: dict[str, object]) -> None:
    p = parse(built.text)
    assert p.errors() == [], p.first_error_message()
    assert check_subset(p) == EXPECTED_COMMANDS[built.operation]
    bound = header(p)
    for key, value in inputs.items():
        assert bound[key] == value, key
    assert bound["Schema"] == built.schema and bound["Operation"] == built.operation
    assert built.text.count("ConvertTo-Json -Depth 12 -Compress") == 1
    assert "$exscripts" not in built.text.lower()


def test_checker_rejects_constructs_outside_the_subset() -> None:
    for text in (
        "function f { 1 }",
        "while ($true) { }",
        "$a = 1..3",
        "$a = 'x' -join ','",
        "Start-Sleep 1",
        "[System.IO.File]::ReadAllText('x')",
        "$a = $b.Replace('a', 'b')",
        "$a += 1",
        "Write-Host 'x'",
        "$x = $undefined",
    ):
        with pytest.raises(AssertionError):
            check_subset(parse(text))


def test_largest_allowed_inputs_fit_the_command_line() -> None:
    L = S.LIMITS

    def ids(n: int) -> list[str]:
        return [f"{i:02d}" + "x" * 62 for i in range(n)]

    svcs = [f"{i:02d}" + "s" * 78 for i in range(32)]
    pools = [f"{i:02d}" + "p" * 62 for i in range(32)]
    name = "n" * 63
    biggest = [
        S.build_status(name, "remoteexchange", svcs[: L["status.services"]], pools[: L["status.app_pools"]]),
        S.build_block(name, "remoteexchange", ids(L["block.ids"]), ids(L["block.expected"])),
        S.build_unblock(name, "remoteexchange", ids(L["block.ids"]), ids(L["block.expected"])),
        S.build_delete(
            name,
            "remoteexchange",
            ids(L["delete.ids"]),
            BID,
            services=svcs[: L["delete.services"]],
            app_pools=pools[: L["delete.app_pools"]],
            block_ids=ids(L["delete.block_ids"]),
            expected=ids(L["delete.expected"]),
        ),
        S.build_restore(name, BID),
        S.build_set_enabled(name, "remoteexchange", "server", True),
        S.build_test_ocs(name, "remoteexchange"),
        S.build_discover(name, "remoteexchange"),
        S.build_reapply(name),
    ]
    for b in biggest:
        line = b.command_line
        assert len(line) <= S.COMMAND_LINE_LIMIT, (b.operation, len(line))
        exe, *args = line.split(" ")
        assert exe == "powershell.exe" and args[:3] == ["-NoProfile", "-NonInteractive", "-EncodedCommand"]
        assert base64.b64decode(args[3]).decode("utf-16-le") == b.text
        assert b.encoded_arguments() == args
        assert parse(b.text).errors() == []
    with pytest.raises(InvalidInput):
        S.build_block(name, "snapin", ids(L["block.ids"] + 1), [])


def test_same_inputs_same_text_and_hash() -> None:
    a = S.build_block("EX01", "snapin", ["M2", "M2.1.0"], ["M1"])
    b = S.build_block("EX01", "snapin", ["M2", "m2", "M2.1.0"], ["M1"])
    assert a.text == b.text and a.sha256 == b.sha256 and len(a.sha256) == 64
