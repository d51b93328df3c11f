"""The Volcengine Live platform adapter: an async signed, paced, retrying client with typed models and errors.

Public API (import from here; the submodules are implementation):

* :class:`LiveClient` (the engine reaches it through ``relayd.platform.Platform``, never directly);
* the request/response models (:mod:`relayd.volc.models`);
* the errors (:mod:`relayd.volc.errors`), classified retryable or terminal;
* :class:`Credentials` from the signer.
"""

from __future__ import annotations

from relayd.volc.client import DEFAULT_ENDPOINT, CallObserver, LiveClient
from relayd.volc.errors import (
    ApiError,
    DeadlineExceeded,
    LiveError,
    ThrottledError,
    TransportError,
    ValidationError,
)
from relayd.volc.models import (
    CreateGroupRequest,
    CreateTaskRequest,
    GroupItem,
    GroupPage,
    ListGroupsRequest,
    ListTasksQuery,
    ListTasksV2Request,
    Pagination,
    SourceType,
    Tag,
    TaskItem,
    TaskPage,
    TaskStatus,
    UpdateGroupRequest,
    UpdateTaskRequest,
    VodSrcAddr,
    Watermark,
)
from relayd.volc.rules import Problem
from relayd.volc.signer import Credentials

__all__ = [
    "DEFAULT_ENDPOINT",
    "ApiError",
    "CallObserver",
    "CreateGroupRequest",
    "CreateTaskRequest",
    "Credentials",
    "DeadlineExceeded",
    "GroupItem",
    "GroupPage",
    "ListGroupsRequest",
    "ListTasksQuery",
    "ListTasksV2Request",
    "LiveClient",
    "LiveError",
    "Pagination",
    "Problem",
    "SourceType",
    "Tag",
    "TaskItem",
    "TaskPage",
    "TaskStatus",
    "ThrottledError",
    "TransportError",
    "UpdateGroupRequest",
    "UpdateTaskRequest",
    "ValidationError",
    "VodSrcAddr",
    "Watermark",
]
