#!/usr/bin/env bash
# The whole product on this machine: kube-emulator, docker-registry with demo images, a catalog
# git remote, the forge stand-in, catalog-reconciler; walks the quickstart with the real caib
# and kubectl and stays up until Ctrl-C (or SIGTERM/SIGHUP). `--exit` stops after the walkthrough.
# Installs the Debian packages it needs when they are missing (scripts/lib/packages.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/packages.sh
ensure_packages pkg-config libssl-dev git docker-registry
require_kubectl
cargo build --quiet --workspace --bins
# exec: the sandbox is this process, so `kill <pid>` reaches it and it ends what it started.
exec target/debug/sandbox "$@"
