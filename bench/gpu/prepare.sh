#!/usr/bin/env bash
# Prepares the GPU run (bench/gpu/README.md) on a CPU machine with a network: builds the model
# bench with burn's Vulkan backend (which runs on NVIDIA's driver) into bench/gpu/bin/, stripped,
# and downloads the Vulkan/EGL loader packages into .gl/ for a bare GPU machine.
#
#   bench/gpu/prepare.sh          # then carry bench/gpu/bin and .gl to the GPU machine
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

log=$(mktemp)
cargo bench -p amflow-train --bench model --features vulkan --locked --no-run 2>&1 | tee "$log" >&2
bin=$(sed -n 's/.*Executable benches\/model.rs (\(.*\))/\1/p' "$log" | tail -1)
[ -x "$bin" ] || { echo "prepare: no bench binary found in cargo's output" >&2; exit 1; }
mkdir -p bench/gpu/bin
cp "$bin" bench/gpu/bin/model-bench
strip bench/gpu/bin/model-bench
ls -l bench/gpu/bin/model-bench >&2

# The loader libraries a bare machine may lack (the device README's recipe): downloaded as
# .deb files, unpacked there by run.sh.
mkdir -p .gl /tmp/amd64/partial
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
# shellcheck disable=SC2086
apt-get $o update -qq
# shellcheck disable=SC2086
(cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
echo "prepare: bench/gpu/bin/model-bench and .gl/ are ready" >&2
