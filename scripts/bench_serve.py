"""Serving benchmark for notebook 01 (`make bench-serve`): four servers, concurrency 1/4/16, loopback.

Writes outputs/bench_serve/results.json and prints a table. See ptdeploy.servetools.bench.
"""

import argparse

from ptdeploy.paths import output_dir
from ptdeploy.servetools import bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=400, help="requests per server and concurrency level")
    parser.add_argument("--max-seconds", type=float, default=40, help="time cap per server and level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    out = output_dir("bench_serve") / "results.json"
    results = bench.run(tuple(args.concurrency), args.requests, args.max_seconds, out)
    print(bench.table(results))
    print(f"saved {out.relative_to(out.parents[2])}")


if __name__ == "__main__":
    main()
