#!/usr/bin/env bash
# Side-by-side decode + sample + resize throughput: amflow-video vs PyAV vs decord, one
# core each (taskset -c 0). Not part of CI. Needs the ffmpeg tool (to make the inputs),
# cargo, and a Python with `pip install av decord numpy` (set PYTHON, default python3).
# Inputs: Kinetics-like clips, 10 s at 25 fps, short side 256, in H.264/mp4 (GOP 250,
# x264 defaults) and VP9/webm; made once under $WORK (default /tmp/amflow-video-bench).
set -euo pipefail
WORK=${WORK:-/tmp/amflow-video-bench}
PYTHON=${PYTHON:-python3}
ROUNDS=${ROUNDS:-2}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$WORK"
for i in $(seq 1 8); do
  f="$WORK/h264_$i.mp4"
  [ -s "$f" ] || ffmpeg -v error -y -f lavfi -i "testsrc2=size=340x256:rate=25:duration=10,noise=alls=$((i * 3)):allf=t" \
    -c:v libx264 -preset veryfast -pix_fmt yuv420p "$f"
  g="$WORK/vp9_$i.webm"
  [ -s "$g" ] || ffmpeg -v error -y -f lavfi -i "testsrc2=size=340x256:rate=25:duration=10,noise=alls=$((i * 3)):allf=t" \
    -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -pix_fmt yuv420p "$g"
done
(cd "$root" && cargo build -q --release -p amflow-video --example decode_bench)
bin=$(cd "$root" && cargo metadata --format-version 1 --no-deps | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/examples/decode_bench
for set in h264 vp9; do
  files=("$WORK"/${set}_*)
  for sampler in segment dense; do
    echo "== $set $sampler"
    taskset -c 0 "$bin" "$sampler" "$ROUNDS" "${files[@]}"
    taskset -c 0 "$bin" "$sampler-plain" "$ROUNDS" "${files[@]}"
    taskset -c 0 "$PYTHON" "$here/bench_python.py" pyav "$sampler" "$ROUNDS" "${files[@]}"
    taskset -c 0 "$PYTHON" "$here/bench_python.py" decord "$sampler" "$ROUNDS" "${files[@]}"
  done
done
