"""configure_logging: JSON line shape, console on a TTY, stdlib routing, and secret redaction."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog

from relayd.logs import MASK, Redactor, configure_logging, is_secret_key

SECRET = "Zm9vYmFyLXNlY3JldC1rZXk"


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    aps_level = logging.getLogger("apscheduler").level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(aps_level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_have_timestamp_level_event_and_fields() -> None:
    out = io.StringIO()
    configure_logging("info", "json", out)
    structlog.get_logger("t").info("task_created", task_id="t-1", attempt=2)
    structlog.get_logger("t").debug("too_chatty")
    [record] = lines(out)
    assert list(record)[:3] == ["timestamp", "level", "event"]
    assert (record["level"], record["event"], record["task_id"], record["attempt"]) == (
        "info",
        "task_created",
        "t-1",
        2,
    )
    stamp = datetime.fromisoformat(record["timestamp"])
    assert stamp.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60


def test_auto_is_json_off_a_tty_and_console_on_one() -> None:
    plain, tty = io.StringIO(), FakeTty()
    configure_logging("info", "auto", plain)
    structlog.get_logger().info("hello", k="v")
    assert lines(plain)[0]["event"] == "hello"
    configure_logging("info", "auto", tty)
    structlog.get_logger().info("hello", k="v")
    text = tty.getvalue()
    assert "hello" in text
    assert "\x1b[" in text  # coloured on a TTY
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_reconfiguring_redirects_existing_loggers() -> None:
    log = structlog.get_logger("kept")
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", "json", first)
    log.info("one")
    configure_logging("warning", "json", second)
    log.info("two")
    log.warning("three")
    assert [r["event"] for r in lines(first)] == ["one"]
    assert [r["event"] for r in lines(second)] == ["three"]


@pytest.mark.parametrize(
    "key", ["secret_key", "access_key", "token", "api_token", "callback_secret", "Authorization", "sign", "password"]
)
def test_secret_named_keys_are_masked(key: str) -> None:
    out = io.StringIO()
    configure_logging("info", "json", out)
    structlog.get_logger().info("event_with_secret", **{key: "plain-value"}, task_id="t-9")
    [record] = lines(out)
    assert record[key] == MASK
    assert record["task_id"] == "t-9"
    assert "plain-value" not in out.getvalue()


def test_nested_secret_keys_are_masked() -> None:
    out = io.StringIO()
    configure_logging("info", "json", out)
    structlog.get_logger().info("request", headers={"Authorization": "HMAC-SHA256 Credential=x", "Host": "h"})
    [record] = lines(out)
    assert record["headers"] == {"Authorization": MASK, "Host": "h"}


def test_secret_strings_are_masked_anywhere() -> None:
    out = io.StringIO()
    configure_logging("info", "json", out, secrets=[SECRET])
    log = structlog.get_logger()
    log.warning("callback_failed", url=f"http://h/cb?mac={SECRET}&x=1", detail=["a", f"k={SECRET}"])
    try:
        raise RuntimeError(f"request failed with key {SECRET}")
    except RuntimeError:
        log.exception("api_error")
    assert SECRET not in out.getvalue()
    first, second = lines(out)
    assert first["url"] == f"http://h/cb?mac={MASK}&x=1"
    assert first["detail"] == ["a", f"k={MASK}"]
    [exc] = second["exception"]
    assert exc["exc_type"] == "RuntimeError"
    assert exc["exc_value"] == f"request failed with key {MASK}"
    assert exc["frames"]
    assert all("locals" not in frame for frame in exc["frames"])


def test_console_tracebacks_are_masked_too() -> None:
    out = FakeTty()
    configure_logging("info", "console", out, secrets=[SECRET])
    try:
        raise ValueError(SECRET)
    except ValueError:
        structlog.get_logger().exception("boom")
    text = out.getvalue()
    assert "ValueError" in text
    assert "Traceback" in text
    assert SECRET not in text


def test_stdlib_logging_uses_the_same_renderer_and_redaction() -> None:
    out = io.StringIO()
    configure_logging("info", "json", out, secrets=[SECRET])
    logging.getLogger("aiohttp.server").warning("bad request from %s with %s", "1.2.3.4", SECRET)
    [record] = lines(out)
    assert record["logger"] == "aiohttp.server"
    assert record["level"] == "warning"
    assert record["event"] == f"bad request from 1.2.3.4 with {MASK}"
    assert "timestamp" in record


def test_apscheduler_info_is_quiet_unless_debug() -> None:
    out = io.StringIO()
    configure_logging("info", "json", out)
    logging.getLogger("apscheduler.executors.default").info("Running job")
    logging.getLogger("apscheduler.scheduler").warning("Run time of job was missed")
    assert [r["event"] for r in lines(out)] == ["Run time of job was missed"]
    debug_out = io.StringIO()
    configure_logging("debug", "json", debug_out)
    logging.getLogger("apscheduler.executors.default").info("Running job")
    assert [r["event"] for r in lines(debug_out)] == ["Running job"]


def test_only_one_handler_is_installed_across_reconfigurations() -> None:
    before = len(logging.getLogger().handlers)
    for _ in range(3):
        configure_logging("info", "json", io.StringIO())
    assert len(logging.getLogger().handlers) == before + 1


def test_redactor_ignores_too_short_secrets() -> None:
    redactor = Redactor(["abc", SECRET])
    assert redactor.scrub("abcdef " + SECRET) == "abcdef " + MASK


@pytest.mark.parametrize(("key", "secret"), [("task_id", False), ("event", False), ("X-Signature", True)])
def test_is_secret_key(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret
