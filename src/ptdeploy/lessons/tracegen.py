"""Chapter 07: synthetic multi-rank GPU traces of a data-parallel training job, with known, tunable
inefficiencies.

Holistic Trace Analysis (HTA) needs traces of a multi-GPU job; CI, Binder and most learners have no GPU.
This module writes deterministic (seeded) traces in the Kineto format that ``torch.profiler`` exports, one
file per rank, containing everything HTA reads (see notebook 07):

* ``distributedInfo`` with ``"rank": N`` (HTA finds a file's rank with a regex that needs the space);
* ``ProfilerStep#N`` annotations, CPU operators (``cpu_op``), ``cuda_runtime`` calls (``cudaLaunchKernel``,
  ``cudaMemcpyAsync``, ``cudaMemsetAsync``, ``cudaStreamSynchronize``) with a ``correlation`` id;
* GPU events (``kernel``, ``gpu_memcpy``, ``gpu_memset``) with ``args.stream``, ``args.correlation`` (the same
  id as their runtime call), bytes and bandwidth for copies, and ``ac2g`` flow arrows for trace viewers.

The job is a small MLP trained with DDP on ``ranks`` GPUs. Each step: load a batch on the CPU, copy it to the
GPU, zero a buffer (memset), forward, loss, backward with gradient all-reduce (NCCL) on its own stream,
an optimizer step, and ``loss.item()`` (a device-to-host copy and a stream synchronisation).
A tiny timing model turns this into a timeline: the CPU pays for every operator and launch; a GPU operation
starts when its stream is free (plus a small gap), when its launch has reached the GPU, and when the data
it depends on is ready, whichever is last. That "whichever" is recorded as the cause of the idle gap before
it, which is what HTA's idle-time breakdown tries to infer.

Inefficiencies, each a knob of :class:`JobConfig`:

* ``host_stall_us``: extra CPU time in the data loader every step; the GPU idles, waiting on the host;
* ``optimizer_kernels`` / ``kernel_gap_us``: an unfused optimizer, many short back-to-back kernels, each
  followed by a small launch gap on the GPU;
* ``straggler_rank`` / ``straggler_slowdown``: one GPU computes slower; the others wait in the all-reduce;
* ``overlap``: the share of all-reduce time hidden under backward compute (low overlap = exposed comms);
* ``slow_launches`` / ``slow_launch_us``: ``cudaLaunchKernel`` calls that take unusually long on the CPU.

:func:`generate` writes the traces and returns the ground truth, computed from the generated events with
simple 1-microsecond timelines (not with HTA's code), so that HTA's answers can be checked against it.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

COMPUTE_STREAM = 7  # the stream Kineto shows for PyTorch's default stream
COMM_STREAM = 20  # NCCL's own stream
# HTA's default cut-offs in get_cuda_kernel_launch_stats (microseconds), used for the ground truth
RUNTIME_CUTOFF_US = 50
LAUNCH_DELAY_CUTOFF_US = 100
# CPU cost model (microseconds): an operator's own time around its launch, and the runtime call.
OP_BEFORE_US, OP_AFTER_US, LAUNCH_US = 6, 2, 5
LAUNCH_LATENCY_US = 5  # from the end of a launch call to the earliest start on the GPU
NCCL_OP_US = 12  # CPU time of DDP's all-reduce hook around its launch
DATALOADER_US = 150  # the natural (not injected) time to load a batch
BASE_TS_US = 1_700_000_000  # trace timestamps are microseconds; a fixed, arbitrary origin
BASE_TIME_NS = (
    1_764_000_000_000_000_000  # trace metadata: wall-clock time of ts == 0 (fixed, for determinism)
)

KERNEL = {  # kernel names in the style of cuBLAS / ATen / NCCL, short enough to read in plots
    "fwd": "ampere_sgemm_128x64_tn",
    "dgrad": "ampere_sgemm_128x64_nn",
    "wgrad": "ampere_sgemm_64x64_nt",
    "relu": "at::native::vectorized_elementwise_kernel<4, clamp_min_scalar>",
    "relu_bwd": "at::native::vectorized_elementwise_kernel<4, threshold_backward>",
    "softmax": "cunn_SoftMaxForward<4, float>",
    "nll": "nll_loss_forward_reduce_cuda_kernel_2d<float>",
    "softmax_bwd": "cunn_SoftMaxBackward<4, float>",
    "nll_bwd": "nll_loss_backward_reduce_cuda_kernel_2d<float>",
    "sgd": "at::native::vectorized_elementwise_kernel<4, add_alpha>",
    "allreduce": "ncclKernel_AllReduce_RING_LL_Sum_float(ncclWorkElem)",
    "h2d": "Memcpy HtoD (Pinned -> Device)",
    "d2h": "Memcpy DtoH (Device -> Pageable)",
    "memset": "Memset (Device)",
}


@dataclass(frozen=True)
class JobConfig:
    """The simulated job and the inefficiencies injected into it (times in microseconds)."""

    ranks: int = 4
    steps: int = 5  # profiled steps; HTA leaves out the last one (it is usually incomplete)
    first_step: int = 2  # torch.profiler's schedule numbers steps from the first one it records
    layers: int = 8
    seed: int = 0
    # injected inefficiencies
    host_stall_us: int = 500
    optimizer_kernels: int = 48
    kernel_gap_us: int = 2
    straggler_rank: int | None = 2
    straggler_slowdown: float = 1.3
    overlap: float = 0.6
    slow_launches: int = 2
    slow_launch_us: int = 120
    # sizes and speeds
    gemm_us: int = 60  # one forward GEMM; dgrad and wgrad take as long
    elementwise_us: int = 10
    sgd_kernel_us: int = 3
    comm_us: int = 1000  # all-reduce time of one step's gradients when no rank is late
    buckets: int = 4  # DDP gradient buckets
    batch_bytes: int = 2 << 20
    h2d_gbps: float = 12.0
    memset_bytes: int = 1 << 20
    memset_gbps: float = 500.0
    jitter: float = 0.03  # +-3% seeded noise on GPU durations

    def __post_init__(self):
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError("overlap must be in [0, 1): the last bucket is always reduced after backward")
        if self.straggler_rank is not None and not 0 <= self.straggler_rank < self.ranks:
            raise ValueError(f"straggler_rank must be a rank in 0..{self.ranks - 1}")
        if self.buckets < 2:
            raise ValueError("buckets must be at least 2 (hidden buckets + the last one)")
        if self.steps < 3:
            raise ValueError("HTA needs at least 3 steps (it drops the last one)")


@dataclass
class GpuOp:
    """One GPU operation and the CPU call that launched it."""

    rank: int
    step: int
    stream: int
    name: str
    cat: str  # kernel | gpu_memcpy | gpu_memset
    kind: str  # COMPUTATION | COMMUNICATION | MEMORY (HTA's kernel types)
    dur: int
    corr: int
    runtime_ts: int
    runtime_dur: int
    dep_ready: int = 0  # when the data it needs is ready on the GPU
    start: int = -1
    gap: int | None = None  # idle time on its stream just before it (None for a stream's first op)
    cause: str | None = None  # why the stream was idle: host | kernel | other
    nbytes: int = 0

    @property
    def end(self) -> int:
        return self.start + self.dur


@dataclass
class _Rank:
    """The CPU timeline of one rank and the GPU operations it launches."""

    rank: int
    pid: int
    cpu: int
    cfg: JobConfig
    rng: np.random.Generator
    cpu_events: list[dict] = field(default_factory=list)
    ops: list[GpuOp] = field(default_factory=list)
    stream_end: dict[int, int] = field(default_factory=dict)
    step_starts: list[int] = field(default_factory=list)
    corr: int = 0  # the launch's correlation id, also its operator's External id (one counter for both)

    def gpu_us(self, nominal: float, kind: str = "COMPUTATION") -> int:
        scale = 1.0 + self.rng.uniform(-self.cfg.jitter, self.cfg.jitter)
        if kind == "COMPUTATION" and self.rank == self.cfg.straggler_rank:
            scale *= self.cfg.straggler_slowdown
        return max(1, round(nominal * scale))

    def cpu_span(self, name: str, cat: str, ts: int, dur: int, **args) -> None:
        self.cpu_events.append(
            {
                "ph": "X",
                "cat": cat,
                "name": name,
                "pid": self.pid,
                "tid": self.pid,
                "ts": ts,
                "dur": dur,
                "args": args,
            }
        )

    def launch(
        self,
        step: int,
        op_name: str,
        key: str,
        kind: str,
        dur: int,
        *,
        stream: int = COMPUTE_STREAM,
        api: str = "cudaLaunchKernel",
        cat: str = "kernel",
        launch_us: int = LAUNCH_US,
        op_us: int = OP_BEFORE_US,
        nbytes: int = 0,
    ) -> GpuOp:
        """An operator on the CPU that launches one GPU operation (scheduled later by `schedule`)."""
        self.corr += 1
        corr = self.corr
        start = self.cpu
        runtime_ts = start + op_us
        end = runtime_ts + launch_us + OP_AFTER_US
        self.cpu_span(op_name, "cpu_op", start, end - start, **{"External id": corr, "Ev Idx": corr})
        self.cpu_events.append(
            {
                "ph": "X",
                "cat": "cuda_runtime",
                "name": api,
                "pid": self.pid,
                "tid": self.pid,
                "ts": runtime_ts,
                "dur": launch_us,
                "args": {"External id": corr, "cbid": CBID[api], "correlation": corr},
            }
        )
        self.cpu = end + 1
        op = GpuOp(
            self.rank,
            step,
            stream,
            KERNEL[key],
            cat,
            kind,
            dur,
            corr,
            runtime_ts,
            launch_us,
            nbytes=nbytes,
        )
        self.ops.append(op)
        return op

    def schedule(self, op: GpuOp, not_before: int = 0) -> None:
        """Start `op` when its stream, its launch and its data are all ready; label the idle gap before it."""
        candidates = {
            "host": op.runtime_ts + op.runtime_dur + LAUNCH_LATENCY_US,
            "other": max(op.dep_ready, not_before),
        }
        prev_end = self.stream_end.get(op.stream)
        if prev_end is not None:
            candidates["kernel"] = prev_end + self.cfg.kernel_gap_us
        # On a tie the stream order wins, then the launch: the dependency was not what held it back.
        priority = {"kernel": 0, "host": 1, "other": 2}
        cause = min(candidates, key=lambda c: (-candidates[c], priority[c]))
        op.start = candidates[cause]
        if prev_end is not None:
            op.gap, op.cause = op.start - prev_end, cause
        self.stream_end[op.stream] = op.end


CBID = {"cudaLaunchKernel": 211, "cudaMemcpyAsync": 41, "cudaMemsetAsync": 51, "cudaStreamSynchronize": 131}


def _bucket_boundaries(bwd_durs: list[int], cfg: JobConfig) -> list[int]:
    """Indices of the backward kernels after which each gradient bucket is ready.

    Buckets 0..K-2 carry `overlap` of the all-reduce time. They are made ready early enough that they run
    back to back and end (with a little slack for gaps and jitter) before the backward pass does, so all of
    their time is hidden under compute. The last bucket, the first layers' gradients, is ready only when
    the backward pass ends; its all-reduce is the exposed part.
    """
    gap, k_hidden = cfg.kernel_gap_us, cfg.buckets - 1
    ends = np.cumsum(np.array(bwd_durs) + gap) - gap  # kernel ends from backward start, queued back to back
    hidden = cfg.overlap * cfg.comm_us
    slack = cfg.buckets * gap + cfg.jitter * hidden + 2
    idx = []
    for k in range(k_hidden):
        target = ends[-1] - hidden - slack + k * hidden / k_hidden
        j = int(np.searchsorted(ends, target, side="right")) - 1  # the last kernel that ends by the target
        idx.append(max(j, idx[-1] if idx else 0))
    idx.append(len(bwd_durs) - 1)
    return idx


def simulate(cfg: JobConfig) -> list[_Rank]:
    """Run the timing model for every rank; all-reduces couple the ranks (they end together)."""
    rng = np.random.default_rng(cfg.seed)
    ranks = [
        _Rank(
            r,
            pid=2100 + 17 * r,
            cpu=BASE_TS_US + int(rng.integers(0, 40)),
            cfg=cfg,
            rng=np.random.default_rng([cfg.seed, r]),
        )
        for r in range(cfg.ranks)
    ]
    comm_sizes = [cfg.overlap * cfg.comm_us / (cfg.buckets - 1)] * (cfg.buckets - 1)
    comm_sizes.append((1.0 - cfg.overlap) * cfg.comm_us)
    for s in range(cfg.first_step, cfg.first_step + cfg.steps):
        pending = []  # per rank: the all-reduce ops of this step
        for rk in ranks:
            pending.append(_forward_backward(rk, s))
        _all_reduce(ranks, pending, comm_sizes, rng)
        for rk, comms in zip(ranks, pending):
            _optimizer_and_sync(rk, s, grads_ready=comms[-1].end)
    return ranks


def _forward_backward(rk: _Rank, s: int) -> list[GpuOp]:
    cfg = rk.cfg
    rk.step_starts.append(rk.cpu)
    loader_us = DATALOADER_US + cfg.host_stall_us
    rk.cpu_span(
        "enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__", "user_annotation", rk.cpu, loader_us
    )
    rk.cpu += loader_us + 1
    # The batch goes to the GPU, then a buffer is zeroed: the step's two memory operations.
    for op, kind, nbytes, gbps, api, cat in (
        ("aten::copy_", "h2d", cfg.batch_bytes, cfg.h2d_gbps, "cudaMemcpyAsync", "gpu_memcpy"),
        ("aten::zero_", "memset", cfg.memset_bytes, cfg.memset_gbps, "cudaMemsetAsync", "gpu_memset"),
    ):
        us = max(1, round(nbytes / (gbps * 1e3)))
        rk.schedule(rk.launch(s, op, kind, "MEMORY", us, api=api, cat=cat, nbytes=nbytes))
    for _ in range(cfg.layers):
        rk.schedule(rk.launch(s, "aten::addmm", "fwd", "COMPUTATION", rk.gpu_us(cfg.gemm_us)))
        rk.schedule(rk.launch(s, "aten::relu", "relu", "COMPUTATION", rk.gpu_us(cfg.elementwise_us)))
    loss_bwd = "autograd::engine::evaluate_function: NllLossBackward0"
    for key in ("softmax", "nll", "nll_bwd", "softmax_bwd"):
        name = loss_bwd if key.endswith("_bwd") else "aten::cross_entropy_loss"
        rk.schedule(rk.launch(s, name, key, "COMPUTATION", rk.gpu_us(cfg.elementwise_us)))
    # Backward, last layer first; DDP launches a bucket's all-reduce once its last gradient is launched.
    plan = [
        ("relu_bwd", "aten::threshold_backward", cfg.elementwise_us),
        ("dgrad", "aten::mm", cfg.gemm_us),
        ("wgrad", "aten::mm", cfg.gemm_us),
    ] * cfg.layers
    durs = [rk.gpu_us(us) for _, _, us in plan]
    ready_after = _bucket_boundaries(durs, cfg)
    comms, slow_left = [], cfg.slow_launches
    for j, ((key, op_name, _), dur) in enumerate(zip(plan, durs)):
        launch_us = LAUNCH_US
        if key == "dgrad" and slow_left:  # injected: a few launches stall on the CPU (the GPU queue hides it)
            launch_us, slow_left = cfg.slow_launch_us, slow_left - 1
        op = rk.launch(s, op_name, key, "COMPUTATION", dur, launch_us=launch_us)
        rk.schedule(op)
        for _ in range(ready_after.count(j)):
            comm = rk.launch(
                s, "nccl:all_reduce", "allreduce", "COMMUNICATION", 0, stream=COMM_STREAM, op_us=NCCL_OP_US
            )
            comm.dep_ready = op.end
            comms.append(comm)
    return comms


def _all_reduce(ranks: list[_Rank], pending: list[list[GpuOp]], comm_sizes: list[float], rng) -> None:
    """A collective starts on each rank when that rank is ready, and ends on all ranks together."""
    jitter = ranks[0].cfg.jitter
    for k, size in enumerate(comm_sizes):
        for rk, comms in zip(ranks, pending):
            rk.schedule(comms[k])  # sets its start; its end is known once every rank has started
        transfer = max(1, round(size * (1.0 + rng.uniform(-jitter, jitter))))
        end = max(comms[k].start for comms in pending) + transfer
        for rk, comms in zip(ranks, pending):
            comms[k].dur = end - comms[k].start
            rk.stream_end[COMM_STREAM] = end


def _optimizer_and_sync(rk: _Rank, s: int, grads_ready: int) -> None:
    cfg = rk.cfg
    opt_ts = rk.cpu
    for i in range(cfg.optimizer_kernels):  # an unfused SGD: one small kernel per parameter tensor
        op = rk.launch(s, "aten::add_", "sgd", "COMPUTATION", rk.gpu_us(cfg.sgd_kernel_us))
        rk.schedule(
            op, not_before=grads_ready if i == 0 else 0
        )  # DDP made the stream wait for the all-reduce
    rk.cpu_span("Optimizer.step#SGD.step", "user_annotation", opt_ts, rk.cpu - opt_ts)
    # loss.item(): copy 4 bytes to the host and wait for the GPU
    d2h = rk.launch(
        s, "aten::_local_scalar_dense", "d2h", "MEMORY", 2, api="cudaMemcpyAsync", cat="gpu_memcpy", nbytes=4
    )
    rk.schedule(d2h)
    sync_ts = rk.cpu
    sync_end = max(sync_ts + 3, max(rk.stream_end.values()) + 2)
    rk.cpu_events.append(
        {
            "ph": "X",
            "cat": "cuda_runtime",
            "name": "cudaStreamSynchronize",
            "pid": rk.pid,
            "tid": rk.pid,
            "ts": sync_ts,
            "dur": sync_end - sync_ts,
            "args": {"cbid": CBID["cudaStreamSynchronize"], "correlation": -1},
        }
    )
    rk.cpu = sync_end + 4
    rk.cpu_span(f"ProfilerStep#{s}", "user_annotation", rk.step_starts[-1], rk.cpu - 1 - rk.step_starts[-1])


# --------------------------------------------------------------------------------------------- writing


def _gpu_event(op: GpuOp) -> dict:
    args = {
        "External id": op.corr,
        "device": op.rank,
        "context": 1,
        "stream": op.stream,
        "correlation": op.corr,
    }
    if op.cat == "kernel":
        args.update(
            {
                "queued": 0,
                "registers per thread": 64,
                "shared memory": 0,
                "blocks per SM": 1.2,
                "warps per SM": 9.6,
                "grid": [128, 1, 1],
                "block": [256, 1, 1],
                "est. achieved occupancy %": 25,
            }
        )
    else:
        args.update({"bytes": op.nbytes, "memory bandwidth (GB/s)": round(op.nbytes / (op.dur * 1e3), 3)})
    return {
        "ph": "X",
        "cat": op.cat,
        "name": op.name,
        "pid": op.rank,
        "tid": op.stream,
        "ts": op.start,
        "dur": op.dur,
        "args": args,
    }


def trace_dict(rk: _Rank) -> dict:
    """One rank's trace, laid out like a torch.profiler (Kineto) export."""
    meta = [
        {
            "name": "process_name",
            "ph": "M",
            "ts": BASE_TS_US,
            "pid": rk.pid,
            "tid": 0,
            "args": {"name": "python"},
        },
        {
            "name": "thread_name",
            "ph": "M",
            "ts": BASE_TS_US,
            "pid": rk.pid,
            "tid": rk.pid,
            "args": {"name": "thread 1 (python)"},
        },
        {
            "name": "process_name",
            "ph": "M",
            "ts": BASE_TS_US,
            "pid": rk.rank,
            "tid": 0,
            "args": {"name": f"GPU {rk.rank}"},
        },
    ] + [
        {
            "name": "thread_name",
            "ph": "M",
            "ts": BASE_TS_US,
            "pid": rk.rank,
            "tid": s,
            "args": {"name": f"stream {s}"},
        }
        for s in (COMPUTE_STREAM, COMM_STREAM)
    ]
    flows = []
    for op in rk.ops:  # the launch -> kernel arrows trace viewers draw
        flows.append(
            {
                "ph": "s",
                "id": op.corr,
                "pid": rk.pid,
                "tid": rk.pid,
                "ts": op.runtime_ts,
                "cat": "ac2g",
                "name": "ac2g",
            }
        )
        flows.append(
            {
                "ph": "f",
                "id": op.corr,
                "pid": op.rank,
                "tid": op.stream,
                "ts": op.start,
                "cat": "ac2g",
                "name": "ac2g",
                "bp": "e",
            }
        )
    events = sorted(rk.cpu_events + [_gpu_event(op) for op in rk.ops] + flows, key=lambda e: e["ts"])
    return {
        "schemaVersion": 1,
        "distributedInfo": {"backend": "nccl", "rank": rk.rank, "world_size": rk.cfg.ranks},
        "deviceProperties": [
            {
                "id": rk.rank,
                "name": "NVIDIA A100-SXM4-80GB",
                "totalGlobalMem": 85_000_000_000,
                "computeMajor": 8,
                "computeMinor": 0,
                "numSms": 108,
                "warpSize": 32,
            }
        ],
        "baseTimeNanoseconds": BASE_TIME_NS,
        "displayTimeUnit": "ms",
        "traceName": f"synthetic_rank{rk.rank}.pt.trace.json",
        "generator": {"module": "ptdeploy.lessons.tracegen", "config": asdict(rk.cfg)},
        "traceEvents": meta + events,
    }


