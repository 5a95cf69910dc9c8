#!/usr/bin/env bash
# Runs fuzz targets one after the other, each for $SECS seconds (default 600), single process,
# with the limits that turn an input-sized allocation into a crash. Logs: fuzz/logs/<target>.log
# (the last `#N DONE` / stat line is the executions count). Usage (from the repository root):
#   fuzz/run_targets.sh [--features model] TARGET...
set -u
cd "$(dirname "$0")"
FEATURES=()
# The model-side targets build in their own target dir (linking burn), so switching between
# the two groups does not rebuild either.
if [ "${1:-}" = "--features" ]; then FEATURES=(--features "$2" --target-dir target/model); shift 2; fi
SECS=${SECS:-600}
mkdir -p logs
for t in "$@"; do
  mkdir -p "corpus/$t"
  case "$t" in
    dataset_config|model_config|train_config) DICT=(-dict=dict/toml.dict) ;;
    manifest_ssv2|hf_config) DICT=(-dict=dict/json.dict) ;;
    checkpoint) DICT=(-dict=dict/safetensors.dict) ;;
    *) DICT=() ;;
  esac
  RUSTC_BOOTSTRAP=1 cargo fuzz run "${FEATURES[@]}" "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$SECS" -malloc_limit_mb=512 -rss_limit_mb=2048 -print_final_stats=1 \
    "${DICT[@]}" \
    > "logs/$t.log" 2>&1
  echo "$t rc=$? $(grep -E '^#[0-9]+' "logs/$t.log" | tail -1)"
done
