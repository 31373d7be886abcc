"""Where emconsole keeps its files, per platform (``platformdirs``: XDG on Linux, AppData on Windows).

One place so the config loader, the audit log and ``emconsole config path`` agree.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP_NAME = "emconsole"
CONFIG_ENV = "EMCONSOLE_CONFIG"
CONFIG_FILE_NAME = "config.toml"


def _dirs() -> platformdirs.PlatformDirs:
    # appauthor=False: no "<author>\<app>" nesting on Windows, just AppData\...\emconsole
    return platformdirs.PlatformDirs(APP_NAME, appauthor=False)


def user_config_dir() -> Path:
    """``~/.config/emconsole`` on Linux (honours ``XDG_CONFIG_HOME``)."""
    return Path(_dirs().user_config_dir)


def user_config_file() -> Path:
    """The config file looked for when neither ``--config`` nor ``$EMCONSOLE_CONFIG`` is given."""
    return user_config_dir() / CONFIG_FILE_NAME


def user_state_dir() -> Path:
    """``~/.local/state/emconsole`` on Linux: the audit log and other records that must persist."""
    return Path(_dirs().user_state_dir)


def user_log_dir() -> Path:
    """Logs that may be rotated or deleted (the command log)."""
    return Path(_dirs().user_log_dir)
