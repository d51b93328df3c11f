"""High-availability chaos: three ``relayd run`` instances on one real PostgreSQL and one emulator.

The leader is SIGKILLed (and restarted as a standby) or SIGSTOPped (and SIGCONTed later) at random, and PostgreSQL
is restarted once midway. From the emulator's history and its write journal tagged per instance, and the lease
log the database keeps: no task is ever duplicated, no platform write is made without a valid lease, every
failover and every relay gap stays within the failover bound, and the platform holds exactly the plan at the end.

CI runs the compact scenario (five events, short leases and pauses, under 90 s); ``RELAYD_CHAOS_FULL=1`` runs the
full one (15 events over about three minutes at the default lease settings, pauses of 30-60 s), as
``bench/ha_chaos.py`` does. ``tests/e2e/chaos.py`` describes how each invariant is judged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.chaos import COMPACT, FULL, Chaos, Kind, Tenure, excessive_gaps, figures, tenures, unleased_writes
from tests.integration.postgres import PostgresServer

CONFIG = FULL if os.environ.get("RELAYD_CHAOS_FULL") == "1" else COMPACT

# the lease log: a leads (epoch 1, renewed), lapses; b takes epoch 2; b restarts and asks again (same epoch)
LOG = [("", 0, 0.0, 0.0), ("a", 1, 110.0, 100.0), ("a", 1, 112.0, 102.0), ("b", 2, 125.0, 115.0),
       ("b", 2, 127.0, 117.0)]  # fmt: skip


def _write(instance: str, at: float, action: str = "CreatePullToPushTask") -> dict[str, Any]:
    return {"time": at, "action": action, "instance": instance, "code": "OK"}


def test_the_lease_log_becomes_one_tenure_per_epoch_from_its_grant_to_its_last_expiry() -> None:
    assert tenures(LOG) == [Tenure(1, "a", 100.0, 112.0), Tenure(2, "b", 115.0, 127.0)]


def test_a_write_counts_as_unleased_outside_its_instances_tenure_and_reads_never_count() -> None:
    held = tenures(LOG)
    fine = [_write("a", 100.5), _write("a", 111.9), _write("b", 115.0), _write("b", 126.0)]
    standby = _write("b", 105.0)  # b wrote while a held the lease
    resumed = _write("a", 116.0)  # a paused past its lease wrote after b took over
    early = _write("a", 99.0)  # before any lease was granted to a
    late = _write("b", 127.5)  # after b's lease lapsed
    listing = _write("c", 105.0, "ListPullToPushGroup")  # a read in the platform's write class
    assert unleased_writes([*fine, standby, resumed, early, late, listing], held) == [standby, resumed, early, late]


def test_relay_gaps_beyond_the_failover_bound_are_flagged_and_an_outage_extends_the_bound_across_it() -> None:
    chain = [(0.0, 10.0, "t1"), (10.0, 20.0, "t2"), (34.0, 40.0, "t3"), (70.0, 80.0, "t4")]
    assert excessive_gaps(chain, 15.0, None) == ["t3 -> t4: 30.0 s without a relay from 00:00:40Z (bound 15.0 s)"]
    assert excessive_gaps(chain, 15.0, (45.0, 62.0)) == []  # the gap spans the database outage: 15 + 17 s
    assert excessive_gaps(chain, 12.0, None) == [
        "t2 -> t3: 14.0 s without a relay from 00:00:20Z (bound 12.0 s)",
        "t3 -> t4: 30.0 s without a relay from 00:00:40Z (bound 12.0 s)",
    ]


@pytest.mark.slow
@pytest.mark.timeout(900 if CONFIG is FULL else 300)
async def test_leaders_killed_and_paused_at_random_and_a_database_restart_never_break_the_lease_or_the_plan(
    emulator: Any, postgres: PostgresServer, pg_schema: str, tmp_path: Path
) -> None:
    emu = await emulator(max_task_seconds=CONFIG.cap, admin=True)
    report = await Chaos(emu, postgres, pg_schema, tmp_path, CONFIG).run()
    print(figures(report))
    assert report.violations == [], figures(report)
    assert len(report.events) == CONFIG.events + 1  # every strike and the database restart led to a new leader
    assert {e.kind for e in report.events} >= {Kind.DATABASE}
    assert report.outage is not None
    assert report.epochs > CONFIG.events  # each failover granted a new fencing epoch
    assert len([n for n, count in report.writes.items() if count]) >= 2  # more than one instance acted
