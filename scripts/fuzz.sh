#!/usr/bin/env bash
# Fuzzes the project parser and validator (fuzz/fuzz_targets/project_parse.rs) for a
# bounded time: scripts/fuzz.sh [SECONDS] (default 60). Not part of scripts/test.sh.
#
# cargo-fuzz needs nightly flags; on a stable toolchain RUSTC_BOOTSTRAP=1 lets rustc accept
# them. The sanitizer defaults to none (the parser is safe Rust; a panic is the finding);
# FUZZ_SANITIZER=address builds with AddressSanitizer instead. A crash input is left in
# fuzz/artifacts/project_parse/; copy it into tests/hardening/fuzz/ so that
# `cargo test --test hardening` keeps it as a regression test.
set -euo pipefail
seconds="${1:-60}"
sanitizer="${FUZZ_SANITIZER:-none}"
cd "$(dirname "$0")/../fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O -s "$sanitizer" project_parse
mkdir -p corpus/project_parse
# The seeds: the kept regression inputs and the demo project.
cp -n ../tests/hardening/fuzz/* ../examples/demo.json corpus/project_parse/ 2>/dev/null || true
cargo fuzz run -O -s "$sanitizer" project_parse corpus/project_parse -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048
