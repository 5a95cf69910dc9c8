#!/usr/bin/env python3
"""Where a model step's matrix products spend their time, from the product census.

The census (`amflow-kernels` feature `product-census`, crates/amflow-kernels/src/census.rs)
writes one tab-separated line per product: kind (`parallel`: one `gemm` call on rayon's threads;
`serial`: one `gemm` call on one thread, also each part of a product split along its inner
dimension; `small`: the small-product loops), m, n, k, whether each operand's rows are
contiguous, rayon's thread index, start and duration in nanoseconds. Usage
(bench/model/README.md, "Product census"):

    cargo bench -p amflow-train --bench model --no-run --features amflow-kernels/product-census
    AMFLOW_PRODUCT_CENSUS=census.tsv RAYON_NUM_THREADS=2 \\
        target/release/deps/model-<hash> --case train --batch 1 --reps 1 --warmup 1
    bench/model/product_census.py census.tsv --tail 0.5

`--tail 0.5` keeps the second of the two identical steps (the census counts calls, and every
step makes the same calls). The table lists each shape's calls, their summed duration (wall
time for `parallel`, one thread's time for the others) and its rate, largest first (by thread
time); the summary gives the products' share of the threads' time over the span. A rate well
below the machine's FMA peak (`bench/model/run.sh` prints its probe) marks a shape that loses
time to packing, short inner dimensions or an uneven split.
"""

import argparse
import collections


def read(path):
    calls = []
    for line in open(path):
        kind, m, n, k, lhs, rhs, thread, start, duration = line.rstrip("\n").split("\t")
        calls.append(
            (kind, int(m), int(n), int(k), lhs == "1", rhs == "1", thread, int(start), int(duration))
        )
    calls.sort(key=lambda c: c[7])
    return calls


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("census", help="the file AMFLOW_PRODUCT_CENSUS named")
    parser.add_argument("--tail", type=float, default=1.0, help="keep this last fraction of the calls")
    parser.add_argument("--threads", type=int, default=2, help="RAYON_NUM_THREADS of the run")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    calls = read(args.census)
    calls = calls[len(calls) - int(round(len(calls) * args.tail)) :]
    if not calls:
        raise SystemExit("no calls")
    span = max(c[7] + c[8] for c in calls) - calls[0][7]
    shapes = collections.defaultdict(lambda: [0, 0, 0])
    for kind, m, n, k, lhs, rhs, _thread, _start, duration in calls:
        entry = shapes[(kind, m, n, k, lhs, rhs)]
        entry[0] += 1
        entry[1] += duration
        entry[2] += 2 * m * n * k
    thread_ns = sum(
        v[1] * (args.threads if key[0] == "parallel" else 1) for key, v in shapes.items()
    )
    flop = sum(v[2] for v in shapes.values())
    print(
        f"{len(calls)} products, {flop / 1e9:.1f} GFLOP in a span of {span / 1e9:.3f} s; "
        f"{thread_ns / 1e9:.3f} thread-seconds in products "
        f"({100 * thread_ns / (args.threads * span):.1f} % of {args.threads} threads' span)"
    )
    by_kind = collections.Counter()
    for key, v in shapes.items():
        by_kind[key[0]] += v[1]
    print(
        "summed durations: "
        + ", ".join(f"{kind} {ns / 1e9:.3f} s" for kind, ns in sorted(by_kind.items()))
    )
    print(f"\n{'kind':8} {'m':>5} {'n':>5} {'k':>5} rows  {'calls':>6} {'seconds':>8} {'GFLOP/s':>8}")
    rows = sorted(shapes.items(), key=lambda kv: -kv[1][1] * (args.threads if kv[0][0] == "parallel" else 1))
    for (kind, m, n, k, lhs, rhs), (count, ns, f) in rows[: args.top]:
        contiguous = ("r" if lhs else "c") + ("r" if rhs else "c")
        print(f"{kind:8} {m:5} {n:5} {k:5} {contiguous:4}  {count:6} {ns / 1e9:8.4f} {f / ns:8.1f}")
    print("(rows: r = the operand's rows are contiguous, c = its columns are)")


if __name__ == "__main__":
    main()
