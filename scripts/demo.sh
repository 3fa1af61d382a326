#!/usr/bin/env bash
# Sets everything up and renders the demo project (examples/demo.json) on real footage:
# installs the system packages, fetches the clips, builds render-node and renders.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/fetch-media.sh
cargo build --release --quiet

if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "${XDG_RUNTIME_DIR}" ]; then
  export XDG_RUNTIME_DIR="$(mktemp -d)"
  chmod 0700 "$XDG_RUNTIME_DIR"
fi

mkdir -p examples/out
./target/release/render-node render examples/demo.json -o examples/out/demo.mp4
echo "demo: examples/out/demo.mp4 (thumbnail examples/out/demo.webp)"
