"""Benchmark: load, validate and plan 10,000 schedules; target <= 2 s on the project's 2-core machine.

Writes a temporary directory of 100 TOML files x 100 schedules with a realistic mix (60% live windows that run
for months, 15% forever relays, 15% daily recurrences in a DST zone, 10% VOD playlists with durations and a
finite loop; every tenth schedule has a watermark sharing one PNG), then times ``load_dir`` and ``plan`` for every
schedule at one instant with the default cap and 14-day horizon. Prints the figures and exits 1 over target.

    .venv/bin/python bench/plan_10k.py [--count N] [--target-s S]
"""

from __future__ import annotations

import argparse
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

from relayd.schedules.loader import load_dir
from relayd.schedules.planner import plan

NOW = 1_770_681_600  # 2026-02-10T00:00:00Z
PER_FILE = 100

LIVE = """
[[schedule]]
id = "live-{i}"
title = "Live relay {i}"
group = "bench"
source = "rtmp://origin.example.com/live/s{i}"
destination = "rtmp://push.example.net/live/s{i}"
window = {{ start = 2025-12-01T00:00:00+08:00, end = 2026-04-01T00:00:00+08:00 }}
{extra}"""
FOREVER = """
[[schedule]]
id = "forever-{i}"
source = "srt://camera.example.com:9000?streamid=s{i}"
destination = {{ domain = "push.example.net", app = "live", stream = "s{i}" }}
window = {{ start = "2025-06-01T00:00:00Z" }}
{extra}"""
DAILY = """
[[schedule]]
id = "daily-{i}"
source = "https://origin.example.com/live/s{i}.flv"
destination = "rtmp://push.example.net/live/d{i}"
recurrence = {{ cron = "0 20 * * *", duration = "2h", timezone = "Europe/Berlin" }}
{extra}"""
VOD = """
[[schedule]]
id = "vod-{i}"
destination = "rtmp://push.example.net/live/v{i}"
window = {{ start = 2026-01-01T09:00:00, end = 2026-06-01T09:00:00, timezone = "Asia/Shanghai" }}
source = {{ loop = 300, playlist = [
  {{ url = "https://vod.example.com/a{i}.mp4", duration = 1800 }},
  {{ url = "https://vod.example.com/b{i}.mp4", duration = 2700.5, start_offset = 10 }},
] }}
{extra}"""
WATERMARK = 'watermark = { file = "logo.png", x = 0.8, y = 0.05, ratio = 0.1 }\n'


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes((x % 256, y % 256, 128, 255)) * 1 for y in range(32) for x in range(64))
    ihdr = struct.pack(">IIBBBBB", 64, 32, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _template(i: int) -> str:
    bucket = i % 20
    if bucket < 12:
        return LIVE
    if bucket < 15:
        return FOREVER
    if bucket < 18:
        return DAILY
    return VOD


def write_dir(root: Path, count: int) -> None:
    (root / "logo.png").write_bytes(_png())
    for start in range(0, count, PER_FILE):
        parts = [
            _template(i).format(i=i, extra=WATERMARK if i % 10 == 0 else "")
            for i in range(start, min(start + PER_FILE, count))
        ]
        (root / f"bench-{start // PER_FILE:04d}.toml").write_text("".join(parts), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--target-s", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relayd-bench-") as tmp:
        root = Path(tmp)
        write_dir(root, args.count)
        started = time.perf_counter()
        result = load_dir(root)
        loaded = time.perf_counter()
        schedules = result.schedules()
        segments = sum(
            len(plan(s, now=NOW, max_task_seconds=604800, horizon_s=14 * 86400, namespace="relayd")) for s in schedules
        )
        planned = time.perf_counter()
    problems = result.all_problems()
    total = planned - started
    print(
        f"plan_10k: {len(schedules)} schedules, {segments} segments, {len(problems)} problems; "
        f"load+validate {loaded - started:.3f} s, plan {planned - loaded:.3f} s, total {total:.3f} s "
        f"(target <= {args.target_s:.1f} s, {total / args.target_s:.0%} of target)"
    )
    if problems or len(schedules) != args.count:
        print(f"unexpected problems: {problems[:3]}", file=sys.stderr)
        return 1
    return 0 if total <= args.target_s else 1


if __name__ == "__main__":
    sys.exit(main())
