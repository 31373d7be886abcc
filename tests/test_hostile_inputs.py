"""Injection, the operator's side: server names, hosts, tags and mitigation IDs built from quotes
(ASCII and the U+2018..U+201E look-alikes PowerShell honours), ``;``, ``|``, ``$(...)``, backticks,
newlines, NULs, ANSI escapes, Textual markup and very long strings are refused where they enter —
the config file, ``ActionRequest``, the command line, ``emconsole.remote.validate`` — with a message
that names the key and never echoes a control character. Whatever is accepted reaches PowerShell
as exactly the intended commands: every script the engine plans parses (tree-sitter, smart quotes
mapped as PowerShell maps them) to the operation's own command set with the values bound unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cliharness import CliLab
from emconsole.backends.lab.pwsh.syntax import parse
from pydantic import ValidationError
from test_remote_scripts import EXPECTED_COMMANDS, check_subset, header

from emconsole.config import ConfigError, parse_config
from emconsole.models import ActionKind, ActionRequest, ActionScope
from emconsole.remote import scripts, validate
from emconsole.remote.quoting import quote
from emconsole.textsafe import CONTROL_CHARACTERS

QUOTES = ["'", "\u2018", "\u2019", "\u201a", "\u201b", '"', "\u201c", "\u201d", "\u201e"]
PIECES = [*QUOTES, ";", "|", "$(Stop-Computer)", "`", "\n", "\r\n", "\x00", "\x1b[31m", "\x1b]0;owned\x07",
          "\x9b2J", "\u202e", "[bold]", "[/]", "[@click=app.quit]", "&", "@(", "{", " "]
#: Each piece inside an otherwise valid value, plus whole payloads and very long strings.
HOSTILE = [
    *(f"EX{piece}01" for piece in PIECES),
    *(f"EX01{piece}" for piece in PIECES),
    "EX01'; Remove-Item C:\\ -Recurse; '",
    "EX01\u2019; Stop-Computer; \u2018",
    "EX01\n",
    "M2\n",
    "[@click=app.quit]quit[/]",
    "A" * 300,
    "A" * 100_000,
    "",
]


def toml_string(value: str) -> str:
    """A TOML basic string for any text (JSON's escapes are TOML's; DEL must be escaped too)."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def server_toml(**fields: str) -> str:
    values = {"name": '"EX01"', "host": '"ex01.contoso.local"', "transport": '"kerberos"', **fields}
    return "[[servers]]\n" + "".join(f"{key} = {value}\n" for key, value in values.items())


def artifact(kind: str, name: str) -> str:
    return f'[{{ kind = "{kind}", name = {name} }}]'


def catalogue_toml(**fields: str) -> str:
    values = {"id": '"Z9"', "kind": '"service"', "artifacts": artifact("service", '"ZSvc"'), **fields}
    return "[[extra_catalogue]]\n" + "".join(f"{key} = {value}\n" for key, value in values.items())


#: (where the value goes, the TOML it makes, the key path the error must name)
PLACES: list[tuple[str, Callable[[str], str], str]] = [
    ("server name", lambda v: server_toml(name=toml_string(v)), "servers[0].name"),
    ("host", lambda v: server_toml(host=toml_string(v)), "servers[0].host"),
    ("tag name", lambda v: server_toml(tags=f"{{ {toml_string(v)} = \"a\" }}"), "servers[0].tags"),
    ("catalogue ID", lambda v: catalogue_toml(id=toml_string(v)), "extra_catalogue[0].id"),
    ("applied ID seen", lambda v: catalogue_toml(applied_ids_seen=f"[{toml_string('Z9.' + v)}]"),
     "extra_catalogue[0].applied_ids_seen"),
    ("service name", lambda v: catalogue_toml(artifacts=artifact("service", toml_string(v))),
     "extra_catalogue[0].artifacts[0].name"),
    ("app pool name",
     lambda v: catalogue_toml(kind='"app_pool"', artifacts=artifact("app_pool", toml_string(v))),
     "extra_catalogue[0].artifacts[0].name"),
]
#: Tag values are display and selection text, never part of a script: printable text is kept as
#: written (and shown literally); control characters and very long values are refused.
BAD_TAG_VALUES = [v for v in HOSTILE if CONTROL_CHARACTERS.search(v) or "\n" in v or len(v) > 256]
GOOD_TAG_VALUES = ["O'Brien\u2019s ;|$(x)`y", "[bold]x[/] [@click=app.quit]q[/]", "\u201cquoted\u201d", ""]


