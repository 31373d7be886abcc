"""The lab's PowerShell interpreter: language core, binding, errors, refusals (scripts as text)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from emconsole.backends.lab.pwsh.api import (
    CmdletSpec,
    CommandContext,
    ErrorRecord,
    ParamSpec,
    PSError,
    PSObject,
)
from emconsole.backends.lab.pwsh.runner import RunContext, ScriptResult, new_registry, run_script

NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)


def _get_thing(ctx: CommandContext, params: dict[str, Any], items: list[Any]) -> Iterator[Any]:
    """Test-only cmdlet: echoes its binding; -Fail writes a non-terminating error, -Die a terminating one."""
    if params.get("Fail"):
        ctx.write_error(ErrorRecord("thing failed", "ThingFailed,Get-Thing", "ObjectNotFound"))
    if params.get("Die"):
        raise PSError(ErrorRecord("thing died", "ThingDied,Get-Thing", "InvalidOperation"))
    if params.get("Warn"):
        ctx.write_warning("careful")
        ctx.write_host("host text")
    yield PSObject(
        {"Identity": params.get("Identity"), "Enabled": params.get("Enabled"), "Input": len(items)}
    )


def _connect(ctx: CommandContext, params: dict[str, Any], items: list[Any]) -> Iterator[Any]:
    ctx.session.ems_loaded = True
    return iter(())


def _remote_exchange(ctx: CommandContext, params: dict[str, Any], items: list[Any]) -> Iterator[Any]:
    ctx.session.define_command(
        CmdletSpec(
            "Connect-ExchangeServer",
            _connect,
            (ParamSpec("Auto", switch=True), ParamSpec("ClientApplication")),
        )
    )
    ctx.session.set_variable("exscripts", "C:\\Scripts")
    return iter(())


def _registry() -> Any:
    registry = new_registry()
    registry.register(
        CmdletSpec(
            "Get-Thing",
            _get_thing,
            (
                ParamSpec("Identity", position=0, pipeline=True),
                ParamSpec("Enabled", switch=True),
                ParamSpec("EnabledOther"),
                ParamSpec("Fail", switch=True),
                ParamSpec("Die", switch=True),
                ParamSpec("Warn", switch=True),
            ),
            should_process=True,
        )
    )
    registry.register(
        CmdletSpec("Get-ExchangeServer", _get_thing, (ParamSpec("Identity", position=0),), requires_ems=True)
    )
    registry.register_script(
        "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\bin\\RemoteExchange.ps1",
        CmdletSpec("RemoteExchange.ps1", _remote_exchange),
    )
    return registry


def run(text: str) -> ScriptResult:
    env = {
        "COMPUTERNAME": "EX1",
        "ExchangeInstallPath": "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\",
    }
    return run_script(
        text,
        context=RunContext(
            server=None, registry=_registry(), env=env, now=lambda: NOW, utc_offset=timedelta(hours=2)
        ),
    )


def lines(result: ScriptResult) -> list[str]:
    return result.stdout.split("\r\n")[:-1]


def test_literals_strings_and_expansion() -> None:
    result = run(
        "$n = 'it''s'\n\"$n $env:COMPUTERNAME $($n.Length + 1) `$x ${n}\"\n'a–b'\n\u2018c\u2019\n-5\n$true"
    )
    assert lines(result) == ["it's EX1 5 $x it's", "a–b", "c", "-5", "True"]
    assert result.exit_code == 0


def test_smart_quotes_close_strings_but_values_keep_the_original_text() -> None:
    assert lines(run("Write-Output \u201cx\u2013y\u201d")) == ["x–y"]


def test_if_foreach_arrays_hashtables_and_member_enumeration() -> None:
    script = """
$list = @([pscustomobject]@{ Name = 'a'; N = 1 }, [pscustomobject]@{ Name = 'b'; N = 2 })
$h = @{ Key = 'v' }
if ($list.Count -eq 3) { 'three' } elseif ($h.key -eq 'V') { 'hashtable' } else { 'none' }
foreach ($item in $list) { $item.Name + $item.N }
$list.Name -join ','
"""
    # -join is outside the subset: the whole script is refused before anything runs
    refused = run(script)
    assert refused.exit_code == 1 and refused.stdout == "" and "NotSupportedInLab" in refused.stderr
    ok = run(script.replace("$list.Name -join ','", "$list.Name"))
    assert lines(ok) == ["hashtable", "a1", "b2", "a", "b"]


def test_operators_follow_powershell_rules() -> None:
    script = """
