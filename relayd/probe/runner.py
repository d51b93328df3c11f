"""``relayd probe`` from start to cleanup: the order of the trials, and the facts they add up to.

Top to bottom: start the callback receiver (if it can be reached) → create the throwaway group → a plain task
(it must work) → destination uniqueness → Title limit → not-found code → list time format → past StartTime →
a running task (Update, Relaunch, Stop, Relaunch) → delete the running task → a task from an unroutable source,
watched until it shows how it fails (deleted then) → wait briefly for callbacks →
read the Create/Update throttling answers. Cleanup runs in ``finally``, shielded from cancellation, so an
interrupted probe (Ctrl-C, SIGTERM) still deletes every task it created and its group.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import structlog

from relayd.platform.facts import PlatformFacts
from relayd.probe import answers, steps
from relayd.probe.answers import Answer
from relayd.probe.receiver import Receiver
from relayd.probe.session import SLOW_QPS, ProbeSession, shielded
from relayd.probe.strategies import strategies
from relayd.volc import Credentials, LiveClient

log = structlog.get_logger("relayd.probe")

DEFAULT_SINK = "rtmp://relayd-probe.invalid/live/sink"
DEFAULT_SOURCE = "rtmp://relayd-probe.invalid/live/source"


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    sink: str = DEFAULT_SINK
    source: str = DEFAULT_SOURCE
    write_qps: float = 10.0
    """The configured write pace (the daemon's ``write_qps``): the probe never sends faster."""
    create_update_qps: float = 10.0
    """The configured Create/Update pace (the daemon's ``create_update_qps``, 1 with ``platform = "byteplus"``):
    the probe starts at the lower of this and ``write_qps``, as the daemon's client does."""
    list_qps: float = 15.0
    timeout_s: float = 10.0
    max_attempts: int = 5
    logger: Any = None
    """A structlog-style logger for the client (None = relayd's own); the CLI passes a quiet one."""
    listen: str | None = None
    """Where the callback receiver listens (the daemon's ``listen``); None = no receiver."""
    public_url: str | None = None
    callback_wait_s: float = 10.0
    failure_wait_s: float = 60.0
    """How long the failure trial watches a relay of an unroutable source (from its start) for a sign of failure;
    a platform that shows none in this time is read as failing silently (``stay-silent``)."""
    cleanup_timeout_s: float = 120.0


@dataclass
class ProbeReport:
    facts: PlatformFacts
    strategy: dict[str, str]
    run_id: str
    group: str
    leftovers: list[str] = field(default_factory=list)
    callbacks: list[dict[str, object]] = field(default_factory=list)


@dataclass
class _Found:
    """The answers gathered so far (fact name -> answer)."""

    answers: dict[str, Answer] = field(default_factory=dict)

    def facts(self) -> PlatformFacts:
        values = {name: a.value for name, a in self.answers.items() if a.value is not None}
        evidence = {name: a.evidence for name, a in self.answers.items() if a.evidence}
        return PlatformFacts(**values, evidence=evidence, source="probe")


async def run_probe(
    endpoint: str, credentials: Credentials, options: ProbeOptions, *, now: Callable[[], float] = time.time
) -> ProbeReport:
    """Probe the platform at ``endpoint``; always cleans up (also when cancelled)."""
    client = LiveClient(
        endpoint,
        credentials,
        write_qps=options.write_qps,
        list_qps=options.list_qps,
        create_update_qps=options.create_update_qps,
        timeout_s=options.timeout_s,
        max_attempts=1,  # the session retries, so that a throttled Create/Update waits for the probe's own pace
        logger=options.logger,
    )
    async with client:
        session = ProbeSession(client, _pace(options), max_attempts=options.max_attempts)
        return await _run(session, options, now, reachable_here=_loopback(endpoint))


def _pace(options: ProbeOptions) -> float:
    """The Create/Update pace the probe starts at: the daemon's (each Create/Update is a write too)."""
    return min(options.write_qps, options.create_update_qps)


def _loopback(url: str) -> bool:
    """Whether the platform at ``url`` runs on this machine (the emulator): then loopback callbacks reach it."""
    host = urlsplit(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: a remote platform
        return False


async def _run(
    session: ProbeSession, options: ProbeOptions, now: Callable[[], float], *, reachable_here: bool
) -> ProbeReport:
    # Without public_url the receiver's URL is this machine's listen address: only a platform on this machine (the
    # emulator) can reach it, and silence from a remote one would be misread as "sends no callbacks".
    wanted = options.listen is not None and (options.public_url is not None or reachable_here)
    receiver = Receiver(options.listen or "", options.public_url) if wanted else None
    found = _Found()
    try:
        receiving = receiver is not None and await receiver.start()
        trials = steps.Trials(session, options.sink, options.source, now, receiver.url if receiver else None)
        trials.callbacks = receiver.bodies if receiver is not None and receiving else []
        await _trials(trials, found, options.failure_wait_s)
        found.answers["callback_schema"] = await _callbacks(receiver, receiving, options.callback_wait_s)
        throttling = session.throttling
        found.answers["create_update_qps"] = answers.create_update_qps(
            _pace(options), throttling.fast, throttling.slow, SLOW_QPS, throttling.sent_slow
        )
    finally:
        leftovers = await shielded(session.cleanup, options.cleanup_timeout_s)
        if leftovers:
            log.warning("probe_leftovers", run_id=session.run_id, leftovers=leftovers)
        if receiver is not None:
            await receiver.stop()
    facts = found.facts()
    bodies: list[dict[str, object]] = [answers.unsigned(b) for b in receiver.bodies] if receiver else []
    return ProbeReport(facts, strategies(facts), session.run_id, session.group, leftovers, bodies)


async def _trials(trials: steps.Trials, found: _Found, failure_wait_s: float) -> None:
    await trials.session.create_group()
    first = await steps.first_task(trials)
    found.answers["destination_exclusive"], found.answers["destination_touching_ok"] = await steps.destination(
        trials, first
    )
    found.answers["title_limit"] = await steps.title_limit(trials)
    found.answers["not_found_codes"] = await steps.not_found(trials)
    found.answers["list_time_utc"] = await steps.list_time(trials)
    found.answers["past_start"] = await steps.past_start(trials)
    result = await steps.running(trials)
    found.answers["update_running"], found.answers["relaunch_from"] = result.update, result.relaunch
    await steps.end_running(trials)
    found.answers["failure_shows"] = await steps.failure(trials, failure_wait_s)


async def _callbacks(receiver: Receiver | None, receiving: bool, wait_s: float) -> Answer:
    if receiver is None:
        return answers.callback_schema([], False, 0)
    if not receiving:
        return Answer(None, receiver.problem)
    await receiver.wait(wait_s)
    return answers.callback_schema(receiver.bodies, True, wait_s)
