# Argo CD sidecar image for the sops-plugin CMP: the plugin, kustomize (for directories with a
# kustomization.yaml) and helm (for kustomize `helmCharts` with --enable-helm), a CA bundle and
# Argo CD's sidecar user 999. sops-plugin/tests/image_rootfs.rs runs the same root under chroot.
# Build from the repository root:
#   docker build -f deploy/images/sops-plugin.Dockerfile -t gitops-secrets/sops-plugin:0.1.0 .
# Set HELM_VERSION= (empty) to leave helm out when kustomize --enable-helm is not allowed.
ARG RUST_IMAGE=rust:1-bookworm
ARG GO_IMAGE=golang:1-bookworm

FROM ${GO_IMAGE} AS tools
ARG KUSTOMIZE_VERSION=v5.5.0
ARG HELM_VERSION=v3.16.3
ENV CGO_ENABLED=0 GOBIN=/tools
RUN go install sigs.k8s.io/kustomize/kustomize/v5@${KUSTOMIZE_VERSION} \
 && if [ -n "${HELM_VERSION}" ]; then go install helm.sh/helm/v3/cmd/helm@${HELM_VERSION}; fi

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
COPY --from=tools /tools /tools
RUN RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target x86_64-unknown-linux-gnu -p sops-plugin \
 && set -- --extra /tools/kustomize \
 && if [ -x /tools/helm ]; then set -- "$@" --extra /tools/helm; fi \
 && deploy/images/build-rootfs.sh \
      --binary target/x86_64-unknown-linux-gnu/release/sops-plugin \
      --name sops-plugin --user argocd:999 --out /rootfs "$@"

FROM scratch
COPY --from=build /rootfs/ /
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt HOME=/home/argocd
USER 999:999
WORKDIR /home/argocd
ENTRYPOINT ["/usr/local/bin/sops-plugin"]
