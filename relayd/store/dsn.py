"""PostgreSQL connection URLs: where the password comes from, and how a URL is shown without it.

Why a module of its own: the password must never reach a log line, an error or ``relayd config show``, and the rule
for finding it (the URL, else ``PGPASSWORD``, else a password file) must be the same wherever a URL is opened
(the daemon, ``relayd state migrate``). Standard library only, so settings can use it too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from relayd.store.errors import StoreError

POSTGRES_SCHEMES = ("postgresql", "postgres")


def is_postgres(url: str) -> bool:
    return urlsplit(url).scheme in POSTGRES_SCHEMES


def redact_dsn(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: safe to log and show."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def url_password(url: str) -> str | None:
    """The password written in ``url``, if any (for the log redactor's list of secrets)."""
    password = urlsplit(url).password
    return None if password is None else unquote(password)


def with_password(url: str, password_file: Path | None, environ: Mapping[str, str] | None = None) -> str:
    """``url`` with a password: its own, else ``PGPASSWORD``, else the first line of ``password_file``.

    Without any, the URL is returned as it is (libpq may still find ``~/.pgpass`` or use trust or peer auth)."""
    parts = urlsplit(url)
    if parts.password is not None:
        return url
    env = os.environ if environ is None else environ
    password = env.get("PGPASSWORD") or (_read_password(password_file) if password_file is not None else None)
    if not password:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"))


def _read_password(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise StoreError(
            f"database_password_file {path} cannot be read ({exc.strerror}): check its path and permissions"
        ) from None
    return lines[0].strip() if lines else ""
