#!/usr/bin/env bash
# Timeline throughput of `amflow predict --timeline` in video-seconds per wall second, for the
# embedded model (synthetic-small: ViT-S/8-like backbone, 8 x 56x56 clips), and the lag of
# `amflow watch` on a 30 fps live source (the ffmpeg tool at real-time rate into a pipe,
# a prediction every second on the latest 2 s). Not part of CI.
# Needs the ffmpeg tool (to make the input) and cargo. The input: a 60 s 30 fps 320x240 H.264
# test pattern, made once under $WORK (default /tmp/amflow-timeline-bench). The checkpoint:
# synthetic-small trained for one short epoch (its weights do not change the speed).
# AMFLOW names the binary (default: the workspace's dev build, built here).
# MODEL=vit-s14 measures DINOv2 ViT-S/14 AM/12 (the dinov2-s14-am12-transformer preset, random
# backbone weights: the speed does not depend on them) at 8 x 224² instead; DURATION sets the
# video's length in seconds (default 60).
set -euo pipefail
MODEL=${MODEL:-synthetic-small}
DURATION=${DURATION:-60}
WORK=${WORK:-/tmp/amflow-timeline-bench}/$MODEL
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
video=$WORK/pattern-${DURATION}s.mp4
[ -s "$video" ] || ffmpeg -v error -y -f lavfi -i "testsrc2=size=320x240:rate=30:duration=$DURATION" \
  -c:v libx264 -preset veryfast -pix_fmt yuv420p "$video"
ckpt=$WORK/run/last.safetensors
if [ ! -s "$ckpt" ] && [ "$MODEL" = vit-s14 ]; then
  cat > "$WORK/train.toml" <<'TOML'
seed = 1
[model]
preset = "dinov2-s14-am12-transformer"
num_classes = 11
backbone = { weights = { random = { seed = 0 } } }
[data.synthetic]
val_samples = 1
[data.synthetic.train]
num_samples = 1
size = 224
[optim]
epochs = 1
batch_size = 1
TOML
elif [ ! -s "$ckpt" ]; then
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
fi
if [ ! -s "$ckpt" ]; then
  "$AMFLOW" -q train --config "$WORK/train.toml" --run-dir "$WORK/run" >/dev/null
fi
echo "== $MODEL, $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in 1 2; do
  start=$(date +%s.%N)
  "$AMFLOW" -q predict --checkpoint "$ckpt" --timeline --window "$WINDOW" --stride "$STRIDE" \
    --top-k 3 --out "$WORK/out" "$video" > "$WORK/out.jsonl"
  end=$(date +%s.%N)
  python3 -c "w=$end-$start; n=sum(1 for _ in open('$WORK/out.jsonl')); print(f'round $round: {n} windows ($WINDOW every $STRIDE) over $DURATION s of video in {w:.2f} s: {$DURATION/w:.2f} video-s per s, {n/w:.2f} windows per s')"
done
echo "== live: 20 s of 30 fps 320x240 into amflow watch - (window 2s, every 1s)"
ffmpeg -v error -re -f lavfi -i "testsrc2=size=320x240:rate=30:duration=20" -c:v libx264 \
  -preset ultrafast -tune zerolatency -f mpegts - |
  "$AMFLOW" -q watch - --checkpoint "$ckpt" --window 2s --every 1s > "$WORK/live.jsonl"
python3 - "$WORK/live.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
lags = sorted(r["lag_s"] for r in rows)
behind = sorted(r["behind_s"] for r in rows)
print(f"{len(rows)} predictions, lag mean {sum(lags)/len(lags):.3f} s, max {lags[-1]:.3f} s, "
      f"behind real time mean {sum(behind)/len(behind):.3f} s, max {behind[-1]:.3f} s, "
      f"{rows[-1]['dropped']} windows dropped")
PY