@(1, 2, 3, 2) -eq 2
'ABC' -like 'a*'
'abc' -match '^A(?<rest>.*)'
$Matches.rest
'x' -in @('X', 'y')
@('a', 'b') -contains 'B'
'10' -eq 10
10 -eq '10'
1 + '2'
'1' + 2
@(1) + 2
-not ''
!$null
$null -eq $null
"""
    assert lines(run(script)) == [
        "2",
        "2",
        "True",
        "True",
        "bc",
        "True",
        "True",
        "True",
        "True",
        "3",
        "12",
        "1",
        "2",
        "True",
        "True",
        "True",
    ]


def test_casts_and_methods() -> None:
    script = """
[int]'42' + 1
[string]5 + 1
[bool]'False'
[string[]]$a = 1, 2
$a[1].GetType
([datetime]'2024-01-02T03:04:05Z').ToUniversalTime().ToString('o')
'  x '.Trim()
'a,b;c'.Split(',;')[2]
'a, b'.Split(', ').Count
"""
    result = run(script.replace("$a[1].GetType\n", ""))
    assert lines(result) == ["43", "51", "True", "2024-01-02T03:04:05.0000000Z", "x", "c", "3"]


def test_get_date_is_local_with_offset_and_utc_conversion() -> None:
    result = run("$d = Get-Date\n$d.ToString('o')\n$d.ToUniversalTime().ToString('o')")
    assert lines(result) == ["2024-05-06T09:08:09.0000000+02:00", "2024-05-06T07:08:09.0000000Z"]


def test_pipeline_object_cmdlets() -> None:
    script = """
$rows = @(
  [pscustomobject]@{ Id = 'M2'; Status = 'Applied'; Order = 2 },
  [pscustomobject]@{ Id = 'M1'; Status = 'Blocked'; Order = 1 },
  [pscustomobject]@{ Id = 'M2'; Status = 'Applied'; Order = 2 }
)
$rows | Where-Object { $_.Status -eq 'Applied' } | Select-Object -First 1 -ExpandProperty Id
$rows | Sort-Object Order | ForEach-Object { $PSItem.Id }
($rows | Measure-Object).Count
$rows | Select-Object Id, @{ n = 'Upper'; e = { $_.Status + '!' } } -Unique | ConvertTo-Json -Compress
$rows | Select-Object -Property @(@{ Label = 'L'; Expression = 'Order' }) -First 1 | ConvertTo-Json -Compress
Get-Thing -Identity x | Out-Null
Join-Path $env:ExchangeInstallPath 'Scripts\\Get-Mitigations.ps1'
"""
    assert lines(run(script)) == [
        "M2",
        "M1",
        "M2",
        "M2",
        "3",
        '[{"Id":"M2","Upper":"Applied!"},{"Id":"M1","Upper":"Blocked!"}]',
        '{"L":2}',
        "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\Scripts\\Get-Mitigations.ps1",
    ]


def test_binding_names_prefixes_switches_positions_and_pipeline() -> None:
    script = """
(Get-Thing EX2).Identity
(Get-Thing -Ident EX3 -Enabled:$false).Enabled
(Get-Thing -Identity EX4 -Enabled -Confirm:$false -ErrorAction Stop).Enabled
('a', 'b' | Get-Thing).Input
"""
    assert lines(run(script)) == ["EX2", "False", "True", "2"]


@pytest.mark.parametrize(
    ("script", "message", "error_id"),
    [
        (
            "Get-Thing -Bogus 1",
            "A parameter cannot be found that matches parameter name 'Bogus'.",
            "NamedParameterNotFound,Get-Thing",
        ),
        (
            "Get-Thing -Enab",
            "Parameter cannot be processed because the parameter name 'Enab' is ambiguous.",
            "AmbiguousParameter,Get-Thing",
        ),
        (
            "Get-Thing a b",
            "A positional parameter cannot be found that accepts argument 'b'.",
            "PositionalParameterNotFound,Get-Thing",
        ),
        (
            "Get-ExchangeServer",
            "The term 'Get-ExchangeServer' is not recognized as the name of a cmdlet, function, "
            "script file, or operable program.",
            "CommandNotFoundException",
        ),
        (
            "Get-Date -Confirm:$false",
            "A parameter cannot be found that matches parameter name 'Confirm'.",
            "NamedParameterNotFound,Get-Date",
        ),
    ],
)
def test_binding_and_lookup_errors_have_powershell_text(script: str, message: str, error_id: str) -> None:
    result = run(script)
    assert result.exit_code == 1
    assert result.stderr.startswith("#< CLIXML\r\n<Objs ")
    flat = result.stderr.replace('_x000D__x000A_</S><S S="Error">', " ")
    assert message in flat
    assert f"FullyQualifiedErrorId : {error_id}" in flat


def test_statement_terminating_error_continues_unless_stop() -> None:
    result = run("Get-Nope\n'after'")
    assert (
        lines(result) == ["after"] and result.exit_code == 0 and "CommandNotFoundException" in result.stderr
    )
    stopped = run("$ErrorActionPreference = 'Stop'\nGet-Nope\n'after'")
    assert stopped.stdout == "" and stopped.exit_code == 1


def test_non_terminating_errors_and_error_action() -> None:
    result = run("Get-Thing -Fail | Out-Null\n'after'")
    assert lines(result) == ["after"] and "ThingFailed,Get-Thing" in result.stderr
    assert run("Get-Thing -Fail").exit_code == 1  # $? of the last statement
    quiet = run("Get-Thing -Fail -ErrorAction SilentlyContinue | Out-Null")
    assert quiet.stderr == "" and quiet.exit_code == 0
    halted = run("Get-Thing -Fail -ErrorAction Stop\n'never'")
    assert halted.exit_code == 1 and "never" not in halted.stdout


def test_try_catch_sees_the_error_record() -> None:
    script = """
