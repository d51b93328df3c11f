"""Typed HTTP errors raised by handlers and mapped to responses in one place (the app's error middleware).

Handlers never build error responses themselves: they raise one of these, and ``app.http_middleware`` turns it
into ``{"error": code, "message": message}`` with the status. Messages are written for the caller and never carry
secrets or tracebacks.
"""

from __future__ import annotations


class WebError(Exception):
    """Base class: an HTTP status, a stable machine-readable code and a short human message."""

    status = 500
    code = "internal"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        if code is not None:
            self.code = code


class BadRequest(WebError):
    status = 400
    code = "bad_request"


class Unauthorized(WebError):
    status = 401
    code = "unauthorized"


class Forbidden(WebError):
    status = 403
    code = "forbidden"


class NotFound(WebError):
    status = 404
    code = "not_found"


class RequestTimeout(WebError):
    status = 408
    code = "request_timeout"


class PayloadTooLarge(WebError):
    status = 413
    code = "payload_too_large"


class Unavailable(WebError):
    status = 503
    code = "unavailable"
