"""The platform client's errors: one hierarchy, classified retryable or terminal by type and code.

Every failure of a platform call surfaces as a :class:`LiveError`; aiohttp and JSON exceptions are converted at
the client boundary (``raise ... from e``) and never reach the engine.

* :class:`ApiError` — the platform answered with an error envelope (or an envelope we could not read:
  code ``MalformedResponse``). Carries Action, HTTP status, Code, CodeN, Message and RequestId; retryable
  according to :func:`relayd.volc.codes.is_retryable` (throttling, 5xx, InternalError, CommonErr, ...).
  :class:`ThrottledError` is the throttling subset.
* :class:`TransportError` — timeouts and connection failures: always retryable.
* :class:`ValidationError` — the request broke a documented field rule; raised before anything is sent.
* :class:`DeadlineExceeded` — retries ran out of time; carries the last error.

No error ever holds credentials: messages are built from the platform's answer and the action name only.
"""

from __future__ import annotations

from collections.abc import Sequence

from relayd.volc import codes
from relayd.volc.rules import Problem

MALFORMED_RESPONSE = "MalformedResponse"


class LiveError(Exception):
    """Base of every error the platform client raises."""

    action: str = ""

    @property
    def retryable(self) -> bool:
        return False

    @property
    def surely_unprocessed(self) -> bool:
        """True only when the platform certainly did not act on the request (a write may be sent again as is).

        Anything else — a timeout, a reset connection, a 5xx, an answer we could not read — may hide a request the
        platform carried out: the caller must look before acting again.
        """
        return False

    @property
    def not_found(self) -> bool:
        """The platform said the resource does not exist (by code; the engine confirms absence by listing)."""
        return False

    @property
    def outcome(self) -> str:
        """A short stable label for metrics: the error code or the error kind."""
        return type(self).__name__


class ApiError(LiveError):
    """The platform answered with an error (HTTP non-2xx, or HTTP 200 with ``ResponseMetadata.Error``)."""

    def __init__(
        self,
        action: str,
        *,
        http_status: int,
        code: str,
        message: str = "",
        code_n: int | None = None,
        request_id: str = "",
    ) -> None:
        self.action = action
        self.http_status = http_status
        self.code = code
        self.code_n = code_n
        self.message = message
        self.request_id = request_id
        super().__init__(self._line())

    def _line(self) -> str:
        code = f"{self.code} ({self.code_n})" if self.code_n else self.code
        request = f" [request_id={self.request_id}]" if self.request_id else ""
        message = f" {self.message}" if self.message else ""
        return f"{self.action}: {code}{message}{request} HTTP {self.http_status}"

    def __str__(self) -> str:
        return self._line()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(action={self.action!r}, http_status={self.http_status}, code={self.code!r}, "
            f"code_n={self.code_n!r}, request_id={self.request_id!r})"
        )

    @property
    def retryable(self) -> bool:
        return codes.is_retryable(self.code, self.http_status)

    @property
    def outcome(self) -> str:
        return self.code

    @property
    def not_found(self) -> bool:
        return self.code.split(".", 1)[0] == "ResourceNotFound"

    @property
    def surely_unprocessed(self) -> bool:
        """A readable refusal (a 4xx business error such as InvalidParam or AccessDenied) proves nothing was done;
        a 5xx, a retryable code or an answer we could not read does not."""
        if self.code == "ServiceUnavailableTemp":
            return True
        if self.code == MALFORMED_RESPONSE or self.http_status >= 500:
            return False
        return not self.retryable


class ThrottledError(ApiError):
    """The platform's rate limit answered (FlowLimitExceeded, AccountFlowLimitExceeded, or HTTP 429)."""

    @property
    def retryable(self) -> bool:
        return True

    @property
    def surely_unprocessed(self) -> bool:
        return True


class TransportError(LiveError):
    """The request did not get an HTTP answer: timeout, refused or reset connection, DNS failure."""

    def __init__(self, action: str, kind: str, detail: str = "") -> None:
        self.action = action
        self.kind = kind
        self.detail = detail
        suffix = f": {detail}" if detail else ""
        super().__init__(f"{action}: {kind}{suffix}")

    @property
    def retryable(self) -> bool:
        return True

    @property
    def outcome(self) -> str:
        return self.kind

    @property
    def surely_unprocessed(self) -> bool:
        return self.kind == "ConnectError"


class ValidationError(LiveError):
    """The request breaks documented field rules; nothing was sent. ``problems`` names each field and rule."""

    def __init__(self, action: str, problems: Sequence[Problem]) -> None:
        self.action = action
        self.problems = list(problems)
        super().__init__(f"{action}: invalid request: " + "; ".join(str(p) for p in self.problems))

    @property
    def outcome(self) -> str:
        return "ValidationError"

    @property
    def surely_unprocessed(self) -> bool:
        return True  # refused before anything was sent


class DeadlineExceeded(LiveError):
    """Retrying stopped because the call's overall deadline would pass; ``last_error`` is the final failure."""

    def __init__(self, action: str, deadline_s: float, attempts: int, last_error: LiveError) -> None:
        self.action = action
        self.deadline_s = deadline_s
        self.attempts = attempts
        self.last_error = last_error
        super().__init__(f"{action}: gave up after {attempts} attempts within {deadline_s:g} s: {last_error}")

    @property
    def outcome(self) -> str:
        return "DeadlineExceeded"

    @property
    def surely_unprocessed(self) -> bool:
        return self.last_error.surely_unprocessed

    @property
    def not_found(self) -> bool:
        return self.last_error.not_found


def api_error(
    action: str,
    *,
    http_status: int,
    code: str,
    message: str = "",
    code_n: int | None = None,
    request_id: str = "",
) -> ApiError:
    """The right ApiError subclass for a platform answer."""
    cls = ThrottledError if code in codes.THROTTLING_CODES or http_status == 429 else ApiError
    return cls(action, http_status=http_status, code=code, message=message, code_n=code_n, request_id=request_id)
