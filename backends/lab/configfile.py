"""The emconsole config for a started lab fleet (``emconsole lab --write-config``), in the schema of
``emconsole/config.py``: one ``[[servers]]`` block per server over a ``[defaults]`` table, the lab's
LAB-ONLY catalogue entries as ``[[extra_catalogue]]``, and ``[[extra_builds]]`` for any build the
package's table lacks. The password is referenced (``password_from = "env:..."``), never written.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from emconsole.labconfig import LAB_PASSWORD_ENV as PASSWORD_ENV

if TYPE_CHECKING:
    from emconsole.backends.lab.fleet import LabFleet

    from emconsole.knowledge import BuildTable

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def server_defaults(fleet: LabFleet, ems: str = "remoteexchange") -> dict[str, Any]:
    """The keys every lab server shares: scheme, transport, how to load EMS, credentials, TLS."""
    spec = fleet.spec
    out: dict[str, Any] = {"scheme": spec.scheme, "transport": spec.auth, "ems": ems}
    if spec.auth == "certificate":
        assert fleet.client_cert is not None, "the lab is not started"
        out["cert_pem"], out["cert_key_pem"] = (str(p) for p in fleet.client_cert)
    else:
        out["username"] = f"{spec.domain}\\{spec.username}" if spec.auth == "ntlm" else spec.username
        out["password_from"] = f"env:{PASSWORD_ENV}"
    if fleet.ca_path is not None:
        out["ca_bundle"] = str(fleet.ca_path)
    out["tags"] = {"site": "lab"}
    return out


def server_entries(fleet: LabFleet, ems: str = "remoteexchange") -> list[dict[str, Any]]:
    """One config table per server (defaults merged in), as ``ServerConfig.model_validate`` takes it."""
    defaults = server_defaults(fleet, ems)
    return [{"name": s.name, "host": "127.0.0.1", "port": s.port, **defaults} for s in fleet.servers]


def config_text(fleet: LabFleet, ems: str = "remoteexchange", builds: BuildTable | None = None) -> str:
    """The whole config file for a started fleet; ``builds``: the table to complete (the package's)."""
    from emconsole.backends.lab.exchange.knowledge import lab_catalogue, missing_builds

    from emconsole.knowledge import load_knowledge

    lines = [
        "# emconsole configuration for the fleet served by `emconsole lab` (written by --write-config).",
        f"# The password is read from the environment: export {PASSWORD_ENV}=... (never written here).",
        "",
        "[defaults]",
        *(f"{_key(k)} = {_value(v)}" for k, v in server_defaults(fleet, ems).items()),
    ]
    for server in fleet.servers:
        lines += ["", "[[servers]]", f"name = {_value(server.name)}", 'host = "127.0.0.1"']
        lines.append(f"port = {server.port}")
    org = getattr(fleet.host_factory, "org", None)
    if org is not None:
        for entry in lab_catalogue(org):
            lines += ["", "# LAB-ONLY: an invented mitigation the lab's OCS publishes (not Microsoft's)."]
            lines += ["[[extra_catalogue]]", *_table(entry.model_dump(mode="json", exclude_defaults=True))]
        for build in missing_builds(org, builds or load_knowledge().builds):
            lines += ["", "[[extra_builds]]", *_table(build.model_dump(mode="json", exclude_defaults=True))]
    return "\n".join(lines) + "\n"


def _table(data: dict[str, Any]) -> list[str]:
    return [f"{_key(k)} = {_value(v)}" for k, v in data.items() if v is not None]


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _value(key)


def _value(value: Any) -> str:
    """A TOML value: strings as basic strings, lists as arrays, dicts as inline tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):  # JSON's escapes are TOML's; DEL must be escaped in TOML too
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None) + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")
