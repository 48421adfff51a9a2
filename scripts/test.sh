#!/usr/bin/env bash
# The project's test command (README): generated files current, formatting, lints, every test.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== crds/ up to date"
cargo run --quiet -p catalog-api --bin crdgen -- --check
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings
echo "== cargo build (the end-to-end suites spawn the real binaries)"
cargo build --workspace --bins --all-features
echo "== cargo test"
cargo test --workspace --all-features --no-fail-fast
