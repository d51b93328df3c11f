"""First paint of the console's timeline with 1,000 schedules in headless Chromium (target ≤ 1 s).

The real application and store hold 1,000 schedules of four segments each (one relaying, one ended, one planned,
and one deleted yesterday: history the timeline still draws);
a fresh headless Chromium signs in and loads ``/`` ``--loads`` times. "First paint" is the page's own mark: the
animation frame after the timeline was drawn from ``/v1/schedules?segments=1``, in ms since navigation start.

    .venv/bin/python bench/console_paint.py [--schedules 1000] [--loads 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from selenium.webdriver.common.by import By

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relayd.ids import ScheduleId
from relayd.metrics import Metrics
from relayd.store import SegmentState, Store
from relayd.web.app import WebServer, build_app
from relayd.web.views import ScheduleInfo
from tests.browser.harness import chromium, wait_until
from tests.integration.test_web_support import FakeView, segment

TOKEN = "bench-paint-token"
TARGET_MS = 1000.0


def measure(base: str, loads: int, profile: Path) -> list[float]:
    driver = chromium(profile)
    try:
        driver.get(base + "/login")
        driver.find_element(By.ID, "token").send_keys(TOKEN)
        driver.find_element(By.ID, "login-submit").click()
        painted: list[float] = []
        for _ in range(loads):
            driver.get(base + "/")
            mark = wait_until(driver, lambda d: d.execute_script("return document.body.dataset.painted"), 30, "paint")
            painted.append(float(mark))
        rows = driver.execute_script("return document.querySelectorAll('.row').length")
        print(f"rows drawn: {rows}")
        return painted
    finally:
        driver.quit()


async def main(args: argparse.Namespace) -> int:
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="relayd-bench-") as tmp:
        store = await Store.open(Path(tmp) / "state.db")
        records = []
        for i in range(args.schedules):
            sid = f"sched-{i:04d}"
            records += [
                # History: yesterday's segment, its task deleted by retention — drawn too (a week of it is sent).
                segment(sid, 9, now - 86400, now - 82800, state=SegmentState.DELETED, task_id=f"t{i}z"),
                segment(sid, 0, now - 7200, now - 3600, state=SegmentState.ENDED, task_id=f"t{i}a"),
                segment(sid, 1, now - 3600, now + 3600, state=SegmentState.RUNNING, task_id=f"t{i}b"),
                segment(sid, 2, now + 3600, now + 7200),
            ]
        await store.put_many(records)
        view = FakeView(clock=now, infos=[ScheduleInfo(ScheduleId(f"sched-{i:04d}")) for i in range(args.schedules)])
        app = build_app(store=store, view=view, metrics=Metrics(), hint=lambda *a: None, callback_secret=b"x" * 32,
                        api_token=TOKEN)  # fmt: skip
        server = WebServer(app)
        base = f"http://127.0.0.1:{await server.start('127.0.0.1', 0)}"
        try:
            painted = await asyncio.to_thread(measure, base, args.loads, Path(tmp) / "profile")
        finally:
            await server.stop()
            await store.close()
    median = statistics.median(painted)
    print(f"first paint with {args.schedules} schedules: " + ", ".join(f"{p:.0f} ms" for p in painted))
    print(f"median {median:.0f} ms; target <= {TARGET_MS:.0f} ms -> {'ok' if median <= TARGET_MS else 'MISSED'}")
    return 0 if median <= TARGET_MS else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--loads", type=int, default=3)
    sys.exit(asyncio.run(main(parser.parse_args())))
