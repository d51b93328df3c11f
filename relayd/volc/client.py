"""The async signed Volcengine Live client: typed pull-to-push actions over one aiohttp session.

One call, in order:

1. **Validate** the body (or query) against the platform's documented field rules (:mod:`relayd.volc.rules`);
   a broken rule raises :class:`~relayd.volc.errors.ValidationError` and nothing is sent.
2. **Pace**: pass the action class's gates (:mod:`relayd.volc.pacing`), shared by all callers; Create and Update
   have gates of their own (``create_update_qps``) besides the write class's. Waiters pass by ``priority``
   (most urgent first: a Create's StartTime, now for the rest). A throttling answer slows the gates the call
   passed; successes let them recover.
3. **Sign** (:mod:`relayd.volc.signer`) with a fresh X-Date and send the exact bytes that were hashed, with the
   exact ``Content-Type: application/json`` that was signed (bytes via ``data=`` so aiohttp adds no charset).
   GET (ListPullToPushTask) sends no body and no Content-Type; query values are stringified like the SDK.
4. **Read the envelope**: HTTP 200 with ``ResponseMetadata.Error`` is an error; a non-JSON or malformed answer
   is ``ApiError(code="MalformedResponse")``; aiohttp errors become :class:`~relayd.volc.errors.TransportError`.
5. **Retry** retryable failures (:mod:`relayd.volc.retry`): exponential backoff with full jitter, bounded
   attempts, an overall deadline, a timeout per attempt. Each retry re-takes a token and re-signs.

Creating is not idempotent: a create (task or group) that may have reached the platform is not retried, because a
retry after a lost answer could start a second relay to the same destination. It is retried only when the
request surely was not processed (throttled, or the connection never opened); any other failure is surfaced
and the caller confirms by listing (the daemon adopts tasks by Title).

Observability: ``observer.on_call(action, outcome, seconds, attempt)`` once per attempt (``outcome`` is "ok" or
the error code); structlog events ``api_retry`` and ``api_failed``. Credentials never appear in either.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from types import TracebackType
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
import pydantic
import structlog
from yarl import URL

from relayd.backoff import Backoff
from relayd.ids import GroupName, TaskId
from relayd.volc import rules, signer
from relayd.volc.errors import (
    MALFORMED_RESPONSE,
    ApiError,
    DeadlineExceeded,
    LiveError,
    ThrottledError,
    TransportError,
    ValidationError,
    api_error,
)
from relayd.volc.models import (
    CreateGroupRequest,
    CreateTaskRequest,
    CreateTaskResult,
    GroupPage,
    GroupRef,
    ListGroupsRequest,
    ListTasksQuery,
    ListTasksV2Request,
    TaskItem,
    TaskPage,
    TaskRef,
    UpdateGroupRequest,
    UpdateTaskRequest,
)
from relayd.volc.pacing import ActionClass, Pacer
from relayd.volc.retry import GiveUp, RetryPolicy

log = structlog.get_logger("relayd.volc.client")

DEFAULT_ENDPOINT = "https://live.volcengineapi.com"
VERSION = "2023-01-01"
USER_AGENT = "relayd-live-client/0.1"
Check = Callable[[Mapping[str, Any], int, int], list[rules.Problem]]
M = TypeVar("M", bound=pydantic.BaseModel)


def _task(body: Mapping[str, Any], now: int, cap: int) -> list[rules.Problem]:
    return rules.check_task(body, now=now, max_task_seconds=cap)


def _task_update(body: Mapping[str, Any], now: int, cap: int) -> list[rules.Problem]:
    return rules.check_task(body, now=now, max_task_seconds=cap, update=True)


def _only(check: Callable[[Mapping[str, Any]], list[rules.Problem]]) -> Check:
    return lambda body, _now, _cap: check(body)


@dataclass(frozen=True, slots=True)
class ActionSpec:
    name: str
    method: str = "POST"
    action_class: ActionClass = ActionClass.WRITE
    idempotent: bool = True
    check: Check | None = None


CREATE_TASK = "CreatePullToPushTask"
UPDATE_TASK = "UpdatePullToPushTask"
DELETE_TASK = "DeletePullToPushTask"
STOP_TASK = "StopPullToPushTask"
RESTART_TASK = "RestartPullToPushTask"
CONTINUE_TASK = "ContinuePullToPushTask"
RELAUNCH_TASK = "RelaunchPullToPushTask"
LIST_TASKS = "ListPullToPushTask"
LIST_TASKS_V2 = "ListPullToPushTaskV2"
CREATE_GROUP = "CreatePullToPushGroup"
UPDATE_GROUP = "UpdatePullToPushGroup"
DELETE_GROUP = "DeletePullToPushGroup"
LIST_GROUPS = "ListPullToPushGroup"

_REF = _only(rules.check_task_ref)
ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec(CREATE_TASK, action_class=ActionClass.CREATE, idempotent=False, check=_task),
        ActionSpec(UPDATE_TASK, action_class=ActionClass.UPDATE, check=_task_update),
        ActionSpec(DELETE_TASK, check=_REF),
        ActionSpec(STOP_TASK, check=_REF),
        ActionSpec(RESTART_TASK, check=_REF),
        ActionSpec(CONTINUE_TASK, check=_REF),
        ActionSpec(RELAUNCH_TASK, check=_REF),
        ActionSpec(LIST_TASKS, "GET", ActionClass.LIST, check=_only(rules.check_task_list)),
        ActionSpec(LIST_TASKS_V2, "POST", ActionClass.LIST, check=_only(rules.check_task_list)),
        ActionSpec(CREATE_GROUP, idempotent=False, check=_only(rules.check_group_create)),
        ActionSpec(UPDATE_GROUP, check=_only(rules.check_group_update)),
        ActionSpec(DELETE_GROUP, check=_only(lambda body: rules.check_group_name(body.get("Name")))),
        ActionSpec(LIST_GROUPS, check=_only(rules.check_group_list)),  # 10 QPS: a write-class bucket
    )
}


def spec_for(action: str) -> ActionSpec:
    """The known action's spec; an unknown action is sent as a paced POST with no local validation."""
    return ACTIONS.get(action) or ActionSpec(action, idempotent=False)


