"""Serving benchmark for notebook 01 (`make bench-serve`): several servers of one model, driven by wrk.

Prints a table and writes outputs/bench_serve/results.json; with --save PATH also that file (notebook 01
plots data/bench/serve.json). Takes about 5 minutes per round. See ptdeploy.servetools.bench.
"""

import argparse
from pathlib import Path

from ptdeploy.paths import output_dir
from ptdeploy.servetools import bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8, help="wrk's duration per server and concurrency")
    parser.add_argument("--rounds", type=int, default=1, help="rounds over every server (interleaved)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--only", nargs="+", help="run only these servers (names as in the table)")
    parser.add_argument("--save", type=Path, help="also write the results here (e.g. data/bench/serve.json)")
    args = parser.parse_args()
    results = bench.run(tuple(args.concurrency), args.seconds, args.rounds, only=args.only)
    print(bench.table(results))
    for path in [output_dir("bench_serve") / "results.json", *([args.save] if args.save else [])]:
        print(f"saved {bench.save(results, path)}")


if __name__ == "__main__":
    main()
