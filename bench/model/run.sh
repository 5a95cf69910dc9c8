#!/usr/bin/env bash
# The model benchmark, amflow and PyTorch side by side (bench/model/README.md).
#
#   bench/model/run.sh            # 5 timed repetitions after 1 warm-up, every case
#   bench/model/run.sh --quick    # 2 repetitions (or REPS=n WARMUP=n)
#   CASES="infer:1 train:1" bench/model/run.sh
#
# Every case runs in its own process on each side (peak RSS is per case), amflow first.
# Threads: THREADS (default 2) for both: torch.set_num_threads and RAYON_NUM_THREADS (burn's
# flex backend runs on rayon's global pool, its matrix products through gemm on the same pool).
# The PyTorch side runs when `python3 -c "import torch, transformers"` works (PYTHON=...).
# Results go to $OUT (default target/bench-model/<UTC time>.jsonl) and a table to stdout.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/bench/model"
REPS="${REPS:-5}"
WARMUP="${WARMUP:-1}"
if [[ "${1:-}" == "--quick" ]]; then REPS=2; fi
THREADS="${THREADS:-2}"
PYTHON="${PYTHON:-python3}"
CASES="${CASES:-sgemm:1 infer:1 infer:4 train:1 train:4}"
OUT="${OUT:-$ROOT/target/bench-model/$(date -u +%Y%m%dT%H%M%SZ).jsonl}"
mkdir -p "$(dirname "$OUT")"
export RAYON_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS"
# PyTorch's OpenMP threads spin at every barrier by default; on a machine shared with other
# work one descheduled thread then stalls the other, and PyTorch ran 5-15x slower here
# (bench/model/README.md). Passive waiting is its best setting on a loaded machine.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

cd "$ROOT"
{ echo "# $(date -u +%FT%TZ) $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"; } | tee -a "$OUT" >&2
cargo bench -p amflow-train --bench model --locked --no-run >&2
torch=1
"$PYTHON" -c "import torch, transformers" 2>/dev/null || { torch=0; echo "PyTorch side skipped: $PYTHON lacks torch/transformers" >&2; }

for c in $CASES; do
  case_name="${c%%:*}"; batch="${c##*:}"
  args=(--case "$case_name" --batch "$batch" --reps "$REPS" --warmup "$WARMUP")
  echo "== $case_name batch $batch" >&2
  cargo bench -q -p amflow-train --bench model --locked -- "${args[@]}" | tee -a "$OUT" >&2
  if [[ $torch == 1 ]]; then
    "$PYTHON" "$HERE/bench_torch.py" "${args[@]}" --threads "$THREADS" | tee -a "$OUT" >&2
  fi
done
echo "# done $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT" >&2
"$PYTHON" "$HERE/table.py" "$OUT"
