"""Which schedules' segment records changed lately, in order: the web console's "what moved since I last looked".

Why a journal and not a scan: finding the changed schedules by scanning every record's ``updated_at`` costs a sort
of every segment per look (tens of milliseconds at 10,000 schedules), on the loop that answers callbacks. Noting
the schedule id as the mirror changes costs one append per write, and a reader that keeps its position (``seq``)
gets exactly what moved since. The journal is bounded: a reader that falls further behind than it keeps is told so
(``None``) and reads everything instead.
"""

from __future__ import annotations

import itertools
from collections import deque

from relayd.ids import ScheduleId

DEFAULT_KEEP = 4096


class ChangeJournal:
    """The last ``keep`` schedule ids whose segment records changed, and how many were ever noted (``seq``)."""

    def __init__(self, keep: int = DEFAULT_KEEP) -> None:
        self._entries: deque[ScheduleId] = deque(maxlen=keep)
        self.seq = 0

    def note(self, schedule_id: ScheduleId) -> None:
        self._entries.append(schedule_id)
        self.seq += 1

    def since(self, seq: int) -> frozenset[ScheduleId] | None:
        """The schedules noted after position ``seq``; None when some of them are no longer kept."""
        missed = self.seq - seq
        if missed <= 0:
            return frozenset()
        if missed > len(self._entries):
            return None
        return frozenset(itertools.islice(self._entries, len(self._entries) - missed, None))
