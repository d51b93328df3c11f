"""Alert targets: where notifications go and which ones each place wants.

In the settings, ``alert_urls`` is a list whose entries are either an Apprise URL string (every alert) or a table
that narrows it::

    alert_urls = [
      "feishu://TOKEN",                                                        # everything
      { url = "mailto://user:pass@example.com", min_severity = "critical" },   # only critical
      { url = "wecombot://KEY", kinds = ["segment_failing", "stream_down"] },  # only these kinds
    ]

From the environment (``RELAYD_ALERT_URLS``) the value is either a JSON list of the same shape or URLs separated
by whitespace. Test notifications go to every target, whatever its filter. A URL is never shown as written: see
:mod:`relayd.alerts.redact`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from relayd.alerts.model import AlertKind, Notification, Severity, Transition
from relayd.alerts.redact import redact_url


class AlertTarget(BaseModel):
    """One Apprise URL and the notifications it takes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(min_length=1, description="Apprise URL (secret: shown redacted).")
    min_severity: Severity = Field(Severity.INFO, description="Least severe alert sent here.")
    kinds: frozenset[AlertKind] | None = Field(None, description="Alert kinds sent here; unset = all.")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: object) -> object:
        return {"url": value} if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError("must be an Apprise URL like scheme://... (e.g. json://host/path, feishu://TOKEN)")
        return value.strip()

    @property
    def shown(self) -> str:
        """The URL as it may be shown anywhere: secrets replaced by ``***``."""
        return redact_url(self.url)

    @property
    def ident(self) -> str:
        """A stable id that does not reveal the URL (durable state records which targets still owe a send)."""
        return hashlib.sha256(self.url.encode()).hexdigest()[:16]

    def accepts(self, notification: Notification) -> bool:
        if notification.transition is Transition.TEST:
            return True
        alert = notification.alert
        if alert.severity.rank < self.min_severity.rank:
            return False
        return self.kinds is None or alert.kind in self.kinds

    def describe(self) -> dict[str, Any]:
        """JSON-able and redacted, for ``relayd config show`` and status."""
        kinds = sorted(k.value for k in self.kinds) if self.kinds is not None else None
        return {"url": self.shown, "min_severity": self.min_severity.value, "kinds": kinds}


def parse_alert_urls(value: object) -> object:
    """The settings' ``alert_urls`` before validation: a string from the environment becomes a list."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"is not a valid JSON list ({e.msg} at character {e.pos})") from None
    return text.split()


def target_label(index: int, target: AlertTarget) -> str:
    """A metric label and log field naming a target without its secrets: ``#1 slack://***/***``."""
    return f"#{index} {target.shown}"


def unusable_targets(targets: Sequence[AlertTarget]) -> list[str]:
    """Redacted URLs Apprise cannot use (unknown scheme, bad form). Apprise is loaded only when there are targets."""
    if not targets:
        return []
    from apprise import Apprise  # noqa: PLC0415 - a third of a second of imports, only when alerts are configured

    with quiet_apprise():
        return [t.shown for t in targets if Apprise.instantiate(t.url) is None]


@contextlib.contextmanager
def quiet_apprise() -> Iterator[None]:
    """Silence Apprise's logger: its "unparseable URL" lines quote parts of the URL; our own error names it redacted."""
    logger = logging.getLogger("apprise")
    was = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was
