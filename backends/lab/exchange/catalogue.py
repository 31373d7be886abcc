"""The OCS mitigation catalogue the lab serves: ``<EOCS>`` XML in the real format, and its parser.

PING1 is written exactly as captured from the Office Config Service. The entries for rewrite,
service and app-pool actions are not public: M1 and M2 are reconstructed in the same shape with
their real rule names, and the service / app-pool examples are LAB-ONLY inventions (``labOnly="true"``,
IDs starting ``LAB-``) so the console can exercise every mitigation kind. Applicability (which
builds an entry fits) is a lab reconstruction too: ``<Applicability><Build min= max=/>``.
"""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import lru_cache

from emconsole.backends.lab.exchange.builds import Build

EOCS_VERSION = "1.0.4"
XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"

# Kinds as Get-Mitigations.ps1 reports them in its Type column.
ACTION_KIND = {
    "DoNothing": "Ping",
    "IISUrlRewrite": "IISUrlRewrite",
    "Service": "Service",
    "AppPool": "AppPool",
}

M1_RULE = (
    "<rewrite><rules>"
    '<rule name="EEMS M1.1 PowerShell - inbound" stopProcessing="true">'
    '<match url=".*" />'
    '<conditions><add input="{UrlDecode:{REQUEST_URI}}" pattern="(?=.*autodiscover)(?=.*powershell)" />'
    "</conditions>"
    '<action type="AbortRequest" />'
    "</rule></rules></rewrite>"
)
M2_RULES = (
    "<rewrite><outboundRules>"
    '<preConditions><preCondition name="EEMS M2.1 OWA SPA HTML shell - precondition">'
    '<add input="{RESPONSE_CONTENT_TYPE}" pattern="^text/html" />'
    "</preCondition></preConditions>"
    '<rule name="EEMS M2.1 OWA CSP - outbound" preCondition="EEMS M2.1 OWA SPA HTML shell - precondition">'
    '<match serverVariable="RESPONSE_Content_Security_Policy" pattern=".*" />'
    '<action type="Rewrite" '
    "value=\"script-src 'self' 'unsafe-eval' 'nonce-{OWA_NONCE}'; object-src 'none'\" />"
    "</rule></outboundRules></rewrite>"
)
LAB_SERVICE = "MSExchangeImap4"
LAB_APP_POOL = "MSExchangeOWACalendarAppPool"


@dataclass(frozen=True)
class Action:
    """One ``<Action>`` of a catalogue entry."""

    type: str
    scope: str
    desc: str
    value: str
    target: str = ""  # IIS PSPath for rewrite actions


