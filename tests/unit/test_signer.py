"""Signing: the reference's test vectors, and agreement with the official SDK over generated requests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st
from volcengine.auth.SignerV4 import SignerV4
from volcengine.base.Request import Request
from volcengine.Credentials import Credentials as SdkCredentials

from relayd.volc import signer

CREDS = signer.Credentials("AKLTexample", "c2VjcmV0ZXhhbXBsZQ==")
VECTOR_NOW = datetime(2024, 1, 1, tzinfo=UTC)
CREATE_BODY = (
    b'{"Title": "task001", "StartTime": 1704067200, "EndTime": 1704153600, "Type": 0, '
    b'"SrcAddr": "rtmp://src.example.com/live/a", "DstAddr": "rtmp://dst.example.com/live/b"}'
)


def _auth_part(headers: dict[str, str], name: str) -> str:
    return headers["Authorization"].split(f"{name}=")[1].split(",")[0]


def test_post_vector() -> None:
    headers = signer.sign(
        method="POST",
        path="/",
        query=[("Action", "CreatePullToPushTask"), ("Version", "2023-01-01")],
        headers={"Host": "live.volcengineapi.com", "Content-Type": "application/json", "Accept": "application/json"},
        body=CREATE_BODY,
        credentials=CREDS,
        now=VECTOR_NOW,
    )
    assert headers["X-Content-Sha256"] == "88ef1f105097ffe2977f9c82f1294847683ab4923d87dc0ba80fcf5bee9e2d75"
    assert _auth_part(headers, "SignedHeaders") == "content-type;host;x-content-sha256;x-date"
    assert _auth_part(headers, "Signature") == "14aaae00b61860ae8c615fa7b305798a081a45570ed0ce086cfaa75db4282b4b"


def test_get_vector_with_cjk_title() -> None:
    query = [("Action", "ListPullToPushTask"), ("Version", "2023-01-01"), ("Page", "1"), ("Size", "20")]
    query.append(("Title", "doc 任务"))
    assert signer.canonical_query(query) == (
        "Action=ListPullToPushTask&Page=1&Size=20&Title=doc%20%E4%BB%BB%E5%8A%A1&Version=2023-01-01"
    )
    headers = signer.sign(
        method="GET",
        path="/",
        query=query,
        headers={"Host": "live.volcengineapi.com", "Accept": "application/json"},
        body=b"",
        credentials=CREDS,
        now=VECTOR_NOW,
    )
    assert _auth_part(headers, "SignedHeaders") == "host;x-content-sha256;x-date"
    assert _auth_part(headers, "Signature") == "853ac7b917d09414036adbd0c58690b87f4bd5cc5c74ec46a440762e37d83c9a"


def test_session_token_is_signed_and_secrets_stay_out_of_repr() -> None:
    creds = signer.Credentials("AK", "SECRET-SK", session_token="TOKEN-XYZ")
    headers = signer.sign(
        method="GET", path="/", query=[], headers={"Host": "h"}, body=b"", credentials=creds, now=VECTOR_NOW
    )
    assert headers["X-Security-Token"] == "TOKEN-XYZ"
    assert "x-security-token" in _auth_part(headers, "SignedHeaders")
    assert "SECRET-SK" not in repr(creds) and "TOKEN-XYZ" not in repr(creds)


def test_host_port_stripped_only_for_default_ports() -> None:
    assert signer.canonical_headers({"host": "a.example:443"})[0] == "host:a.example\n"
    assert signer.canonical_headers({"host": "a.example:80"})[0] == "host:a.example\n"
    assert signer.canonical_headers({"host": "127.0.0.1:8080"})[0] == "host:127.0.0.1:8080\n"


def test_parse_authorization_round_trip() -> None:
    headers = signer.sign(
        method="GET", path="/", query=[], headers={"Host": "h"}, body=b"", credentials=CREDS, now=VECTOR_NOW
    )
    auth = signer.parse_authorization(headers["Authorization"])
    assert (auth.access_key, auth.date, auth.region, auth.service) == ("AKLTexample", "20240101", "cn-north-1", "live")
    assert auth.signed_headers == ("host", "x-content-sha256", "x-date")


def _sdk_sign(method: str, host: str, query: dict[str, str], body: str, now: datetime, content_type: str | None) -> str:
    request = Request()
    request.set_method(method)
    request.set_host(host)
    request.set_path("/")
    request.set_query(query)
    request.set_body(body)
    headers = {"Host": host, "Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    request.set_headers(headers)
    with mock.patch.object(SignerV4, "get_current_format_date", return_value=signer.format_x_date(now)):
        SignerV4.sign(request, SdkCredentials("AKLTexample", "c2VjcmV0ZXhhbXBsZQ==", "live", "cn-north-1"))
    return str(request.headers["Authorization"])


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=24)


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST"]),
    params=st.dictionaries(st.text("abcXYZ09_-.~ 任", min_size=1, max_size=8), _text, max_size=5),
    body=st.one_of(st.just(""), st.dictionaries(_text, _text, max_size=4).map(json.dumps)),
    host=st.sampled_from(["live.volcengineapi.com", "127.0.0.1:8900", "example.com:443", "example.com:80"]),
    now=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)),
)
def test_agrees_with_official_sdk(method: str, params: dict[str, str], body: str, host: str, now: datetime) -> None:
    query = {"Action": "ListPullToPushTask", "Version": "2023-01-01", **params}
    content_type = None if method == "GET" else "application/json"
    body = "" if method == "GET" else body
    headers = {"Host": host, "Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    ours = signer.sign(
        method=method,
        path="/",
        query=list(query.items()),
        headers=headers,
        body=body.encode(),
        credentials=CREDS,
        now=now.replace(microsecond=0),
    )
    assert ours["Authorization"] == _sdk_sign(method, host, query, body, now.replace(microsecond=0), content_type)
