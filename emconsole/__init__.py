"""emconsole: a fleet console for the Exchange Emergency Mitigation service."""

__version__ = "0.1.0"