try { Get-Thing -Fail -ErrorAction Stop; 'not here' } catch { $_.Exception.Message; $_.FullyQualifiedErrorId }
try { Get-Thing -Die } catch { "caught $($_.Exception.Message)" }
try { Get-Thing -Bogus } catch { $_.FullyQualifiedErrorId }
'end'
"""
    result = run(script)
    assert lines(result) == [
        "thing failed",
        "ThingFailed,Get-Thing",
        "caught thing died",
        "NamedParameterNotFound,Get-Thing",
        "end",
    ]
    assert result.stderr == "" and result.exit_code == 0


def test_exit_code_and_uncaught_terminating_error() -> None:
    assert run("'x'\nexit 3\n'y'").exit_code == 3
    result = run("$ErrorActionPreference = 'Stop'\nGet-Thing -Die\n'never'")
    assert result.exit_code == 1 and "thing died" in result.stderr and "never" not in result.stdout
    assert "At line:2 char:1" in result.stderr


def test_redirection_merges_streams_into_output() -> None:
    merged = run("$r = Get-Thing -Fail 2>&1\n$r.Count\n$r[0].FullyQualifiedErrorId")
    assert lines(merged) == ["2", "ThingFailed,Get-Thing"] and merged.stderr == ""
    everything = run("$r = Get-Thing -Warn *>&1\n$r.Count")
    assert lines(everything) == ["3"]
    plain = run("Get-Thing -Warn | Out-Null")
    assert plain.stdout == "host text\r\n" and '<S S="warning">careful' in plain.stderr


def test_ems_commands_appear_after_dot_sourcing_remote_exchange() -> None:
    script = """
. (Join-Path $env:ExchangeInstallPath 'bin\\RemoteExchange.ps1')
Connect-ExchangeServer -Auto -ClientApplication:ManagementShell
(Get-ExchangeServer EX1).Identity
$exscripts
"""
    assert lines(run(script)) == ["EX1", "C:\\Scripts"]
    unknown = run("& 'C:\\nowhere\\x.ps1'")
    assert "The term 'C:\\nowhere\\x.ps1' is not recognized" in unknown.stderr


def test_parse_error_runs_nothing() -> None:
    result = run("Get-Thing -Fail\nif ($x { 'y' }")
    assert result.exit_code == 1 and result.stdout == ""
    assert "ParseException" in result.stderr and "ThingFailed" not in result.stderr


@pytest.mark.parametrize(
    "script",
    [
        "while ($true) { }",
        "function f { }",
        "Invoke-Expression 'x'; 'not reached'",
        "[System.IO.File]::ReadAllText('x')",
        "$ExecutionContext",
        "1 - 1",
        "$a += 1",
        "throw 'x'",
        "'x' > C:\\out.txt",
        "'a'.Substring(1)",
        "[xml]'<a/>'",
        "try { } catch [System.Exception] { }",
    ],
)
def test_out_of_subset_constructs_are_refused_before_running(script: str) -> None:
    result = run("Write-Output 'side effect'\n" + script)
    if "Invoke-Expression" in script:  # an unknown command, refused at run time as PowerShell would
        assert "CommandNotFoundException" in result.stderr
        return
    assert result.exit_code == 1 and result.stdout == ""
    assert "NotSupportedInLab" in result.stderr and "not supported by the lab" in result.stderr


def test_output_encoding_assignment_and_new_object() -> None:
    result = run(
        "[Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false\n"
        "$e = [Text.Encoding]::UTF8\n'ok'"
    )
    assert lines(result) == ["ok"]
    assert result.session is not None and result.session.output_encoding.bom is False


def test_the_consoles_script_bodies_are_inside_the_lab_subset() -> None:
    from importlib import resources

    from emconsole.backends.lab.pwsh.subset import refusal
    from emconsole.backends.lab.pwsh.syntax import parse

    bodies = [
        f for f in resources.files("emconsole.remote").joinpath("ps").iterdir() if f.name.endswith(".ps1")
    ]
    assert bodies
    for body in bodies:
        parsed = parse(body.read_text(encoding="utf-8"))
        assert parsed.first_error_message() is None, body.name
        assert refusal(parsed) is None, (body.name, refusal(parsed))


def test_custom_objects_keep_a_names_first_spelling_and_last_value_on_every_path() -> None:
    direct = PSObject({"Name": 1, "name": 2, "Other": 3})
    assert direct.properties() == [("Name", 2), ("Other", 3)] and direct["NAME"] == 2
    # [pscustomobject]@{...} with bare-name keys is built straight into the object; through a
    # hashtable variable it is converted: both give the same object
    for body in ("a = 1; B = 'x'", "Name = 1; name = 2; b = $null"):
        script = f"[pscustomobject]@{{ {body} }} | ConvertTo-Json -Compress\n$h = @{{ {body} }}\n"
        script += "[pscustomobject]$h | ConvertTo-Json -Compress"
        fused, converted = lines(run(script))
        assert fused == converted
    assert lines(run("[pscustomobject]@{ Name = 1; name = 2 } | ConvertTo-Json -Compress")) == ['{"Name":2}']


def test_a_call_site_binds_each_command_it_finds() -> None:
    script = """
