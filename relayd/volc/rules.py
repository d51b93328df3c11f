"""The platform's documented field rules for pull-to-push requests, as pure checks over request bodies.

The client runs them before sending (so an operator sees "Title: ..." instead of a round trip), and the
emulator runs the very same checks to answer InvalidParam like the platform. Each check returns a list of
:class:`Problem` naming the field and the rule; an empty list means valid.

Facts are from the API reference, section 2. Where it marks a limit as inferred or conflicting, the value chosen
is the stricter documented one (CallbackURL 512, 30 VOD addresses, Title 20) and the module says so.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

MAX_TASK_SECONDS = 7 * 24 * 3600
MAX_ADDR_LEN = 1000
MAX_VOD_ADDRS = 30
MAX_CALLBACK_URL_LEN = 512  # current docs; the legacy SDK said 2000 (reference Q7)
MAX_LIST_SIZE = 500
MAX_GROUP_PAGE = 1000
WATERMARK_MIN_BYTES = 100
WATERMARK_MAX_BYTES = 2 * 1024 * 1024
WATERMARK_MAX_PIXELS = 1080
ADDR_SCHEMES = ("http", "https", "rtmp", "rtmps", "srt", "rtsp")

_NAME_RE = re.compile(r"^[A-Za-z0-9\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{1,20}$")
_DATA_URL_RE = re.compile(r"^data:image/(png|jpg|jpeg);base64,(.+)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule: the field path (``Watermark.Ratio``, ``VodSrcAddrs[2].SrcAddr``) and what is wrong."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def is_valid_name(value: str) -> bool:
    """Title and group-name charset: Chinese characters, ASCII letters and digits, 1-20 characters."""
    return bool(_NAME_RE.match(value))


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_address(field: str, value: Any, *, required: bool = True) -> list[Problem]:
    """A pull or push URL: a non-empty ASCII string, a supported scheme, at most 1000 characters."""
    if value is None or value == "":
        return [Problem(field, "is required")] if required else []
    if not isinstance(value, str):
        return [Problem(field, f"must be a string, got {type(value).__name__}")]
    if len(value) > MAX_ADDR_LEN:
        return [Problem(field, f"is {len(value)} characters long; the limit is {MAX_ADDR_LEN}")]
    if not value.isascii():
        return [Problem(field, "must not contain multibyte characters; percent-encode them")]
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme not in ADDR_SCHEMES:
        allowed = ", ".join(ADDR_SCHEMES)
        return [Problem(field, f"must be a URL with one of the schemes {allowed} (got {value[:60]!r})")]
    return []


# --- images -------------------------------------------------------------------------------------------------


def image_size(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) of a PNG or JPEG, read from its header; None if neither."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return "png", width, height
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_size(data: bytes) -> tuple[str, int, int] | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _SOF_MARKERS and pos + 9 <= len(data):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return "jpeg", width, height
        pos += 2 + length
    return None


def check_image_bytes(field: str, data: bytes) -> list[Problem]:
    """The watermark image rules: PNG or JPEG, 100 B to 2 MB, at most 1080x1080."""
    if not WATERMARK_MIN_BYTES <= len(data) <= WATERMARK_MAX_BYTES:
        return [Problem(field, f"image is {len(data)} bytes; it must be 100 B to 2 MB")]
    size = image_size(data)
    if size is None:
        return [Problem(field, "image is neither PNG nor JPEG")]
    _, width, height = size
    if width > WATERMARK_MAX_PIXELS or height > WATERMARK_MAX_PIXELS:
        return [Problem(field, f"image is {width}x{height}; the limit is 1080x1080")]
    return []


def picture_data_url(data: bytes) -> str:
    """The ``data:image/...;base64,`` form the platform wants for Watermark.Picture."""
    size = image_size(data)
    kind = "png" if size is None or size[0] == "png" else "jpeg"
    return f"data:image/{kind};base64,{base64.b64encode(data).decode()}"


def check_picture(field: str, value: Any) -> list[Problem]:
    if not isinstance(value, str) or not value:
        return [Problem(field, "is required: a data:image/<png|jpg|jpeg>;base64,<data> URL")]
    match = _DATA_URL_RE.match(value)
    if match is None:
        return [Problem(field, "must be a data:image/<png|jpg|jpeg>;base64,<data> URL")]
    try:
        data = base64.b64decode(match[2], validate=True)
    except (binascii.Error, ValueError):
        return [Problem(field, "is not valid base64")]
    return check_image_bytes(field, data)


def check_watermark(value: Any) -> list[Problem]:
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [Problem("Watermark", "must be an object")]
    problems = check_picture("Watermark.Picture", value.get("Picture"))
    ratio = value.get("Ratio")
    if not (_is_number(ratio) and 0 < ratio <= 1):
        problems.append(Problem("Watermark.Ratio", f"must be a number in (0, 1] (got {ratio!r})"))
    for axis in ("RelativePosX", "RelativePosY"):
        pos = value.get(axis)
        if not (_is_number(pos) and 0 <= pos < 1):
            problems.append(Problem(f"Watermark.{axis}", f"must be a number in [0, 1) (got {pos!r})"))
    return problems


# --- tasks --------------------------------------------------------------------------------------------------


def check_window(body: Mapping[str, Any], *, now: int, max_task_seconds: int) -> list[Problem]:
    """StartTime/EndTime: integers, end after start, at most the cap apart, end in the future."""
    start, end = body.get("StartTime"), body.get("EndTime")
    problems = [
        Problem(name, "is required: unix seconds") if value is None else Problem(name, "must be an integer")
        for name, value in (("StartTime", start), ("EndTime", end))
        if not _is_int(value)
    ]
    if problems or not (_is_int(start) and _is_int(end)):
        return problems
    if end <= start:
        return [Problem("EndTime", f"must be after StartTime ({end} <= {start})")]
    if end - start > max_task_seconds:
        return [Problem("EndTime", f"window is {end - start} s; the limit is {max_task_seconds} s (7 days)")]
    if end <= now:
        return [Problem("EndTime", f"must be in the future ({end} <= now {now})")]
    return []


def check_title(value: Any) -> list[Problem]:
    if value is None or value == "":
        return []
    if not isinstance(value, str) or not is_valid_name(value):
        return [Problem("Title", f"must be 1-20 Chinese characters, letters or digits (got {value!r})")]
    return []


def _check_vod_items(items: Any) -> list[Problem]:
    if not isinstance(items, Sequence) or isinstance(items, str) or not items:
        return [Problem("VodSrcAddrs", "must be a non-empty list of {SrcAddr, StartOffset, EndOffset}")]
    if len(items) > MAX_VOD_ADDRS:
        return [Problem("VodSrcAddrs", f"has {len(items)} entries; the limit is {MAX_VOD_ADDRS}")]
    problems: list[Problem] = []
    for i, item in enumerate(items):
        field = f"VodSrcAddrs[{i}]"
        if not isinstance(item, Mapping):
            problems.append(Problem(field, "must be an object"))
            continue
        problems += check_address(f"{field}.SrcAddr", item.get("SrcAddr"))
        problems += _check_offsets(field, item.get("StartOffset"), item.get("EndOffset"))
    return problems


def _check_offsets(field: str, start: Any, end: Any) -> list[Problem]:
    problems = [
        Problem(f"{field}.{name}", f"must be a number >= 0 (got {value!r})")
        for name, value in (("StartOffset", start), ("EndOffset", end))
        if value is not None and not (_is_number(value) and value >= 0)
    ]
    if not problems and _is_number(start) and _is_number(end) and end <= start:
        problems.append(Problem(f"{field}.EndOffset", f"must be after StartOffset ({end} <= {start})"))
    return problems


def _check_src_list(body: Mapping[str, Any]) -> list[Problem]:
    addrs = body.get("SrcAddrS")
    if not isinstance(addrs, Sequence) or isinstance(addrs, str) or not addrs:
        return [Problem("SrcAddrS", "is required for Type 1 unless VodSrcAddrs is given")]
    if len(addrs) > MAX_VOD_ADDRS:
        return [Problem("SrcAddrS", f"has {len(addrs)} entries; the limit is {MAX_VOD_ADDRS}")]
    problems = [p for i, a in enumerate(addrs) for p in check_address(f"SrcAddrS[{i}]", a)]
    offsets = body.get("OffsetS")
    if offsets is not None and (not isinstance(offsets, Sequence) or len(offsets) != len(addrs)):
        problems.append(Problem("OffsetS", "must have one offset per SrcAddrS entry"))
    return problems


def check_source(body: Mapping[str, Any]) -> list[Problem]:
    """Type-dependent source fields."""
    kind = body.get("Type")
    if kind not in (0, 1) or isinstance(kind, bool):
        return [Problem("Type", f"must be 0 (live source) or 1 (VOD files) (got {kind!r})")]
    if kind == 0:
        return check_address("SrcAddr", body.get("SrcAddr"))
    problems: list[Problem] = []
    cycle = body.get("CycleMode")
    if not (_is_int(cycle) and cycle >= -1):
        problems.append(Problem("CycleMode", f"is required for Type 1: -1, 0 or a loop count (got {cycle!r})"))
    if body.get("VodSrcAddrs") is not None:
        if body.get("SrcAddrS") is not None or body.get("OffsetS") is not None:
            problems.append(Problem("VodSrcAddrs", "must not be combined with SrcAddrS or OffsetS"))
        return problems + _check_vod_items(body.get("VodSrcAddrs"))
    return problems + _check_src_list(body)


def check_destination(body: Mapping[str, Any]) -> list[Problem]:
    """DstAddr, or else all of Domain, App and Stream."""
    if body.get("DstAddr"):
        return check_address("DstAddr", body.get("DstAddr"))
    missing = [name for name in ("Domain", "App", "Stream") if not body.get(name)]
    if missing:
        return [Problem("DstAddr", f"is required unless Domain, App and Stream are all set (missing {missing})")]
    return []


def _check_options(body: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    for name in ("PreDownload", "ContinueStrategy"):
        value = body.get(name)
        if value is not None and value not in (0, 1):
            problems.append(Problem(name, f"must be 0 or 1 (got {value!r})"))
    plays = body.get("PlayTimes")
    if plays is not None and not (_is_int(plays) and plays >= 0):
        problems.append(Problem("PlayTimes", f"must be an integer >= 0 (got {plays!r})"))
    url = body.get("CallbackURL")
    if url:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            problems.append(Problem("CallbackURL", "must be an http:// or https:// URL"))
        elif len(url) > MAX_CALLBACK_URL_LEN:
            problems.append(Problem("CallbackURL", f"is {len(url)} characters; the limit is 512"))
    group = body.get("GroupName")
    if group not in (None, "") and (not isinstance(group, str) or not is_valid_name(group)):
        problems.append(Problem("GroupName", f"must be 1-20 Chinese characters, letters or digits ({group!r})"))
    return problems


def check_task(
    body: Mapping[str, Any], *, now: int, max_task_seconds: int = MAX_TASK_SECONDS, update: bool = False
) -> list[Problem]:
    """Every documented rule for a CreatePullToPushTask (or, with ``update``, UpdatePullToPushTask) body."""
    problems: list[Problem] = []
    if update and not (isinstance(body.get("TaskId"), str) and body.get("TaskId")):
        problems.append(Problem("TaskId", "is required"))
    problems += check_window(body, now=now, max_task_seconds=max_task_seconds)
    problems += check_title(body.get("Title"))
    problems += check_source(body)
    problems += check_destination(body)
    problems += _check_options(body)
    problems += check_watermark(body.get("Watermark"))
    return problems


def check_task_ref(body: Mapping[str, Any]) -> list[Problem]:
    """Delete/Stop/Continue/Relaunch/Restart: a TaskId, and an optional valid GroupName."""
    problems = [] if isinstance(body.get("TaskId"), str) and body.get("TaskId") else [Problem("TaskId", "is required")]
    return problems + _check_options({"GroupName": body.get("GroupName")})


def _check_page(field: str, value: Any, *, default_ok: bool, upper: int) -> list[Problem]:
    if value is None and default_ok:
        return []
    if not (_is_int(value) and 1 <= value <= upper):
        return [Problem(field, f"must be an integer in [1, {upper}] (got {value!r})")]
    return []


def check_task_list(query: Mapping[str, Any]) -> list[Problem]:
    """ListPullToPushTask / V2 paging: Page >= 1, Size in [1, 500]."""
    return _check_page("Page", query.get("Page"), default_ok=True, upper=2**31 - 1) + _check_page(
        "Size", query.get("Size"), default_ok=True, upper=MAX_LIST_SIZE
    )


# --- groups -------------------------------------------------------------------------------------------------


def check_group_name(value: Any) -> list[Problem]:
    if not isinstance(value, str) or not is_valid_name(value):
        return [Problem("Name", f"must be 1-20 Chinese characters, letters or digits (got {value!r})")]
    return []


def check_tags(tags: Any) -> list[Problem]:
    if tags is None:
        return []
    if not isinstance(tags, Sequence) or isinstance(tags, str):
        return [Problem("Tags", "must be a list of {Key, Value, Category}")]
    problems: list[Problem] = []
    for i, tag in enumerate(tags):
        if not isinstance(tag, Mapping) or not isinstance(tag.get("Key"), str) or not tag.get("Key"):
            problems.append(Problem(f"Tags[{i}].Key", "is required"))
        elif tag.get("Category") not in (None, "", "System", "Custom"):
            problems.append(Problem(f"Tags[{i}].Category", f"must be System or Custom ({tag.get('Category')!r})"))
    return problems


def check_group_create(body: Mapping[str, Any]) -> list[Problem]:
    problems = check_group_name(body.get("Name"))
    if not isinstance(body.get("ProjectName"), str) or not body.get("ProjectName"):
        problems.append(Problem("ProjectName", "is required (use 'default' for the default project)"))
    return problems + check_tags(body.get("Tags"))


def check_group_update(body: Mapping[str, Any]) -> list[Problem]:
    return check_group_name(body.get("Name")) + check_tags(body.get("Tags"))


def check_group_list(body: Mapping[str, Any]) -> list[Problem]:
    problems = _check_page("PageNum", body.get("PageNum"), default_ok=False, upper=MAX_GROUP_PAGE)
    problems += _check_page("PageSize", body.get("PageSize"), default_ok=False, upper=MAX_GROUP_PAGE)
    statuses = body.get("StatusList")
    if statuses is not None and (not isinstance(statuses, Sequence) or any(s not in (0, 1) for s in statuses)):
        problems.append(Problem("StatusList", "must be a list of 0 (usable) and 1 (deleted)"))
    return problems
