"""Shared fixtures. Add yours below; keep imports cheap."""

from labfixture import lab_factory

__all__ = ["lab_factory"]
