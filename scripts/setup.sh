#!/usr/bin/env bash
# Installs the Debian packages amflow needs on a fresh machine (Debian 12 / Ubuntu 22.04+):
# FFmpeg's libraries for decoding (ffmpeg-next), clang for its bindgen step, the ffmpeg tool and
# opencv-doc (real test footage) for the tests. Needs root or sudo; Rust comes from rustup.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  pkg-config clang libclang-dev \
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev \
  libavfilter-dev libavdevice-dev \
  ffmpeg opencv-doc >/dev/null
echo "amflow: system packages installed" >&2
