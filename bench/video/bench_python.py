"""Decode + sample + resize throughput of PyAV and decord on one core, the same work as
crates/amflow-video/examples/decode_bench.rs: 8 frames per clip (TSN segment centres, or
dense 8 x stride 8 centred), resized to short side 128, RGB uint8.

Usage: python bench_python.py {pyav|decord} {segment|dense} ROUNDS FILE...
Prints: <library> <sampler> clips=N cpu_seconds=S clips_per_cpu_s=R wall_seconds=W
(CPU time of the process: "per core", and robust to other load on the machine).
"""
import sys
import time


def indices(sampler, n):
    if sampler == "dense":
        span = 7 * 8 + 1
        if n < span:
            return [min(int((i + 0.5) * n / 8), n - 1) for i in range(8)]
        start = (n - span) // 2
        return [start + 8 * i for i in range(8)]
    seg = n / 8
    return [min(int((i + 0.5) * seg), n - 1) for i in range(8)]


def target(w, h, short=128):
    if w <= h:
        return short, round(h * short / w)
    return round(w * short / h), short


def pyav_clip(path, sampler):
    import av

    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "NONE"
        s.codec_context.thread_count = 1
        if s.frames:
            n = s.frames
        elif s.duration is not None:
            n = round(float(s.duration * s.time_base) * float(s.average_rate))
        else:
            n = round(c.duration / 1e6 * float(s.average_rate))
        want = indices(sampler, n)
        wanted = set(want)
        last = max(want)
        out = {}
        tw, th = target(s.codec_context.width, s.codec_context.height)
        for k, frame in enumerate(c.decode(s)):
            if k in wanted:
                out[k] = frame.to_ndarray(format="rgb24", width=tw, height=th)
            if k >= last:
                break
        return [out[i] for i in want if i in out]


def decord_clip(path, sampler):
    import decord

    probe = decord.VideoReader(path, num_threads=1)
    h, w = probe.next().shape[:2]
    tw, th = target(w, h)
    vr = decord.VideoReader(path, width=tw, height=th, num_threads=1)
    want = indices(sampler, len(vr))
    return list(vr.get_batch(want).asnumpy())


def main():
    lib, sampler, rounds, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    fn = pyav_clip if lib == "pyav" else decord_clip
    start = time.perf_counter()
    cpu_start = time.process_time()
    clips = 0
    for _ in range(rounds):
        for f in files:
            frames = fn(f, sampler)
            assert len(frames) == 8, (f, len(frames))
            clips += 1
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    print(
        f"{lib} {sampler} clips={clips} cpu_seconds={cpu:.2f} "
        f"clips_per_cpu_s={clips / cpu:.2f} wall_seconds={wall:.2f}"
    )


if __name__ == "__main__":
    main()
