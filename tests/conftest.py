"""Shared fixtures. Add yours below; keep imports cheap."""

from cliharness import cli_lab
from labfixture import lab_factory

__all__ = ["cli_lab", "lab_factory"]
