#!/usr/bin/env bash
# Timeline throughput of `amflow predict --timeline` in video-seconds per wall second, for the
# embedded model (synthetic-small: ViT-S/8-like backbone, 8 x 56x56 clips). Not part of CI.
# Needs the ffmpeg tool (to make the input) and cargo. The input: a 60 s 30 fps 320x240 H.264
# test pattern, made once under $WORK (default /tmp/amflow-timeline-bench). The checkpoint:
# synthetic-small trained for one short epoch (its weights do not change the speed).
# AMFLOW names the binary (default: the workspace's dev build, built here).
set -euo pipefail
WORK=${WORK:-/tmp/amflow-timeline-bench}
WINDOW=${WINDOW:-2s}
STRIDE=${STRIDE:-1s}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$WORK"
if [ -z "${AMFLOW:-}" ]; then
  (cd "$root" && cargo build -q --workspace)
  target=$(cd "$root" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  AMFLOW=$target/debug/amflow
fi
video=$WORK/pattern-60s.mp4
[ -s "$video" ] || ffmpeg -v error -y -f lavfi -i "testsrc2=size=320x240:rate=30:duration=60" \
  -c:v libx264 -preset veryfast -pix_fmt yuv420p "$video"
ckpt=$WORK/run/last.safetensors
if [ ! -s "$ckpt" ]; then
  cat > "$WORK/train.toml" <<'TOML'
seed = 1
model = "synthetic-small"
[data.synthetic]
val_samples = 4
[data.synthetic.train]
num_samples = 8
[optim]
epochs = 1
batch_size = 4
TOML
  "$AMFLOW" -q train --config "$WORK/train.toml" --run-dir "$WORK/run" >/dev/null
fi
echo "== $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in 1 2; do
  start=$(date +%s.%N)
  "$AMFLOW" -q predict --checkpoint "$ckpt" --timeline --window "$WINDOW" --stride "$STRIDE" \
    --top-k 3 --out "$WORK/out" "$video" > "$WORK/out.jsonl"
  end=$(date +%s.%N)
  python3 -c "w=$end-$start; n=sum(1 for _ in open('$WORK/out.jsonl')); print(f'round $round: {n} windows ($WINDOW every $STRIDE) over 60 s of video in {w:.2f} s: {60/w:.1f} video-s per s, {n/w:.1f} windows per s')"
done
