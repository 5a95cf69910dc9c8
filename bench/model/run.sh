#!/usr/bin/env bash
# The model benchmark, amflow and PyTorch side by side (bench/model/README.md).
#
#   bench/model/run.sh            # 5 timed repetitions after 1 warm-up, every case
#   bench/model/run.sh --quick    # 2 repetitions (or REPS=n WARMUP=n)
#   CASES="infer:1 train:1" bench/model/run.sh
#   ISA=avx2 bench/model/run.sh   # both sides on their AVX2 code paths (below)
#   ROUNDS=3 bench/model/run.sh   # each case 3 times, the sides alternating (below)
#
# Every case runs in its own process on each side (peak RSS is per case); odd rounds run amflow
# first, even rounds PyTorch first.
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
# ROUNDS > 1 runs each case's processes (amflow, then each PyTorch anchor) that many times in
# turn, so that a minute of contention from the host's other tenants lands on both sides; the
# table gives the median of the per-round ratios and their range. Every line carries its round.
ROUNDS="${ROUNDS:-1}"
OUT="${OUT:-$ROOT/target/bench-model/$(date -u +%Y%m%dT%H%M%SZ).jsonl}"
mkdir -p "$(dirname "$OUT")"
export RAYON_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS"
# PyTorch runs as users run it: its default threading (OpenMP threads spin at barriers). The
# anchor of every ratio is that run. OMP_WAIT_POLICY=PASSIVE (better on a loaded machine, 15-35 %
# slower on an idle one) is an extra row, `variant = passive`. EXTRA="compile bf16 passive" picks
# the extra anchors (default: all; bf16 only on CPUs with native bf16: AVX-512 BF16 or AMX).
unset OMP_WAIT_POLICY
EXTRA="${EXTRA:-passive compile bf16}"
# ISA=avx2 measures the AVX2 code paths on a CPU that also has AVX-512, as an AVX2-only CPU
# (AMD Zen 3 and older, many desktop CPUs) runs them: amflow is built from a copy of the tree
# without the `x86-v4` features of burn and pulp (gemm and the host kernels then have only
# their AVX2/FMA kernels; target/bench-avx2), and PyTorch gets ATen's, MKL's and oneDNN's AVX2
# limits. The micro-architecture stays this CPU's, so this is the code path, not the machine.
ISA="${ISA:-native}"

cd "$ROOT"
BUILD_DIR="$ROOT"
case "$ISA" in
  native) ;;
  avx2)
    BUILD_DIR="$ROOT/target/bench-avx2/src"
    rm -rf "$BUILD_DIR"; mkdir -p "$BUILD_DIR"
    # The tracked files as they are in the working tree (uncommitted edits included).
    git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$BUILD_DIR"
    sed -i 's/, "x86-v4"//' "$BUILD_DIR/Cargo.toml"
    sed -i 's/features = \["x86-v4"\]/features = []/' "$BUILD_DIR/crates/amflow-kernels/Cargo.toml"
    export CARGO_TARGET_DIR="$ROOT/target/bench-avx2/target"
    if (cd "$BUILD_DIR" && cargo tree -e features -p amflow-train --locked) | grep -q 'x86-v4'; then
      echo "ISA=avx2: the x86-v4 feature is still enabled in $BUILD_DIR" >&2; exit 1
    fi
    export ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2
    ;;
  *) echo "ISA must be native or avx2, not $ISA" >&2; exit 2 ;;
esac
flags="$(grep -m1 '^flags' /proc/cpuinfo)"
ext=""
for f in avx2 fma avx512f avx512_bf16 amx_bf16 amx_tile; do
  [[ " $flags " == *" $f "* ]] && ext="$ext $f"
done
native_bf16=0
[[ "$ext" == *avx512_bf16* || "$ext" == *amx_bf16* ]] && native_bf16=1
[[ $ISA == avx2 ]] && native_bf16=0  # an AVX2-only CPU has no native bf16
amflow_bench() { (cd "$BUILD_DIR" && cargo bench -q -p amflow-train --bench model --locked -- "$@"); }
(cd "$BUILD_DIR" && cargo bench -p amflow-train --bench model --locked --no-run) >&2
# A start with more than a quarter of a core busy is a loaded machine: say so, and keep the
# numbers out of the docs (docs/performance.md, "Method"). The 1-minute load average still
# holds the build above or a previous run for a minute or two, so wait up to IDLE_WAIT seconds
# (default 240) for it to fall first.
busy() { awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v n="$(nproc)" 'BEGIN { exit !(l > 0.25 * n) }'; }
waited=0
while busy && (( waited < ${IDLE_WAIT:-240} )); do sleep 10; waited=$(( waited + 10 )); done
load_start="$(cut -d' ' -f1 /proc/loadavg)"
loaded=0
busy && loaded=1
{ echo "# $(date -u +%FT%TZ) $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, extensions:$ext, load $(cut -d' ' -f1-3 /proc/loadavg)$( (( waited > 0 )) && echo " (after waiting ${waited} s for it to fall)")"
  echo "# code paths: ISA=$ISA (amflow$([[ $ISA == avx2 ]] && echo ' without x86-v4: gemm and host kernels AVX2/FMA' || echo ': run-time choice, AVX-512 where the CPU has it')); PyTorch ATen $("$PYTHON" -c 'import torch; print(torch.backends.cpu.get_cpu_capability())' 2>/dev/null || echo '?')${MKL_ENABLE_INSTRUCTIONS:+, MKL_ENABLE_INSTRUCTIONS=$MKL_ENABLE_INSTRUCTIONS, ONEDNN_MAX_CPU_ISA=$ONEDNN_MAX_CPU_ISA}"
  if [[ $loaded == 1 ]]; then echo "# LOADED MACHINE at start (load $load_start): not for the docs"; fi
} | tee -a "$OUT" >&2
torch=1
"$PYTHON" -c "import torch, transformers" 2>/dev/null || { torch=0; echo "PyTorch side skipped: $PYTHON lacks torch/transformers" >&2; }

