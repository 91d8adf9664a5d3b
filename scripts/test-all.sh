#!/usr/bin/env bash
# Runs every test of the workspace: installs the peers, then format, lints and tests.
# End-to-end tests run against a real API server when E2E_CLUSTER_SH names a cluster starter
# (`STARTER start DIR` / `STARTER stop DIR`, as envtest's cluster.sh); otherwise they skip.
set -euo pipefail
cd "$(dirname "$0")/.."

export PEERS_HOME="${PEERS_HOME:-$HOME/.cache/gitops-secrets/peers}"
bash scripts/install-peers.sh

# Tests find the peers through these variables.
export SOPS_BIN="$PEERS_HOME/venv/bin/sops"
export MOTO_SERVER_BIN="$PEERS_HOME/venv/bin/moto_server"
if [ -n "${E2E_CLUSTER_SH:-}" ]; then
  E2E_CLUSTER_SH=$(cd "$(dirname "$E2E_CLUSTER_SH")" && pwd)/$(basename "$E2E_CLUSTER_SH")
  export E2E_CLUSTER_SH
  echo "end-to-end tests against the API server from $E2E_CLUSTER_SH"
else
  echo "E2E_CLUSTER_SH is not set: the end-to-end tests will skip"
fi

cargo fmt --all -- --check
# No new import circle between sibling modules (the known ones are listed in the .known file).
python3 scripts/import-circles.py
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The e2e tests run the real binary: build it first (a test cannot run cargo under cargo's lock).
cargo build -p controller --bin secrets-controller -p kubeseal-cli --bin kubeseal --quiet
# Tests run with their output uncaptured and a private TMPDIR; any trace of the secret canary
# in that output or in files left behind fails the run (docs/fuzzing.md, "Canary").
bash scripts/canary-check.sh cargo test --workspace -- --nocapture
