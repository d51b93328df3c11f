"""The platform's response envelope, request ids, task ids and time formats.

Success: ``{"ResponseMetadata": {...}, "Result": {...}}`` (Result omitted when the action has none). Error:
``{"ResponseMetadata": {..., "Error": {"Code", "CodeN", "Message"}}}`` with CodeN only where the shared code table
knows one (the platform says CodeN is "only provided by some APIs").

List times are RFC3339, in China Standard Time (``+08:00``, the Volcengine doc sample) or in UTC with ``Z`` (the
BytePlus samples), as the ``list_time`` quirk says; clients must accept both.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from relayd.emulator.errors import ApiError

VERSION = "2023-01-01"
SERVICE = "live"
CST = timezone(timedelta(hours=8))


def request_id(now: float, rng: random.Random) -> str:
    """``YYYYMMDDhhmmss`` (UTC) + 20 upper-case hex characters, like the platform's samples."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d%H%M%S")
    return f"{stamp}{rng.getrandbits(80):020X}"


def task_id(rng: random.Random) -> str:
    """32 lower-case hex characters."""
    return f"{rng.getrandbits(128):032x}"


def rfc3339(unix: float, *, utc: bool = False) -> str:
    """``2025-01-01T08:00:00+08:00``, or ``2025-01-01T00:00:00Z`` with ``utc``."""
    if utc:
        return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return datetime.fromtimestamp(unix, CST).isoformat()


def metadata(request_id_: str, action: str, version: str, region: str) -> dict[str, Any]:
    return {"RequestId": request_id_, "Action": action, "Version": version, "Service": SERVICE, "Region": region}


def success(meta: dict[str, Any], result: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"ResponseMetadata": meta}
    if result is not None:
        body["Result"] = result
    return body


def failure(meta: dict[str, Any], error: ApiError) -> dict[str, Any]:
    detail: dict[str, Any] = {"Code": error.code, "Message": error.message}
    if error.code_n is not None:
        detail["CodeN"] = error.code_n
    return {"ResponseMetadata": {**meta, "Error": detail}}
