# secrets-controller image: nothing but the static binary, a CA bundle for Vault/AWS TLS and the
# non-root user 65532. The binary is also reachable as `controller`, the command Bitnami's
# Sealed Secrets chart runs. Build from the repository root:
#   docker build -f deploy/images/controller.Dockerfile -t gitops-secrets/secrets-controller:0.1.0 .
# The binary is linked statically against glibc (crt-static), so the image needs no base;
# controller/tests/image_rootfs.rs runs the same root under chroot.
ARG RUST_IMAGE=rust:1-bookworm

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target x86_64-unknown-linux-gnu -p controller --bin secrets-controller \
 && deploy/images/build-rootfs.sh \
      --binary target/x86_64-unknown-linux-gnu/release/secrets-controller \
      --name secrets-controller --alias controller --out /rootfs

FROM scratch
COPY --from=build /rootfs/ /
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
# Ports: 8080 kubeseal's API (/v1/cert.pem, /v1/verify, /v1/rotate, /healthz), 8081 /metrics.
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/secrets-controller"]
