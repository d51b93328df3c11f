"""High-availability chaos, the full scenario: three ``relayd run`` instances on one local PostgreSQL, 12 schedules
on a 20 s task cap, the leader SIGKILLed or SIGSTOPped (SIGCONTed 30-60 s later) 15 times at random and PostgreSQL
restarted once, at relayd's default lease settings (ttl 10 s, renew 2 s, margin 3 s).

It prints each event with the failover time, the distribution, the platform writes per instance (from the
emulator's journal), the unleased writes (judged against the lease log the database keeps), duplicates, overlaps,
the longest relay gap and whether the platform holds exactly the plan at the end; it exits 1 on any violation.
``tests/e2e/chaos.py`` has the scenario and how each invariant is judged; ``tests/e2e/test_ha_chaos.py`` runs the
same with ``RELAYD_CHAOS_FULL=1`` (and a compact variant in CI).

Usage: ``.venv/bin/python bench/ha_chaos.py [--seed 20] [--events 15]``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import sys
import tempfile
from pathlib import Path

from relayd.emulator import Emulator, EmulatorConfig
from tests.e2e.chaos import FULL, Chaos, figures
from tests.integration.postgres import PostgresServer, bin_dir


async def run(args: argparse.Namespace) -> int:
    bindir = bin_dir()
    if bindir is None:
        print("PostgreSQL is not installed (apt-get install postgresql)", file=sys.stderr)
        return 2
    config = dataclasses.replace(FULL, seed=args.seed, events=args.events)
    root = Path(tempfile.mkdtemp(prefix="relayd-chaos-"))
    pg_root = Path(tempfile.mkdtemp(prefix="relayd-chaos-pg-"))  # its own: the server may run as postgres
    pg = PostgresServer(pg_root, bindir)
    pg.init()
    emu = Emulator(EmulatorConfig(max_task_seconds=config.cap))
    await emu.start()
    try:
        report = await Chaos(emu, pg, "relayd_chaos", root, config).run()
    finally:
        await emu.stop()
        pg.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(pg_root, ignore_errors=True)
    print(figures(report))
    for problem in report.violations:
        print(f"VIOLATION {problem}")
    return 1 if report.violations else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=FULL.seed)
    parser.add_argument("--events", type=int, default=FULL.events)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
