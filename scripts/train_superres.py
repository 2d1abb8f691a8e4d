"""Train the ONNX tutorial's SuperResolutionNet (x3, Y channel) on photos that scikit-image ships.

    .venv/bin/python scripts/train_superres.py            # the committed data/superres_x3.pth
    .venv/bin/python scripts/train_superres.py --max-steps 3 --out /tmp/sr.pth   # smoke run

Runs on the CPU with a fixed seed, then prints the held-out PSNR table (model vs bicubic) that
data/README.md records. The cat (data/cat.jpg) and two more photos are never trained on.
"""

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from ptdeploy.lessons.superres import HELD_OUT_PHOTOS, WEIGHTS, TrainConfig, evaluate, quality_table, train
from ptdeploy.paths import REPO_ROOT


def main(argv: list[str] | None = None) -> int:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--max-steps", type=int, default=None, help="stop early (smoke tests)")
    # One thread: the run is then bit-for-bit repeatable on a given CPU, and it tolerates a busy machine.
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--out", type=Path, default=WEIGHTS, help="where to write the state dict")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    config = dataclasses.replace(
        defaults,
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
    )
    start = time.perf_counter()
    model = train(config, max_steps=args.max_steps)
    minutes = (time.perf_counter() - start) / 60
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out)

    shown = args.out.resolve()
    shown = shown.relative_to(REPO_ROOT) if shown.is_relative_to(REPO_ROOT) else shown
    print(f"wrote {shown} ({args.out.stat().st_size / 1024:.0f} KiB) after {minutes:.1f} min of training")
    print(f"config: {config}" + (f", stopped after {args.max_steps} steps" if args.max_steps else ""))
    print(f"\nY-channel PSNR on held-out photos {', '.join(HELD_OUT_PHOTOS)} (x3):\n")
    print(quality_table(evaluate(model)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
