"""Emulator action handlers on plain dicts: binding, rules, lists, groups; plus throttling, faults, payload."""

from __future__ import annotations

import hashlib
import random
from typing import Any

import pytest

from relayd.emulator import actions
from relayd.emulator.callbacks import payload
from relayd.emulator.errors import ApiError
from relayd.emulator.faults import Fault, FaultBook
from relayd.emulator.tasks import Event, Status
from relayd.emulator.throttling import Limiter

NOW = 1_800_000_000.0
LIVE = {"Type": 0, "SrcAddr": "rtmp://s/live/a", "DstAddr": "rtmp://d/live/b"}


def state(max_task_seconds: int = 604800) -> actions.State:
    return actions.State(max_task_seconds=max_task_seconds, rng=random.Random(1))


def call(st: actions.State, name: str, params: dict[str, Any], now: float = NOW) -> actions.Outcome:
    return actions.ACTIONS[name].handler(st, params, now)


def error(st: actions.State, name: str, params: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as info:
        call(st, name, params)
    return info.value


def create(st: actions.State, title: str = "a", group: str | None = None, start: int = 100) -> str:
    body = {**LIVE, "StartTime": int(NOW) + start, "EndTime": int(NOW) + start + 60, "Title": title}
    if group:
        body["GroupName"] = group
    result = call(st, "CreatePullToPushTask", body).result
    assert result is not None
    return str(result["TaskId"])


def test_invalid_param_names_every_problem() -> None:
    err = error(state(), "CreatePullToPushTask", {"Type": 0, "StartTime": int(NOW), "EndTime": int(NOW) - 5,
                                                   "Title": "bad title!"})  # fmt: skip
    assert (err.code, err.http_status) == ("InvalidParam", 400)
    for field in ("EndTime:", "Title:", "SrcAddr:", "DstAddr:"):
        assert field in err.message
    assert err.message.count("; ") == 3


def test_window_cap_is_configurable_and_end_must_be_future() -> None:
    st = state(max_task_seconds=10)
    body = {**LIVE, "StartTime": int(NOW), "EndTime": int(NOW) + 11}
    assert "limit is 10 s" in error(st, "CreatePullToPushTask", body).message
    body = {**LIVE, "StartTime": int(NOW) - 10, "EndTime": int(NOW)}
    assert "must be in the future" in error(st, "CreatePullToPushTask", body).message


def test_wrong_json_type_is_bind_error() -> None:
    err = error(state(), "CreatePullToPushTask", {**LIVE, "StartTime": "1", "EndTime": 2})
    assert err.code == "InvalidParam.BindError" and "StartTime" in err.message
    assert error(state(), "StopPullToPushTask", {"TaskId": 5}).code == "InvalidParam.BindError"


def test_vod_fields_on_a_live_task_are_accepted() -> None:
    st = state()
    body = {**LIVE, "StartTime": int(NOW) + 1, "EndTime": int(NOW) + 9, "SrcAddrS": ["https://v/x.mp4"],
            "VodSrcAddrs": [{"SrcAddr": "https://v/x.mp4"}], "OffsetS": [3.0]}  # fmt: skip
    assert call(st, "CreatePullToPushTask", body).result


def test_unknown_task_and_group_mismatch() -> None:
    st = state()
    assert error(st, "StopPullToPushTask", {"TaskId": "f" * 32}).code == "ResourceNotFound"
    task_id = create(st)
    err = error(st, "StopPullToPushTask", {"TaskId": task_id, "GroupName": "other"})
    assert err.code == "InvalidParam" and "default" in err.message


def test_wrong_state_is_invalid_param_naming_status() -> None:
    st = state()
    task_id = create(st)
    err = error(st, "ContinuePullToPushTask", {"TaskId": task_id})
    assert err.code == "InvalidParam" and "未开始" in err.message


def test_list_paging_title_and_group_filters() -> None:
    st = state()
    call(st, "CreatePullToPushGroup", {"Name": "g1", "ProjectName": "default"})
    ids = [create(st, title=f"DocSpace{i}", group="g1" if i % 2 else None) for i in range(5)]
    create(st, title="other")
    page = call(st, "ListPullToPushTask", {"Title": "docspace", "Page": 2, "Size": 2}).result
    assert page is not None
    assert [i["TaskId"] for i in page["List"]] == ids[2:4]
    assert page["Pagination"] == {"PageCur": 2, "PageSize": 2, "PageTotal": 3, "TotalCount": 5}
    v1 = call(st, "ListPullToPushTask", {"GroupName": "g1"}).result
    v2 = call(st, "ListPullToPushTaskV2", {"GroupNames": ["g1"]}).result
    assert v1 is not None and v2 is not None
    assert [i["TaskId"] for i in v1["List"]] == [i["TaskId"] for i in v2["List"]] == ids[1::2]
    assert "Size" in error(st, "ListPullToPushTask", {"Size": 501}).message


def test_list_item_synthesises_dst_addr_from_domain_app_stream() -> None:
    st = state()
    body = {"Type": 0, "SrcAddr": "rtmp://s/a/b", "Domain": "push.example.com", "App": "live", "Stream": "s1",
            "StartTime": int(NOW) + 1, "EndTime": int(NOW) + 9}  # fmt: skip
    call(st, "CreatePullToPushTask", body)
    result = call(st, "ListPullToPushTaskV2", {}).result
    assert result is not None
    [item] = result["List"]
    assert (item["DstAddr"], item["DstAddrType"]) == ("rtmp://push.example.com/live/s1", 1)


def test_groups_lifecycle() -> None:
    st = state()
    assert error(st, "CreatePullToPushTask", {**LIVE, "StartTime": int(NOW) + 1, "EndTime": int(NOW) + 9,
                                               "GroupName": "nope"}).code == "ResourceNotFound"  # fmt: skip
    call(st, "CreatePullToPushGroup", {"Name": "g1", "ProjectName": "default", "Tags": [{"Key": "k", "Value": "v"}]})
    assert error(st, "CreatePullToPushGroup", {"Name": "g1", "ProjectName": "default"}).code == "InvalidParam"
    assert error(st, "CreatePullToPushGroup", {"Name": "bad-name", "ProjectName": "p"}).code == "InvalidParam"
    call(st, "UpdatePullToPushGroup", {"Name": "g1", "Tags": [{"Key": "k2", "Value": "v2", "Category": "Custom"}]})
    listed = call(st, "ListPullToPushGroup", {"PageNum": 1, "PageSize": 10}).result
    assert listed is not None and listed["Total"] == 2
    assert [g["Name"] for g in listed["List"]] == ["default", "g1"]
    assert listed["List"][1]["Tags"][0]["Key"] == "k2"
    assert error(st, "DeletePullToPushGroup", {"Name": "default"}).code == "InvalidParam"
    assert error(st, "UpdatePullToPushGroup", {"Name": "zz"}).code == "ResourceNotFound"
    call(st, "DeletePullToPushGroup", {"Name": "g1"})
    deleted = call(st, "ListPullToPushGroup", {"PageNum": 1, "PageSize": 10, "StatusList": [1]}).result
    assert deleted is not None and [(g["Name"], g["Status"]) for g in deleted["List"]] == [("g1", 1)]
    assert error(st, "DeletePullToPushGroup", {"Name": "g1"}).code == "ResourceNotFound"


def test_limiter_sliding_window_and_max_offered() -> None:
    limiter = Limiter({"write": 2, "list": 0})
    assert [limiter.admit("ak", "write", t) for t in (0.0, 0.1, 0.2, 0.9, 1.05, 1.11)] == [
        True, True, False, False, True, True,
    ]  # fmt: skip
    assert limiter.max_offered["write"] == 4
    assert all(limiter.admit("ak", "list", 0.0) for _ in range(100))
    assert limiter.admit("other", "write", 1.06)  # per access key


def test_fault_book_count_rate_and_specific_over_wildcard() -> None:
    book = FaultBook(random.Random(7))
    book.set(Fault("*", latency_ms=5))
    book.set(Fault("StopPullToPushTask", error_code="CommonErr", count=2))
    effects = [book.effect("StopPullToPushTask") for _ in range(3)]
    assert [e.error_code if e else None for e in effects] == ["CommonErr", "CommonErr", None]
    wildcard = book.effect("CreatePullToPushTask")
    assert wildcard is not None and wildcard.latency_s == 0.005 and wildcard.error_code is None
    book.set(Fault("ListPullToPushTask", error_rate=0.5))
    drawn = [book.effect("ListPullToPushTask") for _ in range(400)]
    errors = sum(1 for e in drawn if e and e.error_code == "InternalError")
    assert 150 < errors < 250


def test_callback_payload_and_sign() -> None:
    event = Event("e-1", "t" * 32, "title", "default", "http://cb", Status.ACTIVE, "start", 1000.7)
    body = payload(event, auth_key="secretkey", now=2000.2)
    assert body["t"] == 2600
    assert body["sign"] == hashlib.md5(b"secretkey2600").hexdigest()
    assert (body["Status"], body["TaskStatus"], body["Time"], body["EventId"]) == ("生效中", 2, 1000, "e-1")
    assert "sign" not in payload(event, auth_key=None, now=0)


def test_paging_through_ten_thousand_tasks_is_linear() -> None:
    st = state()
    for i in range(10_000):
        st.tasks.create(f"{i:032x}", {**LIVE, "StartTime": int(NOW) + 10, "EndTime": int(NOW) + 99, "Title": "x"},
                        "default", NOW)  # fmt: skip
    seen: list[str] = []
    for page in range(1, 21):
        result = call(st, "ListPullToPushTask", {"Page": page, "Size": 500}).result
        assert result is not None
        seen += [item["TaskId"] for item in result["List"]]
    assert len(seen) == len(set(seen)) == 10_000
    filtered = call(st, "ListPullToPushTaskV2", {"Title": "X", "Page": 20, "Size": 500}).result
    assert filtered is not None and filtered["Pagination"]["TotalCount"] == 10_000
