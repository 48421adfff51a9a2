#!/usr/bin/env bash
# The project's test command (README): generated files current, formatting, lints, every test.
# Installs the Debian packages the build and the end-to-end suites use when they are missing
# (scripts/lib/packages.sh), so a fresh Debian machine with a Rust toolchain needs nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/packages.sh
# Build: pkg-config, libssl-dev. End-to-end suites: docker-registry, htpasswd, openssl, git
# (daemon and http-backend included), sshd and ssh-keygen, jq, pgrep; and kubectl.
ensure_packages pkg-config libssl-dev git docker-registry apache2-utils openssl \
    openssh-server openssh-client jq procps
require_kubectl
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== crds/ up to date"
cargo run --quiet -p catalog-api --bin crdgen -- --check
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings
echo "== cargo clippy -p caib (alone, as \`cargo install --path caib\` builds it: the reconciler without its \`controller\` feature)"
cargo clippy -p caib --all-targets -- -D warnings
echo "== cargo build (the end-to-end suites spawn the real binaries)"
cargo build --workspace --bins --all-features
echo "== cargo test"
cargo test --workspace --all-features --no-fail-fast
