"""Bound the image decodes a worker runs at once, so that a burst of large uploads cannot exhaust memory.

Each decode reserves the bytes its pixels will take (``images.decoded_bytes``) out of a per-worker
budget, and one of a fixed number of decode slots. A request that finds no room waits in a bounded
queue; when that queue is full, or the wait is too long, it is turned away with 503 and
``Retry-After`` at once, instead of piling up more pixels in memory.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Busy(Exception):
    """No room to decode now; the client should retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class DecodeBudget:
    """At most ``slots`` decodes holding at most ``budget_bytes`` in all; at most ``max_waiting`` wait."""

    def __init__(self, budget_bytes: int, slots: int, max_waiting: int, max_wait_s: float):
        self.budget_bytes = budget_bytes
        self.slots = slots
        self.max_waiting = max_waiting
        self.max_wait_s = max_wait_s
        self._free_bytes = budget_bytes
        self._free_slots = slots
        self._waiting = 0
        self._room = threading.Condition()
        self.turned_away = 0  # requests answered 503 so far

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        # A decode larger than the whole budget may still run, alone: the pixel cap bounds it.
        nbytes = min(nbytes, self.budget_bytes)
        with self._room:
            if not self._fits(nbytes):
                if self._waiting >= self.max_waiting:
                    self.turned_away += 1
                    raise Busy("The server is busy decoding other images; retry in a moment.")
                self._waiting += 1
                try:
                    fits = self._room.wait_for(lambda: self._fits(nbytes), self.max_wait_s)
                finally:
                    self._waiting -= 1
                if not fits:
                    self.turned_away += 1
                    raise Busy("The server was too busy to decode this image in time; retry in a moment.")
            self._free_bytes -= nbytes
            self._free_slots -= 1
        try:
            yield
        finally:
            with self._room:
                self._free_bytes += nbytes
                self._free_slots += 1
                self._room.notify_all()

    def _fits(self, nbytes: int) -> bool:
        return self._free_slots > 0 and self._free_bytes >= nbytes
