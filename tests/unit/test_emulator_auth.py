"""Gateway signature verification as a pure function, including the reference's SDK test vectors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from multidict import CIMultiDict

from relayd.emulator.auth import Gate, SignedRequest, verify
from relayd.emulator.errors import ApiError
from relayd.volc import signer

AK, SK = "AKLTexample", "c2VjcmV0ZXhhbXBsZQ=="
NOW = datetime(2024, 1, 1, tzinfo=UTC)
GATE = Gate({AK: SK}, "cn-north-1", 900)
VECTOR_BODY = (
    b'{"Title": "task001", "StartTime": 1704067200, "EndTime": 1704153600, "Type": 0, '
    b'"SrcAddr": "rtmp://src.example.com/live/a", "DstAddr": "rtmp://dst.example.com/live/b"}'
)
CREATE_QUERY = (("Action", "CreatePullToPushTask"), ("Version", "2023-01-01"))


def vector_post(signature: str = "14aaae00b61860ae8c615fa7b305798a081a45570ed0ce086cfaa75db4282b4b") -> SignedRequest:
    headers = CIMultiDict(
        {
            "Host": "live.volcengineapi.com",
            "Content-Type": "application/json",
            "X-Date": "20240101T000000Z",
            "X-Content-Sha256": "88ef1f105097ffe2977f9c82f1294847683ab4923d87dc0ba80fcf5bee9e2d75",
            "Authorization": f"HMAC-SHA256 Credential={AK}/20240101/cn-north-1/live/request, "
            f"SignedHeaders=content-type;host;x-content-sha256;x-date, Signature={signature}",
        }
    )
    return SignedRequest("POST", "/", CREATE_QUERY, headers, VECTOR_BODY)


def code_of(request: SignedRequest, *, now: datetime = NOW, gate: Gate = GATE) -> str:
    with pytest.raises(ApiError) as info:
        verify(request, gate, now=now.timestamp())
    return info.value.code


def test_reference_post_vector_verifies() -> None:
    assert verify(vector_post(), GATE, now=NOW.timestamp()) == AK


def test_reference_get_vector_verifies_with_plus_decoded_query() -> None:
    # Wire query "...&Title=doc+%E4%BB%BB%E5%8A%A1" parsed with + as space, as the server does.
    query = (("Action", "ListPullToPushTask"), ("Version", "2023-01-01"), ("Page", "1"), ("Size", "20"),
             ("Title", "doc 任务"))  # fmt: skip
    headers = CIMultiDict(
        {
            "Host": "live.volcengineapi.com",
            "X-Date": "20240101T000000Z",
            "X-Content-Sha256": signer.EMPTY_BODY_SHA256,
            "Authorization": f"HMAC-SHA256 Credential={AK}/20240101/cn-north-1/live/request, "
            "SignedHeaders=host;x-content-sha256;x-date, "
            "Signature=853ac7b917d09414036adbd0c58690b87f4bd5cc5c74ec46a440762e37d83c9a",
        }
    )
    assert verify(SignedRequest("GET", "/", query, headers, b""), GATE, now=NOW.timestamp()) == AK


def test_signed_header_set_is_taken_from_the_request() -> None:
    # Go-style: Content-Type signed on a GET, plus a custom X- header; still verifies.
    headers = {"Host": "127.0.0.1:8900", "Content-Type": "application/x-www-form-urlencoded", "X-Custom": "v"}
    signed = signer.sign(method="GET", path="/", query=CREATE_QUERY, headers=headers, body=b"",
                         credentials=signer.Credentials(AK, SK), now=NOW)  # fmt: skip
    assert "x-custom" in signed["Authorization"]
    assert verify(SignedRequest("GET", "/", CREATE_QUERY, CIMultiDict(signed), b""), GATE, now=NOW.timestamp()) == AK


def test_errors_in_gateway_order() -> None:
    request = vector_post()
    assert code_of(SignedRequest("POST", "/", CREATE_QUERY, CIMultiDict(), b"")) == "MissingAuthenticationToken"
    bad = CIMultiDict(request.headers)
    bad["Authorization"] = "HMAC-SHA256 nonsense"
    assert code_of(SignedRequest("POST", "/", CREATE_QUERY, bad, VECTOR_BODY)) == "InvalidAuthorization"
    assert code_of(request, gate=Gate({"other": SK}, "cn-north-1", 900)) == "InvalidAccessKey"
    assert code_of(request, gate=Gate({AK: SK}, "cn-beijing", 900)) == "InvalidCredential"
    assert code_of(request, now=NOW + timedelta(seconds=901)) == "InvalidTimestamp"
    assert code_of(request, now=NOW - timedelta(seconds=901)) == "InvalidTimestamp"
    assert code_of(vector_post("0" * 64)) == "SignatureDoesNotMatch"


def test_body_tampering_and_hash_mismatch_are_rejected() -> None:
    request = vector_post()
    tampered = SignedRequest("POST", "/", CREATE_QUERY, request.headers, VECTOR_BODY.replace(b"task001", b"task002"))
    assert code_of(tampered) == "SignatureDoesNotMatch"


def test_scope_date_must_match_x_date_and_host_must_be_signed() -> None:
    request = vector_post()
    headers = CIMultiDict(request.headers)
    headers["Authorization"] = headers["Authorization"].replace("/20240101/", "/20231231/")
    assert code_of(SignedRequest("POST", "/", CREATE_QUERY, headers, VECTOR_BODY)) == "InvalidCredential"
    headers = CIMultiDict(request.headers)
    headers["Authorization"] = headers["Authorization"].replace("content-type;host;", "content-type;")
    assert code_of(SignedRequest("POST", "/", CREATE_QUERY, headers, VECTOR_BODY)) == "SignatureDoesNotMatch"
    del headers["X-Date"]
    assert code_of(SignedRequest("POST", "/", CREATE_QUERY, headers, VECTOR_BODY)) == "MissingRequestInfo"
