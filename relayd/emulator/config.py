"""The emulator's settings: raw values only, no runtime objects.

Defaults are the emulator's own throwaway keys (``AKLTemulator`` / ``emulator-secret``) and the platform's
documented limits: a 7-day task window, 10 write and 15 list requests per second per account, a 15-minute X-Date
tolerance, and the generic Live callback retry rule (3 retries, 3 s apart, 4 s timeout).

Platform behaviour that the reference leaves open is chosen by ``profile`` (``lenient``, ``strict``, ``byteplus``)
plus ``quirks`` overrides (``{"destination": "exclusive"}`` or a whole :class:`~relayd.emulator.quirks.Quirks`);
see :mod:`relayd.emulator.quirks`. The signing region is a quirk too (BytePlus signs with ``ap-singapore-1``).

Three clocks, because they answer different questions:

* ``clock`` drives task status (未开始 -> 生效中 -> 已结束) and history; tests may inject a fake one.
* ``wall_clock`` checks X-Date freshness and stamps RequestIds: requesters sign with their real clock, so a test
  that shifts ``clock`` to simulate days passing still gets its signatures accepted.
* ``monotonic`` paces the QPS windows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from relayd.emulator.quirks import Quirks, resolve

DEFAULT_ACCESS_KEY = "AKLTemulator"
DEFAULT_SECRET_KEY = "emulator-secret"  # noqa: S105 - a throwaway key of the local emulator, printed on purpose


@dataclass
class EmulatorConfig:
    """Everything an :class:`~relayd.emulator.server.Emulator` can be told. Every field has a safe default."""

    access_key: str = DEFAULT_ACCESS_KEY
    secret_key: str = field(default=DEFAULT_SECRET_KEY, repr=False)
    profile: str = "lenient"
    quirks: Quirks | Mapping[str, Any] | None = None
    max_task_seconds: int = 604800
    write_qps: int = 10
    list_qps: int = 15
    verify_signatures: bool = True
    admin: bool = False
    callback_auth_key: str | None = field(default=None, repr=False)
    callback_retries: int = 3
    callback_retry_delay_s: float = 3.0
    callback_timeout_s: float = 4.0
    x_date_tolerance_s: float = 900
    seed: int | None = None
    playback_segment_s: float = 1.0
    playback_window: int = 3
    clock: Callable[[], float] = time.time
    wall_clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic

    def resolved_quirks(self) -> Quirks:
        """The quirks this configuration asks for (raises QuirkError naming the valid choices on a typo)."""
        if isinstance(self.quirks, Quirks):
            return self.quirks
        return resolve(self.profile, self.quirks)
