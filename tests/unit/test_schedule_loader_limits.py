"""Hostile or careless schedule files cost bounded time and memory, and are reported, never loaded whole.

Each test measures what today's risk is: peak memory with tracemalloc (allocations by Python code, which is
where an alias bomb or a whole-value repr goes) and wall time on a monotonic clock. The bounds are generous for
a loaded machine yet far below what an unbounded load takes.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from relayd.schedules.loader import Limits, load_dir, load_file
from tests.unit.test_schedule_loader import GOOD, write

MiB = 1024 * 1024


@dataclass
class Cost:
    peak_bytes: int = 0
    seconds: float = 0.0


@contextmanager
def measured() -> Iterator[Cost]:
    cost = Cost()
    tracemalloc.start()
    started = time.monotonic()
    try:
        yield cost
    finally:
        cost.seconds = time.monotonic() - started
        cost.peak_bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def alias_bomb(levels: int) -> str:
    """A few hundred bytes of YAML whose value expands to 10**levels strings when walked."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels)]
    lines += [
        "schedule:",
        "  - id: bomb",
        f"    title: *l{levels - 1}",
        "    source: rtmp://origin.example.com/live/b",
        "    destination: rtmp://push.example.com/live/b",
        "    window: {start: 2026-01-01T00:00:00Z}",
    ]
    return "\n".join(lines) + "\n"


def test_yaml_alias_bomb_is_refused_cheaply(tmp_path: Path) -> None:
    path = write(tmp_path, "bomb.yaml", alias_bomb(7))
    assert path.stat().st_size < 1024
    with measured() as cost:
        result = load_file(path)
    assert result.schedules == []
    (problem,) = result.problems
    assert "aliases" in problem.message and problem.fix is not None
    assert len(str(problem)) < 400
    assert cost.peak_bytes < 16 * MiB, f"peak {cost.peak_bytes / MiB:.0f} MiB"
    assert cost.seconds < 5, f"{cost.seconds:.1f} s"


def test_recursive_yaml_alias_is_refused(tmp_path: Path) -> None:
    text = GOOD_YAML.replace("title: t", "title: &loop [*loop]")
    (problem,) = load_file(write(tmp_path, "loop.yaml", text)).problems
    assert "refers to itself" in problem.message


GOOD_YAML = """\
base: &dest {url: rtmp://push.example.com/live/y}
schedule:
  - id: y1
    title: t
    source: rtmp://origin.example.com/live/y
    destination: *dest
    window: {start: 2026-01-01T00:00:00Z}
"""


def test_modest_yaml_aliases_still_work(tmp_path: Path) -> None:
    text = GOOD_YAML.replace("base:", "dests:").replace("dests: &dest", "x: &dest")
    text = "schedule:\n" + "\n".join(
        f"  - id: y{i}\n    source: rtmp://o.example.com/live/{i}\n    destination: *dest\n"
        f"    window: {{start: 2026-01-01T00:00:00Z}}"
        for i in range(200)
    )
    text = text.replace("destination: *dest", "destination: &dest {url: rtmp://push.example.com/live/y}", 1)
    result = load_file(write(tmp_path, "shared.yaml", text))
    assert result.problems == []
    assert len(result.schedules) == 200
    assert {s.destination.url for s in result.schedules} == {"rtmp://push.example.com/live/y"}


def test_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    with path.open("wb") as f:
        f.truncate(64 * MiB)  # sparse: costs no disk, but reading it would cost 64 MiB and more
    with measured() as cost:
        result = load_dir(tmp_path, limits=Limits(max_file_bytes=4 * MiB))
    (problem,) = result.all_problems()
    assert problem.path == str(path)
    assert "67108864 bytes" in problem.message and "max_schedule_file_bytes" in problem.message
    assert problem.fix is not None
    assert cost.peak_bytes < 4 * MiB, f"peak {cost.peak_bytes / MiB:.0f} MiB"


