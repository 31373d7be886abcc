"""Placeholder package; filled by the issue that owns it."""
