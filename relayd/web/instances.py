"""``GET /v1/instances``: every relayd instance sharing this installation's store, its role, lease and heartbeat.

Why a route of its own: with several instances on one PostgreSQL database (high availability), an operator asking
any of them must see all of them — which one leads, until when its lease runs, and when each last reported — to
tell a healthy standby from a dead one. The rows come from the shared store's ``instances`` table (each instance
heartbeats into it); ``self`` is the answering instance's own view of its role, which is the truth for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from relayd.store import StoreError
from relayd.store.leases import InstanceInfo, Role
from relayd.web.errors import Unavailable

INSTANCES_ROUTE = "/v1/instances"


class StandingView(Protocol):
    """This instance's role as the elector reports it (``relayd.leadership.Standing`` fits)."""

    @property
    def role(self) -> str: ...

    @property
    def following(self) -> bool: ...

    def as_json(self) -> dict[str, Any]: ...


Instances = Callable[[], Awaitable[list[InstanceInfo]]]
Standings = Callable[[], StandingView]


def instance_json(info: InstanceInfo, now: float, lease_s: float) -> dict[str, Any]:
    """One instance row; ``stale`` when it has not reported for two lease lengths (likely dead or cut off)."""
    age = max(0.0, now - info.heartbeat_at)
    expires_in = None if info.lease_expires_at is None else round(info.lease_expires_at - now, 1)
    return {
        "instance_id": info.instance_id,
        "role": info.role.value,
        "heartbeat_at": info.heartbeat_at,
        "heartbeat_age_s": round(age, 1),
        "lease_expires_at": info.lease_expires_at if info.role == Role.LEADER else None,
        "lease_expires_in_s": expires_in if info.role == Role.LEADER else None,
        "stale": age > 2 * lease_s,
    }


class InstancesApi:
    def __init__(self, *, instances: Instances, standing: Standings, now: Callable[[], float], lease_s: float) -> None:
        self._instances = instances
        self.standing = standing
        self._now = now
        self._lease_s = lease_s

    def routes(self) -> list[web.RouteDef]:
        return [web.get(INSTANCES_ROUTE, self.list_instances)]

    async def list_instances(self, request: web.Request) -> web.Response:
        try:
            rows = await self._instances()
        except StoreError as error:
            raise Unavailable(str(error), code="store_unavailable") from None
        now = self._now()
        return web.json_response(
            {
                "self": self.standing().as_json(),
                "instances": [instance_json(info, now, self._lease_s) for info in rows],
            }
        )
