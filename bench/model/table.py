#!/usr/bin/env python3
"""Prints the model benchmark's table (markdown) from the JSON lines of bench/model/run.sh.

Usage: table.py RESULTS.jsonl. Ratios are amflow / PyTorch (below 1: amflow is faster or
smaller). GFLOP/s of both sides use amflow's FLOP count (`flop_count` in
crates/amflow-train/benches/model.rs); "peak" is each side's own measured sgemm rate.
"""
import json
import sys


def main():
    rows = {}
    for line in open(sys.argv[1]):
        line = line.strip()
        if line.startswith("{"):
            r = json.loads(line)
            rows[(r["case"], r["batch"], r["side"])] = r
    peak = {side: rows[("sgemm", 1, side)]["flop"] / rows[("sgemm", 1, side)]["median_s"]
            for side in ("amflow", "pytorch") if ("sgemm", 1, side) in rows}
    print("| case | amflow s | PyTorch s | ratio | amflow GFLOP/s (of peak) | PyTorch GFLOP/s (of peak) "
          "| amflow RSS MiB | PyTorch RSS MiB | RSS ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    cases = sorted({(c, b) for (c, b, _) in rows}, key=lambda k: (["sgemm", "infer", "train"].index(k[0]), k[1]))
    for case, batch in cases:
        a, p = rows.get((case, batch, "amflow")), rows.get((case, batch, "pytorch"))
        flop = (a or p)["flop"]

        def rate(r, side):
            if r is None or flop is None:
                return "-"
            g = flop / r["median_s"]
            frac = f" ({g / peak[side]:.0%})" if side in peak else ""
            return f"{g / 1e9:.1f}{frac}"

        def secs(r):
            return "-" if r is None else f"{r['median_s']:.3f}"

        def mib(r):
            return "-" if r is None or r["peak_rss_bytes"] is None else f"{r['peak_rss_bytes'] / 2**20:.0f}"

        ratio = f"{a['median_s'] / p['median_s']:.2f}" if a and p else "-"
        rss = f"{a['peak_rss_bytes'] / p['peak_rss_bytes']:.2f}" if a and p else "-"
        name = "sgemm 2048²" if case == "sgemm" else f"{case} b{batch}"
        print(f"| {name} | {secs(a)} | {secs(p)} | {ratio} | {rate(a, 'amflow')} | {rate(p, 'pytorch')} "
              f"| {mib(a)} | {mib(p)} | {rss} |")


if __name__ == "__main__":
    main()
