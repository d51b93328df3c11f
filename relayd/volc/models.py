"""Typed requests and responses of the pull-to-push actions.

Fields are snake_case in Python and the platform's PascalCase on the wire (``to_pascal`` plus explicit aliases
where the platform's spelling is irregular: ``CallbackURL``). Both names are accepted when building a model, so
``CreateTaskRequest(start_time=...)`` and ``CreateTaskRequest.model_validate({"StartTime": ...})`` both work.
:meth:`Request.body` gives the wire body (``by_alias=True, exclude_none=True``).

Requests forbid unknown fields (a typo must not be sent silently); responses ignore them and default every
missing optional field, because the platform's output has drifted between SDK generations (reference 3.2, Q2,
Q6). Times in list items are RFC3339 strings with ``Z`` or an offset; a string without an offset is read as
Beijing time (UTC+08:00, the offset of Volcengine's own samples), and bare unix seconds are accepted too.
The Chinese ``Status`` maps to :class:`TaskStatus`; the legacy int ``TaskStatus`` (0..3) is used when the string
is missing or unknown.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_pascal

from relayd.ids import GroupName, TaskId

BEIJING = timezone(timedelta(hours=8))
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SourceType(enum.IntEnum):
    LIVE = 0
    VOD = 1


class TaskStatus(enum.Enum):
    """A task's status as the platform's list reports it."""

    DISABLED = "停用"
    PENDING = "未开始"
    ACTIVE = "生效中"
    ENDED = "已结束"
    UNKNOWN = "unknown"

    @classmethod
    def _missing_(cls, value: object) -> TaskStatus:
        return cls.UNKNOWN

    @classmethod
    def from_int(cls, value: int) -> TaskStatus:
        """The legacy ``TaskStatus`` int: 0 停用, 1 未开始, 2 生效中, 3 已结束."""
        order = (cls.DISABLED, cls.PENDING, cls.ACTIVE, cls.ENDED)
        return order[value] if 0 <= value < len(order) else cls.UNKNOWN


_WIRE = ConfigDict(alias_generator=to_pascal, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)


class Request(BaseModel):
    model_config = ConfigDict(**_WIRE, extra="forbid")

    def body(self) -> dict[str, Any]:
        """The JSON body (or query) the platform expects."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Response(BaseModel):
    model_config = ConfigDict(**_WIRE, extra="ignore")


# --- tasks: requests ----------------------------------------------------------------------------------------


class VodSrcAddr(Request):
    src_addr: str
    start_offset: float | None = None
    end_offset: float | None = None


class Watermark(Request):
    picture: str
    ratio: float
    relative_pos_x: float
    relative_pos_y: float


class CreateTaskRequest(Request):
    """CreatePullToPushTask. The platform rules (relayd.volc.rules.check_task) run in the client before sending."""

    start_time: int
    end_time: int
    type: SourceType = SourceType.LIVE
    group_name: GroupName | None = None
    title: str | None = None
    callback_url: str | None = Field(default=None, alias="CallbackURL")
    cycle_mode: int | None = None
    play_times: int | None = None
    src_addr: str | None = None
    src_addr_s: list[str] | None = None
    offset_s: list[float] | None = None
    offset: float | None = None
    vod_src_addrs: list[VodSrcAddr] | None = None
    dst_addr: str | None = None
    domain: str | None = None
    app: str | None = None
    stream: str | None = None
    pre_download: int | None = None
    continue_strategy: int | None = None
    watermark: Watermark | None = None


class UpdateTaskRequest(CreateTaskRequest):
    """UpdatePullToPushTask: the Create fields plus TaskId. GroupName is only checked, never changed."""

    task_id: TaskId


class TaskRef(Request):
    """Delete / Stop / Continue / Relaunch / Restart."""

    task_id: TaskId
    group_name: GroupName | None = None


class ListTasksQuery(Request):
    """ListPullToPushTask (GET, query string)."""

    page: int | None = None
    size: int | None = None
    title: str | None = None
    group_name: GroupName | None = None


class ListTasksV2Request(Request):
    """ListPullToPushTaskV2 (POST body)."""

    group_names: list[GroupName] | None = None
    title: str | None = None
    page: int | None = None
    size: int | None = None


# --- tasks: responses ---------------------------------------------------------------------------------------


def parse_platform_time(value: Any) -> datetime:
    """An aware datetime from RFC3339 (``Z``, an offset, or none = UTC+08:00) or unix seconds."""
    if value is None or value == "":
        return EPOCH
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        parsed = (
            datetime.fromtimestamp(int(text), UTC)
            if text.isdigit()
            else datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
        )
    else:
        raise ValueError(f"not a time: {value!r}")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=BEIJING)


_NULLABLE_DEFAULTS = frozenset({"Title", "SrcAddr", "DstAddr", "CallbackURL", "SrcAddrS", "OffsetS", "VodSrcAddrs"})
_STATUS_VALUES = frozenset(s.value for s in TaskStatus if s is not TaskStatus.UNKNOWN)


class VodSrcAddrInfo(Response):
    src_addr: str = ""
    start_offset: float | None = None
    end_offset: float | None = None


class TaskItem(Response):
    """One task from ListPullToPushTask(V2). Missing fields default; unknown ones are ignored."""

    task_id: TaskId
    title: str = ""
    start_time: datetime = EPOCH
    end_time: datetime = EPOCH
    status: TaskStatus = TaskStatus.UNKNOWN
    task_status: int | None = None
    group_name: GroupName | None = None
    type: int = 0
    callback_url: str = Field(default="", alias="CallbackURL")
    cycle_mode: int | None = None
    play_times: int | None = None
    src_addr: str = ""
    src_addr_s: list[str] = Field(default_factory=list)
    offset_s: list[float] = Field(default_factory=list)
    vod_src_addrs: list[VodSrcAddrInfo] = Field(default_factory=list)
    dst_addr: str = ""
    dst_addr_type: int | None = None
    pre_download: int | None = None
    continue_strategy: int | None = None
    watermark: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _tolerate(cls, data: Any) -> Any:
        """One pass over the raw item (cheaper than a validator per field): nulls, times, the int status."""
        if not isinstance(data, dict):
            return data
        out = {k: v for k, v in data.items() if v is not None or k not in _NULLABLE_DEFAULTS}
        for key in ("StartTime", "EndTime"):
            if key in out:
                out[key] = parse_platform_time(out[key])
        status = out.get("Status")
        if status not in _STATUS_VALUES and isinstance(out.get("TaskStatus"), int):
            out["Status"] = TaskStatus.from_int(out["TaskStatus"])
        return out

    @property
    def start_ts(self) -> int:
        return int(self.start_time.timestamp())

    @property
    def end_ts(self) -> int:
        return int(self.end_time.timestamp())


class Pagination(Response):
    page_cur: int = 0
    page_size: int = 0
    page_total: int = 0
    total_count: int = 0


class TaskPage(Response):
    items: list[TaskItem] = Field(default_factory=list, alias="List")
    pagination: Pagination = Field(default_factory=Pagination)

    @field_validator("items", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        return [] if value is None else value


class CreateTaskResult(Response):
    task_id: TaskId


# --- groups -------------------------------------------------------------------------------------------------


class Tag(Request):
    key: str
    value: str = ""
    category: str | None = None


class CreateGroupRequest(Request):
    name: GroupName
    project_name: str = "default"
    tags: list[Tag] | None = None


class UpdateGroupRequest(Request):
    name: GroupName
    tags: list[Tag] | None = None


class GroupRef(Request):
    name: GroupName


class ListGroupsRequest(Request):
    page_num: int = 1
    page_size: int = 100
    status_list: list[int] | None = None


class TagInfo(Response):
    key: str = ""
    value: str = ""
    category: str = ""


class GroupItem(Response):
    name: GroupName
    project_name: str = ""
    status: int = 0
    tags: list[TagInfo] = Field(default_factory=list)

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Any:
        # The doc types Status as "Float"; accept 0.0 / 1.0.
        return int(value) if isinstance(value, float) else (0 if value is None else value)

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> Any:
        return [] if value is None else value


class GroupPage(Response):
    items: list[GroupItem] = Field(default_factory=list, alias="List")
    total: int = 0

    @field_validator("items", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        return [] if value is None else value
