#!/usr/bin/env python3
"""Where one of rayon's workers waits while the other works: the serial sections of a run.

`perf record -e cpu-clock -F HZ` samples a thread only while it runs, one sample per 1/HZ
seconds of its CPU time, so a gap longer than the period between two samples of one worker is
time it slept. This script takes `perf script -F tid,time,ip,sym` output (with or without call
graphs), finds each worker's gaps, and attributes them to what the other worker ran meanwhile:
its leaf symbol, and with call graphs (`--call-graph dwarf`) the amflow kernel or burn op and
the autodiff backward step it ran in. Usage (bench/model/README.md, "Serial sections"):

    perf record -e cpu-clock -F 4999 -D 4000 -o serial.data \\
        target/release/deps/model-<hash> --case train --batch 1 --reps 3 --warmup 1
    perf script -i serial.data -F tid,time,ip,sym > serial.txt
    bench/model/serial_sections.py serial.txt --hz 4999

It prints each of the two busiest threads' busy share of the common span, its time in gaps,
and the other thread's samples during those gaps, largest first.
"""

import argparse
import bisect
import collections
import re


HEADER = re.compile(r"^\s*\d+\s+\d+\.\d+:")


def read(path):
    """{tid: [(time, [frames, leaf first])]} from `perf script` output."""
    samples = collections.defaultdict(list)
    current = None
    for line in open(path, errors="replace"):
        if not line.strip():
            current = None
            continue
        # A sample's first line is "TID TIME: ..." (perf pads the tid with spaces); its
        # call-graph frames follow on indented lines that start with an address.
        if HEADER.match(line):
            parts = line.split(None, 3)
            current = (float(parts[1].rstrip(":")), [])
            samples[parts[0]].append(current)
            # Without call graphs the symbol follows the address on the same line.
            if len(parts) == 4:
                current[1].append(parts[3].split(None, 1)[-1].strip())
            continue
        if current is not None:
            frame = line.strip().split(None, 1)
            if len(frame) == 2:
                current[1].append(frame[1])
    return samples


OP = re.compile(r"(amflow_kernels::[a-z_]+::[a-z_]+|burn_flex::(ops|tensor)::[A-Za-z_:]+)")
STEP = re.compile(r"<([A-Za-z_:]*(Backward|::[A-Z][A-Za-z]+)) as burn_autodiff::ops::backward")


def site(frames):
    """(leaf, kernel or op, backward step) of one sample."""
    leaf = re.sub(r"<.*", "", frames[0]) if frames else "?"
    op = next((m.group(1) for f in frames[1:] if (m := OP.search(f))), "")
    step = next((m.group(1) for f in frames if (m := STEP.search(f))), "")
    if not step:
        unary = next((f for f in frames if "burn_autodiff::ops::backward::unary" in f), "")
        step = "burn_autodiff unary backward" if unary else ""
    return leaf[:60], op[:60], step.split("::")[-1][:50]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("script", help="perf script -F tid,time,ip,sym output")
    parser.add_argument("--hz", type=float, default=499.0, help="perf record's -F")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    period = 1.0 / args.hz
    samples = read(args.script)
    tids = sorted(samples, key=lambda t: -len(samples[t]))[:2]
    if len(tids) < 2:
        raise SystemExit("fewer than two threads with samples")
    start = max(samples[t][0][0] for t in tids)
    end = min(samples[t][-1][0] for t in tids)
    span = end - start
    serial = collections.Counter()
    for me, other in ((tids[0], tids[1]), (tids[1], tids[0])):
        mine = [s for s in samples[me] if start <= s[0] <= end]
        theirs = [s for s in samples[other] if start <= s[0] <= end]
        times = [s[0] for s in theirs]
        idle = 0.0
        for (a, _), (b, _) in zip(mine, mine[1:]):
            if b - a > 1.5 * period:
                idle += b - a - period
                for _, frames in theirs[bisect.bisect_right(times, a) : bisect.bisect_left(times, b)]:
                    serial[site(frames)] += period
        print(
            f"thread {me}: busy {100 * len(mine) * period / span:.1f} % of {span:.3f} s, "
            f"{idle:.3f} s in gaps longer than 1.5 periods"
        )
    print(f"\nthe other thread's samples during those gaps: {sum(serial.values()):.3f} s")
    print("seconds  leaf | kernel or op | backward step")
    for (leaf, op, step), seconds in serial.most_common(args.top):
        print(f"{seconds:7.3f}  {leaf} | {op} | {step}")


if __name__ == "__main__":
    main()
