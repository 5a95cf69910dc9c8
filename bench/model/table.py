#!/usr/bin/env python3
"""Prints the model benchmark's table (markdown) from the JSON lines of bench/model/run.sh.

Usage: table.py RESULTS.jsonl. Ratios are amflow / PyTorch (below 1: amflow is faster or
smaller). The anchor of the `ratio` and `RSS ratio` columns is PyTorch as users run it (eager,
default threading); the other anchors of the same run are extra columns: `vs PASSIVE`
(OMP_WAIT_POLICY=PASSIVE), `vs compile` (torch.compile, inductor) and, on CPUs with native bf16,
`bf16` rows (amflow's bf16 backbone against PyTorch's bf16 autocast). GFLOP/s of both sides use
amflow's FLOP count (`flop_count` in crates/amflow-train/benches/model.rs); "peak" is each
side's own measured sgemm rate. A run that started on a loaded machine is flagged in its header
lines (`# LOADED MACHINE`), and the table says so.
"""
import json
import sys


def key(r):
    if r["side"] == "amflow":
        return "amflow-bf16" if r.get("precision") == "bf16" else "amflow"
    variant = r.get("variant", "eager")
    if variant == "eager" and r.get("omp_wait_policy", "default").upper() == "PASSIVE":
        variant = "passive"  # results of the bench before the default anchor
    return f"pytorch-{variant}"


def main():
    rows, header = {}, []
    for line in open(sys.argv[1]):
        line = line.strip()
        if line.startswith("{"):
            r = json.loads(line)
            rows[(r["case"], r["batch"], key(r))] = r
        elif line.startswith("#"):
            header.append(line)
    for h in header:
        print(h)
    if any("LOADED" in h for h in header):
        print("\n**Started on a loaded machine: not for the docs.**\n")
    peak = {}
    for side in ("amflow", "pytorch-eager"):
        s = rows.get(("sgemm", 1, side))
        if s:
            peak[side] = s["flop"] / s["median_s"]
    print("| case | amflow s | PyTorch s | ratio | vs PASSIVE | vs compile | amflow GFLOP/s (of peak) "
          "| PyTorch GFLOP/s (of peak) | amflow RSS MiB | PyTorch RSS MiB | RSS ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    order = ["sgemm", "infer", "train"]
    cases = sorted({(c, b) for (c, b, _) in rows}, key=lambda k: (order.index(k[0]), k[1]))

    def secs(r):
        return "-" if r is None else f"{r['median_s']:.3f}"

    def mib(r):
        return "-" if r is None or r["peak_rss_bytes"] is None else f"{r['peak_rss_bytes'] / 2**20:.0f}"

    def ratio(a, p):
        return f"{a['median_s'] / p['median_s']:.2f}" if a and p else "-"

    for case, batch in cases:
        for amflow_key, torch_key, label in [("amflow", "pytorch-eager", ""),
                                             ("amflow-bf16", "pytorch-bf16", " bf16")]:
            a, p = rows.get((case, batch, amflow_key)), rows.get((case, batch, torch_key))
            if a is None and p is None:
                continue
            flop = (a or p)["flop"]

            def rate(r, side):
                if r is None or flop is None:
                    return "-"
                g = flop / r["median_s"]
                frac = f" ({g / peak[side]:.0%})" if side in peak else ""
                return f"{g / 1e9:.1f}{frac}"

            extra = ("-", "-")
            if label == "":
                extra = (ratio(a, rows.get((case, batch, "pytorch-passive"))),
                         ratio(a, rows.get((case, batch, "pytorch-compile"))))
            rss = f"{a['peak_rss_bytes'] / p['peak_rss_bytes']:.2f}" if a and p else "-"
            name = "sgemm 2048²" if case == "sgemm" else f"{case} b{batch}{label}"
            print(f"| {name} | {secs(a)} | {secs(p)} | {ratio(a, p)} | {extra[0]} | {extra[1]} "
                  f"| {rate(a, 'amflow')} | {rate(p, 'pytorch-eager')} | {mib(a)} | {mib(p)} | {rss} |")


if __name__ == "__main__":
    main()
