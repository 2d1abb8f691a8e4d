"""The peak memory of a piece of work that runs in child processes (a notebook's kernel and its children).

``with PeakMemory() as mem: ...`` samples, in a background thread, the summed PSS (proportional set
size: shared pages split between the processes that share them, so a forked worker is not counted
twice) of every descendant of this process, and keeps the largest sum in ``mem.peak_bytes``.
"""

import threading

import psutil


def descendants_pss() -> int:
    """Summed PSS of every live descendant of this process, in bytes."""
    total = 0
    for child in psutil.Process().children(recursive=True):
        try:
            total += child.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass  # exited between listing and reading
    return total


class PeakMemory:
    def __init__(self, interval_s: float = 0.2):
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)

    def _sample(self) -> None:
        while True:
            self.peak_bytes = max(self.peak_bytes, descendants_pss())
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        return self.peak_bytes / 2**20
