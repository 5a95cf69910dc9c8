#!/usr/bin/env python3
"""Prints the model benchmark's table (markdown) from the JSON lines of bench/model/run.sh.

Usage: table.py RESULTS.jsonl. Ratios are amflow / PyTorch (below 1: amflow is faster or
smaller). The anchor of the `ratio` and `RSS ratio` columns is PyTorch as users run it (eager,
default threading); the other anchors of the same run are extra columns: `vs PASSIVE`
(OMP_WAIT_POLICY=PASSIVE), `vs compile` (torch.compile, inductor) and, on CPUs with native bf16,
`bf16` rows (amflow's bf16 backbone against PyTorch's bf16 autocast). GFLOP/s of both sides use
amflow's FLOP count (`flop_count` in crates/amflow-train/benches/model.rs); "peak" is each
side's own measured sgemm rate. A run that started on a loaded machine is flagged in its header
lines (`# LOADED MACHINE`), and the table says so. Lines with `steal_pct` (the share of CPU
time the hypervisor gave to other guests during that process) give the largest of a case in
the `steal %` column; a case above STEAL_MAX (default 5) is marked `(stolen)`. Lines with the
host probe (`fma_before` / `fma_after`: the AVX2 multiply-add rate right before and after the
process, fma_peak.c --probe) give the `host FMA %` column: the lowest probe of a case as a share
of the run's best; a case below FMA_MIN (default 85) % is marked `(contended)`: a busy sibling
thread on a shared physical core, which neither steal nor the load average shows. The
`ratio, quiet rounds` column is the median ratio over the rounds whose amflow and PyTorch-eager
probes all reached FMA_MIN, with the number of such rounds.

With several rounds (`ROUNDS=n run.sh`: every line carries its `round`), times are the median
of the rounds' medians, each ratio is the median of the per-round ratios with their range in
parentheses, and peak RSS is the largest of the rounds.
"""
import json
import os
import statistics
import sys


def key(r):
    if r["side"] == "amflow":
        return "amflow-bf16" if r.get("precision") == "bf16" else "amflow"
    variant = r.get("variant", "eager")
    if variant == "eager" and r.get("omp_wait_policy", "default").upper() == "PASSIVE":
        variant = "passive"  # results of the bench before the default anchor
    return f"pytorch-{variant}"


PROBES = ("fma_before", "fma_after")


def probe_values(records):
    """The host probes (GFLOP/s) of these JSON records, where they have them."""
    return [r[f] for r in records for f in PROBES if r.get(f)]


def seconds(rounds):
    """The median over rounds of each round's median time."""
    return statistics.median(r["median_s"] for r in rounds.values())


def rss(rounds):
    """The largest peak RSS of the rounds (None where a side does not report it)."""
    values = [r["peak_rss_bytes"] for r in rounds.values() if r.get("peak_rss_bytes")]
    return max(values) if values else None


def main():
    rows, header = {}, []
    for line in open(sys.argv[1]):
        line = line.strip()
        if line.startswith("{"):
            r = json.loads(line)
            rows.setdefault((r["case"], r["batch"], key(r)), {})[r.get("round", 1)] = r
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
            peak[side] = next(iter(s.values()))["flop"] / seconds(s)
    print("| case | amflow s | PyTorch s | ratio | vs PASSIVE | vs compile | amflow GFLOP/s (of peak) "
          "| PyTorch GFLOP/s (of peak) | amflow RSS MiB | PyTorch RSS MiB | RSS ratio | steal % "
          "| host FMA % | ratio, quiet rounds |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    steal_max = float(os.environ.get("STEAL_MAX", "5"))
    fma_min = float(os.environ.get("FMA_MIN", "85"))
    probes = probe_values(r for v in rows.values() for r in v.values())
    best_probe = max(probes) if probes else None
    order = ["sgemm", "infer", "train"]
    cases = sorted({(c, b) for (c, b, _) in rows}, key=lambda k: (order.index(k[0]), k[1]))

    def secs(r):
        return "-" if r is None else f"{seconds(r):.3f}"

    def mib(r):
        b = None if r is None else rss(r)
        return "-" if b is None else f"{b / 2**20:.0f}"

    def per_round(a, p, keep=lambda r: True):
        """amflow / PyTorch per round that both sides ran and whose records pass `keep`."""
        return [a[k]["median_s"] / p[k]["median_s"] for k in sorted(a)
                if k in p and keep(a[k]) and keep(p[k])]

    def ratio(a, p):
        if not a or not p:
            return "-"
        per_round_ratios = per_round(a, p)
        if not per_round_ratios:  # different rounds on the two sides: medians of each
            return f"{seconds(a) / seconds(p):.2f}"
        mid = f"{statistics.median(per_round_ratios):.2f}"
        if len(per_round_ratios) == 1:
            return mid
        return f"{mid} ({min(per_round_ratios):.2f}-{max(per_round_ratios):.2f})"

    def quiet(r):
        return all(r.get(f) and 100 * r[f] / best_probe >= fma_min for f in PROBES)

    def quiet_ratio(a, p):
        if not a or not p or not best_probe:
            return "-"
        quiet_ratios = per_round(a, p, quiet)
        if not quiet_ratios:
            return "none"
        return f"{statistics.median(quiet_ratios):.2f} ({len(quiet_ratios)})"

    for case, batch in cases:
        for amflow_key, torch_key, label in [("amflow", "pytorch-eager", ""),
                                             ("amflow-bf16", "pytorch-bf16", " bf16")]:
            a, p = rows.get((case, batch, amflow_key)), rows.get((case, batch, torch_key))
            if a is None and p is None:
                continue
            flop = next(iter((a or p).values()))["flop"]

            def rate(r, side):
                if r is None or flop is None:
                    return "-"
                g = flop / seconds(r)
                frac = f" ({g / peak[side]:.0%})" if side in peak else ""
                return f"{g / 1e9:.1f}{frac}"

            extra = ("-", "-")
            if label == "":
                extra = (ratio(a, rows.get((case, batch, "pytorch-passive"))),
                         ratio(a, rows.get((case, batch, "pytorch-compile"))))
            both = a and p and rss(a) and rss(p)  # a side may be missing (a cut-short run)
            rss_ratio = f"{rss(a) / rss(p):.2f}" if both else "-"
            name = "sgemm 2048²" if case == "sgemm" else f"{case} b{batch}{label}"
            records = [r for k, v in rows.items() if k[:2] == (case, batch) for r in v.values()]
            steals = [r["steal_pct"] for r in records if "steal_pct" in r]
            steal = "-"
            if steals:
                steal = f"{max(steals):.1f}" + (" (stolen)" if max(steals) > steal_max else "")
            host = "-"
            case_probes = probe_values(records)
            if case_probes and best_probe:
                low = 100 * min(case_probes) / best_probe
                host = f"{low:.0f}" + (" (contended)" if low < fma_min else "")
            print(f"| {name} | {secs(a)} | {secs(p)} | {ratio(a, p)} | {extra[0]} | {extra[1]} "
                  f"| {rate(a, 'amflow')} | {rate(p, 'pytorch-eager')} | {mib(a)} | {mib(p)} | {rss_ratio} "
                  f"| {steal} | {host} | {quiet_ratio(a, p)} |")


if __name__ == "__main__":
    main()
