"""ConvertTo-Json / ConvertFrom-Json fidelity to Windows PowerShell 5.1 (layout, depth, escaping, dates)."""

from __future__ import annotations

from datetime import timedelta

from emconsole.backends.lab.pwsh.runner import RunContext, new_registry, run_script


def out(text: str) -> str:
    result = run_script(
        text, context=RunContext(server=None, registry=new_registry(), utc_offset=timedelta(hours=1))
    )
    assert result.stderr == "", result.stderr
    return result.stdout


def test_pretty_layout_is_51s() -> None:
    expected = (
        "{\r\n"
        '    "a":  1,\r\n'
        '    "list":  [\r\n'
        "                 1,\r\n"
        '                 "x"\r\n'
        "             ],\r\n"
        '    "h":  {\r\n'
        '              "k":  null\r\n'
        "          },\r\n"
        '    "e":  [\r\n'
        "\r\n"
        "          ]\r\n"
        "}\r\n"
    )
    assert (
        out("[ordered]@{ a = 1; list = @(1, 'x'); h = @{ k = $null }; e = @() } | ConvertTo-Json") == expected
    )


def test_objects_in_a_top_level_array() -> None:
    text = out("@([pscustomobject]@{ a = 1 }, [pscustomobject]@{ a = 2 }) | ConvertTo-Json")
    assert text == '[\r\n    {\r\n        "a":  1\r\n    },\r\n    {\r\n        "a":  2\r\n    }\r\n]\r\n'


def test_depth_counts_arrays_and_truncates_to_strings() -> None:
    script = (
        "[pscustomobject]@{ l1 = [pscustomobject]@{ l2 = [pscustomobject]@{ l3 = 1 }; "
        "arr = @(@(@{ x = 1 })) } }"
    )
    assert (
        out(script + " | ConvertTo-Json -Compress")
        == '{"l1":{"l2":{"l3":1},"arr":["System.Collections.Hashtable"]}}\r\n'
    )  # @(@(..)) is one array
    assert (
        out(script + " | ConvertTo-Json -Compress -Depth 1")
        == '{"l1":{"l2":"@{l3=1}","arr":"System.Collections.Hashtable"}}\r\n'
    )
    assert (
        out(script + " | ConvertTo-Json -Compress -Depth 5") == '{"l1":{"l2":{"l3":1},"arr":[{"x":1}]}}\r\n'
    )


def test_dates_enums_escaping_and_scalars() -> None:
    assert out("[datetime]'2024-01-02T03:04:05Z' | ConvertTo-Json") == '"\\/Date(1704164645000)\\/"\r\n'
    assert (
        out("\"<a href='x'>&</a>`t\" | ConvertTo-Json")
        == '"\\u003ca href=\\u0027x\\u0027\\u003e\\u0026\\u003c/a\\u003e\\t"\r\n'
    )
    assert out("$null | ConvertTo-Json") == "null\r\n"
    assert out("@() | ConvertTo-Json") == ""
    assert out("ConvertTo-Json -InputObject @(1) -Compress") == "[1]\r\n"
    assert out("@(1) | ConvertTo-Json -Compress") == "1\r\n"
    assert out("(Get-Date -Date '2024-01-02T00:00:00Z').Kind | ConvertTo-Json") == "2\r\n"


def test_convert_from_json_makes_custom_objects() -> None:
    script = """
$o = '{"schema": 1, "rows": [{"id": "M2"}, {"id": "M1"}], "t": "\\/Date(0)\\/"}' | ConvertFrom-Json
$o.schema
$o.rows.id
$o.t.ToUniversalTime().ToString('o')
$o | ConvertTo-Json -Compress -Depth 3
"""
    assert out(script).split("\r\n")[:-1] == [
        "1",
        "M2",
        "M1",
        "1970-01-01T00:00:00.0000000Z",
        '{"schema":1,"rows":[{"id":"M2"},{"id":"M1"}],"t":"\\/Date(0)\\/"}',
    ]


def test_strings_escape_exactly_what_javascriptserializer_escapes() -> None:
    assert out('"plain é € / ok" | ConvertTo-Json') == '"plain é € / ok"\r\n'
    escaped = '"q\\"b\\\\\\n\\r\\b\\f\\u0000\\u001b\\u000b"\r\n'
    assert out('"q`"b\\`n`r`b`f`0`e`v" | ConvertTo-Json') == escaped
