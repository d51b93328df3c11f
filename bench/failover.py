"""Failover: two ``relayd run`` processes on one local PostgreSQL; the leader is SIGKILLed ``--kills`` times.

For each kill it measures the time from the SIGKILL until the other instance logs ``leader_acting`` (it holds the
lease, has reloaded the state and listed the platform, and its write gate is open), then restarts the killed
instance as a standby and waits for it to be ready before the next kill. It prints the distribution (min, median,
p90, max) and exits 1 if any failover took longer than ``--target`` seconds.

The lease settings are relayd's defaults unless given: ``lease_ttl`` 10 s, ``lease_renew_interval`` 2 s,
``lease_margin`` 3 s — so the bound is ttl + renew = 12 s plus the takeover. The PostgreSQL server comes from
Debian's ``postgresql`` package (``initdb``/``pg_ctl``), started in a temporary directory on a free port.

Usage: ``.venv/bin/python bench/failover.py [--kills 20] [--schedules 20] [--target 15]``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from relayd.emulator import Emulator, EmulatorConfig
from tests.e2e.harness import DaemonProcess, free_port, live_schedule, wait_for, write_env_config
from tests.integration.postgres import PostgresServer, bin_dir


class Node:
    def __init__(
        self, name: str, root: Path, emu: Emulator, pg: PostgresServer, schedules: str, args: argparse.Namespace
    ) -> None:
        workdir = root / name
        (workdir / "schedules").mkdir(parents=True)
        (workdir / "schedules" / "bench.toml").write_text(schedules)
        settings = {
            "endpoint": emu.url, "access_key": emu.config.access_key, "secret_key": emu.config.secret_key,
            "schedules_dir": workdir / "schedules", "state_path": workdir / "state.db",
            "listen": f"127.0.0.1:{free_port()}", "log_format": "json", "instance_id": name,
            "database_url": pg.url, "database_schema": "relayd_bench", "callback_secret": "bench-secret",
            "lease_ttl": args.lease_ttl, "lease_renew_interval": args.lease_renew, "lease_margin": args.lease_margin,
        }  # fmt: skip
        write_env_config(workdir / "relayd.toml", settings)
        self.log = workdir / "relayd.log"
        self.proc = DaemonProcess(workdir / "relayd.toml", self.log)

    def count(self, event: str) -> int:
        return self.log.read_text(errors="replace").count(f'"event": "{event}"') if self.log.exists() else 0

    @property
    def alive(self) -> bool:
        return self.proc.proc is not None and self.proc.proc.poll() is None


async def run(args: argparse.Namespace) -> int:
    bindir = bin_dir()
    if bindir is None:
        print("PostgreSQL is not installed (apt-get install postgresql)", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="relayd-failover-"))
    pg_root = Path(tempfile.mkdtemp(prefix="relayd-failover-pg-"))  # its own: the server may run as postgres
    pg = PostgresServer(pg_root, bindir)
    pg.init()
    emu = Emulator(EmulatorConfig(max_task_seconds=3600))
    await emu.start()
    now = int(time.time())
    schedules = "".join(live_schedule(f"f{n}", now - 5, now + 86400) for n in range(args.schedules))
    nodes = [Node(name, root, emu, pg, schedules, args) for name in ("a", "b")]
    times: list[float] = []
    try:
        nodes[0].proc.start()
        await wait_for(lambda: nodes[0].count("leader_acting") >= 1, 60, what="a leading")
        nodes[1].proc.start()
        await wait_for(lambda: nodes[1].count("relayd_ready") >= 1, 60, what="b ready")
        leader, standby = nodes
        for n in range(args.kills):
            acted = standby.count("leader_acting")
            killed = time.monotonic()
            leader.proc.kill()
            await wait_for(lambda s=standby, k=acted: s.count("leader_acting") > k, 120, interval=0.02, what="takeover")
            times.append(time.monotonic() - killed)
            print(f"kill {n + 1:2d}: {times[-1]:5.2f} s", flush=True)
            ready = leader.count("relayd_ready")
            leader.proc.start()
            await wait_for(
                lambda node=leader, r=ready: node.count("relayd_ready") > r, 60, what="restarted standby ready"
            )
            leader, standby = standby, leader
    finally:
        for node in nodes:
            if node.alive:
                node.proc.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
                node.proc.proc.wait(30)  # type: ignore[union-attr]
        await emu.stop()
        pg.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(pg_root, ignore_errors=True)
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    print(f"failover over {len(times)} kills (lease_ttl {args.lease_ttl} s, renew {args.lease_renew} s): "
          f"min {ordered[0]:.2f} s, median {statistics.median(ordered):.2f} s, p90 {p90:.2f} s, "
          f"max {ordered[-1]:.2f} s (target <= {args.target:g} s)")  # fmt: skip
    return 0 if ordered[-1] <= args.target else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--schedules", type=int, default=20)
    parser.add_argument("--target", type=float, default=15.0)
    parser.add_argument("--lease-ttl", type=float, default=10.0)
    parser.add_argument("--lease-renew", type=float, default=2.0)
    parser.add_argument("--lease-margin", type=float, default=3.0)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
