"""Queue ids in sendmail's 14-character format (sendmail 8.12 and later, queue.c).

An id such as ``j0O893wM016306`` starts with eight base-60 digits taken from
``0-9A-Za-x``. They encode the year modulo 60 counted from 1900, the month
(0-11), the day, hour, minute and second in UTC, and a two-digit sequence
number (0-3599). The process id follows as six decimal digits.
"""

from __future__ import annotations

import itertools
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone

DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx"
SEQUENCE_SPAN = 60 * 60
QUEUE_ID_LENGTH = 14


@dataclass(frozen=True)
class DecodedQueueId:
    """The parts of a queue id."""

    time: datetime
    sequence: int
    pid: int


class QueueIdGenerator:
    """Produces queue ids for one process.

    Ids are unique within the process while fewer than 3600 are made in one
    second, because the sequence number then wraps. Callers that keep ids
    on disk check for an existing one and request another.
    """

    def __init__(self, pid: int | None = None) -> None:
        self._pid = os.getpid() if pid is None else pid
        self._counter = itertools.count(int.from_bytes(os.urandom(2), "big") % SEQUENCE_SPAN)
        self._lock = threading.Lock()

    def new(self, now: datetime | None = None) -> str:
        """Return a new queue id for ``now`` (default: the current time)."""
        with self._lock:
            sequence = next(self._counter) % SEQUENCE_SPAN
        return encode(now or datetime.now(timezone.utc), sequence, self._pid)


def encode(when: datetime, sequence: int, pid: int) -> str:
    """Encode a time, a sequence number and a process id as a queue id."""
    if not 0 <= sequence < SEQUENCE_SPAN:
        raise ValueError(f"sequence {sequence} is outside 0..{SEQUENCE_SPAN - 1}")
    utc = when.astimezone(timezone.utc)
    fields = (
        (utc.year - 1900) % 60,
        utc.month - 1,
        utc.day,
        utc.hour,
        utc.minute,
        utc.second,
        sequence // 60,
        sequence % 60,
    )
    # sendmail prints the pid with "%06d", so large pids keep their low six digits.
    return "".join(DIGITS[value] for value in fields) + f"{pid % 1_000_000:06d}"


def decode(queue_id: str, century_hint: int | None = None) -> DecodedQueueId:
    """Decode a queue id; the year is the one nearest to ``century_hint`` (default: now)."""
    if len(queue_id) != QUEUE_ID_LENGTH or not queue_id[8:].isdigit():
        raise ValueError(f"not a sendmail queue id: {queue_id!r}")
    try:
        values = [DIGITS.index(char) for char in queue_id[:8]]
    except ValueError:
        raise ValueError(f"not a sendmail queue id: {queue_id!r}") from None
    year_mod, month, day, hour, minute, second, seq_high, seq_low = values
    reference = century_hint or datetime.now(timezone.utc).year
    # The id keeps only the year modulo 60; pick the matching year closest to the reference.
    base = reference - ((reference - 1900) % 60) + year_mod
    year = min((base - 60, base, base + 60), key=lambda candidate: abs(candidate - reference))
    when = datetime(year, month + 1, day, hour, minute, second, tzinfo=timezone.utc)
    return DecodedQueueId(time=when, sequence=seq_high * 60 + seq_low, pid=int(queue_id[8:]))


def looks_like_queue_id(text: str) -> bool:
    """Tell whether ``text`` has the shape of a sendmail queue id."""
    try:
        decode(text)
    except ValueError:
        return False
    return True
