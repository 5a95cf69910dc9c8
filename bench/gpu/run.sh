#!/usr/bin/env bash
# The GPU run (bench/gpu/README.md), on a GPU machine without a network, from the binary that
# bench/gpu/prepare.sh built on a CPU machine. Under 8 minutes: every case has a time limit.
#
#   bench/gpu/run.sh              # results: $OUT/gpu.jsonl (default target/bench-gpu) and a table
#
# 1. parity of the tiny preset with the CPU backend (every AM flow mode and TPM);
# 2. train-step time and peak device memory of dinov2-b14-am12-transformer, 8 frames of 224²,
#    batch 8 and 32, f32 and bf16 backbone, on burn's Vulkan backend;
# 3. the same model in PyTorch on the same GPU (eager, bf16 autocast for bf16), when installed.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$ROOT/target/bench-gpu}"
mkdir -p "$OUT"
LOG="$OUT/gpu.jsonl"
: >"$LOG"
BIN="$ROOT/bench/gpu/bin/model-bench"
DEVICE="${DEVICE:-vulkan}"
PRESET="${PRESET:-dinov2-b14-am12-transformer}"
BATCHES="${BATCHES:-8 32}"

# Loader libraries carried as .deb files (bare machines lack them).
if ls .gl/*.deb >/dev/null 2>&1; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; break; fi
done

echo "# $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null)" | tee -a "$LOG"

# Peak of the device memory in use while "$@" runs (nvidia-smi, every 0.2 s), in MiB.
with_memory() {
  local samples
  samples=$(mktemp)
  (while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits >>"$samples" 2>/dev/null; sleep 0.2; done) &
  local sampler=$!
  "$@"
  local rc=$?
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
  local peak
  peak=$(sort -n "$samples" | tail -1 | tr -d ' ')
  echo "{\"peak_device_mib\": ${peak:-null}, \"for\": \"$*\"}" | tee -a "$LOG"
  rm -f "$samples"
  return $rc
}

echo "== parity ($DEVICE vs CPU)" >&2
timeout 60 "$BIN" --case parity --device "$DEVICE" | tee -a "$LOG"

for precision in f32 bf16; do
  for batch in $BATCHES; do
    echo "== amflow train $PRESET batch $batch $precision" >&2
    with_memory timeout 75 "$BIN" --case train --device "$DEVICE" --preset "$PRESET" \
      --batch "$batch" --precision "$precision" --reps 3 --warmup 1 | tee -a "$LOG"
  done
done

if python3 -c "import torch, transformers, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  for precision in f32 bf16; do
    for batch in $BATCHES; do
      echo "== pytorch train batch $batch $precision" >&2
      flag=""; [ "$precision" = bf16 ] && flag="--bf16"
      # shellcheck disable=SC2086
      timeout 40 python3 bench/model/bench_torch.py --case train --device cuda --model b14 \
        --batch "$batch" $flag --reps 3 --warmup 1 | tee -a "$LOG"
    done
  done
else
  echo "PyTorch with CUDA not available: its side is skipped" >&2
fi
echo "# done $(date -u +%FT%TZ)" | tee -a "$LOG"
python3 "$ROOT/bench/gpu/table.py" "$LOG"
