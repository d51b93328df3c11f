"""The timing and restart policy of one schedule: the daemon's settings with the schedule's own overrides.

Pure and shared: the daemon's reconcile passes, ``relayd plan --live`` and the status API's "next action" all
take the policy from :func:`policy_for`, so a per-schedule ``restart`` table changes what each of them says.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from relayd.schedules.model import RestartPolicy


@dataclass(frozen=True, slots=True)
class Policy:
    prepare_ahead: float = 3600.0
    """Create each task this long before its segment starts."""
    retention: float = 3600.0
    """Delete an ended task this long after its end."""
    max_attempts: int = 8
    """Restarts (or create retries) in one failure streak before the segment is marked failed."""
    backoff_base: float = 5.0
    backoff_factor: float = 2.0
    backoff_cap: float = 600.0
    stable_after: float = 600.0
    """Healthy this long after a restart: the attempt count starts again from zero."""
    create_retry_base: float = 5.0
    """Backoff of a failed create, update or delete (capped at ``create_retry_cap``)."""
    create_retry_cap: float = 120.0
    failed_retry_interval: float = 300.0
    """A segment whose budget is spent is still tried this often (with jitter) while its window is open."""


def policy_for(base: Policy, override: RestartPolicy | None) -> Policy:
    """``base`` with a schedule's ``restart`` overrides applied (unset keys keep the global setting)."""
    if override is None:
        return base
    return replace(
        base,
        max_attempts=override.attempts if override.attempts is not None else base.max_attempts,
        backoff_base=override.backoff_base if override.backoff_base is not None else base.backoff_base,
        backoff_cap=override.backoff_cap if override.backoff_cap is not None else base.backoff_cap,
    )