# Steal: CPU time the hypervisor gave to other guests while this VM wanted it (`st` in vmstat),
# as a share of all CPU time over one process. The load average does not show it; on a shared
# host it reached 26-39 % during single runs (docs/performance.md, "Steal"). Every JSON line
# carries its process's `steal_pct`; table.py flags cases above STEAL_MAX (default 5) %.
cpu_ticks() { awk '/^cpu /{print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
# The host probe: the AVX2 multiply-add rate on THREADS threads (fma_peak.c --probe, about 70 ms)
# right before and after each process. Neither steal nor the load average shows a vCPU whose
# physical core is shared with another guest's busy thread; the probe does (on a Zen 3 guest
# the two-thread rate moved between 122 and 179 GFLOP/s from one minute to the next, and the
# model's times with it). Lines get "fma_before" / "fma_after" (GFLOP/s); table.py compares
# them with the run's best. Skipped where gcc cannot build it (not x86-64).
# Built under target/ (not next to $OUT, which may be docs/results).
mkdir -p "$ROOT/target/bench-model"
PROBE="$ROOT/target/bench-model/fma_probe"
gcc -O3 -pthread "$HERE/fma_peak.c" -o "$PROBE" 2>/dev/null || PROBE=""
probe() { if [[ -n $PROBE ]]; then "$PROBE" --probe "$THREADS" || echo null; else echo null; fi; }
measured() {  # measured CMD...: runs it; its JSON line gets "round", "steal_pct" and the probes
  local s0 t0 s1 t1 out steal f0 f1
  f0="$(probe)"
  read -r s0 t0 < <(cpu_ticks)
  out="$("$@")"
  read -r s1 t1 < <(cpu_ticks)
  f1="$(probe)"
  steal="$(awk -v s=$((s1 - s0)) -v t=$((t1 - t0)) 'BEGIN { printf "%.1f", (t > 0 ? 100 * s / t : 0) }')"
  printf '%s\n' "$out" \
    | sed "s/^{/{\"round\": $round, \"steal_pct\": $steal, \"fma_before\": $f0, \"fma_after\": $f1, /" \
    | tee -a "$OUT" >&2
}
amflow_side() {
  measured amflow_bench "${args[@]}"
  if [[ $native_bf16 == 1 && " $EXTRA " == *" bf16 "* && $case_name == infer ]]; then
    measured amflow_bench "${args[@]}" --precision bf16
  fi
}
torch_side() {
  [[ $torch == 1 ]] || return 0
  measured "$PYTHON" "$HERE/bench_torch.py" "${args[@]}" --threads "$THREADS"
  if [[ " $EXTRA " == *" passive "* ]]; then
    measured env OMP_WAIT_POLICY=PASSIVE "$PYTHON" "$HERE/bench_torch.py" "${args[@]}" \
      --threads "$THREADS" --variant passive
  fi
  if [[ " $EXTRA " == *" compile "* && $case_name != sgemm ]]; then
    # The compiled anchor's first call compiles: at least one warm-up, never timed.
    measured "$PYTHON" "$HERE/bench_torch.py" "${args[@]}" --warmup "$(( WARMUP > 0 ? WARMUP : 1 ))" \
      --threads "$THREADS" --compile
  fi
  if [[ $native_bf16 == 1 && " $EXTRA " == *" bf16 "* && $case_name == infer ]]; then
    measured "$PYTHON" "$HERE/bench_torch.py" "${args[@]}" --threads "$THREADS" --bf16
  fi
}
for c in $CASES; do
  case_name="${c%%:*}"; batch="${c##*:}"
  args=(--case "$case_name" --batch "$batch" --reps "$REPS" --warmup "$WARMUP")
  for round in $(seq "$ROUNDS"); do
    echo "== $case_name batch $batch, round $round of $ROUNDS" >&2
    # Odd rounds run amflow first, even rounds PyTorch first: on the shared host the first
    # process of a pair did better (docs/performance.md, "One change: the passes run on rayon's
    # pool"), and alternating the order keeps that out of the median ratio.
    if (( round % 2 == 1 )); then amflow_side; torch_side; else torch_side; amflow_side; fi
  done
done
echo "# done $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)$([[ $loaded == 1 ]] && echo ' (LOADED at start: not for the docs)')" | tee -a "$OUT" >&2
"$PYTHON" "$HERE/table.py" "$OUT"
