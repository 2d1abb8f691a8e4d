"""Chapters 04 and 05: how long a call takes, measured the same way everywhere. Every call is timed on
its own (``time.perf_counter``) and reported in milliseconds.

On a shared machine load comes and goes, so comparisons alternate their calls (A, B, A, B, ...) in
rounds: a comparison that holds in every round is not an accident of when each side ran.
"""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Latency:
    ms: list[float]  # one entry per call

    @property
    def median(self) -> float:
        return statistics.median(self.ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.ms)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def call_times(fn: Callable[[], object], runs: int, warmup: int = 0) -> Latency:
    """``fn()`` timed ``runs`` times, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return Latency(times)


def median_ms(fn: Callable[[], object], runs: int = 5) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``runs`` calls."""
    return call_times(fn, runs).median


def interleaved_ms(
    fns: dict[str, Callable[[], object]], rounds: int = 5, runs: int = 5, warmup: int = 3
) -> dict[str, list[float]]:
    """Per-round median latency (ms) of each function. The calls alternate, A, B, A, B, ..., ``runs``
    times each a round: a burst of load from elsewhere slows both sides alike, not one of them."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    per_round = {name: [] for name in fns}
    for _ in range(rounds):
        times = {name: [] for name in fns}
        for _ in range(runs):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn()
                times[name].append(1000 * (time.perf_counter() - start))
        for name, ms in times.items():
            per_round[name].append(statistics.median(ms))
    return per_round


def verdict(per_round: dict[str, list[float]], a: str, b: str, margin: float = 0.1) -> str:
    """How ``a`` ran against ``b`` over interleaved rounds, in words that hold for every round: faster or
    slower by ``margin`` or more in each round (with the ratio of medians), else about as fast."""
    pairs = list(zip(per_round[a], per_round[b], strict=True))
    ratio = statistics.median(per_round[b]) / statistics.median(per_round[a])
    if all(x < (1 - margin) * y for x, y in pairs):
        return f"faster than {b} in every round ({ratio:.1f}×)"
    if all(x > (1 + margin) * y for x, y in pairs):
        return f"slower than {b} in every round ({1 / ratio:.1f}× its time)"
    return f"about as fast as {b} (not {margin:.0%} apart the same way in every round)"
