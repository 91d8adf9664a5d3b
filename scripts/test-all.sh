#!/usr/bin/env bash
# Runs every test of the workspace: installs the peers, then format, lints and tests.
set -euo pipefail
cd "$(dirname "$0")/.."

export PEERS_HOME="${PEERS_HOME:-$HOME/.cache/gitops-secrets/peers}"
bash scripts/install-peers.sh

# Tests find the peers through these variables.
export SOPS_BIN="$PEERS_HOME/venv/bin/sops"
export MOTO_SERVER_BIN="$PEERS_HOME/venv/bin/moto_server"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace
