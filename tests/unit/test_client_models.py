"""Typed models: wire names, tolerant list items (times, statuses, missing and extra fields), pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pydantic
import pytest

from relayd.volc.models import (
    CreateGroupRequest,
    CreateTaskRequest,
    GroupPage,
    ListGroupsRequest,
    Tag,
    TaskItem,
    TaskPage,
    TaskStatus,
    UpdateTaskRequest,
    VodSrcAddr,
    Watermark,
)


def test_request_bodies_use_the_platform_spelling() -> None:
    request = UpdateTaskRequest(
        task_id="t1",
        start_time=10,
        end_time=20,
        type=1,
        cycle_mode=-1,
        vod_src_addrs=[VodSrcAddr(src_addr="https://v/1.mp4", start_offset=65.0)],
        callback_url="http://cb",
        watermark=Watermark(picture="data:", ratio=0.1, relative_pos_x=0.1, relative_pos_y=0.2),
    )
    assert request.body() == {
        "TaskId": "t1",
        "StartTime": 10,
        "EndTime": 20,
        "Type": 1,
        "CycleMode": -1,
        "VodSrcAddrs": [{"SrcAddr": "https://v/1.mp4", "StartOffset": 65.0}],
        "CallbackURL": "http://cb",
        "Watermark": {"Picture": "data:", "Ratio": 0.1, "RelativePosX": 0.1, "RelativePosY": 0.2},
    }


def test_seed_bodies_validate_by_alias() -> None:
    body = {
        "Title": "task001",
        "StartTime": 1,
        "EndTime": 2,
        "Type": 0,
        "SrcAddrS": ["x"],
        "OffsetS": [30],
        "Offset": 30,
        "PlayTimes": 3,
        "Domain": "d",
        "App": "a",
        "Stream": "s",
        "PreDownload": 1,
    }
    assert CreateTaskRequest.model_validate(body).body() == body
    group = {
        "Name": "RelayGroup001",
        "ProjectName": "default",
        "Tags": [{"Key": "k", "Value": "v", "Category": "Custom"}],
    }
    assert CreateGroupRequest.model_validate(group).body() == group
    assert ListGroupsRequest.model_validate({"PageNum": 1, "PageSize": 10, "StatusList": []}).body() == {
        "PageNum": 1,
        "PageSize": 10,
        "StatusList": [],
    }
    assert Tag(key="k").body() == {"Key": "k", "Value": ""}


def test_requests_reject_unknown_fields() -> None:
    with pytest.raises(pydantic.ValidationError):
        CreateTaskRequest.model_validate({"StartTime": 1, "EndTime": 2, "StartTme": 3})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2022-04-01T00:00:00+08:00", datetime(2022, 3, 31, 16, tzinfo=UTC)),
        ("2022-04-01T00:00:00Z", datetime(2022, 4, 1, tzinfo=UTC)),
        ("2022-04-01T00:00:00.5Z", datetime(2022, 4, 1, 0, 0, 0, 500000, tzinfo=UTC)),
        ("2022-04-01T00:00:00", datetime(2022, 3, 31, 16, tzinfo=UTC)),  # no offset: Beijing time
        (1648771200, datetime(2022, 4, 1, tzinfo=UTC)),
        ("1648771200", datetime(2022, 4, 1, tzinfo=UTC)),
    ],
)
def test_item_times_are_aware(raw: object, expected: datetime) -> None:
    item = TaskItem.model_validate({"TaskId": "t", "StartTime": raw, "EndTime": raw})
    assert item.start_time == expected and item.start_time.tzinfo is not None
    assert item.start_ts == item.end_ts == int(expected.timestamp())


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"Status": "停用"}, TaskStatus.DISABLED),
        ({"Status": "未开始"}, TaskStatus.PENDING),
        ({"Status": "生效中", "TaskStatus": 0}, TaskStatus.ACTIVE),
        ({"Status": "已结束"}, TaskStatus.ENDED),
        ({"Status": "paused"}, TaskStatus.UNKNOWN),
        ({"TaskStatus": 2}, TaskStatus.ACTIVE),
        ({"Status": "", "TaskStatus": 3}, TaskStatus.ENDED),
        ({"TaskStatus": 9}, TaskStatus.UNKNOWN),
        ({}, TaskStatus.UNKNOWN),
    ],
)
def test_item_status(fields: dict[str, object], status: TaskStatus) -> None:
    assert TaskItem.model_validate({"TaskId": "t", **fields}).status is status


def test_item_tolerates_missing_null_and_extra_fields() -> None:
    item = TaskItem.model_validate(
        {"TaskId": "t", "Title": None, "SrcAddrS": None, "NewField": {"x": 1}, "DstAddrType": 2, "GroupName": "g"}
    )
    assert (item.title, item.src_addr_s, item.dst_addr_type, item.group_name) == ("", [], 2, "g")
    assert item.start_ts == 0


def test_pages_parse_platform_results() -> None:
    page = TaskPage.model_validate(
        {
            "List": [{"TaskId": "a", "StartTime": "2022-04-01T08:00:00+08:00"}],
            "Pagination": {"PageCur": 1, "PageSize": 20, "PageTotal": 3, "TotalCount": 41},
        }
    )
    assert [i.task_id for i in page.items] == ["a"] and page.pagination.total_count == 41
    assert page.items[0].start_time == datetime(2022, 4, 1, tzinfo=timezone(timedelta(0)))
    assert TaskPage.model_validate({"List": None}).items == []
    groups = GroupPage.model_validate({"Total": 1, "List": [{"Name": "g", "Status": 1.0, "Tags": None}]})
    assert groups.items[0].status == 1 and groups.items[0].tags == [] and groups.total == 1
