#!/usr/bin/env bash
# The whole product on this machine: kube-emulator, docker-registry with demo images, a catalog
# git remote, catalog-reconciler; walks the quickstart with the real caib and kubectl and stays
# up until Ctrl-C. `--exit` stops after the walkthrough.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in docker-registry kubectl git; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: $tool is required: apt-get install -y --no-install-recommends docker-registry git (kubectl 1.32 for kubectl)" >&2
        exit 1
    fi
done
cargo build --quiet --workspace --bins
exec target/debug/sandbox "$@"
