#!/bin/sh
# Renders the one-file installs in deploy/release/ from the kustomize base in deploy/.
#   deploy/release/render.sh            rewrite deploy/release/*.yaml
#   deploy/release/render.sh OUT_DIR    write them to OUT_DIR instead (the staleness test does)
# Needs kubectl (its built-in kustomize).
set -eu
deploy=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$deploy/release}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

header() {
    printf '# secrets-controller %s: rendered from deploy/ by deploy/release/render.sh; do not edit.\n' "$1"
    printf '#   kubectl apply -f %s.yaml\n' "$2"
}

# The base and each component variant. Kustomize wants relative paths and refuses a base that
# contains the kustomization using it, hence a scratch directory outside deploy/.
render() {
    name=$1
    component=${2:-}
    mkdir -p "$work/$name"
    rel=$(realpath --relative-to="$work/$name" "$deploy")
    {
        printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n'
        printf 'resources:\n  - %s\n' "$rel"
        if [ -n "$component" ]; then
            printf 'components:\n  - %s/components/%s\n' "$rel" "$component"
        fi
    } >"$work/$name/kustomization.yaml"
    {
        header "$3" "$name"
        kubectl kustomize "$work/$name"
    } >"$out/$name.yaml"
}

render secrets-controller "" "(SealedSecrets and ExternalSecrets)"
render sealed-secrets-only sealed-secrets-only "(SealedSecrets only)"
render external-secrets-only external-secrets-only "(ExternalSecrets only)"
