#!/bin/sh
# Assembles an image root from a binary: the binary (plus the shared libraries it loads, if it is
# not static), the CA bundle for Vault/AWS TLS, passwd/group entries for the non-root user
# 65532, an empty /tmp and name-service files. The Dockerfiles copy this root into `FROM scratch`;
# tests run it as it is under chroot, to prove the image works without a base image.
#
#   build-rootfs.sh --binary PATH --name NAME --out DIR [--alias NAME]... [--extra PATH]...
#                   [--user NAME:ID]...
#
#   --binary  the program; installed as /usr/local/bin/NAME
#   --alias   another name for it in /usr/local/bin (Bitnami's chart runs `controller`)
#   --extra   another program to install in /usr/local/bin (kustomize, helm for the sidecar)
#   --user    another user and group NAME with uid/gid ID and home /home/NAME (Argo CD's
#             sidecar runs as argocd:999)
#   CA_BUNDLE (env) the CA bundle to copy (default /etc/ssl/certs/ca-certificates.crt)
set -eu

binary= name= out= aliases= extras= users=
while [ $# -gt 0 ]; do
    case $1 in
        --binary) binary=$2; shift 2 ;;
        --name) name=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --alias) aliases="$aliases $2"; shift 2 ;;
        --extra) extras="$extras $2"; shift 2 ;;
        --user) users="$users $2"; shift 2 ;;
        *) echo "build-rootfs.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -z "$binary" ] || [ -z "$name" ] || [ -z "$out" ]; then
    echo "usage: build-rootfs.sh --binary PATH --name NAME --out DIR [--alias NAME]... [--extra PATH]..." >&2
    exit 2
fi
ca_bundle=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

mkdir -p "$out/usr/local/bin" "$out/etc/ssl/certs" "$out/tmp" "$out/home/nonroot"
chmod 0755 "$out"
chmod 1777 "$out/tmp"

# Copies the shared libraries and loader a dynamic executable needs (nothing for a static one).
copy_libraries() {
    ldd "$1" 2>/dev/null | while read -r first second third _; do
        case $second in
            "=>") lib=$third ;;
            *) lib=$first ;;
        esac
        case $lib in
            /*) mkdir -p "$out$(dirname "$lib")"; cp -L "$lib" "$out$lib" ;;
        esac
    done
}

install_program() {
    cp "$1" "$out/usr/local/bin/$2"
    chmod 0755 "$out/usr/local/bin/$2"
    copy_libraries "$1"
}

install_program "$binary" "$name"
for alias in $aliases; do
    ln -sf "$name" "$out/usr/local/bin/$alias"
done
for extra in $extras; do
    install_program "$extra" "$(basename "$extra")"
done

cp "$ca_bundle" "$out/etc/ssl/certs/ca-certificates.crt"
cat >"$out/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat >"$out/etc/group" <<'GROUP'
root:x:0:
nonroot:x:65532:
GROUP
printf 'hosts: files dns\n' >"$out/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$out/etc/hosts"
chown 65532:65532 "$out/home/nonroot" 2>/dev/null || true
for user in $users; do
    user_name=${user%%:*} user_id=${user#*:}
    printf '%s:x:%s:%s:%s:/home/%s:/sbin/nologin\n' \
        "$user_name" "$user_id" "$user_id" "$user_name" "$user_name" >>"$out/etc/passwd"
    printf '%s:x:%s:\n' "$user_name" "$user_id" >>"$out/etc/group"
    mkdir -p "$out/home/$user_name"
    chown "$user_id:$user_id" "$out/home/$user_name" 2>/dev/null || true
done
