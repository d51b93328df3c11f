"""A Volcengine Live pull-to-push API emulator: signed requests, the platform's rules and errors, a status clock,
QPS limits, status callbacks, fault injection and a relaying history. See docs/emulator.md.

Public API: :class:`Emulator`, :class:`EmulatorConfig`, the quirk set (:class:`Quirks`, :class:`Profile`,
:class:`QuirkError`) and :func:`playback_url`. Everything else in this package is internal.
The emulator imports only :mod:`relayd.volc.signer`, :mod:`relayd.volc.codes`, :mod:`relayd.volc.rules` and
:mod:`relayd.ids` from relayd (import-linter enforces it).
"""

from __future__ import annotations

from relayd.emulator.config import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, EmulatorConfig
from relayd.emulator.playback import playback_url
from relayd.emulator.quirks import Profile, QuirkError, Quirks
from relayd.emulator.server import Emulator

__all__ = [
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_SECRET_KEY",
    "Emulator",
    "EmulatorConfig",
    "Profile",
    "QuirkError",
    "Quirks",
    "playback_url",
]
