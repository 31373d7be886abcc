"""The config file: defaults, inheritance, one clear message per broken file, lookup order."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from emconsole.config import (
    ConfigError,
    EmsMode,
    Scheme,
    Transport,
    config_locations,
    find_config,
    load_config,
    parse_config,
)
from emconsole.credentials import CredentialError, PasswordSource
from emconsole.knowledge import FixStatus

ROOT = Path(__file__).resolve().parents[1]

GOOD = """
concurrency = 8
[defaults]
transport = "ntlm"
username = "CONTOSO\\\\em"
password_from = "env:EM_PW"
tags = { site = "ams" }

[[servers]]
name = "EX01"
host = "ex01.contoso.com"
tags = { environment = "prod" }

[[servers]]
name = "EX02"
scheme = "http"
transport = "kerberos"
username = "em@CONTOSO.COM"
password_from = "prompt"
ems = "snapin"
"""


def test_defaults_and_inheritance() -> None:
    config = parse_config(GOOD, "good.toml")
    ex01, ex02 = config.servers
    assert (ex01.scheme, ex01.port, ex01.transport, ex01.ems) == (
        Scheme.HTTPS, 5986, Transport.NTLM, EmsMode.REMOTE_EXCHANGE
    )
    assert ex01.tags == {"site": "ams", "environment": "prod"}
    assert ex01.tls_verify is True and ex01.proxy is None
    assert ex01.endpoint == "https://ex01.contoso.com:5986/wsman"
    assert (ex02.host, ex02.port) == ("EX02", 5985)
    assert (ex02.transport, ex02.ems) == (Transport.KERBEROS, EmsMode.SNAPIN)
    assert config.concurrency == 8 and config.bulk_confirm_threshold == 3 and config.read_only is False
    assert config.server("ex02") is ex02


def test_ipv6_host_endpoint() -> None:
    config = parse_config('[[servers]]\nname = "EX01"\nhost = "fd00::10"\n', "v6.toml")
    assert config.servers[0].endpoint == "https://[fd00::10]:5986/wsman"


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "broken.toml")
    return info.value


SERVER = '[[servers]]\nname = "EX01"\n'

BROKEN = [
    # (toml, exact key path, a word the message must contain)
    (SERVER + 'transport = "ntml"\n', "servers[0].transport", "kerberos"),
    (SERVER + 'trnsport = "ntlm"\n', "servers[0].trnsport", "did you mean 'transport'"),
    (SERVER + 'scheme = "ftp"\n', "servers[0].scheme", "https"),
    (SERVER + "port = 70000\n", "servers[0].port", "65535"),
    (SERVER + 'ems = "exchange"\n', "servers[0].ems", "remoteexchange"),
    ('[[servers]]\nname = "-EX01"\n', "servers[0].name", "DNS label"),
    ('[[servers]]\nname = "ex01.contoso.com"\n', "servers[0].name", "FQDN in host"),
    (SERVER + 'host = "ex01;rm -rf"\n', "servers[0].host", "IP address"),
    ('[[servers]]\nhost = "ex01.contoso.com"\n', "servers[0].name", "required"),
    (SERVER + '[[servers]]\nname = "ex01"\n', "servers[1].name", "duplicate"),
    (SERVER + 'transport = "ntlm"\nusername = "u"\n', "servers[0].password_from", "required"),
    (SERVER + 'transport = "basic"\npassword_from = "prompt"\n', "servers[0].username", "required"),
    (SERVER + 'username = "u"\npassword_from = "file:/etc/pw"\n', "servers[0].password_from", "env:NAME"),
    (SERVER + 'transport = "certificate"\nscheme = "http"\n', "servers[0].scheme", "https"),
    (SERVER + 'transport = "certificate"\ncert_pem = "c.pem"\n', "servers[0].cert_key_pem", "certificate"),
    (SERVER + 'cert_pem = "c.pem"\n', "servers[0].cert_pem", "only used"),
    (SERVER + 'proxy = "proxy:3128"\n', "servers[0].proxy", "environment"),
    (SERVER + "tls_verify = 3.5\n", "servers[0].tls_verify", "bool"),
    (SERVER + 'tags = { "bad tag" = "x" }\n', "servers[0].tags", "tag name"),
    ('[defaults]\ntransport = "smoke"\n' + SERVER, "defaults.transport", "kerberos"),
    ('[defaults]\ncolour = "red"\n' + SERVER, "defaults.colour", "unknown key"),
    ('[defaults]\nname = "EX01"\n', "defaults.name", "every server"),
    ("concurrency = 0\n", "concurrency", "greater than or equal to 1"),
    ("call_timeout = -1\n", "call_timeout", "greater than 0"),
    ("bulk_confirm_threshold = 0\n", "bulk_confirm_threshold", "1"),
    ("refresh_intervall = 30\n", "refresh_intervall", "did you mean 'refresh_interval'"),
    ('[keymap]\nrefresh = ""\n', "keymap", "key name"),
    ('[[extra_builds]]\nbuild = "15.2.x"\nproduct = "Exchange 2019"\ncu = "CU15"\n', "extra_builds[0].build",
     "pattern"),
    ('[[extra_catalogue]]\nid = "X1"\nkind = "service"\n'
     '[[extra_catalogue.artifacts]]\nkind = "svc"\nname = "S"\n',
     "extra_catalogue[0].artifacts[0].kind", "rewrite_rule"),
    ("servers = 3\n", "servers", "[[servers]]"),
    ('[[servers]]\nname = "EX01"\n[servers.tags]\nsite = 4\n', "servers[0].tags.site", "string"),
]


@pytest.mark.parametrize(("text", "path", "word"), BROKEN, ids=[b[1] + ":" + b[2] for b in BROKEN])
def test_broken_configs_name_the_key(text: str, path: str, word: str) -> None:
    error = _error(text)
    assert error.key_path == path
    message = str(error)
    assert message.startswith(f"broken.toml: {path}")
    assert word in message
    assert "Traceback" not in message and "\n" not in message


def test_inherited_values_are_blamed_on_defaults_once() -> None:
    text = '[defaults]\nport = "many"\n' + SERVER + '[[servers]]\nname = "EX02"\n'
    error = _error(text)
    assert error.key_path == "defaults.port" and "more problem" not in str(error)


def test_several_problems_are_counted() -> None:
    error = _error('concurrency = 0\n[[servers]]\nname = "-"\nscheme = "ftp"\n')
    assert "2 more problems after this one" in str(error)


def test_invalid_toml() -> None:
    error = _error("[[servers]\nname = 1\n")
    assert error.key_path is None and "not valid TOML" in str(error) and "line 1" in str(error)


@pytest.mark.parametrize(
    ("text", "path"),
    [
        (SERVER + 'password = "Hunter2-Secret"\n', "servers[0].password"),
        ('[defaults]\npassword = "Hunter2-Secret"\n', "defaults.password"),
        ('password = "Hunter2-Secret"\n', "password"),
        (SERVER + '[servers.tags]\nPassword = "Hunter2-Secret"\n', "servers[0].tags.Password"),
    ],
)
def test_password_key_is_refused_without_echo(text: str, path: str) -> None:
    error = _error(text)
    assert error.key_path == path
    assert "password_from" in str(error)
    assert "Hunter2" not in str(error)


def test_password_from_value_is_never_echoed() -> None:
    error = _error(SERVER + 'username = "u"\npassword_from = "Hunter2-Secret"\n')
    assert error.key_path == "servers[0].password_from" and "Hunter2" not in str(error)


def test_relative_paths_follow_the_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "config.toml"
    path.parent.mkdir()
    path.write_text('audit_path = "~/audit.jsonl"\n' + SERVER + 'ca_bundle = "ca.pem"\n')
    config, location = load_config(path)
    assert location.origin == "--config"
    assert config.servers[0].ca_bundle == path.parent / "ca.pem"
    assert config.audit_path == Path("~/audit.jsonl").expanduser()


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    default = tmp_path / "xdg" / "emconsole" / "config.toml"
    env_file = tmp_path / "env.toml"
    explicit = tmp_path / "explicit.toml"
    for path, name in ((default, "DEF"), (env_file, "ENV"), (explicit, "EXP")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'[[servers]]\nname = "{name}"\n')

    def used(explicit_arg: Path | None, environ: dict[str, str]) -> str:
        config, _ = load_config(explicit_arg, environ)
        return config.servers[0].name

    env = {"EMCONSOLE_CONFIG": str(env_file)}
    assert used(explicit, env) == "EXP"
    assert used(None, env) == "ENV"
    assert used(None, {}) == "DEF"
    assert used(None, {"EMCONSOLE_CONFIG": ""}) == "DEF"
    assert [loc.origin for loc in config_locations(explicit, env)] == [
        "--config", "$EMCONSOLE_CONFIG", "user config dir"
    ]
    # a named file that is missing is an error, never a silent fall-back to another file
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml", env)
    with pytest.raises(ConfigError, match="EMCONSOLE_CONFIG"):
        load_config(None, {"EMCONSOLE_CONFIG": str(tmp_path / "nope.toml")})
    default.unlink()
    assert find_config(None, {}) is None
    with pytest.raises(ConfigError, match="no configuration file"):
        load_config(None, {})


def test_extras_reach_the_knowledge() -> None:
    text = (
        '[[extra_builds]]\nbuild = "15.2.1748.48"\nproduct = "Exchange 2019"\ncu = "CU15"\n'
        'update = "Jun26SU"\nfixes = ["M2"]\n'
    )
    knowledge = parse_config(text, "x.toml").knowledge()
    assert knowledge.build_info("15.2.1748.48").name == "Exchange 2019 CU15 Jun26SU"
    assert knowledge.fix_status("15.2.1748.50", "CVE-2026-42897").status is FixStatus.FIXED


def test_example_documents_every_key_and_loads() -> None:
    example = (ROOT / "config.example.toml").read_text()
    config, _ = load_config(ROOT / "config.example.toml", {})
    assert [s.name for s in config.servers] == ["EX01", "EX02"]
    documented = set(re.findall(r"^#? ?(?:([a-z_]+) = |\[\[?([a-z_]+)\]\]?$)", example, flags=re.M))
    documented = {key for pair in documented for key in pair if key}
    from emconsole.config import Config, ServerConfig
    from emconsole.knowledge import BuildRecord, CatalogueEntry

    for model in (Config, ServerConfig, BuildRecord, CatalogueEntry):
        missing = set(model.model_fields) - documented - {"artifacts", "fix"}
        assert not missing, f"{model.__name__} keys not in config.example.toml: {missing}"
    # every commented-out example value is valid too (cert keys need transport = "certificate")
    uncommented = re.sub(r"^# ([a-z_]+ = |\[)", r"\1", example, flags=re.M)
    uncommented = re.sub(r"^cert_(key_)?pem = .*$", "", uncommented, flags=re.M)
    parse_config(uncommented, "uncommented.toml")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emconsole", *args], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_cli_config_check(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(SERVER + 'scheme = "https"\ntls_verify = false\n')
    ok = _cli("config", "check", "--config", str(good))
    assert ok.returncode == 0, ok.stderr
    assert "servers: 1" in ok.stdout and "tls_verify = false" in ok.stdout

    bad = tmp_path / "bad.toml"
    bad.write_text(SERVER + 'transport = "ntml"\npassword = "Hunter2-Secret"\n')
    result = _cli("config", "check", "--config", str(bad))
    assert result.returncode == 2 and result.stdout == ""
    assert f"{bad}: servers[0].password" in result.stderr
    assert "Hunter2" not in result.stderr and "Traceback" not in result.stderr

    bad.write_text(SERVER + 'transport = "ntml"\n')
    result = _cli("--config", str(bad), "config", "check")
    assert result.returncode == 2 and "servers[0].transport" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cli_config_path(tmp_path: Path) -> None:
    result = _cli("config", "path", "--config", str(tmp_path / "missing.toml"))
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"--config: {tmp_path / 'missing.toml'} (missing) <- used"
    assert lines[-1].startswith("user config dir: ")


def test_password_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    prompts: list[str] = []

    def prompt(text: str) -> str:
        prompts.append(text)
        return "typed"

    source = PasswordSource(prompt=prompt, environ={"EM_PW": "from-env"})
    assert source.password("env:EM_PW", "u") == "from-env"
    assert source.password("prompt", "u", "EX01") == "typed"
    assert source.password("prompt", "u", "EX02") == "typed"  # asked once per account
    assert prompts == ["Password for u on EX01: "]
    with pytest.raises(CredentialError, match="EM_MISSING") as info:
        source.password("env:EM_MISSING", "u")
    assert "from-env" not in str(info.value)
    monkeypatch.setitem(sys.modules, "keyring", None)  # the optional extra is not installed
    with pytest.raises(CredentialError, match=re.escape("emconsole[keyring]")):
        source.password("keyring:exchange", "u")
