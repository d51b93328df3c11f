"""The signing credentials, re-read on a reload: a rotated or corrected key takes effect without a restart.

Why: a segment refused for a revoked or mistyped key is ``failed`` until its cause is gone; an operator who fixes
the key in the config file (or ``~/.volc/credentials``) and reloads (``systemctl reload relayd``, SIGHUP) expects the
daemon to use the new key at once, and a reload retries failed segments at once. Credentials given on the command
line (or by the program that built the settings) cannot change while the process runs; they are kept as they are.
A source that cannot be read now (a half-written file) keeps the credentials in use and says why.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from relayd.settings import OVERRIDE, Settings, SettingsError, load_settings
from relayd.volc.signer import Credentials

log = structlog.get_logger("relayd.credentials")

CREDENTIAL_KEYS = ("access_key", "secret_key", "session_token")
_COMPARED = ("access_key", "secret_key", "session_token", "region", "service")


def reread(settings: Settings) -> Credentials | None:
    """The credentials as their sources say now; None when they were given as overrides (nothing to re-read).

    Raises SettingsError when the sources cannot be read or no longer name both keys."""
    sources = settings.sources()
    if any(sources[key] == OVERRIDE for key in CREDENTIAL_KEYS):
        return None
    return load_settings(settings.config_file).credentials()


class CredentialRefresh:
    """Re-reads the credentials and hands changed ones to the client (``use``)."""

    def __init__(
        self,
        settings: Settings,
        current: Credentials,
        use: Callable[[Credentials], None],
        read: Callable[[Settings], Credentials | None] = reread,
    ) -> None:
        self._settings = settings
        self._current = current
        self._use = use
        self._read = read

    def refresh(self) -> bool:
        """Re-read; True when the credentials changed (and are now in use)."""
        try:
            fresh = self._read(self._settings)
        except SettingsError as e:
            log.error("credentials_reload_failed", problems=e.problems, note="the credentials in use are kept")
            return False
        if fresh is None or fresh == self._current:
            return False
        changed = [key for key in _COMPARED if getattr(fresh, key) != getattr(self._current, key)]
        self._current = fresh
        self._use(fresh)
        log.warning("credentials_reloaded", changed=changed)  # names only: never a key's value
        return True
