#!/usr/bin/env python3
"""The GPU run's table (bench/gpu/run.sh): parity, then per precision and batch the train-step
time, clips/s and peak device memory of amflow and PyTorch, and their ratio."""
import json
import sys


def main(path):
    rows, parity, memory = {}, [], {}
    pending = None
    for line in open(path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        r = json.loads(line)
        if "peak_device_mib" in r:
            if pending is not None:
                memory[pending] = r["peak_device_mib"]
            continue
        if r.get("case") == "parity":
            parity.append(r)
            continue
        key = (r.get("precision", "f32"), r["batch"])
        rows.setdefault(key, {})[r["side"]] = r
        if r["side"] == "amflow":
            pending = key
    print("| AM flow | TPM | relative logit error vs CPU |\n| --- | --- | --- |")
    for p in parity:
        print(f"| {p['am_flow']} | {p['tpm']} | {p['relative_error']:.2e} |")
    print()
    print("| precision | batch | amflow s/step | clips/s | device MiB | PyTorch s/step | clips/s | device MiB | time ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for (precision, batch), sides in sorted(rows.items()):
        a, t = sides.get("amflow"), sides.get("pytorch")
        cell = lambda r: (f"{r['median_s']:.3f}", f"{batch / r['median_s']:.1f}") if r else ("-", "-")
        (a_s, a_c), (t_s, t_c) = cell(a), cell(t)
        t_mem = f"{t['peak_device_bytes'] / 2**20:.0f}" if t and t.get("peak_device_bytes") else "-"
        ratio = f"{a['median_s'] / t['median_s']:.2f}" if a and t else "-"
        print(f"| {precision} | {batch} | {a_s} | {a_c} | {memory.get((precision, batch), '-')} | {t_s} | {t_c} | {t_mem} | {ratio} |")


if __name__ == "__main__":
    main(sys.argv[1])
