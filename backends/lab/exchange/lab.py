"""Plug the Exchange organisation into the wire's fleet: one org, one ExchangeHost, every server."""

from __future__ import annotations

from emconsole.backends.lab.exchange.builder import build_org
from emconsole.backends.lab.exchange.host import ExchangeHost
from emconsole.backends.lab.exchange.org import Organisation
from emconsole.backends.lab.exchange.spec import from_lab_spec
from emconsole.backends.lab.host import PowerShellHost
from emconsole.backends.lab.spec import LabSpec, ServerSpec


class ExchangeHostFactory:
    """``LabFleet(spec, host_factory=ExchangeHostFactory(spec))``; ``.org`` is the organisation (tests)."""

    def __init__(self, spec: LabSpec) -> None:
        self.org: Organisation = build_org(from_lab_spec(spec, spec.server_specs(first_port=1)))
        self.host = ExchangeHost(self.org)

    def __call__(self, server: ServerSpec) -> PowerShellHost:
        return self.host
