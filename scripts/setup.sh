#!/usr/bin/env bash
# Installs the system packages render-node needs to build, test and run, skipping what
# is already present. Debian 12 (bookworm); needs root or sudo for apt-get.
set -euo pipefail

PACKAGES=(
  # FFmpeg: libraries for ffmpeg-next (bindgen needs clang) and the CLI the tests use
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev
  libavfilter-dev libavdevice-dev pkg-config clang libclang-dev ffmpeg
  # wgpu without a GPU: Mesa's lavapipe (software Vulkan) and the Vulkan loader
  mesa-vulkan-drivers libvulkan1
  # cpal (ALSA) and the speech recordings the demo uses
  libasound2-dev alsa-utils
  # protoc for the gRPC contract
  protobuf-compiler
  # the demo fetches real footage from PyPI; tests use python3 for a few helpers
  python3 python3-pip curl ca-certificates
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: all system packages present"
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found; install Rust (rustup) first" >&2
  exit 1
fi
