"""Typed errors of the emulator.

:class:`ApiError` is what every layer raises to answer the caller with the platform's error envelope; the HTTP
status and CodeN come from :mod:`relayd.volc.codes`, so the emulator and the client share one table (a code that
is not in the table, like a quirk's ``InvalidParameter.TaskNotExist``, names its status explicitly).
:class:`AdminError` is for the ``/__emulator`` admin API, which answers plain JSON.
"""

from __future__ import annotations

from collections.abc import Iterable

from relayd.volc import codes
from relayd.volc.rules import Problem

BIND_ERROR_MESSAGE = "Request parameter error, please check input data"


class ApiError(Exception):
    """An error answer: a platform code from the shared table and a human message."""

    def __init__(self, code: str, message: str = "", *, http_status: int | None = None) -> None:
        entry = codes.lookup(code)
        self.code = code
        self.message = message or (entry.meaning if entry else code)
        self.http_status = http_status or (entry.http_status if entry else 500)
        self.code_n = entry.code_n if entry else None
        super().__init__(f"{code}: {self.message}")

    @classmethod
    def invalid(cls, problems: Iterable[Problem]) -> ApiError:
        """InvalidParam naming every problem: ``<field>: <rule>; <field>: <rule>``."""
        return cls("InvalidParam", "; ".join(str(p) for p in problems))

    @classmethod
    def bind(cls, detail: str) -> ApiError:
        return cls("InvalidParam.BindError", f"{BIND_ERROR_MESSAGE} ({detail})")


class AdminError(Exception):
    """A refused admin request: HTTP status and message."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)
