"""One server's IIS: sites, applications, app pools and the URL Rewrite configuration.

Configuration is kept as XML elements per location (``""`` = applicationHost.config / server level,
``Default Web Site``, ``Default Web Site/owa``, ...), the way web.config and applicationHost.config
hold it. Filters such as ``system.webServer/rewrite/rules/rule[@name='X']/match`` are resolved
through the schema (``iis_schema.py``), as IIS's configuration system does: element names match
case-insensitively, schema child elements exist even when the file leaves them out, and values are
written in their schema type's canonical text (``"True"`` is stored as ``true``).
"""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from emconsole.backends.lab.exchange.iis_schema import BOOL_ATTRS, ENUMS, INT_ATTRS, canonical, schema_of
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
CONFIG_ELEMENT = "Microsoft.IIs.PowerShell.Framework.ConfigurationElement"
CONFIG_ATTRIBUTE = "Microsoft.IIs.PowerShell.Framework.ConfigurationAttribute"
APPHOST = "MACHINE/WEBROOT/APPHOST"
_PREDICATE = re.compile(r"""@([\w.:-]+)\s*=\s*(?:'([^']*)'|"([^"]*)")""")
_PREDICATE_GLUE = re.compile(r"^(?:\s|\]|\[|\band\b)*$")


class IISPathError(LookupError):
    """A PSPath that names no site or application."""


class IISTargetError(LookupError):
    """A filter that names nothing at an existing path."""


Step = tuple[str, dict[str, str]]  # element name, attribute predicates ([@name='X'])


def typed(name: str, raw: str) -> Any:
    """An attribute value as the IIS provider returns it (bools and numbers typed)."""
    if name in BOOL_ATTRS:
        return raw.lower() == "true"
    if name in INT_ATTRS:
        try:
            return int(raw)
        except ValueError:
            return 0
    return raw