def write_trace(trace: dict, path: Path) -> None:
    """Write like Kineto: an event per line (HTA's rank regex wants `"rank": N`), gzip without a timestamp."""
    head = {k: v for k, v in trace.items() if k != "traceEvents"}
    lines = ["{"] + [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    lines.append('  "traceEvents": [')
    lines.append(",\n".join("    " + json.dumps(e) for e in trace["traceEvents"]))
    lines += ["  ]", "}"]
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as fh:
        fh.write("\n".join(lines).encode())


# ---------------------------------------------------------------------------------------- ground truth


def _analysed_ops(rk: _Rank) -> list[GpuOp]:
    """The ops HTA keeps: launched before the last ProfilerStep began (HTA drops the last, partial step)."""
    last_start = rk.step_starts[-1]
    return [op for op in rk.ops if op.runtime_ts < last_start]


def _busy(ops: list[GpuOp], t0: int, t1: int) -> np.ndarray:
    mask = np.zeros(t1 - t0, dtype=bool)
    for op in ops:
        mask[op.start - t0 : op.end - t0] = True
    return mask


def ground_truth(
    ranks: list[_Rank],
    runtime_cutoff: int = RUNTIME_CUTOFF_US,
    launch_delay_cutoff: int = LAUNCH_DELAY_CUTOFF_US,
) -> dict:
    """What HTA should find, computed from the simulated events (1-us timelines, no HTA code)."""
    cfg = ranks[0].cfg
    per_rank = {}
    for rk in ranks:
        ops = _analysed_ops(rk)
        t0, t1 = min(op.start for op in ops), max(op.end for op in ops)
        busy = _busy(ops, t0, t1)
        comp = _busy([op for op in ops if op.kind == "COMPUTATION"], t0, t1)
        comm = _busy([op for op in ops if op.kind == "COMMUNICATION"], t0, t1)
        idle = {}
        for stream in (COMPUTE_STREAM, COMM_STREAM):
            by_cause = {"host": 0, "kernel": 0, "other": 0}
            for op in ops:
                if op.stream == stream and op.gap is not None and op.gap > 0:
                    by_cause[op.cause] += op.gap
            idle[stream] = by_cause
        cpu_dur = np.array([op.runtime_dur for op in ops])
        gpu_dur = np.array([op.dur for op in ops])
        delay = np.clip(np.array([op.start - op.runtime_ts - op.runtime_dur for op in ops]), 0, None)
        queue_max = {}
        for stream in (COMPUTE_STREAM, COMM_STREAM):
            # +1 when the runtime call starts, -1 when the GPU op starts (HTA's definition of queue length)
            steps = sorted(
                [(op.runtime_ts, 1) for op in ops if op.stream == stream]
                + [(op.start, -1) for op in ops if op.stream == stream]
            )
            queue_max[stream] = int(np.max(np.cumsum([d for _, d in steps])))
        per_rank[rk.rank] = {
            "idle_pct": 100.0 * (1 - busy.mean()),
            "compute_pct": 100.0 * comp.mean(),
            "overlap_pct": 100.0 * (comm & comp).sum() / comm.sum(),
            "idle_us_by_cause": idle,
            "short_kernels": int(((cpu_dur <= runtime_cutoff) & (gpu_dur < cpu_dur)).sum()),
            "runtime_outliers": int((cpu_dur > runtime_cutoff).sum()),
            "launch_delay_outliers": int((delay > launch_delay_cutoff).sum()),
            "max_queue_length": queue_max,
            # what the copies achieved: durations are whole microseconds, so not exactly the configured speed
            "h2d_gbps": float(
                np.mean([op.nbytes / (op.dur * 1e3) for op in ops if op.name == KERNEL["h2d"]])
            ),
            "injected_stall_us": cfg.host_stall_us * (cfg.steps - 2),  # stalls between analysed steps
        }
    return {
        "config": asdict(cfg),
        "straggler_rank": cfg.straggler_rank,
        "analysed_steps": list(range(cfg.first_step, cfg.first_step + cfg.steps - 1)),
        "ranks": per_rank,
    }


def generate(folder: Path, cfg: JobConfig = JobConfig()) -> dict:
    """Write one gzipped trace per rank into `folder` (replacing older ones) and return the ground truth."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.json*"):
        old.unlink()
    ranks = simulate(cfg)
    for rk in ranks:
        write_trace(trace_dict(rk), folder / f"rank{rk.rank}.pt.trace.json.gz")
    return ground_truth(ranks)
