#!/usr/bin/env bash
# Installs the Debian packages amflow needs on a fresh machine (Debian 12 / Ubuntu 22.04+):
# FFmpeg's libraries for decoding (ffmpeg-next), clang for its bindgen step, the ffmpeg tool and
# opencv-doc (real test footage) for the tests, and Mesa's EGL/OpenGL drivers so that the wgpu
# backend runs on the CPU (`--device wgpu-gl`, the GPU test suite). Needs root or sudo; Rust
# comes from rustup.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  pkg-config clang libclang-dev \
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev \
  libavfilter-dev libavdevice-dev \
  ffmpeg opencv-doc \
  mesa-vulkan-drivers libegl1 libegl-mesa0 libgl1-mesa-dri >/dev/null
echo "amflow: system packages installed" >&2