def attr_text(value: Any, name: str = "") -> str:
    """A PowerShell value as IIS writes it to the file: canonical text for bool, number and enum values."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = "" if value is None else str(value)
    if name in BOOL_ATTRS and text.strip().lower() in ("true", "false"):
        return text.strip().lower()
    if name in INT_ATTRS and text.strip().lstrip("+-").isdigit():
        return str(int(text))
    if name in ENUMS:
        names = ENUMS[name]
        key = text.strip()
        if key.isdigit() and int(key) in names:
            return names[int(key)]
        return next((n for n in names.values() if n.lower() == key.lower()), text)
    return text


@lru_cache(maxsize=1024)
def parse_filter(xfilter: str) -> tuple[Step, ...]:
    """``a/b/rule[@name='x/y']/match`` as steps; a ``/`` inside quotes or brackets does not split.

    Cached (scripts read the same few filters at every location): the steps are shared, read only.
    """
    steps: list[Step] = []
    buf: list[str] = []
    quote, depth = "", 0
    for char in xfilter.strip() + "/":
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"" and depth:
            quote = char
        elif char in "[]":
            depth += 1 if char == "[" else -1
        elif char == "/" and not depth:
            if "".join(buf).strip():
                steps.append(_step("".join(buf).strip()))
            buf = []
            continue
        buf.append(char)
    return tuple(steps)


@lru_cache(maxsize=1024)
def _pspath_parts(pspath: str) -> str | tuple[str, str, bool] | None:
    """What ``IIS.location`` reads from a PSPath before it looks at the sites: "" for the server level,
    (site, application path, whether one is named) lower-cased, or None when it names no site.
    Cached: a script resolves the same few paths again and again."""
    path = pspath.strip().replace("\\", "/")
    lowered = path.lower()
    if lowered.startswith("iis:"):
        rest = path[4:].strip("/")
        if not rest:
            return ""
        head, _, tail = rest.partition("/")
        if head.lower() != "sites" or not tail:
            return None
        path = tail
    elif lowered.rstrip("/") == APPHOST.lower():
        return ""
    elif lowered.startswith(APPHOST.lower() + "/"):
        path = path[len(APPHOST) :].strip("/")
    else:
        return None
    site, _, app = path.partition("/")
    return site.lower(), app.strip("/").lower(), bool(app)


def _walk(root: ET.Element, xfilter: str, create: bool) -> list[ET.Element]:
    """``IIS.find`` from a configuration root."""
    nodes = [root]
    outbound = False
    for name, where in parse_filter(xfilter):
        parent_outbound, outbound = outbound, outbound or name.lower() == "outboundrules"
        found: list[ET.Element] = []
        for node in nodes:
            hits = [c for c in _named(node, name) if _matches(c, where)]
            if not hits and not where:
                tag = canonical(name)
                if tag in schema_of(node.tag, parent_outbound).children:
                    hits = [ET.SubElement(node, tag) if create else ET.Element(tag)]
            found += hits
        nodes = found
    return nodes


@lru_cache(maxsize=1024)
def _finds_nothing_unwritten(xfilter: str) -> bool:
    """Whether ``IIS.find`` gives nothing at a location whose configuration has nothing written
    (that depends on the filter and the schema only; most locations a status script reads are such)."""
    return not _walk(ET.Element("configuration"), xfilter, False)


def _step(text: str) -> Step:
    name, bracket, rest = text.partition("[")
    where: dict[str, str] = {}
    if bracket:
        rest = bracket + rest
        for found in _PREDICATE.finditer(rest):
            where[found.group(1)] = found.group(2) if found.group(2) is not None else found.group(3)
        if not _PREDICATE_GLUE.match(_PREDICATE.sub("", rest)):
            raise IISTargetError(text)  # IIS filters compare attributes only ([@a='x' and @b='y'])
    return name.strip(), where


def _matches(element: ET.Element, where: dict[str, Any]) -> bool:
    return all(element.get(str(k)) == attr_text(v, str(k)) for k, v in where.items())


def _named(element: ET.Element, tag: str) -> list[ET.Element]:
    lowered = tag.lower()
    return [c for c in element if c.tag.lower() == lowered]


@dataclass
class IIS:
    """Sites, apps, pools and configuration of one server."""

    apps: dict[str, dict[str, str]] = field(
        default_factory=lambda: {FRONT_END: dict(_FE_APPS), BACK_END: dict(_BE_APPS)}
    )
    pools: dict[str, str] = field(default_factory=dict)
    config: dict[str, ET.Element] = field(default_factory=dict)
    #: id(one of ``apps``' dictionaries) -> (its paths, ``_app_paths``' index of them)
    _app_index: dict[int, tuple[tuple[str, ...], dict[str, str]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for site_apps in self.apps.values():
            for pool in site_apps.values():
                self.pools.setdefault(pool, "Started")

    # -- paths ---------------------------------------------------------------------------------
    def location(self, pspath: str) -> str:
        """``IIS:\\Sites\\Default Web Site\\owa`` or ``MACHINE/WEBROOT/APPHOST/...`` as a location.

        ``IIS:\\`` and ``MACHINE/WEBROOT/APPHOST`` itself are the server level (applicationHost.config).
        Site and application names compare without case; the first site, then application, in order
        that matches is the one meant.
        """
        parts = _pspath_parts(pspath)
        if parts is None:
            raise IISPathError(pspath)
        if isinstance(parts, str):
            return parts
        site_key, app_key, has_app = parts
        for known, site_apps in self.apps.items():
            if known.lower() != site_key:
                continue
            if not has_app:
                return known
            app_path = self._app_paths(site_apps).get(app_key)
            if app_path is not None:
                return f"{known}/{app_path}"
        raise IISPathError(pspath)

    def _app_paths(self, site_apps: dict[str, str]) -> dict[str, str]:
        """A site's application paths by lower-cased path (the first of any that differ only in case).

        Get-WebConfiguration resolves ~75 paths per status script; the index is kept while the site's
        application paths are the same ones in the same order (``apps`` may be changed at any time).
        """
        paths = tuple(site_apps)
        known = self._app_index.get(id(site_apps))
        if known is None or known[0] != paths:
            index: dict[str, str] = {}
            for app_path in paths:
                index.setdefault(app_path.lower(), app_path)
            if len(self._app_index) >= 16:  # dictionaries replaced over and over: keep it small
                self._app_index.clear()
            known = self._app_index[id(site_apps)] = (paths, index)
        return known[1]

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
        """The elements a filter names at a location.

        A schema child element or section the file leaves out reads as an empty element with its
        defaults (a detached one, when ``create`` is False) and is written into the file when
        ``create`` is True — as IIS creates it on the first write. Collection entries
        (``rule[@name='X']``) are never made up: an unmatched entry gives no element.
        """
        if not create and location not in self.config and _finds_nothing_unwritten(xfilter):
            return []
        return _walk(self._root(location, create), xfilter, create)

    def element_object(self, element: ET.Element, location: str, xfilter: str) -> PSObject:
        """A ConfigurationElement as Get-WebConfiguration returns it: every schema attribute and child."""
        outbound = any(name.lower() == "outboundrules" for name, _ in parse_filter(xfilter))
        return self._element_object(element, location, "/" + xfilter.strip().strip("/"), outbound)

    def _element_object(self, element: ET.Element, location: str, xpath: str, outbound: bool) -> PSObject:
        schema = schema_of(element.tag, outbound)
        pairs = list(schema.attributes.items())  # every property in the order it is set
        pairs += [(name, typed(name, raw)) for name, raw in element.attrib.items()]
        children = list(schema.children) + [
            c.tag for c in element if c.tag != schema.item and c.tag not in schema.children
        ]
        for tag in dict.fromkeys(children):
            written = _named(element, tag)
            child = written[0] if written else ET.Element(tag)
            inner = self._element_object(
                child, location, f"{xpath}/{tag}", outbound or tag == "outboundRules"
            )
            pairs.append((tag, inner))
        if schema.item:
            items = [self._element_object(c, location, xpath, outbound) for c in _named(element, schema.item)]
            pairs.append(("Collection", items))
        pairs += [
            ("ItemXPath", xpath),
            ("PSPath", self.pspath_of(location)),
            ("Location", ""),
            ("ElementTagName", element.tag),
        ]
        props = dict(pairs)
        made = PSObject(props, type_names=(CONFIG_ELEMENT, "System.Object"))
        if len(made.properties()) == len(props):  # no two names differ only in case: the one-pass object
            return made
        made = PSObject(type_names=(CONFIG_ELEMENT, "System.Object"))
        for name, value in pairs:  # as set one by one: a name's first spelling, its last value
            made[name] = value
        return made

    def effective(self, location: str) -> str:
        """The location's configuration as IIS reads it, as canonical XML text.

        Every modelled element carries all its schema attributes (defaults filled in) and its
        schema children, so two files IIS reads alike give the same text — a restore that writes
        defaults out explicitly reads back unchanged, while a changed value, entry or order shows.
        """
        return ET.canonicalize(ET.tostring(_filled(self._root(location, False), False), encoding="unicode"))

    # -- writing -------------------------------------------------------------------------------
    def remove(self, location: str, xfilter: str, at_element: dict[str, Any] | None) -> int:
        """Remove collection entries (``-Name . -AtElement @{name=...}``) or the elements a filter names."""
        removed = 0
        root = self._root(location, create=False)
        parent_map = {c: p for p in root.iter() for c in p}
        for element in self.find(location, xfilter):
            if at_element is not None:
                for child in list(element):
                    if _matches(child, at_element):
                        element.remove(child)
                        removed += 1
            elif element in parent_map:
                parent_map[element].remove(element)
                removed += 1
        return removed

    def _written(
        self, location: str, xfilter: str, at_element: dict[str, Any] | None = None
    ) -> list[ET.Element]:
        """What a write addresses, created in the file as IIS does; IISTargetError when nothing matches."""

        def targets(create: bool) -> list[ET.Element]:
            found = self.find(location, xfilter, create)
            if at_element is None:
                return found
            return [c for t in found for c in t if _matches(c, at_element)]

        if not targets(False):
            raise IISTargetError(xfilter)
        return targets(True)

    def add(self, location: str, xfilter: str, value: dict[str, Any]) -> ET.Element:
        """Add a collection entry (``Add-WebConfigurationProperty -Name . -Value @{...}``)."""
        collection = self._written(location, xfilter)[0]
        item_tag = schema_of(collection.tag, False).item or "add"
        key = value.get("name")
        if key is not None and any(c.get("name") == str(key) for c in _named(collection, item_tag)):
            raise FileExistsError(
                f"Cannot add duplicate collection entry of type '{item_tag}' with unique key "
                f"attribute 'name' set to '{key}'"
            )
        return ET.SubElement(collection, item_tag, {k: attr_text(v, k) for k, v in value.items()})

    def set(
        self, location: str, xfilter: str, name: str, value: Any, at_element: dict[str, Any] | None
    ) -> None:
        """Set an attribute, or (hashtable / array value) a child element's attributes or a collection's
        entries; ``-Name .`` is the addressed element itself (a collection's entries are replaced)."""
        for target in self._written(location, xfilter, at_element):
            if not isinstance(value, (dict, list)):
                target.set(name, attr_text(value, name))
                continue
            element = target if name == "." else self.find_child(target, name)
            item_tag = schema_of(element.tag, False).item
            if item_tag:  # a collection: the value replaces its entries
                for old in _named(element, item_tag):
                    element.remove(old)
                for item in value if isinstance(value, list) else [value]:
                    ET.SubElement(element, item_tag, {k: attr_text(v, k) for k, v in dict(item).items()})
            elif isinstance(value, dict):
                element.attrib.update({k: attr_text(v, k) for k, v in value.items()})
            else:
                raise IISTargetError(f"{xfilter}/{name}")

    @staticmethod
    def find_child(parent: ET.Element, name: str) -> ET.Element:
        """A child element by name, created in the file when it is not written yet."""
        written = _named(parent, name)
        return written[0] if written else ET.SubElement(parent, canonical(name))

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
        if any(c.get("name") == item.get("name") for c in _named(collection, item.tag)):
            return False
        collection.append(copy.deepcopy(item))
        return True

    def rule_names(self, location: str, xfilter: str) -> list[str]:
        return [e.get("name", "") for e in self.find(location, xfilter)]

    def applications(self, site: str) -> Iterable[tuple[str, str]]:
        for known, site_apps in self.apps.items():
            if known.lower() == site.lower():
                return list(site_apps.items())
        raise IISPathError(site)


def _filled(element: ET.Element, outbound: bool) -> ET.Element:
    """A copy of ``element`` with every schema attribute and child written out (see ``IIS.effective``)."""
    schema = schema_of(element.tag, outbound)
    out = ET.Element(element.tag, {k: attr_text(v, k) for k, v in schema.attributes.items()})
    out.attrib.update({k: attr_text(typed(k, v), k) for k, v in element.attrib.items()})
    for tag in schema.children:  # in schema order, whatever order the file writes them in
        written = _named(element, tag)
        out.append(_filled(written[0] if written else ET.Element(tag), outbound or tag == "outboundRules"))
    for child in element:  # collection entries (their order matters) and elements outside the schema
        if child.tag not in schema.children:
            out.append(_filled(child, outbound))
    return out