class CallObserver(Protocol):
    def on_call(self, action: str, outcome: str, seconds: float, attempt: int) -> None: ...


# --- wire helpers (pure) ------------------------------------------------------------------------------------


def stringify(value: Any) -> str:
    """A query value as the SDK sends it: ``str()`` (bools ``True``/``False``), lists comma-joined."""
    if isinstance(value, list | tuple):
        return ",".join(stringify(v) for v in value)
    return str(value)


def query_pairs(action: str, query: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    extra = [(k, stringify(v)) for k, v in (query or {}).items() if v is not None]
    return [("Action", action), ("Version", VERSION), *extra]


@lru_cache(maxsize=256)
def wire_url(endpoint: str, pairs: tuple[tuple[str, str], ...]) -> URL:
    """The request URL (cached: most calls repeat the same few queries). Spaces go as %20."""
    return URL(f"{endpoint}/?{urlencode(pairs, quote_via=quote)}", encoded=True)


def encode_body(body: Mapping[str, Any] | None) -> bytes:
    if body is None:
        return b""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def host_header(endpoint: str) -> str:
    """``host[:port]`` as sent on the wire; the default port of the scheme is omitted, like aiohttp does."""
    parts = urlsplit(endpoint)
    if parts.hostname is None:
        raise ValueError(f"endpoint has no host: {endpoint!r}")
    default = 443 if parts.scheme == "https" else 80
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def _snippet(raw: bytes) -> str:
    text = raw[:120].decode("utf-8", "replace")
    return "".join(ch if ch.isprintable() else " " for ch in text)


def _malformed(action: str, status: int, why: str) -> ApiError:
    return ApiError(action, http_status=status, code=MALFORMED_RESPONSE, message=why)


def _error_from(action: str, status: int, meta: Mapping[str, Any]) -> ApiError | None:
    error = meta.get("Error")
    if not isinstance(error, Mapping) or not (error.get("Code") or error.get("CodeN")):
        return None
    code_n = error.get("CodeN")
    return api_error(
        action,
        http_status=status,
        code=str(error.get("Code") or f"CodeN{code_n}"),
        message=str(error.get("Message") or ""),
        code_n=code_n if isinstance(code_n, int) and not isinstance(code_n, bool) else None,
        request_id=str(meta.get("RequestId") or ""),
    )


def parse_envelope(action: str, status: int, raw: bytes) -> dict[str, Any]:
    """The ``Result`` of a platform answer ({} when absent), or raise the ApiError it carries."""
    try:
        doc = json.loads(raw)
    except ValueError:
        raise _malformed(action, status, f"body is not JSON: {_snippet(raw)!r}") from None
    meta = doc.get("ResponseMetadata") if isinstance(doc, dict) else None
    if not isinstance(meta, Mapping):
        raise _malformed(action, status, f"no ResponseMetadata in {_snippet(raw)!r}")
    error = _error_from(action, status, meta)
    if error is not None:
        raise error
    if not 200 <= status < 300:
        raise _malformed(action, status, "HTTP error without ResponseMetadata.Error")
    result = doc.get("Result")
    return result if isinstance(result, dict) else {}


@dataclass(frozen=True, slots=True)
class _Wire:
    """What every attempt of one call sends, and its place in the pacing queues."""

    pairs: list[tuple[str, str]]
    payload: bytes
    priority: float | None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class LiveClient:
    """The async signed client. ``async with LiveClient(endpoint, credentials) as client: ...``.

    A session passed in is used and left open; otherwise the client opens one on first use and closes it in
    :meth:`close`. All pacing buckets live in this object: share one client between all callers.
    """

    def __init__(
        self,
        endpoint: str,
        credentials: signer.Credentials,
        *,
        session: aiohttp.ClientSession | None = None,
        write_qps: float = 10,
        list_qps: float = 15,
        create_update_qps: float | None = None,
        timeout_s: float = 10,
        max_attempts: int = 5,
        deadline_s: float = 60,
        pacing: bool = True,
        backoff: Backoff | None = None,
        max_task_seconds: int = rules.MAX_TASK_SECONDS,
        observer: CallObserver | None = None,
        instance_id: str | None = None,
        write_gate: Callable[[str], None] | None = None,
        logger: Any = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = _utcnow,
        rand: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._credentials = credentials
        self._host = host_header(self.endpoint)
        self._session = session
        self._owns_session = session is None
        self._pacer = Pacer(
            write_qps=write_qps,
            list_qps=list_qps,
            create_update_qps=create_update_qps,
            enabled=pacing,
            clock=clock,
            sleep=sleep,
        )
        self.policy = RetryPolicy(
            max_attempts=max_attempts, deadline_s=deadline_s, timeout_s=timeout_s, backoff=backoff or Backoff()
        )
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_task_seconds = max_task_seconds
        self._observer = observer
        # Several instances may share one account (high availability): the token names this one in the platform's
        # (and the emulator's) request logs. The gate raises to refuse a write when this instance may not act.
        self._user_agent = USER_AGENT if instance_id is None else f"{USER_AGENT} relayd-instance/{instance_id}"
        self._write_gate = write_gate
        self._log = logger if logger is not None else log  # a structlog-style logger; the CLI passes a quiet one
        self._clock, self._now, self._rand, self._sleep = clock, now, rand, sleep

    def use_credentials(self, credentials: signer.Credentials) -> None:
        """Sign every later request with these (a reload re-read rotated or corrected keys)."""
        self._credentials = credentials

    @property
    def pacer(self) -> Pacer:
        """The client's pacing gates (their current rates show how far throttling has slowed them)."""
        return self._pacer

    def __repr__(self) -> str:
        return f"LiveClient(endpoint={self.endpoint!r}, access_key={self._credentials.access_key!r})"

    async def __aenter__(self) -> LiveClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if this client opened it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None if self._owns_session else self._session

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=128))
        return self._session

    # --- the call ---------------------------------------------------------------------------------------

    async def call(
        self,
        action: str,
        *,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        validate: bool = True,
        priority: float | None = None,
    ) -> dict[str, Any]:
        """Send one action (validated, paced, signed, retried) and return its ``Result`` ({} if none).

        ``priority`` orders the call among those waiting at its pacing gates: a Unix time, lower first (a Create's
        or Update's StartTime); ``None`` is now, when each attempt reaches the gates.
        """
        spec = spec_for(action)
        if validate:
            self._validate(spec, query if spec.method == "GET" else body)
        payload = b"" if spec.method == "GET" else encode_body(body if body is not None else {})
        return await self._with_retries(spec, _Wire(query_pairs(action, query), payload, priority))

    def _validate(self, spec: ActionSpec, params: Mapping[str, Any] | None) -> None:
        if spec.check is None:
            return
        problems = spec.check(params or {}, int(self._now().timestamp()), self._max_task_seconds)
        if problems:
            raise ValidationError(spec.name, problems)

    async def _with_retries(self, spec: ActionSpec, wire: _Wire) -> dict[str, Any]:
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            limit_s = self.policy.attempt_timeout(self._clock() - started)
            try:
                return await self._attempt(spec, wire, attempt, limit_s)
            except (ApiError, TransportError) as error:
                delay = self._next_delay(spec, error, attempt, self._clock() - started)
            await self._sleep(delay)

    def _next_delay(self, spec: ActionSpec, error: LiveError, attempt: int, elapsed: float) -> float:
        """The delay before the next attempt; raises the final error when retrying is over."""
        decision = self.policy.decide(error, attempt=attempt, elapsed_s=elapsed, rand=self._rand())
        give_up = decision.give_up
        if give_up is None and not spec.idempotent and not error.surely_unprocessed:
            give_up = GiveUp.TERMINAL
        fields = _error_fields(error) | {"action": spec.name, "attempt": attempt}
        if give_up is not None:
            self._log.warning("api_failed", reason=give_up.value, retryable=error.retryable, **fields)
            if give_up is GiveUp.DEADLINE:
                raise DeadlineExceeded(spec.name, self.policy.deadline_s, attempt, error) from error
            raise error
        self._log.info("api_retry", delay_s=round(decision.delay_s, 3), **fields)
        return decision.delay_s

    async def _attempt(self, spec: ActionSpec, wire: _Wire, attempt: int, limit_s: float) -> dict[str, Any]:
        if self._pacer.enabled:
            priority = self._now().timestamp() if wire.priority is None else wire.priority
            await self._pacer.acquire(spec.action_class, priority)
        if self._write_gate is not None and spec.action_class is not ActionClass.LIST:
            self._write_gate(spec.name)  # checked after pacing, right before sending: a wait may outlast a lease
        started = self._clock()
        outcome = "ok"
        try:
            status, raw = await self._send(spec, wire.pairs, wire.payload, limit_s)
            result = parse_envelope(spec.name, status, raw)
        except LiveError as error:
            outcome = error.outcome
            if isinstance(error, ThrottledError):
                self._pacer.throttled(spec.action_class)
            raise
        finally:
            if self._observer is not None:
                self._observer.on_call(spec.name, outcome, self._clock() - started, attempt)
        self._pacer.succeeded(spec.action_class)
        return result

    def _headers(self, method: str, pairs: list[tuple[str, str]], payload: bytes) -> dict[str, str]:
        headers = {"Host": self._host, "Accept": "application/json", "User-Agent": self._user_agent}
        if method != "GET":
            headers["Content-Type"] = "application/json"
        return signer.sign(
            method=method,
            path="/",
            query=pairs,
            headers=headers,
            body=payload,
            credentials=self._credentials,
            now=self._now(),
        )

    async def _send(
        self, spec: ActionSpec, pairs: list[tuple[str, str]], payload: bytes, limit_s: float
    ) -> tuple[int, bytes]:
        url = wire_url(self.endpoint, tuple(pairs))
        headers = self._headers(spec.method, pairs, payload)
        try:
            async with self._get_session().request(
                spec.method,
                url,
                data=payload if spec.method != "GET" else None,
                headers=headers,
                timeout=self._timeout if limit_s == self.policy.timeout_s else aiohttp.ClientTimeout(total=limit_s),
                allow_redirects=False,
            ) as response:
                return response.status, await response.read()
        except TimeoutError as e:
            raise TransportError(spec.name, "Timeout", f"no answer within {limit_s:g} s") from e
        except aiohttp.ClientConnectorError as e:
            raise TransportError(spec.name, "ConnectError", str(e)) from e
        except aiohttp.ClientError as e:
            raise TransportError(spec.name, "ConnectionError", f"{type(e).__name__}: {e}") from e

    # --- typed actions ----------------------------------------------------------------------------------

    async def create_task(self, request: CreateTaskRequest, *, priority: float | None = None) -> TaskId:
        result = await self.call(CREATE_TASK, body=request.body(), priority=priority)
        return _parse(CREATE_TASK, CreateTaskResult, result).task_id

    async def update_task(self, request: UpdateTaskRequest, *, priority: float | None = None) -> None:
        await self.call(UPDATE_TASK, body=request.body(), priority=priority)

    async def _task_ref(self, action: str, task_id: TaskId | str, group: GroupName | str | None) -> None:
        ref = TaskRef(task_id=TaskId(task_id), group_name=GroupName(group) if group else None)
        await self.call(action, body=ref.body())

    async def delete_task(self, task_id: TaskId, group: GroupName | str | None = None) -> None:
        await self._task_ref(DELETE_TASK, task_id, group)

    async def stop_task(self, task_id: TaskId, group: GroupName | str | None = None) -> None:
        await self._task_ref(STOP_TASK, task_id, group)

    async def continue_task(self, task_id: TaskId, group: GroupName | str | None = None) -> None:
        await self._task_ref(CONTINUE_TASK, task_id, group)

    async def relaunch_task(self, task_id: TaskId, group: GroupName | str | None = None) -> None:
        await self._task_ref(RELAUNCH_TASK, task_id, group)

    async def restart_task(self, task_id: TaskId, group: GroupName | str | None = None) -> None:
        """The legacy RestartPullToPushTask (the seed examples' way to enable a disabled task)."""
        await self._task_ref(RESTART_TASK, task_id, group)

    async def list_tasks(self, query: ListTasksQuery) -> TaskPage:
        result = await self.call(LIST_TASKS, query=query.model_dump(by_alias=True, exclude_none=True))
        return _parse(LIST_TASKS, TaskPage, result)

    async def list_tasks_v2(self, request: ListTasksV2Request) -> TaskPage:
        return _parse(LIST_TASKS_V2, TaskPage, await self.call(LIST_TASKS_V2, body=request.body()))

    async def iter_tasks(
        self, *, title: str | None = None, group_names: list[str] | None = None, page_size: int = 500
    ) -> AsyncIterator[TaskItem]:
        """Every task (optionally filtered), page by page via ListPullToPushTaskV2; each TaskId once."""
        groups = [GroupName(g) for g in group_names] if group_names else None
        seen: set[str] = set()
        page_no = 1
        while True:
            request = ListTasksV2Request(group_names=groups, title=title, page=page_no, size=page_size)
            page = await self.list_tasks_v2(request)
            for item in page.items:
                if item.task_id not in seen:
                    seen.add(item.task_id)
                    yield item
            if _last_page(page, page_no, page_size):
                return
            page_no += 1

    async def create_group(self, request: CreateGroupRequest) -> None:
        await self.call(CREATE_GROUP, body=request.body())

    async def update_group(self, request: UpdateGroupRequest) -> None:
        await self.call(UPDATE_GROUP, body=request.body())

    async def delete_group(self, name: GroupName | str) -> None:
        await self.call(DELETE_GROUP, body=GroupRef(name=GroupName(name)).body())

    async def list_groups(self, request: ListGroupsRequest) -> GroupPage:
        return _parse(LIST_GROUPS, GroupPage, await self.call(LIST_GROUPS, body=request.body()))


def _last_page(page: TaskPage, page_no: int, page_size: int) -> bool:
    if not page.items:
        return True
    if page.pagination.page_total:
        return page_no >= page.pagination.page_total
    return len(page.items) < page_size


def _parse(action: str, model: type[M], result: Mapping[str, Any]) -> M:
    try:
        return model.model_validate(result)
    except pydantic.ValidationError as e:
        detail = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise ApiError(action, http_status=200, code=MALFORMED_RESPONSE, message=f"unexpected Result: {detail}") from e


def _error_fields(error: LiveError) -> dict[str, Any]:
    if isinstance(error, ApiError):
        return {"code": error.code, "request_id": error.request_id, "http_status": error.http_status}
    return {"code": error.outcome, "error": str(error)}
