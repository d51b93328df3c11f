"""The signed platform client as the settings configure it: one mapping of settings to client options.

The daemon (with its session, metrics observer and leadership write gate), the platform CLI (with its quiet or
verbose logger) and the tests all build the same client; written once, a new client setting cannot reach one of
them and not the others.
"""

from __future__ import annotations

from typing import Any

from relayd.settings import Settings
from relayd.volc.client import LiveClient
from relayd.volc.signer import Credentials


def live_client(settings: Settings, credentials: Credentials | None = None, **extra: Any) -> LiveClient:
    """A LiveClient for ``settings`` (credentials from them unless given); ``extra`` passes the caller's own parts
    (``session``, ``observer``, ``instance_id``, ``write_gate``, ``logger``, ``backoff``…)."""
    return LiveClient(
        settings.endpoint,
        credentials if credentials is not None else settings.credentials(),
        write_qps=settings.write_qps,
        list_qps=settings.list_qps,
        create_update_qps=settings.create_update_qps,
        timeout_s=settings.api_timeout,
        max_attempts=settings.api_max_attempts,
        deadline_s=settings.api_deadline,
        **extra,
    )
