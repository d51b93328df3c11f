"""Error mapping: every code of the API reference (sections 5.2, 5.3) read from a canned envelope, classified.

The expectations are written from the reference and the issue (throttling, 5xx, InternalError, CommonErr, ... retry;
InvalidParam*, signature/auth/permission, not found do not), not copied from relayd.volc.codes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from relayd.volc.client import parse_envelope
from relayd.volc.errors import (
    ApiError,
    DeadlineExceeded,
    ThrottledError,
    TransportError,
    ValidationError,
    api_error,
)
from relayd.volc.rules import Problem

# (code, CodeN or None, HTTP status, retryable)
REFERENCE = [
    ("CommonErr", None, 200, True),
    ("InvalidParam", None, 400, False),
    ("InvalidParam.BindError", None, 400, False),
    ("RequestForbidden", None, 403, False),
    ("RequestForbidden.AccountIDNotAllow", None, 403, False),
    ("ResourceNotFound", None, 404, False),
    ("MissingParameter", 100002, 400, False),
    ("MissingAuthenticationToken", 100003, 401, False),
    ("MissingRequestInfo", 100004, 400, False),
    ("MissingSignature", 100005, 401, False),
    ("InvalidTimestamp", 100006, 400, False),
    ("InvalidTimestamp", 100006, 403, False),
    ("ServiceNotFound", 100007, 404, False),
    ("InvalidActionOrVersion", 100008, 404, False),
    ("InvalidAccessKey", 100009, 401, False),
    ("SignatureDoesNotMatch", 100010, 401, False),
    ("LackPolicy", 100012, 403, False),
    ("AccessDenied", 100013, 403, False),
    ("InternalError", 100014, 500, True),
    ("InternalServiceTimeout", 100016, 504, True),
    ("FlowLimitExceeded", 100018, 429, True),
    ("ServiceUnavailableTemp", 100019, 503, True),
    ("MethodNotAllowed", 100020, 405, False),
    ("AccountFlowLimitExceeded", 100027, 429, True),
    ("InvalidAuthorization", None, 400, False),
    ("InvalidCredential", None, 400, False),
    ("InvalidSecretToken", None, 401, False),
]


def envelope(code: str, code_n: int | None, message: str = "boom", request_id: str = "20240101RID") -> bytes:
    error: dict[str, Any] = {"Code": code, "Message": message}
    if code_n is not None:
        error["CodeN"] = code_n
    meta = {"RequestId": request_id, "Action": "X", "Version": "2023-01-01", "Error": error}
    return json.dumps({"ResponseMetadata": meta}).encode()


@pytest.mark.parametrize(("code", "code_n", "status", "retryable"), REFERENCE)
def test_every_reference_code_is_read_and_classified(
    code: str, code_n: int | None, status: int, retryable: bool
) -> None:
    with pytest.raises(ApiError) as caught:
        parse_envelope("StopPullToPushTask", status, envelope(code, code_n))
    error = caught.value
    assert (error.action, error.code, error.code_n, error.http_status) == ("StopPullToPushTask", code, code_n, status)
    assert error.message == "boom"
    assert error.request_id == "20240101RID"
    assert error.retryable is retryable
    assert isinstance(error, ThrottledError) is (code in ("FlowLimitExceeded", "AccountFlowLimitExceeded"))


def test_http_200_with_error_is_an_error() -> None:
    with pytest.raises(ApiError) as caught:
        parse_envelope("CreatePullToPushTask", 200, envelope("InvalidParam", None))
    assert caught.value.http_status == 200
    assert not caught.value.retryable


def test_success_returns_result_or_empty() -> None:
    ok = {"ResponseMetadata": {"RequestId": "r"}, "Result": {"TaskId": "abc"}}
    assert parse_envelope("A", 200, json.dumps(ok).encode()) == {"TaskId": "abc"}
    assert parse_envelope("A", 200, b'{"ResponseMetadata": {"RequestId": "r"}}') == {}
    assert parse_envelope("A", 200, b'{"ResponseMetadata": {"RequestId": "r", "Error": null}, "Result": null}') == {}


@pytest.mark.parametrize(
    ("status", "raw", "retryable"),
    [
        (200, b"<html>hi</html>", False),
        (502, b"<html>Bad Gateway</html>", True),
        (503, b"", True),
        (200, b"[1, 2]", False),
        (200, b'{"Result": {}}', False),
        (500, b'{"ResponseMetadata": {"RequestId": "r"}}', True),
        (404, b'{"ResponseMetadata": {"RequestId": "r"}}', False),
    ],
)
def test_malformed_answers(status: int, raw: bytes, retryable: bool) -> None:
    with pytest.raises(ApiError) as caught:
        parse_envelope("ListPullToPushTask", status, raw)
    assert caught.value.code == "MalformedResponse"
    assert caught.value.retryable is retryable


def test_unknown_code_falls_back_to_status() -> None:
    for status, retryable in ((500, True), (429, True), (400, False)):
        with pytest.raises(ApiError) as caught:
            parse_envelope("A", status, envelope("SomethingNew", None))
        assert caught.value.retryable is retryable
    with pytest.raises(ThrottledError):
        parse_envelope("A", 429, envelope("SomethingNew", None))


def test_one_line_str_names_everything() -> None:
    error = api_error(
        "CreatePullToPushTask",
        http_status=429,
        code="FlowLimitExceeded",
        code_n=100018,
        message="too many",
        request_id="RID1",
    )
    assert str(error) == "CreatePullToPushTask: FlowLimitExceeded (100018) too many [request_id=RID1] HTTP 429"
    assert "\n" not in str(error)
    bare = ApiError("DeletePullToPushTask", http_status=404, code="ResourceNotFound")
    assert str(bare) == "DeletePullToPushTask: ResourceNotFound HTTP 404"
    assert bare.not_found


def test_other_error_kinds() -> None:
    timeout = TransportError("ListPullToPushTask", "Timeout", "no answer within 1 s")
    assert timeout.retryable and timeout.outcome == "Timeout"
    invalid = ValidationError("CreatePullToPushTask", [Problem("Title", "too long"), Problem("EndTime", "past")])
    assert not invalid.retryable
    assert str(invalid) == "CreatePullToPushTask: invalid request: Title: too long; EndTime: past"
    late = DeadlineExceeded("StopPullToPushTask", 5, 3, timeout)
    assert late.last_error is timeout and not late.retryable and "3 attempts" in str(late)


def test_only_certainly_unprocessed_errors_allow_retrying_a_create() -> None:
    assert api_error("C", http_status=429, code="FlowLimitExceeded").surely_unprocessed
    assert TransportError("C", "ConnectError").surely_unprocessed
    assert not TransportError("C", "Timeout").surely_unprocessed
    assert not api_error("C", http_status=500, code="InternalError").surely_unprocessed
    assert not api_error("C", http_status=200, code="CommonErr").surely_unprocessed


def test_a_readable_refusal_is_unprocessed_but_a_garbled_or_5xx_answer_is_not() -> None:
    assert api_error("C", http_status=400, code="InvalidParam").surely_unprocessed
    assert api_error("C", http_status=403, code="AccessDenied").surely_unprocessed
    assert not api_error("C", http_status=502, code="MalformedResponse").surely_unprocessed
    assert not api_error("C", http_status=200, code="MalformedResponse").surely_unprocessed
    assert not api_error("C", http_status=504, code="InternalServiceTimeout").surely_unprocessed
    timeout = TransportError("C", "Timeout")
    assert not DeadlineExceeded("C", 5, 3, timeout).surely_unprocessed
    assert DeadlineExceeded("C", 5, 3, api_error("C", http_status=429, code="FlowLimitExceeded")).surely_unprocessed