def refused(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "hostile.toml")
    return info.value


@pytest.mark.parametrize(("place", "make", "key"), PLACES, ids=[p[0] for p in PLACES])
def test_config_refuses_hostile_values_naming_the_key(place: str, make: Callable[[str], str],
                                                       key: str) -> None:
    for value in HOSTILE:
        if (place, value) in (("app pool name", "EX 01"), ("applied ID seen", "")):
            continue  # a space inside an app pool name is fine ("My Pool"); "Z9." is a valid ID
        error = refused(make(value))
        assert error.key_path is not None and error.key_path.startswith(key), (place, value[:40], str(error))
        assert not CONTROL_CHARACTERS.search(str(error)) and "\n" not in str(error), (place, str(error)[:200])
        assert len(str(error)) < 1000, "a 100 kB value was echoed back"


def test_tag_values_are_literal_text_without_control_characters() -> None:
    for value in BAD_TAG_VALUES:
        error = refused(server_toml(tags=f"{{ site = {toml_string(value)} }}"))
        assert error.key_path == "servers[0].tags", str(error)
        assert not CONTROL_CHARACTERS.search(str(error)) and len(str(error)) < 1000
    for value in GOOD_TAG_VALUES:
        config = parse_config(server_toml(tags=f"{{ site = {toml_string(value)} }}"))
        assert config.servers[0].tags == {"site": value}


def test_action_requests_and_every_builder_refuse_hostile_ids_and_names() -> None:
    builders: list[Callable[[str], object]] = [
        lambda v: scripts.build_status(v, "snapin"),
        lambda v: scripts.build_status("EX01", "snapin", services=[v]),
        lambda v: scripts.build_status("EX01", "snapin", app_pools=[v]),
        lambda v: scripts.build_block("EX01", "snapin", [v], []),
        lambda v: scripts.build_block("EX01", "snapin", ["M2"], [v]),
        lambda v: scripts.build_unblock(v, "snapin", ["M2"], []),
        lambda v: scripts.build_delete("EX01", "snapin", [v], validate.new_backup_id()),
        lambda v: scripts.build_delete("EX01", "snapin", ["M2"], v),
        lambda v: scripts.build_restore("EX01", v),
        lambda v: scripts.build_set_enabled(v, "snapin", "server", True),
        lambda v: scripts.build_test_ocs(v, "snapin"),
        lambda v: scripts.build_discover(v, "snapin"),
        lambda v: scripts.build_reapply(v),
    ]
    for value in HOSTILE:
        with pytest.raises(ValidationError):
            ActionRequest(kind=ActionKind.BLOCK, servers=("EX01",), mitigation_ids=(value,))
        for build in builders:
            if value == "EX 01" and build is builders[2]:
                continue  # a space inside an app pool name is fine ("My Pool")
            with pytest.raises(validate.InvalidInput) as info:
                build(value)
            assert not CONTROL_CHARACTERS.search(str(info.value)) and len(str(info.value)) < 1000


def test_the_command_line_refuses_hostile_ids_and_changes_nothing(cli_lab: Callable[..., CliLab]) -> None:
    lab = cli_lab(servers=1)
    blocked = list(lab.lab.org.server("LAB-EX01").record.blocked)
    for value in ("M2;$(Stop-Computer)", "M2\u2019; Stop-Computer", "M2\n", "M2`n", "M2|x", "\x1b[31mM2"):
        code, out, err = lab.run("block", value, "--server", "LAB-EX01", "--yes", "--format", "json")
        assert code == 2 and out == "", (value, err)
        assert err.startswith("emconsole: ") and err.count("\n") == 1 and "Traceback" not in err, err
        assert not CONTROL_CHARACTERS.search(err)
    assert lab.lab.org.server("LAB-EX01").record.blocked == blocked
    assert not lab.audit_path.exists()


def test_quoting_keeps_every_hostile_text_one_literal() -> None:
    """The second wall, with smart quotes mapped as PowerShell maps them: one assignment, one command."""
    for value in HOSTILE:
        if "\x00" in value:
            continue  # never quoted: every validator refuses NUL first (above)
        parsed = parse(f"$x = {quote(value)}\nWrite-Output $x\n")
        assert parsed.errors() == [], (value[:40], parsed.first_error_message())
        assert header(parsed) == {"x": value}
        assert check_subset(parsed) == {"Write-Output"}


EDGE_IDS = ["a.b-c_D", "Z" * 64, "0"]


async def test_scripts_from_accepted_inputs_are_exactly_the_intended_commands(tmp_path: Path) -> None:
    """The engine's own plans, on a lab server whose block list and applied list hold valid-but-awkward
    IDs, with catalogue extras naming awkward services and app pools: each script parses to its
    operation's commands, with the IDs, backup ID, services and app pools bound as given."""
    from emconsole.audit import AuditLog
    from emconsole.commandlog import CommandLog
    from emconsole.engine import FleetEngine
    from emconsole.knowledge import CatalogueArtifact, CatalogueEntry
    from emconsole.labconfig import lab_backend, lab_config, start_lab
    from emconsole.models import ArtifactKind, MitigationKind

    extra = CatalogueEntry(id="a", kind=MitigationKind.SERVICE, applied_ids_seen=("a.b-c_D",),
                           artifacts=(CatalogueArtifact(kind=ArtifactKind.SERVICE, name="s.-_1"),
                                      CatalogueArtifact(kind=ArtifactKind.APP_POOL, name="My Pool 1")))
    lab = start_lab(servers=1, per_server={1: {"blocked": EDGE_IDS, "applied": ["M2.1.0", "a.b-c_D"]}})
    config = lab_config(lab.fleet).model_copy(update={"extra_catalogue": (extra,)})
    engine = FleetEngine(config, lab_backend(lab.fleet), audit=AuditLog(tmp_path / "audit.jsonl"),
                         command_log=CommandLog())
    name = config.servers[0].name
    try:
        [view] = [v async for v in engine.refresh()]
        assert view.state is not None and list(view.state.blocked) == EDGE_IDS, view.failure
        status = engine.command_log.entries()[0].script
    finally:
        await engine.aclose()
        lab.stop()
    bound = header(parse(status))
    assert bound["Services"] == ["MSExchangeMitigation", "s.-_1"] and bound["AppPools"] == ["My Pool 1"]
    backup = "20260131T235959Z-0123abcd"
    requests = [
        ActionRequest(kind=ActionKind.BLOCK, servers=(name,), mitigation_ids=("M2", *EDGE_IDS)),
        ActionRequest(kind=ActionKind.UNBLOCK, servers=(name,), mitigation_ids=("a",)),
        ActionRequest(kind=ActionKind.DELETE, servers=(name,), mitigation_ids=("a", "M2")),
        ActionRequest(kind=ActionKind.RESTORE, servers=(name,), backup_id=backup),
        ActionRequest(kind=ActionKind.ENABLE, servers=(name,)),
        ActionRequest(kind=ActionKind.DISABLE, servers=(name,), scope=ActionScope.ORG),
        ActionRequest(kind=ActionKind.REAPPLY, servers=(name,)),
    ]
    seen = set()
    for request in requests:
        [step] = engine.plan(request).steps
        parsed = parse(step.script_text)
        assert parsed.errors() == [], parsed.first_error_message()
        assert check_subset(parsed) == EXPECTED_COMMANDS[step.script.operation], step.script.operation
        bound = header(parsed)
        assert bound["Identity"] == name and bound["Operation"] == step.script.operation
        if request.kind is ActionKind.BLOCK:
            assert bound["Expected"] == EDGE_IDS
            block_ids = bound["BlockIds"]
            assert isinstance(block_ids, list) and set(block_ids) >= {"M2", "M2.1.0", *EDGE_IDS}
        if request.kind is ActionKind.UNBLOCK:
            assert bound["BlockIds"] == ["a.b-c_D"] and bound["Expected"] == EDGE_IDS
        if request.kind is ActionKind.DELETE:
            assert bound["Ids"] == ["a", "M2"] and bound["BackupId"] == step.backup_id
            assert bound["Services"] == ["s.-_1"] and bound["AppPools"] == ["My Pool 1"]
        if request.kind is ActionKind.RESTORE:
            assert bound["BackupId"] == backup
        seen.add(step.script.operation)
    assert seen == {"block", "unblock", "delete", "restore", "set_enabled", "reapply"}
