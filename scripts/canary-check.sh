#!/usr/bin/env bash
# Runs a test command (default: cargo test --workspace, output not captured) with a private
# TMPDIR, then fails if the test canary (canary/src/lib.rs: planted in every secret the tests
# create) shows up, raw or encoded, in anything the tests printed - logs, errors, panic
# messages - or in any file they left behind in that TMPDIR.
#   scripts/canary-check.sh [COMMAND...]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -eq 0 ]; then
  set -- cargo test --workspace -- --nocapture
fi

# Build the scanner first, so that its build output stays out of the scanned log.
cargo build --quiet -p canary --bin canary-scan
scan="${CARGO_TARGET_DIR:-target}/debug/canary-scan"

work="$(mktemp -d "${TMPDIR:-/tmp}/canary-check.XXXXXX")"
mkdir "$work/tmp"
log="$work/test-output.log"

status=0
TMPDIR="$work/tmp" "$@" 2>&1 | tee "$log" || status=$?

leaked=0
"$scan" "$log" "$work/tmp" || leaked=1
if [ "$leaked" -eq 0 ]; then
  rm -rf "$work"
else
  echo "canary-check: leak evidence kept in $work" >&2
fi
if [ "$status" -ne 0 ]; then
  exit "$status"
fi
exit "$leaked"
