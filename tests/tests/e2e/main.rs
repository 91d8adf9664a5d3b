//! End-to-end tests: the real `secrets-controller` binary against a real Kubernetes API server
//! and controller manager (one cluster per run, a namespace per test). Without
//! `E2E_CLUSTER_SH` every test says it was skipped and passes; see the README's Tests section.
#![allow(clippy::unwrap_used)]

mod chart;
mod deploy;
mod external;
mod image_root;
mod kubeseal;
mod leader;
mod rbac;
mod sealed;

use std::time::Duration;

use base64::Engine as _;
use e2e_tests::envtest::{self, Cluster};

/// Bound of every wait for the controller to act on a change (poll, never sleep).
const ACT: Duration = Duration::from_secs(30);
/// kube-controller-manager's garbage collector learns resource kinds through discovery every 30 s,
/// so the first owner of a kind whose CRD was just installed can wait more than one period.
const GC: Duration = Duration::from_secs(90);

/// Held by every test that applies deploy/'s objects: kubectl's client-side apply reads, then
/// creates, so two tests applying the same objects at once fail with AlreadyExists.
fn deploy_apply_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The shared cluster, or `None` after printing that `test` was skipped.
fn setup(test: &str) -> Option<&'static Cluster> {
    envtest::cluster(test)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A file of these tests' own fixtures (tests/fixtures/).
fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A key or certificate of the shared Sealed Secrets fixtures (`key1.pem`, `unrelated.crt`).
fn key_file(name: &str) -> String {
    test_kit::sealed_secrets::read(&format!("keys/{name}"))
}

/// A sealing key Secret as Bitnami's controller keeps it.
fn key_secret_yaml(namespace: &str, name: &str, key_pem: &str, cert_pem: &str) -> String {
    format!(
        "apiVersion: v1
kind: Secret
type: kubernetes.io/tls
metadata:
  name: {name}
  namespace: {namespace}
  labels:
    sealedsecrets.bitnami.com/sealed-secrets-key: active
data:
  tls.key: {}
  tls.crt: {}
",
        b64(key_pem.as_bytes()),
        b64(cert_pem.as_bytes())
    )
}

/// `plaintext` sealed to `cert_pem` for `namespace/name` (strict scope, as `kubeseal` does).
fn seal(cert_pem: &str, namespace: &str, name: &str, plaintext: &str) -> String {
    let cert = sealing::Certificate::from_pem(cert_pem).unwrap();
    let label = sealing::Scope::Strict.label(namespace, name);
    b64(&sealing::seal_value(cert.public_key(), &label, plaintext.as_bytes()).unwrap())
}

/// A SealedSecret with these sealed (base64) values; `extra_metadata` is indented YAML
/// under `metadata:` (annotations, labels).
fn sealed_secret_yaml(
    namespace: &str,
    name: &str,
    values: &[(&str, &str)],
    extra_metadata: &str,
) -> String {
    let mut yaml = format!(
        "apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata:
  name: {name}
  namespace: {namespace}
{extra_metadata}spec:
  template:
    metadata:
      name: {name}
      namespace: {namespace}
  encryptedData:
"
    );
    for (k, v) in values {
        yaml.push_str(&format!("    {k}: {v}\n"));
    }
    yaml
}
