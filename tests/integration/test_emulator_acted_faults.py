"""Faults that let the platform act and then answer badly (``acted``): the answers a client cannot tell from
"nothing happened", checked from both sides — what the emulator did and what relayd's client concluded."""

from __future__ import annotations

import time
from typing import Any

import pytest

from relayd.volc.errors import LiveError
from tests.integration.test_client_actions import client_for, live
from tests.integration.test_emulator_faults import admin

ANSWERS = [
    pytest.param({"answer": "error"}, "acted:error", 500, id="500-InternalError"),
    pytest.param({"answer": "error", "error_code": "InternalServiceTimeout"}, "acted:error", 504, id="504-timeout"),
    pytest.param({"answer": "html"}, "acted:html", 502, id="502-html"),
    pytest.param({"answer": "malformed"}, "acted:malformed", 200, id="200-malformed"),
]


@pytest.mark.parametrize(("fault", "code", "status"), ANSWERS)
async def test_acted_create_exists_although_the_answer_is_bad(
    emulator: Any, fault: dict[str, Any], code: str, status: int
) -> None:
    emu = await emulator(admin=True)
    emu.set_fault("CreatePullToPushTask", acted=True, count=1, **fault)
    async with client_for(emu, max_attempts=1) as client:
        with pytest.raises(LiveError) as caught:
            await client.create_task(live("rdacted"))
        # relayd's client must not take any of these answers as "the platform did nothing".
        assert not caught.value.surely_unprocessed, caught.value
        assert [t["Title"] for t in emu.tasks()] == ["rdacted"]  # … because the task was created
        journal = emu.requests()
        assert [(e["action"], e["code"], e["http_status"]) for e in journal] == [("CreatePullToPushTask", code, status)]
        second = await client.create_task(live("rdother"))  # the fault's count is spent: the next call is normal
    assert second and len(emu.tasks()) == 2


async def test_acted_delete_and_update_are_carried_out(emulator: Any) -> None:
    emu = await emulator(admin=True)
    async with client_for(emu, max_attempts=1) as client:
        task_id = await client.create_task(live("rdgone"))
        emu.set_fault("DeletePullToPushTask", acted=True, answer="html", count=1)
        with pytest.raises(LiveError):
            await client.delete_task(task_id)
    assert emu.tasks() == []
    assert [t["DeletedAt"] is not None for t in emu.history()] == [True]


async def test_acted_fault_through_the_admin_api(emulator: Any) -> None:
    emu = await emulator(admin=True)
    fault = {"action": "UpdatePullToPushTask", "acted": True, "answer": "malformed", "count": 2}
    status, listing = await admin(emu.url, "POST", "/faults", fault)
    assert status == 200
    assert listing["faults"] == [{**fault, "error_rate": None, "error_code": None, "latency_ms": 0.0, "hang": False}]
    status, body = await admin(emu.url, "POST", "/faults", {"action": "*", "acted": True, "answer": "teapot"})
    assert status == 400 and "teapot" in body["error"] and "malformed" in body["error"]
    status, body = await admin(emu.url, "POST", "/faults", {"action": "*", "acted": True, "hang": True})
    assert status == 400 and "hang" in body["error"]


async def test_an_acted_fault_on_a_refused_request_answers_the_refusal(emulator: Any) -> None:
    """The action runs first: when the platform refuses it, the caller gets that refusal, not the fault."""
    emu = await emulator(admin=True)
    emu.set_fault("CreatePullToPushTask", acted=True, answer="html", count=1)
    past = int(time.time()) - 7200
    async with client_for(emu, max_attempts=1) as client:
        with pytest.raises(LiveError) as caught:
            await client.call(
                "CreatePullToPushTask",
                body={"Title": "rdpast", "Type": 0, "StartTime": past, "EndTime": past + 60, "SrcAddr": "rtmp://a/b/c"},
                validate=False,
            )
    assert caught.value.outcome != "TransportError" and emu.tasks() == []