def test_file_at_the_limit_loads(tmp_path: Path) -> None:
    path = write(tmp_path, "a.toml", GOOD)
    size = path.stat().st_size
    assert load_file(path, limits=Limits(max_file_bytes=size)).problems == []
    assert load_file(path, limits=Limits(max_file_bytes=size - 1)).problems != []


def many_schedules(count: int) -> str:
    return "".join(
        f'[[schedule]]\nid = "s{i}"\nsource = "rtmp://o.example.com/live/{i}"\n'
        f'destination = "rtmp://p.example.com/live/{i}"\nwindow = {{ start = 2026-01-01T00:00:00Z }}\n'
        for i in range(count)
    )


def test_a_hundred_thousand_schedules_are_refused_by_size_in_bounded_time(tmp_path: Path) -> None:
    write(tmp_path, "many.toml", many_schedules(100_000))
    started = time.monotonic()
    result = load_dir(tmp_path)  # default limits
    assert time.monotonic() - started < 3
    (problem,) = result.all_problems()
    assert "bytes" in problem.message and result.schedules() == []


class StepClock:
    """A clock that advances one second each time it is read: the budget is spent after a known amount of work."""

    def __init__(self) -> None:
        self.now = 0.0
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        self.now += 1.0
        return self.now


def test_budget_stops_loading_and_marks_the_rest_unfinished(tmp_path: Path) -> None:
    for name in "abcdef":
        write(tmp_path, f"{name}.toml", many_schedules(5).replace('"s', f'"{name}'))
    clock = StepClock()
    result = load_dir(tmp_path, limits=Limits(budget_s=8), clock=clock)
    assert [f.path.name for f in result.files] == [f"{n}.toml" for n in "abcdef"], "every file is accounted for"
    done = [f for f in result.files if not f.problems]
    unfinished = [f for f in result.files if f.problems]
    assert done and unfinished, [str(p) for p in result.all_problems()]
    assert all("schedule_load_budget" in p.message for f in unfinished for p in f.problems)
    assert all(f.schedules == [] for f in unfinished), "an unfinished file is bad as a whole"
    assert clock.reads < 40, "once spent, the budget is not read again per table"


def test_huge_valid_file_stops_within_its_budget(tmp_path: Path) -> None:
    write(tmp_path, "many.toml", many_schedules(20_000))
    started = time.monotonic()
    result = load_dir(tmp_path, limits=Limits(max_file_bytes=64 * MiB, budget_s=0.2))
    elapsed = time.monotonic() - started
    (problem,) = result.all_problems()
    assert "schedule_load_budget" in problem.message
    assert elapsed < 20, f"{elapsed:.1f} s"


def bounded(render: Callable[[], list[str]], most: int = 400) -> None:
    for text in render():
        assert len(text) < most, text[:200]


def test_messages_never_render_whole_values(tmp_path: Path) -> None:
    huge = "x" * 2_000_000
    texts = [
        GOOD.replace('id = "news"', f'id = "{huge}"'),
        GOOD + f'title = ["{huge}", 1, 2]\n',
        GOOD + f"{huge} = 1\n",
        GOOD + f'restart = {{ backoff_cap = "{huge}" }}\n',
        GOOD.replace('"rtmp://push.example.com/live/news"', f'"{huge}"'),
        GOOD + f'group = "{huge}"\n',
        GOOD + "callbacks = " + "9" * 5000 + "\n",
    ]
    for i, text in enumerate(texts):
        result = load_file(write(tmp_path, f"{i}.toml", text), limits=Limits(max_file_bytes=8 * MiB))
        assert result.problems, i
        bounded(lambda result=result: [str(p) for p in result.problems])


def test_deep_nesting_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    deep = "[" * 50_000 + "]" * 50_000
    toml = load_file(write(tmp_path, "a.toml", GOOD + f"title = {deep}\n")).problems
    yaml = load_file(write(tmp_path, "a.yaml", f"schedule: {deep}\n")).problems
    assert toml and yaml
    assert all("nested" in p.message for p in toml + yaml), [str(p) for p in toml + yaml]
