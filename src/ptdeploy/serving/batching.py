"""Dynamic batching: requests from many threads, one model call per mini-batch.

A small queue + worker thread instead of service-streamer 0.1.2, whose ThreadedStreamer lets an
exception in the model function end its worker thread (every later request then waits for its
20 s timeout) and hands out task ids without a lock (two request threads can get the same id).
"""

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any


class Batcher:
    """Collect items submitted from any thread and run ``fn`` on lists of up to ``max_batch_size``.

    A batch closes when it is full or ``max_latency`` seconds after its first item arrived.
    If ``fn`` raises on a batch, each item is retried alone, so one bad item fails only its
    own request and the worker thread keeps running.
    """

    def __init__(
        self,
        fn: Callable[[list[Any]], Sequence[Any]],
        max_batch_size: int = 8,
        max_latency: float = 0.005,
    ):
        self._fn = fn
        self.max_batch_size = max_batch_size
        self.max_latency = max_latency
        self._queue: queue.Queue = queue.Queue()
        self.batch_sizes: Counter[int] = Counter()  # batch size -> how many ran (bounded memory)
        self._thread = threading.Thread(target=self._run, name="batcher", daemon=True)
        self._thread.start()

    def submit(self, item: Any) -> Future:
        future: Future = Future()
        self._queue.put((item, future))
        return future

    def __call__(self, item: Any, timeout: float | None = 30.0) -> Any:
        return self.submit(item).result(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _collect(self) -> list | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        deadline = time.monotonic() + self.max_latency
        while len(batch) < self.max_batch_size:
            try:
                item = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                break
            if item is None:  # close() while collecting: finish this batch, then stop
                self._queue.put(None)
                break
            batch.append(item)
        return batch

    def _run(self) -> None:
        while (batch := self._collect()) is not None:
            self.batch_sizes[len(batch)] += 1
            items = [item for item, _ in batch]
            try:
                results = self._fn(items)
                if len(results) != len(items):
                    raise RuntimeError(
                        f"batch function returned {len(results)} results for {len(items)} items"
                    )
            except Exception:
                for item, future in batch:  # find the culprit: every other item still gets its answer
                    try:
                        future.set_result(self._fn([item])[0])
                    except Exception as exc:
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results):
                future.set_result(result)
