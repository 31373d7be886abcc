"""The slice of IIS's configuration schema the lab models: the URL Rewrite sections and their elements.

IIS reads configuration through its schema (``rewrite_schema.xml`` for URL Rewrite), not as raw
XML: an attribute the XML leaves out reads as its schema default, and a child *element* the schema
defines (a rule's ``match``, ``conditions``, ``action``) always exists — reading it gives its
defaults, writing to it creates it in the file. That is why a rule added with only ``@{name=...}``
can be completed with ``Set-WebConfigurationProperty -Filter ".../rule[@name='X']/match"``, as
EOMT and Microsoft.Web.Administration (``GetChildElement``) do. Inbound and outbound rules differ:
an outbound ``match`` has ``serverVariable``/``pattern``/``filterByTags`` (no ``url``) and an
outbound ``action`` only ``type``/``value``/``replace``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ElementSchema:
    """One element kind: its attributes with their defaults, schema child elements, collection entries."""

    attributes: dict[str, Any] = field(default_factory=dict)
    children: tuple[str, ...] = ()  # child elements that always exist (defaults when not written)
    item: str = ""  # tag of the entries of the collection it holds ("" = not a collection)


_CONDITIONS = ElementSchema({"logicalGrouping": "MatchAll", "trackAllCaptures": False}, item="add")
_CONDITION = ElementSchema(
    {"input": "", "matchType": "Pattern", "pattern": "", "ignoreCase": True, "negate": False}
)
_RULE_BASE = {"name": "", "enabled": True, "patternSyntax": "ECMAScript", "stopProcessing": False}
_COMMON: dict[str, ElementSchema] = {
    "configuration": ElementSchema(children=("system.webServer",)),
    "system.webServer": ElementSchema(children=("rewrite",)),
    "rewrite": ElementSchema(children=("rules", "globalRules", "outboundRules")),
    "rules": ElementSchema(item="rule"),
    "globalRules": ElementSchema(item="rule"),
    "outboundRules": ElementSchema(children=("preConditions",), item="rule"),
    "preConditions": ElementSchema(item="preCondition"),
    "preCondition": ElementSchema(
        {"name": "", "logicalGrouping": "MatchAll", "patternSyntax": "ECMAScript"}, item="add"
    ),
    "conditions": _CONDITIONS,
    "add": _CONDITION,
    "serverVariables": ElementSchema(item="set"),
    "set": ElementSchema({"name": "", "value": "", "replace": True}),
}
_INBOUND: dict[str, ElementSchema] = {
    **_COMMON,
    "rule": ElementSchema(
        {**_RULE_BASE, "responseCacheDirective": "Auto"},
        ("match", "conditions", "serverVariables", "action"),
    ),
    "match": ElementSchema({"url": "", "ignoreCase": True, "negate": False}),
    "action": ElementSchema(
        {
            "type": "None",
            "url": "",
            "appendQueryString": True,
            "logRewrittenUrl": False,
            "redirectType": "Permanent",
            "statusCode": 0,
            "subStatusCode": 0,
            "statusReason": "",
            "statusDescription": "",
        }
    ),
}
_OUTBOUND: dict[str, ElementSchema] = {
    **_COMMON,
    "rule": ElementSchema({**_RULE_BASE, "preCondition": ""}, ("match", "conditions", "action")),
    "match": ElementSchema(
        {
            "filterByTags": "",
            "customTags": "",
            "serverVariable": "",
            "pattern": "",
            "ignoreCase": True,
            "negate": False,
        }
    ),
    "action": ElementSchema({"type": "None", "value": "", "replace": True}),
}
# Enum attributes: IIS stores an enum by its name, whether it was written by name (any case) or number.
ENUMS: dict[str, dict[int, str]] = {
    "patternSyntax": {0: "ECMAScript", 1: "Wildcard", 2: "ExactMatch"},
    "logicalGrouping": {0: "MatchAll", 1: "MatchAny"},
    "matchType": {0: "Pattern", 1: "IsFile", 2: "IsDirectory"},
    "type": {0: "None", 1: "Rewrite", 2: "Redirect", 3: "CustomResponse", 4: "AbortRequest"},
    "redirectType": {301: "Permanent", 302: "Found", 303: "SeeOther", 307: "Temporary"},
}
_UNKNOWN = ElementSchema()
_CANONICAL = {tag.lower(): tag for table in (_INBOUND, _OUTBOUND) for tag in table}
_DEFAULTS = [d for table in (_INBOUND, _OUTBOUND) for s in table.values() for d in s.attributes.items()]
BOOL_ATTRS = frozenset(name for name, default in _DEFAULTS if isinstance(default, bool))
INT_ATTRS = frozenset(
    name for name, default in _DEFAULTS if isinstance(default, int) and not isinstance(default, bool)
)


def canonical(tag: str) -> str:
    """A filter step's element name as the schema spells it (IIS matches them case-insensitively)."""
    return _CANONICAL.get(tag.lower(), tag)


def schema_of(tag: str, outbound: bool) -> ElementSchema:
    """The schema of an element; ``outbound`` when it lies under ``outboundRules``."""
    return (_OUTBOUND if outbound else _INBOUND).get(canonical(tag), _UNKNOWN)
