"""Alert URLs without their secrets, for every place a URL is shown: logs, errors, ``relayd config show``, status.

Apprise URLs carry credentials in every part: ``mailto://user:password@host``, ``slack://TokenA/TokenB/TokenC``,
``feishu://<token>``, ``json://host/hooks/<token>?secret=...``. :func:`redact_url` keeps what identifies the target
to an operator — the scheme, and the host when it is a real host name or address — and replaces everything else
by ``***``: user and password, a host that is a token, every path segment, the whole query. :func:`url_secrets`
lists the secret pieces themselves (token-like ones only, in the path and query), so the log redactor can mask them
in text that quotes a URL (a library's error message, a traceback).

Pure and dependency-free, so settings can use it without loading Apprise.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

MASK = "***"
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_TLD = re.compile(r"[A-Za-z][A-Za-z0-9-]*")


@dataclass(frozen=True, slots=True)
class _Parts:
    scheme: str
    user: str
    password: str
    host: str
    port: str
    path: str
    query: str


def _split(url: str) -> _Parts | None:
    """A tolerant split: Apprise hosts may be tokens with ``:`` or ``_`` that ``urllib`` refuses as host:port."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep or not scheme:
        return None
    authority, path, query = _authority_path_query(rest)
    userinfo, at, hostport = authority.rpartition("@")
    user, _, password = userinfo.partition(":") if at else ("", "", "")
    host, port = _host_port(hostport)
    return _Parts(scheme.lower(), user, password, host, port, path, query)


def _authority_path_query(rest: str) -> tuple[str, str, str]:
    rest, _, _fragment = rest.partition("#")
    before_query, _, query = rest.partition("?")
    authority, slash, path = before_query.partition("/")
    return authority, (slash + path) if slash else "", query


def _host_port(hostport: str) -> tuple[str, str]:
    if hostport.startswith("["):
        host, _, tail = hostport.partition("]")
        return host + "]", tail.removeprefix(":")
    host, colon, port = hostport.rpartition(":")
    if colon and port.isdigit():
        return host, port
    return hostport, ""


def _is_hostname(host: str) -> bool:
    """A host an operator may see: an IP address, ``localhost``, or a dotted DNS name with a letter TLD."""
    if host.startswith("[") and host.endswith("]"):
        return _is_ip(host[1:-1])
    if _is_ip(host) or host.lower() == "localhost":
        return True
    labels = host.rstrip(".").split(".")
    return len(labels) >= 2 and all(_LABEL.fullmatch(x) for x in labels) and bool(_TLD.fullmatch(labels[-1]))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def redact_url(url: str) -> str:
    """``url`` with credentials, token hosts, path and query replaced by ``***``; see the module docstring."""
    parts = _split(url)
    if parts is None:
        return MASK
    userinfo = f"{MASK}@" if parts.user or parts.password else ""
    host = parts.host if _is_hostname(parts.host) else (MASK if parts.host else "")
    port = f":{parts.port}" if parts.port else ""
    path = f"/{MASK}" if parts.path.strip("/") else parts.path
    query = f"?{MASK}" if parts.query else ""
    return f"{parts.scheme}://{userinfo}{host}{port}{path}{query}"


def url_secrets(url: str, *, every_part: bool = False) -> list[str]:
    """The secret pieces of ``url`` (raw and percent-decoded), for the log redactor. Never log this list.

    User, password and a host that is not a host name are always secret. Path segments and query values are
    secret when they look like tokens (see :func:`_token_like`): the log redactor masks these strings in *every*
    line, so a path word such as ``relayd`` or ``alerts`` must not be among them. ``every_part`` includes every
    path segment and query value, for scrubbing text that is about this one URL (a send's error message).
    """
    parts = _split(url)
    if parts is None:
        return [url.strip()] if url.strip() else []
    pieces = [parts.user, parts.password]
    if not _is_hostname(parts.host):
        pieces.append(parts.host)
    tail = [*parts.path.split("/"), *(value for _, value in parse_qsl(parts.query, keep_blank_values=False))]
    pieces.extend(piece for piece in tail if every_part or _token_like(piece))
    found = {p for piece in pieces if piece for p in (piece, unquote(piece))}
    return sorted(found, key=lambda s: (-len(s), s))


def _token_like(piece: str) -> bool:
    """A token, key or password rather than a word: 8+ characters with a digit, or 16+ characters."""
    return len(piece) >= 16 or (len(piece) >= 8 and any(ch.isdigit() for ch in piece))


def scrub(text: str, url: str) -> str:
    """``text`` (a send's error, about this one URL) with every secret piece of ``url`` replaced by ``***``."""
    for secret in url_secrets(url, every_part=True):
        if len(secret) >= 3:
            text = text.replace(secret, MASK)
    return text
