"""The settings a platform fact tightens: a shorter Title limit and a lower Create/Update rate win over the setting.

Why: ``relayd probe --write`` tells what the account accepts, and the report says relayd will keep to it. An
operator who sets ``platform_facts`` but leaves ``platform`` at its default (so ``title_limit = 20`` and
``create_update_qps = 10``) would otherwise get Titles the platform refuses and Creates it throttles. Facts only
tighten: a setting stricter than the platform needs is the operator's choice and stays. A fact never loosens.

:func:`tightenings` is pure (settings and facts in, the changes out); :func:`with_facts` applies them to a copy of
the settings and logs each one once (``platform_fact_applied``), at start-up, where the daemon reads the file
(:func:`platform_facts`; ``relayd plan`` reads it the same way, so it shows the Titles the daemon makes).
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from relayd.platform.facts import FactsError, PlatformFacts, load_facts
from relayd.schedules.titles import TitleLength
from relayd.settings import Settings, SettingsError

log = structlog.get_logger("relayd.tightening")


@dataclass(frozen=True, slots=True)
class Tightening:
    """One setting a fact makes stricter: ``setting`` goes from ``configured`` to ``applied`` because the fact
    ``fact`` is ``found``."""

    fact: str
    setting: str
    found: float
    configured: float
    applied: float


def tag_length(limit: int | None) -> TitleLength:
    """The Title tag length that fits a platform Title limit (unknown: the full 20-character tag).

    relayd's tags come in two lengths (``relayd.schedules.titles``): any limit below 20 takes the short one."""
    return TitleLength.FULL if limit is None or limit >= TitleLength.FULL else TitleLength.SHORT


def tightenings(settings: Settings, facts: PlatformFacts | None) -> list[Tightening]:
    """Which settings the facts make stricter, and to what; [] when the facts are unknown or looser."""
    if facts is None:
        return []
    found: list[Tightening] = []
    limit = facts.title_limit
    if limit is not None and tag_length(limit) < settings.title_limit:
        found.append(Tightening("title_limit", "title_limit", limit, settings.title_limit, tag_length(limit)))
    qps = facts.create_update_qps
    if qps is not None and qps < settings.create_update_qps:
        found.append(Tightening("create_update_qps", "create_update_qps", qps, settings.create_update_qps, qps))
    return found


def with_facts(settings: Settings, facts: PlatformFacts | None) -> Settings:
    """``settings`` with every setting the facts tighten set to the stricter value (each change logged)."""
    _check_title_limit(settings, facts)
    changes = tightenings(settings, facts)
    for change in changes:
        log.warning(
            "platform_fact_applied",
            fact=change.fact,
            found=change.found,
            setting=change.setting,
            configured=change.configured,
            applied=change.applied,
            note="the platform facts file is stricter than the setting: the daemon keeps to the platform",
        )
    update = {change.setting: _typed(change) for change in changes}
    return settings.model_copy(update=update) if update else settings


def _typed(change: Tightening) -> int | float:
    return int(change.applied) if change.setting == "title_limit" else change.applied


def _check_title_limit(settings: Settings, facts: PlatformFacts | None) -> None:
    """A limit below the short tag cannot be met by any Title relayd makes: stop start-up rather than fail every
    Create."""
    if facts is not None and facts.title_limit is not None and facts.title_limit < TitleLength.SHORT:
        raise SettingsError(
            [
                f"platform_facts {settings.platform_facts}: title_limit {facts.title_limit} is shorter than relayd's "
                f"shortest Title tag ({int(TitleLength.SHORT)} characters) — run `relayd probe --write` again, or "
                "remove title_limit from the file if it was edited by hand"
            ]
        )


def platform_facts(settings: Settings) -> PlatformFacts | None:
    """The facts file ``relayd probe`` wrote (setting ``platform_facts``); None: assume nothing, learn from refusals."""
    path = settings.platform_facts
    if path is None:
        return None
    try:
        facts, unknown = load_facts(path)
    except FactsError as error:
        raise SettingsError([f"platform_facts: {error}"]) from None
    if unknown:
        log.warning("platform_facts_unknown", path=str(path), names=unknown, note="written by a newer relayd probe?")
    log.info("platform_facts_loaded", path=str(path), facts=facts.known())
    return facts
