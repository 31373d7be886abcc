"""One server's IIS: sites, applications, app pools and the URL Rewrite configuration.

Configuration is kept as XML elements per location (``""`` = applicationHost / server level,
``Default Web Site``, ``Default Web Site/owa``, ...), the way web.config and applicationHost.config
hold it, so filters such as ``system.webServer/rewrite/rules/rule[@name='X']`` resolve as IIS's
configuration XPath does (ElementTree supports the subset IIS filters use).
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from emconsole.backends.lab.pwsh.api import PSObject

FRONT_END = "Default Web Site"
BACK_END = "Exchange Back End"
_FE_APPS = {
    "owa": "DefaultAppPool",
    "ecp": "DefaultAppPool",
    "EWS": "DefaultAppPool",
    "Autodiscover": "DefaultAppPool",
    "Microsoft-Server-ActiveSync": "DefaultAppPool",
    "OAB": "DefaultAppPool",
    "PowerShell": "MSExchangePowerShellFrontEndAppPool",
    "mapi": "MSExchangeMapiFrontEndAppPool",
    "Rpc": "MSExchangeRpcProxyFrontEndAppPool",
    "API": "MSExchangeRestFrontEndAppPool",
}
_BE_APPS = {
    "owa": "MSExchangeOWAAppPool",
    "owa/Calendar": "MSExchangeOWACalendarAppPool",
    "ecp": "MSExchangeECPAppPool",
    "EWS": "MSExchangeServicesAppPool",
    "Autodiscover": "MSExchangeAutodiscoverAppPool",
    "Microsoft-Server-ActiveSync": "MSExchangeSyncAppPool",
    "OAB": "MSExchangeOABAppPool",
    "PowerShell": "MSExchangePowerShellAppPool",
    "mapi/emsmdb": "MSExchangeMapiMailboxAppPool",
    "mapi/nspi": "MSExchangeMapiAddressBookAppPool",
    "Rpc": "MSExchangeRpcProxyAppPool",
    "API": "MSExchangeRestAppPool",
}
_COLLECTION_ITEM = {
    "rules": "rule",
    "globalRules": "rule",
    "outboundRules": "rule",
    "preConditions": "preCondition",
    "conditions": "add",
    "preCondition": "add",
}
_BOOL_ATTRS = {
    "stopProcessing",
    "enabled",
    "ignoreCase",
    "negate",
    "trackAllCaptures",
    "appendQueryString",
    "logRewrittenUrl",
    "replace",
}
_INT_ATTRS = {"statusCode", "subStatusCode", "win32Status"}
# Schema defaults IIS reports for attributes the XML leaves out.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "rule": {"name": "", "enabled": True, "patternSyntax": "ECMAScript", "stopProcessing": False},
    "preCondition": {"name": "", "logicalGrouping": "MatchAll", "patternSyntax": "ECMAScript"},
    "match": {"url": "", "ignoreCase": True, "negate": False},
    "conditions": {"logicalGrouping": "MatchAll", "trackAllCaptures": False},
    "add": {"input": "", "matchType": "Pattern", "pattern": "", "ignoreCase": True, "negate": False},
    "action": {
        "type": "None",
        "url": "",
        "appendQueryString": True,
        "logRewrittenUrl": False,
        "redirectType": "Permanent",
        "statusCode": 0,
        "subStatusCode": 0,
        "statusReason": "",
        "statusDescription": "",
    },
}
_OUTBOUND_DEFAULTS = {
    "match": {"serverVariable": "", "filterByTags": "", "pattern": "", "ignoreCase": True, "negate": False},
    "action": {"type": "None", "value": "", "replace": True},
}
CONFIG_ELEMENT = "Microsoft.IIs.PowerShell.Framework.ConfigurationElement"
CONFIG_ATTRIBUTE = "Microsoft.IIs.PowerShell.Framework.ConfigurationAttribute"
APPHOST = "MACHINE/WEBROOT/APPHOST"


class IISPathError(LookupError):
    """A PSPath that names no site or application."""


class IISTargetError(LookupError):
    """A filter that names nothing at an existing path."""


def typed(name: str, raw: str) -> Any:
    """An attribute value as the IIS provider returns it (bools and numbers typed)."""
    if name in _BOOL_ATTRS:
        return raw.lower() == "true"
    if name in _INT_ATTRS:
        try:
            return int(raw)
        except ValueError:
            return 0
    return raw


def attr_text(value: Any) -> str:
    """A PowerShell value written into the XML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


