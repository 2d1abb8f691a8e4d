"""The one way chapters time a call: Latency, call_times, median_ms, interleaved rounds."""

from ptdeploy.lessons import timing


def test_call_times_warms_up_then_times_each_call():
    calls = []
    latency = timing.call_times(lambda: calls.append(1), runs=7, warmup=2)
    assert len(calls) == 9 and len(latency.ms) == 7 and all(ms >= 0 for ms in latency.ms)


def test_median_and_p99_of_known_times():
    latency = timing.Latency([float(ms) for ms in range(1, 102)])  # 1 .. 101 ms
    assert latency.median == 51 and latency.p99 == 100


def test_median_ms_calls_fn_runs_times():
    calls = []
    ms = timing.median_ms(lambda: calls.append(1), runs=7)
    assert len(calls) == 7 and ms >= 0


def test_interleaved_ms_alternates_the_functions_round_by_round():
    calls = []
    per_round = timing.interleaved_ms(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3, 2, 1
    )
    assert calls == ["a", "b"] + ["a", "b", "a", "b"] * 3  # warm-up, then A, B, A, B, ... call by call
    assert list(per_round) == ["a", "b"] and all(len(ms) == 3 for ms in per_round.values())


def test_verdict_says_faster_slower_or_about_the_same_only_when_every_round_agrees():
    rounds = {"a": [10.0, 11.0, 10.0], "b": [20.0, 22.0, 19.0], "c": [10.5, 9.0, 10.0]}
    assert timing.verdict(rounds, "a", "b") == "faster than b in every round (2.0×)"
    assert timing.verdict(rounds, "b", "a").startswith("slower than a in every round")
    assert timing.verdict(rounds, "a", "c").startswith("about as fast as c")
