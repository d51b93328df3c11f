"""The platform's error codes: HTTP status, numeric CodeN, and whether a retry can help.

One table serves both sides: the client classifies errors by it, the emulator answers with it. Facts come from
the API reference, sections 5.2 and 5.3; where the reference marks a status as inferred (FlowLimitExceeded 429,
ServiceUnavailableTemp 503, MethodNotAllowed 405, InternalServiceTimeout 504) the client does not rely on the
status: it classifies by Code first and falls back to the status only for codes it does not know.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: str
    code_n: int | None
    http_status: int
    retryable: bool
    meaning: str


_TABLE: tuple[ErrorCode, ...] = (
    ErrorCode("CommonErr", None, 200, True, "uncategorised platform error (returned with HTTP 200)"),
    ErrorCode("InvalidParam", None, 400, False, "a parameter is invalid or out of range"),
    ErrorCode("InvalidParam.BindError", None, 400, False, "the body failed type binding"),
    ErrorCode("RequestForbidden", None, 403, False, "the resource is not under this account"),
    ErrorCode("RequestForbidden.AccountIDNotAllow", None, 403, False, "the account may not access this"),
    ErrorCode("ResourceNotFound", None, 404, False, "the task or group does not exist"),
    ErrorCode("MissingParameter", 100002, 400, False, "Action or Version missing"),
    ErrorCode("MissingAuthenticationToken", 100003, 401, False, "no authentication information"),
    ErrorCode("MissingRequestInfo", 100004, 400, False, "request information such as X-Date missing"),
    ErrorCode("MissingSignature", 100005, 401, False, "signature missing"),
    ErrorCode("InvalidTimestamp", 100006, 400, False, "X-Date expired or in the future (check the clock)"),
    ErrorCode("ServiceNotFound", 100007, 404, False, "unknown service"),
    ErrorCode("InvalidActionOrVersion", 100008, 404, False, "unknown Action or Version"),
    ErrorCode("InvalidAccessKey", 100009, 401, False, "unknown access key"),
    ErrorCode("SignatureDoesNotMatch", 100010, 401, False, "signature mismatch (check the secret key)"),
    ErrorCode("LackPolicy", 100012, 403, False, "the sub-account lacks a policy for this action"),
    ErrorCode("AccessDenied", 100013, 403, False, "IAM denies this action"),
    ErrorCode("InternalError", 100014, 500, True, "platform internal error"),
    ErrorCode("InternalServiceTimeout", 100016, 504, True, "platform backend timeout"),
    ErrorCode("FlowLimitExceeded", 100018, 429, True, "rate limited"),
    ErrorCode("ServiceUnavailableTemp", 100019, 503, True, "temporarily unavailable"),
    ErrorCode("MethodNotAllowed", 100020, 405, False, "wrong HTTP method for this action"),
    ErrorCode("AccountFlowLimitExceeded", 100027, 429, True, "account-level rate limit"),
    ErrorCode("InvalidAuthorization", None, 400, False, "malformed Authorization header"),
    ErrorCode("InvalidCredential", None, 400, False, "malformed Credential (scope, region or service)"),
    ErrorCode("InvalidSecretToken", None, 401, False, "bad STS session token"),
)

CODES: dict[str, ErrorCode] = {entry.code: entry for entry in _TABLE}
THROTTLING_CODES = frozenset({"FlowLimitExceeded", "AccountFlowLimitExceeded"})


def lookup(code: str) -> ErrorCode | None:
    """The table entry for a code; dotted sub-codes fall back to their parent (``InvalidParam.Foo``)."""
    entry = CODES.get(code)
    if entry is None and "." in code:
        entry = CODES.get(code.split(".", 1)[0])
    return entry


def is_retryable(code: str, http_status: int) -> bool:
    """Known codes by the table; unknown ones by status (5xx and 429 retry, the rest do not)."""
    entry = lookup(code)
    if entry is not None:
        return entry.retryable
    return http_status >= 500 or http_status == 429
