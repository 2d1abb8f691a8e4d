"""Chapter 07: check Holistic Trace Analysis' answers against the ground truth of
:mod:`ptdeploy.lessons.tracegen` traces.

:func:`comparison_table` asks HTA the questions the HTA tutorial asks (without plots) and puts each answer
next to what the generator injected (the knob) and what it really produced (the ground truth, computed
from the generated events). Every row states a tolerance and whether HTA is *expected* to agree: one row
is a known difference, where HTA's host-wait rule and the real cause part ways (see notebook 07).
"""

from __future__ import annotations

import pandas as pd

from ptdeploy.lessons.tracegen import COMM_STREAM, COMPUTE_STREAM, LAUNCH_DELAY_CUTOFF_US, RUNTIME_CUTOFF_US


def _row(check, rank, injected, truth, hta, tolerance, expect_agree=True):
    agrees = abs(float(truth) - float(hta)) <= tolerance
    return {
        "check": check,
        "rank": rank,
        "injected": injected,
        "truth": round(float(truth), 2),
        "HTA": round(float(hta), 2),
        "tolerance": tolerance,
        "expected": "agree" if expect_agree else "differ",
        "as expected": agrees == expect_agree,
    }


def _idle_shares(idle_df: pd.DataFrame, rank: int, stream: int) -> dict[str, float]:
    rows = idle_df[(idle_df["rank"] == rank) & (idle_df["stream"].astype(int) == stream)]
    total = rows["idle_time"].sum()
    return {
        cat: 100.0 * rows.loc[rows["idle_category"] == cat, "idle_time"].sum() / total
        for cat in ("host_wait", "kernel_wait", "other")
    }


def comparison_table(analyzer, truth: dict, rank: int = 0) -> pd.DataFrame:
    """HTA's answers next to the injected knobs and the ground truth, one row per check."""
    cfg, per_rank = truth["config"], truth["ranks"]
    n_steps = len(truth["analysed_steps"])
    rows = []

    temporal = analyzer.get_temporal_breakdown(visualize=False).set_index("rank")
    for r, t in per_rank.items():
        rows.append(_row("GPU idle time (%)", r, "", t["idle_pct"], temporal.loc[r, "idle_time_pctg"], 0.05))

    idle_df, _ = analyzer.get_idle_time_breakdown(ranks=[rank], visualize=False)
    t_idle = per_rank[rank]["idle_us_by_cause"][COMPUTE_STREAM]
    t_total = sum(t_idle.values())
    hta_idle = _idle_shares(idle_df, rank, COMPUTE_STREAM)
    stream = f"stream {COMPUTE_STREAM}"
    rows.append(
        _row(
            f"host wait, % of idle, {stream}",
            rank,
            f"{cfg['host_stall_us']} us stall/step",
            100.0 * t_idle["host"] / t_total,
            hta_idle["host_wait"],
            0.1,
        )
    )
    rows.append(
        _row(
            f"kernel wait, % of idle, {stream}",
            rank,
            f"{cfg['kernel_gap_us']} us after each queued kernel",
            100.0 * t_idle["kernel"] / t_total,
            hta_idle["kernel_wait"],
            0.1,
        )
    )
    rows.append(
        _row(
            f"other wait, % of idle, {stream}",
            rank,
            "waits for all-reduce",
            100.0 * t_idle["other"] / t_total,
            hta_idle["other"],
            0.1,
        )
    )
    c_idle = per_rank[rank]["idle_us_by_cause"][COMM_STREAM]
    hta_comm = _idle_shares(idle_df, rank, COMM_STREAM)
    rows.append(
        _row(
            f"host wait, % of idle, stream {COMM_STREAM} (NCCL)",
            rank,
            "none (waits for grads)",
            100.0 * c_idle["host"] / sum(c_idle.values()),
            hta_comm["host_wait"],
            0.1,
            expect_agree=False,
        )
    )

    overlap = analyzer.get_comm_comp_overlap(visualize=False).set_index("rank")
    for r, t in per_rank.items():
        rows.append(
            _row(
                "comm/comp overlap (%)",
                r,
                f"{100 * cfg['overlap']:.0f} (asked for)",
                t["overlap_pct"],
                overlap.loc[r, "comp_comm_overlap_pctg"],
                0.05,
            )
        )

    injected = truth["straggler_rank"]
    if injected is not None:  # without a straggler HTA still names the latest rank; nothing to compare
        stragglers = analyzer.get_potential_stragglers(num_candidates=1)
        rows.append(
            _row(
                "straggler rank",
                "all",
                f"rank {injected}, x{cfg['straggler_slowdown']} slower",
                injected,
                stragglers[0],
                0,
            )
        )

    launches = analyzer.get_cuda_kernel_launch_stats(ranks=[rank], visualize=False)[rank]
    t = per_rank[rank]
    short = (launches["cpu_duration"] <= RUNTIME_CUTOFF_US) & (
        launches["gpu_duration"] < launches["cpu_duration"]
    )
    rows.append(
        _row(
            "short GPU kernels (count)",
            rank,
            f"{cfg['optimizer_kernels']} SGD kernels/step",
            t["short_kernels"],
            short.sum(),
            0,
        )
    )
    rows.append(
        _row(
            f"runtime outliers > {RUNTIME_CUTOFF_US} us (count)",
            rank,
            f"{cfg['slow_launches']}/step x {n_steps} steps",
            t["runtime_outliers"],
            (launches["cpu_duration"] > RUNTIME_CUTOFF_US).sum(),
            0,
        )
    )
    rows.append(
        _row(
            f"launch delay > {LAUNCH_DELAY_CUTOFF_US} us (count)",
            rank,
            "",
            t["launch_delay_outliers"],
            (launches["launch_delay"] > LAUNCH_DELAY_CUTOFF_US).sum(),
            0,
        )
    )

    membw = analyzer.get_memory_bw_summary(ranks=[rank])
    hta_h2d = membw.loc[(rank, "Memcpy HtoD"), ("memory_bw_gbps", "mean")]
    rows.append(_row("H2D copy bandwidth (GB/s)", rank, f"{cfg['h2d_gbps']}", t["h2d_gbps"], hta_h2d, 0.01))
    queue = analyzer.get_queue_length_summary(ranks=[rank])
    rows.append(
        _row(
            f"max queue length, stream {COMPUTE_STREAM}",
            rank,
            "",
            t["max_queue_length"][COMPUTE_STREAM],
            queue.loc[(rank, COMPUTE_STREAM), ("queue_length", "max")],
            0,
        )
    )
    return pd.DataFrame(rows)
