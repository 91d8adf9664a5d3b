#!/usr/bin/env bash
# The main job end to end, without a cluster: make a sealing key like the controller does, seal
# a Secret with kubeseal, check what the controller would unseal, and recover it with
# kubeseal --recovery-unseal. Fails loudly if the round trip does not hold.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet -p kubeseal-cli -p controller
bin="${CARGO_TARGET_DIR:-target}/debug"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== 1. a sealing key, as the controller makes it"
"$bin/secrets-controller" keygen --out-dir "$work/keys" --name sealed-secrets-keydemo

echo "== 2. a Secret to seal"
cat > "$work/secret.yaml" <<'YAML'
apiVersion: v1
kind: Secret
metadata:
  name: db-credentials
  namespace: shop
type: Opaque
stringData:
  username: shop-admin
  password: correct-horse-battery-staple
YAML
cat "$work/secret.yaml"

echo "== 3. kubeseal --cert tls.crt -o yaml: safe to commit"
"$bin/kubeseal" --cert "$work/keys/tls.crt" -o yaml < "$work/secret.yaml" > "$work/sealed.yaml"
cat "$work/sealed.yaml"
if grep -q correct-horse "$work/sealed.yaml"; then
  echo "FAIL: plaintext found in the SealedSecret" >&2; exit 1
fi

echo "== 4. what the controller would create (values hidden)"
"$bin/secrets-controller" unseal --keys "$work/keys" -f "$work/sealed.yaml"

echo "== 5. kubeseal --recovery-unseal with the key backup"
"$bin/kubeseal" --recovery-unseal --recovery-private-key "$work/keys/sealed-secrets-keydemo.yaml" \
  -o yaml < "$work/sealed.yaml" > "$work/recovered.yaml"
expected_user=$(printf %s shop-admin | base64)
expected_pass=$(printf %s correct-horse-battery-staple | base64)
if grep -q "username: $expected_user" "$work/recovered.yaml" && grep -q "password: $expected_pass" "$work/recovered.yaml"; then
  echo "round trip OK: the recovered Secret holds the original values"
else
  echo "FAIL: the recovered Secret differs from the input" >&2
  cat "$work/recovered.yaml" >&2
  exit 1
fi
