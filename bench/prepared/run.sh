#!/usr/bin/env bash
# Loader throughput from the original videos vs from prepared copies (`amflow data
# prepare`), and the copies' size and fidelity. Not part of CI. Needs the ffmpeg tool (to
# make the inputs) and cargo; PyAV/decord numbers come from bench/video/run.sh on the same
# files. Inputs: bench/video's Kinetics-like clips (10 s, 25 fps, 340x256, noisy test
# pattern; 8 H.264/mp4, 8 VP9/webm), made once under $WORK (default /tmp/amflow-video-bench).
set -euo pipefail
WORK=${WORK:-/tmp/amflow-video-bench}
ROUNDS=${ROUNDS:-2}
CODECS=${CODECS:-"jpeg:3 jpeg:5 raw"}
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
(cd "$root" && cargo build -q --release -p amflow-video --example loader_bench)
bin=$(cd "$root" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/examples/loader_bench
lscpu | grep -E "Model name|^CPU\(s\)"
for set in h264 vp9; do
  ext=mp4
  [ "$set" = vp9 ] && ext=webm
  list="$WORK/$set.txt"
  (cd "$WORK" && for f in ${set}_*; do echo "$f 0"; done) > "$list"
  for codec in $CODECS; do
    out="$WORK/prepared-$set-${codec/:/}"
    rm -rf "$out"
    "$bin" prepare "$list" "$out" "$codec"
    # Fidelity: PSNR of every stored frame against the original decode at the same size.
    if [ "$codec" != raw ]; then
      for k in 0 3 6; do
        ffmpeg -v error -y -f image2pipe -i <(python3 "$here/record_frames.py" "$out" $k) -f rawvideo -pix_fmt rgb24 "$WORK/p.rgb"
        ffmpeg -i "$WORK/${set}_$((k + 1)).$ext" -f rawvideo -pix_fmt rgb24 -sws_flags bilinear - 2>/dev/null \
          | ffmpeg -f rawvideo -pix_fmt rgb24 -s 340x256 -i - -f rawvideo -pix_fmt rgb24 -s 340x256 -i "$WORK/p.rgb" \
            -lavfi psnr -f null - 2>&1 | grep -o "average:[0-9.inf]*" | sed "s/^/psnr $set $codec video $((k + 1)) /"
      done
    fi
  done
  for sampler in segment dense; do
    for workers in 1 2; do
      pin=""
      [ "$workers" = 1 ] && pin="taskset -c 0"
      echo "== $set $sampler workers=$workers source"; $pin "$bin" read "$list" "$sampler" "$workers" "$ROUNDS"
      echo "== $set $sampler workers=$workers prepared jpeg:3"; $pin "$bin" read "$WORK/prepared-$set-jpeg3" "$sampler" "$workers" $((ROUNDS * 8))
    done
  done
done