foreach ($c in @('Write-Output', 'Get-Thing', 'Write-Output', 'Get-Thing')) {
  & $c 'x' | ConvertTo-Json -Compress
}
foreach ($i in @(1, 2)) {
  @($i, 'y') | Get-Thing | ConvertTo-Json -Compress
  Get-Thing $i | ConvertTo-Json -Compress
}
"""
    thing = '{"Identity":"x","Enabled":null,"Input":0}'
    assert lines(run(script)) == [
        '"x"',
        thing,
        '"x"',
        thing,
        '{"Identity":null,"Enabled":null,"Input":2}',
        '{"Identity":1,"Enabled":null,"Input":0}',
        '{"Identity":null,"Enabled":null,"Input":2}',
        '{"Identity":2,"Enabled":null,"Input":0}',
    ]


def test_where_and_foreach_with_a_block_written_in_place_do_what_the_commands_do() -> None:
    script = """
@(1, 2, 3, $null, 'a', @()) | Where-Object W{ $_ -ne 2 } | ForEach-Object P{ "<$_>"; $_ }
@() | Where-Object W{ 'never' } | ForEach-Object P{ 'never' }
$null | ForEach-Object P{ "null: [$_]" }
@('x', 'y') | ForEach-Object P{ Get-Thing -Fail -ErrorAction Continue | Out-Null; $_ }
$Seen = @('k') | Where-Object W{ @($_, $_) }
$Seen
try { @(1) | ForEach-Object P{ Get-Thing -Die; 'not here' } } catch { $_.FullyQualifiedErrorId }
"""
    in_place = run(script.replace("W{", "{").replace("P{", "{"))
    # named parameters: through binding and the commands' functions
    bound = run(script.replace("W{", "-FilterScript {").replace("P{", "-Process {"))
    assert lines(in_place) == lines(bound) == [
        "<1>", "1", "<3>", "3", "<>", "<a>", "a", "null: []", "x", "y", "k", "ThingDied,Get-Thing",
    ]  # fmt: skip
    assert in_place.stderr.count("ThingFailed,Get-Thing") == bound.stderr.count("ThingFailed") == 2


def test_like_is_the_wildcard_regex_match_whichever_way_it_is_tested() -> None:
    from emconsole.backends.lab.pwsh.values import wildcard_regex, wildcard_test

    patterns = ["EEMS *", "*/rules", "*Rule*", "abc", "", "*", "**", "a*b", "a?c", "[ab]*", "`*x", "x*"]
    patterns += ["*k*", "*s", "é*"]
    texts = ["EEMS M2", "eems m2", "x/RULES", "A rule here", "", "abc", "ABC", "a\nb", "*x", "xyz", "k", "S"]
    texts += ["\u212a", "\u017f", "é", "É", "ab\u212a"]  # Kelvin sign and long s fold to k and s
    for pattern in patterns:
        for text in texts:
            matched = wildcard_regex(pattern).match(text) is not None
            assert wildcard_test(pattern)(text) == matched, (pattern, text)
    assert lines(run("'x/RULES' -like '*/rules'\n'EEMS' -notlike 'EEMS *'")) == ["True", "True"]


def test_foreach_over_an_environment_or_read_only_variable() -> None:
    result = run("foreach ($env:LAB_X in @('a', 1)) { \"[$env:LAB_X]\" }\nforeach ($null in 1) { 'x' }\n'z'")
    assert lines(result) == ["[a]", "[1]", "z"]
    assert "Cannot overwrite variable null because it is read-only or constant." in result.stderr
    assert "VariableNotWritable" in result.stderr and result.exit_code == 0
