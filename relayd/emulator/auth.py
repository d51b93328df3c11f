"""Gateway-side verification of V4 signatures, as a pure function of the request and ``now``.

The signature is recomputed from the header names the request itself lists in ``SignedHeaders`` (the SDKs sign
different sets: Go signs Content-Type on GET, Python does not), the query re-encoded from its parsed pairs
(blank values kept, ``+`` decoded as a space), the received Host verbatim and the hash of the raw body bytes.

Errors, in the order checked (reference section 5.3):

* no Authorization -> MissingAuthenticationToken; unparsable -> InvalidAuthorization;
* unknown access key -> InvalidAccessKey;
* scope terminator, region or service wrong, or scope date != X-Date's date -> InvalidCredential;
* no X-Date -> MissingRequestInfo; unparsable or further than the tolerance from now -> InvalidTimestamp;
* host or x-date not signed, a listed header absent, X-Content-Sha256 != sha256(body), or a wrong signature
  -> SignatureDoesNotMatch.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from relayd.emulator.errors import ApiError
from relayd.volc import signer


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What verification needs from an HTTP request. ``headers`` lookups must be case-insensitive."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Gate:
    """The gateway's configuration: known keys, region, and the X-Date tolerance."""

    keys: Mapping[str, str]
    region: str
    tolerance_s: float


def verify(request: SignedRequest, gate: Gate, *, now: float) -> str:
    """Return the caller's access key, or raise :class:`ApiError` with the gateway's code."""
    auth = _parse(request.headers.get("Authorization"))
    secret = gate.keys.get(auth.access_key)
    if secret is None:
        raise ApiError("InvalidAccessKey", "the access key is not known to this account")
    x_date = _check_scope_and_date(auth, request.headers.get("X-Date"), gate, now=now)
    _check_signed_headers(auth.signed_headers, request.headers)
    body_hash = signer.sha256_hex(request.body)
    declared = request.headers.get("X-Content-Sha256")
    if declared is not None and declared.lower() != body_hash:
        raise ApiError("SignatureDoesNotMatch", "X-Content-Sha256 does not match the body")
    expected, _ = signer.signature_for(
        method=request.method,
        path=request.path,
        query=request.query,
        signed={name: request.headers[name] for name in auth.signed_headers},
        body_sha256=body_hash,
        x_date=x_date,
        secret_key=secret,
        region=auth.region,
        service=auth.service,
    )
    if not hmac.compare_digest(expected, auth.signature):
        raise ApiError("SignatureDoesNotMatch", "the request signature does not match; check the secret key")
    return auth.access_key


def _parse(value: str | None) -> signer.Authorization:
    if not value:
        raise ApiError("MissingAuthenticationToken", "the request carries no Authorization header")
    try:
        return signer.parse_authorization(value)
    except ValueError as e:
        raise ApiError("InvalidAuthorization", str(e)) from e


def _check_scope_and_date(auth: signer.Authorization, x_date: str | None, gate: Gate, *, now: float) -> str:
    if auth.terminator != "request" or auth.service != signer.SERVICE:
        raise ApiError("InvalidCredential", "the credential scope must end in /live/request")
    if auth.region != gate.region:
        raise ApiError("InvalidCredential", f"the credential region must be {gate.region}")
    if not x_date:
        raise ApiError("MissingRequestInfo", "X-Date is missing")
    try:
        signed_at = signer.parse_x_date(x_date).timestamp()
    except ValueError as e:
        raise ApiError("InvalidTimestamp", "X-Date is not YYYYMMDDTHHMMSSZ") from e
    if abs(now - signed_at) > gate.tolerance_s:
        raise ApiError("InvalidTimestamp", "X-Date is expired or in the future; check the clock")
    if auth.date != x_date[:8]:
        raise ApiError("InvalidCredential", "the credential scope date does not match X-Date")
    return x_date


def _check_signed_headers(names: Iterable[str], headers: Mapping[str, str]) -> None:
    listed = list(names)
    for required in ("host", "x-date"):
        if required not in listed:
            raise ApiError("SignatureDoesNotMatch", f"{required} must be a signed header")
    missing = [name for name in listed if name not in headers]
    if missing:
        raise ApiError("SignatureDoesNotMatch", f"signed headers absent from the request: {missing}")
