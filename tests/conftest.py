"""Suite-wide fixtures: fail any test that leaves asyncio tasks running; reset logging between tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> AsyncIterator[None]:
    before = set(asyncio.all_tasks())
    yield
    current = asyncio.current_task()
    leaked = [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]
    if leaked:
        # Give cancelled-but-not-yet-finished tasks one chance to finish before calling it a leak.
        await asyncio.wait(leaked, timeout=1.0)
        leaked = [t for t in leaked if not t.done()]
    for task in leaked:
        task.cancel()
    assert not leaked, f"test leaked asyncio tasks: {[t.get_name() for t in leaked]}"


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """CLI commands configure structlog process-wide; give every test the defaults back."""
    yield
    structlog.reset_defaults()
