"""Turn a server's ``password_from`` into the password, at connect time only.

The value is never logged, printed or stored beyond this process's memory; errors say where the
password was looked for, never what was found. Results are cached per (``password_from``,
username) so a fleet sharing one account prompts once, and the cache is thread-safe because the
engine's worker threads connect in parallel.
"""

from __future__ import annotations

import getpass
import os
import threading
from collections.abc import Callable, Mapping


class CredentialError(Exception):
    """The password could not be obtained; the message says where it was looked for and how to fix it."""


def _from_env(name: str, environ: Mapping[str, str]) -> str:
    value = environ.get(name)
    if not value:
        raise CredentialError(f'environment variable {name} is unset (password_from = "env:{name}")')
    return value


def _from_keyring(service: str, username: str) -> str:
    try:
        import keyring
    except ImportError:
        raise CredentialError(
            f'password_from = "keyring:{service}" needs the keyring package: pip install "emconsole[keyring]"'
        ) from None
    try:
        value = keyring.get_password(service, username)
    except Exception as exc:  # any backend failure; only its type is shown, never its text
        reason = type(exc).__name__
        raise CredentialError(f"keyring service {service!r} could not be read ({reason})") from None
    if not value:
        raise CredentialError(f"keyring service {service!r} holds no password for {username!r}")
    return value


class PasswordSource:
    """Resolves ``password_from`` values; ``prompt`` is a hook so the UI can ask in its own way."""

    def __init__(
        self,
        prompt: Callable[[str], str] = getpass.getpass,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._prompt = prompt
        self._environ = os.environ if environ is None else environ
        self._cache: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def password(self, password_from: str, username: str, server: str = "") -> str:
        """The password for ``username`` as ``password_from`` says; raises ``CredentialError``."""
        key = (password_from, username)
        with self._lock:  # one prompt at a time; a second thread waits for the first answer
            cached = self._cache.get(key)
            if cached is not None:
                return cached
            value = self._resolve(password_from, username, server)
            self._cache[key] = value
            return value

    def _resolve(self, password_from: str, username: str, server: str) -> str:
        method, _, arg = password_from.partition(":")
        if method == "env" and arg:
            return _from_env(arg, self._environ)
        if method == "keyring" and arg:
            return _from_keyring(arg, username)
        if password_from == "prompt":
            where = f" on {server}" if server else ""
            value = self._prompt(f"Password for {username}{where}: ")
            if not value:
                raise CredentialError(f"no password entered for {username}")
            return value
        raise CredentialError('password_from must be "env:NAME", "keyring:SERVICE" or "prompt"')