@dataclass(frozen=True)
class Entry:
    """One ``<Config>``: a mitigation (full ID such as ``M2.1.0``) and its actions."""

    id: str
    desc: str
    actions: tuple[Action, ...]
    ranges: tuple[tuple[str, str], ...] = ()  # (min, max) builds; empty = every build
    lab_only: bool = False

    @property
    def short_id(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def kind(self) -> str:
        return ACTION_KIND.get(self.actions[0].type, self.actions[0].type) if self.actions else "Unknown"

    def fits(self, item: Build) -> bool:
        if not self.ranges:
            return True

        def key(v: str) -> tuple[int, ...]:
            return tuple(int(x) for x in v.split("."))

        return any(key(lo) <= item.parts <= key(hi) for lo, hi in self.ranges)


PING1 = Entry(
    "PING1",
    "EEMS Heartbeat probe. Does not modify any exchange settings.",
    (
        Action(
            "DoNothing",
            "Server",
            "Ping mitigation action. Does not modify any exchange settings.",
            "DoNothing",
        ),
    ),
)
M1 = Entry(
    "M1.1",
    "Mitigation for CVE-2022-41040: blocks autodiscover requests that reach PowerShell.",
    (
        Action(
            "IISUrlRewrite",
            "Site",
            "Adds the URL Rewrite rule EEMS M1.1 PowerShell - inbound.",
            M1_RULE,
            "IIS:\\Sites\\Default Web Site",
        ),
    ),
    (("15.1.2507.0", "15.1.2507.13"),),
)
M2 = Entry(
    "M2.1.0",
    "Mitigation for CVE-2026-42897: adds a Content-Security-Policy to OWA pages.",
    (
        Action(
            "IISUrlRewrite",
            "VirtualDirectory",
            "Adds the outbound rule EEMS M2.1 OWA CSP - outbound.",
            M2_RULES,
            "IIS:\\Sites\\Default Web Site\\owa",
        ),
    ),
    (("15.1.0.0", "15.1.9999.9999"), ("15.2.0.0", "15.2.2562.44")),
)
LAB_SVC = Entry(
    "LAB-SVC1.1",
    f"LAB-ONLY example (not a Microsoft mitigation): stops and disables {LAB_SERVICE}.",
    (Action("Service", "Server", f"LAB-ONLY: stop and disable the {LAB_SERVICE} service.", LAB_SERVICE),),
    (("15.2.1544.0", "15.2.1544.9999"),),
    lab_only=True,
)
LAB_POOL = Entry(
    "LAB-POOL1.1",
    f"LAB-ONLY example (not a Microsoft mitigation): stops {LAB_APP_POOL}.",
    (Action("AppPool", "Server", f"LAB-ONLY: stop the {LAB_APP_POOL} application pool.", LAB_APP_POOL),),
    (("15.1.2507.0", "15.1.2507.9999"), ("15.2.1748.0", "15.2.1748.9999")),
    lab_only=True,
)

DEFAULT_ENTRIES: tuple[Entry, ...] = (PING1, M1, M2, LAB_SVC, LAB_POOL)


def build_eocs(entries: tuple[Entry, ...] = DEFAULT_ENTRIES) -> str:
    """The catalogue as OCS serves it: ``<EOCS version=..>`` with one ``<Config>`` per entry."""
    root = ET.Element("EOCS", version=EOCS_VERSION)
    for entry in entries:
        attrs = {"id": entry.id, "desc": entry.desc}
        if entry.lab_only:
            attrs["labOnly"] = "true"
        config = ET.SubElement(root, "Config", attrs)
        if entry.ranges:
            applicability = ET.SubElement(config, "Applicability")
            for lo, hi in entry.ranges:
                ET.SubElement(applicability, "Build", min=lo, max=hi)
        action_list = ET.SubElement(config, "ActionList")
        for action in entry.actions:
            a_attrs = {"type": action.type, "scope": action.scope, "desc": action.desc}
            if action.target:
                a_attrs["target"] = action.target
            node = ET.SubElement(action_list, "Action", a_attrs)
            ET.SubElement(node, "Value").text = action.value
    body = ET.tostring(root, encoding="unicode")
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    signature = (
        f'<Signature xmlns="{XMLDSIG}"><SignedInfo><DigestValue>{digest}</DigestValue></SignedInfo>'
        "<SignatureValue>lab-unsigned</SignatureValue></Signature>"
    )
    return '<?xml version="1.0" encoding="utf-8"?>\r\n' + body.replace("</EOCS>", signature + "</EOCS>")


@lru_cache(maxsize=8)  # every EM run of every server parses the same published text
def parse_eocs(text: str) -> tuple[Entry, ...]:
    """Parse a catalogue (the real captured one or the lab's) into entries; unknown parts ignored."""
    start = text.find("<EOCS")
    root = ET.fromstring(text[start:])
    entries = []
    for config in root.findall("Config"):
        actions = tuple(
            Action(
                a.get("type", ""),
                a.get("scope", ""),
                a.get("desc", ""),
                (a.findtext("Value") or "").strip(),
                a.get("target", ""),
            )
            for a in config.findall("ActionList/Action")
        )
        ranges = tuple(
            (b.get("min", "0.0.0.0"), b.get("max", "99.99.99999.99999"))
            for b in config.findall("Applicability/Build")
        )
        entries.append(
            Entry(
                config.get("id", ""), config.get("desc", ""), actions, ranges, config.get("labOnly") == "true"
            )
        )
    return tuple(entries)


@dataclass
class CatalogueState:
    """The catalogue OCS currently publishes (tests may swap entries in and out)."""

    entries: tuple[Entry, ...] = DEFAULT_ENTRIES
    lab_examples: bool = True
    _cache: dict[tuple[Entry, ...], str] = field(default_factory=dict, repr=False)

    def published(self) -> tuple[Entry, ...]:
        return tuple(e for e in self.entries if self.lab_examples or not e.lab_only)

    def xml(self) -> str:
        key = self.published()
        if key not in self._cache:
            self._cache[key] = build_eocs(key)
        return self._cache[key]

    def describe(self, full_id: str) -> Entry | None:
        """The entry for an applied/blocked ID, matched by full then short ID."""
        for entry in self.entries:
            if entry.id == full_id:
                return entry
        short = full_id.split(".", 1)[0]
        return next((e for e in self.entries if e.short_id == short), None)
