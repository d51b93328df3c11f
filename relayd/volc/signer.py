"""HMAC-SHA256 ("V4") request signing for the Volcengine OpenAPI gateway.

This follows the Python SDK's SignerV4 byte for byte (see the API reference, section 7): canonical query with
only ``A-Z a-z 0-9 - _ . ~`` left unescaped and spaces as ``%20``; signed headers chosen by exact name
(``Content-Type``, ``Content-Md5``, ``Host``) or the ``X-`` prefix; the Host port dropped for signing only when
it is 80 or 443; a signing key derived from the raw secret key with no prefix.

The same functions serve both sides: the client signs with :func:`sign`, the emulator verifies by recomputing
with :func:`signature_for` from the header names the request itself lists in ``SignedHeaders``.

Pure functions of their inputs: the caller passes the time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import quote

ALGORITHM = "HMAC-SHA256"
DEFAULT_REGION = "cn-north-1"
SERVICE = "live"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()
_SIGNED_EXACT = frozenset({"Content-Type", "Content-Md5", "Host"})
_SAFE = "-_.~"


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request is signed with. The secret parts never show in ``repr``."""

    access_key: str
    secret_key: str = field(repr=False)
    session_token: str = field(default="", repr=False)
    region: str = DEFAULT_REGION
    service: str = SERVICE


@dataclass(frozen=True, slots=True)
class Authorization:
    """A parsed ``Authorization`` header."""

    access_key: str
    date: str
    region: str
    service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str


def format_x_date(now: datetime) -> str:
    """``X-Date`` for an instant: UTC ``%Y%m%dT%H%M%SZ``."""
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def parse_x_date(value: str) -> datetime:
    """Inverse of :func:`format_x_date`; raises ValueError on a malformed value."""
    return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _quote(value: str) -> str:
    return quote(value, safe=_SAFE)


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Sorted by key (stable, so repeated keys keep their order), each part percent-encoded."""
    return _canonical_query(tuple((k, v) for k, v in pairs))


@lru_cache(maxsize=512)
def _canonical_query(pairs: tuple[tuple[str, str], ...]) -> str:
    # Cached: a client repeats the same few queries (Action, Version, paging), and quoting is most of signing.
    ordered = sorted(pairs, key=lambda kv: kv[0])
    return "&".join(f"{_quote(k)}={_quote(v)}" for k, v in ordered)


def canonical_uri(path: str) -> str:
    return quote(path or "/").replace("%2F", "/").replace("+", "%20")


def select_signed_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers the Python SDK signs: lower-cased name -> value (case-sensitive selection)."""
    chosen = {k.lower(): v for k, v in headers.items() if k in _SIGNED_EXACT or k.startswith("X-")}
    return chosen


def _strip_default_port(host: str) -> str:
    if ":" not in host:
        return host
    parts = host.split(":")
    return parts[0] if parts[1] in ("80", "443") else host


def canonical_headers(signed: Mapping[str, str]) -> tuple[str, str]:
    """(canonical header block ending in a newline, ``;``-joined sorted names) for lower-cased headers."""
    names = sorted(signed)
    lines = []
    for name in names:
        value = signed[name]
        if name == "host":
            value = _strip_default_port(value)
        lines.append(f"{name}:{value}\n")
    return "".join(lines), ";".join(names)


@lru_cache(maxsize=64)
def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """kSigning: HMAC chain over date, region, service and ``request``, starting from the raw secret key."""
    k_date = hmac.new(secret_key.encode(), date.encode(), hashlib.sha256).digest()
    k_region = hmac.new(k_date, region.encode(), hashlib.sha256).digest()
    k_service = hmac.new(k_region, service.encode(), hashlib.sha256).digest()
    return hmac.new(k_service, b"request", hashlib.sha256).digest()


def credential_scope(date: str, region: str, service: str) -> str:
    return f"{date}/{region}/{service}/request"


def signature_for(
    *,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    signed: Mapping[str, str],
    body_sha256: str,
    x_date: str,
    secret_key: str,
    region: str,
    service: str,
) -> tuple[str, str]:
    """(signature hex, signed header list) for a request whose signed headers are already chosen."""
    header_block, names = canonical_headers(signed)
    canonical = "\n".join(
        [method.upper(), canonical_uri(path), canonical_query(query), header_block, names, body_sha256]
    )
    date = x_date[:8]
    to_sign = "\n".join([ALGORITHM, x_date, credential_scope(date, region, service), sha256_hex(canonical.encode())])
    key = signing_key(secret_key, date, region, service)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), names


def sign(
    *,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    credentials: Credentials,
    now: datetime,
) -> dict[str, str]:
    """Return ``headers`` plus X-Date, X-Content-Sha256, X-Security-Token (if any) and Authorization.

    ``headers`` must already hold Host and, for a body, the exact Content-Type that will be sent.
    """
    out = dict(headers)
    if method.upper() != "GET" and "Content-Type" not in out:
        out["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
    x_date = format_x_date(now)
    out["X-Date"] = x_date
    if credentials.session_token:
        out["X-Security-Token"] = credentials.session_token
    body_hash = sha256_hex(body)
    out["X-Content-Sha256"] = body_hash
    signature, names = signature_for(
        method=method,
        path=path,
        query=query,
        signed=select_signed_headers(out),
        body_sha256=body_hash,
        x_date=x_date,
        secret_key=credentials.secret_key,
        region=credentials.region,
        service=credentials.service,
    )
    scope = credential_scope(x_date[:8], credentials.region, credentials.service)
    out["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key}/{scope}, SignedHeaders={names}, Signature={signature}"
    )
    return out


_AUTH_RE = re.compile(
    r"^HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+)\s*,\s*SignedHeaders=(?P<sh>[^,\s]+)\s*,"
    r"\s*Signature=(?P<sig>[0-9a-fA-F]+)\s*$"
)


def parse_authorization(value: str) -> Authorization:
    """Parse an Authorization header; raises ValueError naming what is malformed."""
    match = _AUTH_RE.match(value.strip())
    if match is None:
        raise ValueError("Authorization is not 'HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...'")
    parts = match["cred"].split("/")
    if len(parts) != 5:
        raise ValueError("Credential must be AK/YYYYMMDD/region/service/request")
    access_key, date, region, service, terminator = parts
    return Authorization(
        access_key=access_key,
        date=date,
        region=region,
        service=service,
        terminator=terminator,
        signed_headers=tuple(match["sh"].split(";")),
        signature=match["sig"].lower(),
    )
