#!/usr/bin/env bash
# Runs every test of render-node on this machine: installs the system packages it needs
# (scripts/setup.sh), fetches the real test footage, then runs the whole cargo test suite
# (unit, integration and GPU tests on the software Vulkan driver when there is no GPU).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

# Vulkan loaders want a private runtime folder; lavapipe works without a display.
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "${XDG_RUNTIME_DIR}" ]; then
  export XDG_RUNTIME_DIR="$(mktemp -d)"
  chmod 0700 "$XDG_RUNTIME_DIR"
fi

bash scripts/fetch-media.sh

cargo test --all-targets "$@"
