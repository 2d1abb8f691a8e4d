"""Record real torch.profiler traces of a small data-parallel (DDP) training job, one file per GPU.

This is how to get traces for notebook 07 (Holistic Trace Analysis) from real hardware. It needs CUDA GPUs:

    .venv/bin/python scripts/record_gpu_trace.py          # every visible GPU -> outputs/07_hta/real_traces
    .venv/bin/python scripts/record_gpu_trace.py --gpus 2 --out /tmp/traces

Each rank trains a small MLP on random data (nothing is downloaded) with DistributedDataParallel over
NCCL and profiles it with CUDA + CPU activities, a short schedule (1 step skipped, 1 warm-up, 3 recorded)
and gzip. Because torch.distributed is initialised, every trace carries ``distributedInfo`` with its rank,
which HTA needs. Then, in notebook 07 (or any Python): ``TraceAnalysis(trace_dir="<out>")``.

Without a CUDA GPU the script says so and exits with status 1. ``--allow-cpu`` runs the same job with gloo
and CPU activity only, to test the script itself; HTA cannot analyse those traces (they have no GPU events).
"""

import argparse
import sys
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

REPO_ROOT = Path(__file__).resolve().parents[1]
WAIT, WARMUP, ACTIVE = 1, 1, 3


def make_model(width: int) -> nn.Module:
    layers = []
    for _ in range(6):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, 10))


def worker(rank: int, world: int, rendezvous: str, args: argparse.Namespace) -> None:
    use_cuda = not args.allow_cpu
    # The ranks meet through a file, not a TCP port: nothing to pick, nothing that can be taken.
    dist.init_process_group(
        "nccl" if use_cuda else "gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world
    )
    device = torch.device("cuda", rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    torch.manual_seed(rank)
    model = DDP(make_model(args.width).to(device), device_ids=[rank] if use_cuda else None)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    # pinned host batches, copied to the GPU every step (H2D memcpy in the trace)
    x_host = torch.randn(args.batch_size, args.width)
    y_host = torch.randint(0, 10, (args.batch_size,))
    if use_cuda:
        x_host, y_host = x_host.pin_memory(), y_host.pin_memory()

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if use_cuda else [])
    with profile(
        activities=activities,
        schedule=schedule(wait=WAIT, warmup=WARMUP, active=ACTIVE, repeat=1),
        on_trace_ready=tensorboard_trace_handler(str(args.out), worker_name=f"rank{rank}", use_gzip=True),
    ) as prof:
        for _ in range(WAIT + WARMUP + ACTIVE):
            x = x_host.to(device, non_blocking=True)
            y = y_host.to(device, non_blocking=True)
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            loss.item()  # a device-to-host copy and a synchronisation, as in a real training loop
            prof.step()
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "outputs" / "07_hta" / "real_traces")
    parser.add_argument("--gpus", type=int, default=0, help="ranks to run (default: every visible GPU)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument(
        "--allow-cpu",
        action="store_true",
        help="without a GPU, run on the CPU with gloo (to test this script; HTA needs GPU traces)",
    )
    args = parser.parse_args()

    if args.allow_cpu:
        world = args.gpus or 2
    elif not torch.cuda.is_available():
        sys.exit(
            "record_gpu_trace.py: no CUDA GPU is available (torch.cuda.is_available() is False). "
            "Run it on a machine with NVIDIA GPUs; HTA cannot analyse CPU-only traces."
        )
    else:
        world = args.gpus or torch.cuda.device_count()
        if world > torch.cuda.device_count():
            sys.exit(
                f"record_gpu_trace.py: --gpus {world} but only {torch.cuda.device_count()} GPU(s) are visible"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(worker, args=(world, f"{tmp}/rendezvous", args), nprocs=world, join=True)
    files = sorted(args.out.glob("*.pt.trace.json.gz"))
    print(f"wrote {len(files)} trace(s) to {args.out}:")
    for f in files:
        print(f"  {f.name}  {f.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