@dataclass
class IIS:
    """Sites, apps, pools and configuration of one server."""

    apps: dict[str, dict[str, str]] = field(
        default_factory=lambda: {FRONT_END: dict(_FE_APPS), BACK_END: dict(_BE_APPS)}
    )
    pools: dict[str, str] = field(default_factory=dict)
    config: dict[str, ET.Element] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for site_apps in self.apps.values():
            for pool in site_apps.values():
                self.pools.setdefault(pool, "Started")

    # -- paths ---------------------------------------------------------------------------------
    def location(self, pspath: str) -> str:
        """``IIS:\\Sites\\Default Web Site\\owa`` or ``MACHINE/WEBROOT/APPHOST/...`` as a location."""
        path = pspath.strip().replace("\\", "/")
        lowered = path.lower()
        if lowered.startswith("iis:"):
            rest = path[4:].strip("/")
            if not rest:
                return ""
            head, _, tail = rest.partition("/")
            if head.lower() != "sites" or not tail:
                raise IISPathError(pspath)
            path = tail
        elif lowered.startswith(APPHOST.lower()):
            path = path[len(APPHOST) :].strip("/")
            if not path:
                return ""  # server level (applicationHost.config), as on a real server
        else:
            raise IISPathError(pspath)
        site, _, app = path.partition("/")
        for known, site_apps in self.apps.items():
            if known.lower() != site.lower():
                continue
            if not app:
                return known
            for app_path in site_apps:
                if app_path.lower() == app.strip("/").lower():
                    return f"{known}/{app_path}"
        raise IISPathError(pspath)

    @staticmethod
    def pspath_of(location: str) -> str:
        return APPHOST if not location else f"{APPHOST}/{location}"

    def _root(self, location: str, create: bool) -> ET.Element:
        root = self.config.get(location)
        if root is None:
            root = ET.Element("configuration")
            if create:
                self.config[location] = root
        return root

    # -- reading -------------------------------------------------------------------------------
    def find(self, location: str, xfilter: str, create: bool = False) -> list[ET.Element]:
        """Elements a filter names at a location; sections are created on write (``create``)."""
        steps = [s for s in xfilter.strip().strip("/").split("/") if s]
        root = self._root(location, create)
        if create:
            node = root
            for step in steps:
                if "[" in step or step in ("rule", "preCondition", "add"):
                    break
                child = node.find(step)
                if child is None:
                    child = ET.SubElement(node, step)
                node = child
        found = root.findall("/".join(steps)) if steps else [root]
        if not found and steps and steps[-1] in _COLLECTION_ITEM and all("[" not in s for s in steps):
            return [ET.Element(steps[-1])]  # an empty section: IIS reports it with an empty collection
        return found

    def element_object(
        self, element: ET.Element, location: str, xfilter: str, outbound: bool = False
    ) -> PSObject:
        """A ConfigurationElement as Get-WebConfiguration returns it."""
        obj = PSObject(type_names=(CONFIG_ELEMENT, "System.Object"))
        defaults = dict(_DEFAULTS.get(element.tag, {}))
        if outbound:
            defaults.update(_OUTBOUND_DEFAULTS.get(element.tag, {}))
        for name, value in defaults.items():
            obj[name] = value
        for name, raw in element.attrib.items():
            obj[name] = typed(name, raw)
        is_out = outbound or element.tag == "outboundRules"
        for child in element:
            if child.tag not in (_COLLECTION_ITEM.get(element.tag),):
                obj[child.tag] = self.element_object(child, location, xfilter, is_out)
        item_tag = _COLLECTION_ITEM.get(element.tag)
        if item_tag:
            obj["Collection"] = [
                self.element_object(c, location, xfilter, is_out) for c in element.findall(item_tag)
            ]
        obj["ItemXPath"] = "/" + xfilter.strip("/")
        obj["PSPath"] = self.pspath_of(location)
        obj["Location"] = ""
        obj["ElementTagName"] = element.tag
        return obj

    # -- writing -------------------------------------------------------------------------------
    def remove(self, location: str, xfilter: str, at_element: dict[str, Any] | None) -> int:
        """Remove collection entries (``-Name . -AtElement @{name=...}``) or the elements a filter names."""
        removed = 0
        root = self._root(location, create=False)
        steps = xfilter.strip().strip("/")
        parent_map = {c: p for p in root.iter() for c in p}
        for element in root.findall(steps):
            if at_element is not None:
                for child in list(element):
                    if _matches(child, at_element):
                        element.remove(child)
                        removed += 1
            elif element in parent_map:
                parent_map[element].remove(element)
                removed += 1
        return removed

    def add(self, location: str, xfilter: str, value: dict[str, Any]) -> ET.Element:
        """Add a collection entry (``Add-WebConfigurationProperty -Name . -Value @{...}``)."""
        targets = self.find(location, xfilter, create=True)
        if not targets or targets[0] not in self._root(location, False).iter():
            raise IISTargetError(xfilter)
        collection = targets[0]
        item_tag = _COLLECTION_ITEM.get(collection.tag, "add")
        key = value.get("name")
        if key is not None and any(c.get("name") == str(key) for c in collection.findall(item_tag)):
            raise FileExistsError(
                f"Cannot add duplicate collection entry of type '{item_tag}' with unique key "
                f"attribute 'name' set to '{key}'"
            )
        return ET.SubElement(collection, item_tag, {k: attr_text(v) for k, v in value.items()})

    def set(
        self, location: str, xfilter: str, name: str, value: Any, at_element: dict[str, Any] | None
    ) -> None:
        """Set an attribute, a child element's attributes (hashtable) or a collection's entries (list)."""
        targets = self.find(location, xfilter, create=False)
        targets = [t for t in targets if t in self._root(location, False).iter()]
        if at_element is not None:
            targets = [c for t in targets for c in t if _matches(c, at_element)]
        parent_filter, _, last = xfilter.strip().rstrip("/").rpartition("/")
        if not targets and at_element is None and last in ("match", "action", "conditions"):
            # Schema-defined child elements of a rule always exist in IIS, even when not written out.
            targets = [_child(p, last) for p in self.find(location, parent_filter, create=False)]
        if not targets:
            raise IISTargetError(xfilter)
        for target in targets:
            if isinstance(value, dict) and name in ("match", "action", "conditions"):
                child = target.find(name)
                if child is None:
                    child = ET.SubElement(target, name)
                child.attrib.update({k: attr_text(v) for k, v in value.items()})
            elif isinstance(value, list) and name in _COLLECTION_ITEM:
                child = target.find(name)
                if child is None:
                    child = ET.SubElement(target, name)
                for old in child.findall(_COLLECTION_ITEM[name]):
                    child.remove(old)
                for item in value:
                    ET.SubElement(
                        child, _COLLECTION_ITEM[name], {k: attr_text(v) for k, v in dict(item).items()}
                    )
            else:
                target.set(name, attr_text(value))

    def merge_rewrite(self, location: str, fragment: str) -> list[str]:
        """Apply a catalogue ``<rewrite>`` fragment: add every rule and precondition not present.

        Returns the names added (a present rule of the same name is left as it is).
        """
        added: list[str] = []
        section = ET.fromstring(fragment)
        for collection in section:
            base = f"system.webServer/rewrite/{collection.tag}"
            for item in collection:
                if item.tag == "preConditions":
                    for pre in item:
                        if self._add_copy(location, f"{base}/preConditions", pre):
                            added.append(pre.get("name", ""))
                elif self._add_copy(location, base, item):
                    added.append(item.get("name", ""))
        return added

    def _add_copy(self, location: str, xfilter: str, item: ET.Element) -> bool:
        collection = self.find(location, xfilter, create=True)[0]
        if any(c.get("name") == item.get("name") for c in collection.findall(item.tag)):
            return False
        collection.append(copy.deepcopy(item))
        return True

    def rule_names(self, location: str, xfilter: str) -> list[str]:
        return [e.get("name", "") for e in self._root(location, False).findall(xfilter.strip("/"))]

    def applications(self, site: str) -> Iterable[tuple[str, str]]:
        for known, site_apps in self.apps.items():
            if known.lower() == site.lower():
                return list(site_apps.items())
        raise IISPathError(site)


def _matches(element: ET.Element, at_element: dict[str, Any]) -> bool:
    return all(element.get(str(k)) == attr_text(v) for k, v in at_element.items())


def _child(parent: ET.Element, tag: str) -> ET.Element:
    """The child element ``tag``, made empty when the file does not write it out (IIS schema default)."""
    found = parent.find(tag)
    return found if found is not None else ET.SubElement(parent, tag)
