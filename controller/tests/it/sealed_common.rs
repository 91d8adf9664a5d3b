//! Shared by the SealedSecret tests: the shared vectors' keys and objects.

use std::path::{Path, PathBuf};
use std::time::Duration;

use controller::sealed::keyring::{KeyOrder, KeyRing, SealingKey};
use controller::sealed::keys::KeyConfig;

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sealing/tests/fixtures/sealed-secrets")
        .join(rel)
}

pub fn read(rel: &str) -> String {
    std::fs::read_to_string(fixture(rel)).unwrap()
}

/// `key1` or `key2` of the shared vectors, as the controller holds them.
pub fn sealing_key(name: &str) -> SealingKey {
    let private = sealing::PrivateKey::from_pem(&read(&format!("keys/{name}.pem"))).unwrap();
    let cert = sealing::Certificate::from_pem(&read(&format!("keys/{name}.crt"))).unwrap();
    SealingKey::new(private, cert, format!("sealed-secrets-key{name}"), None)
}

/// Both keys of the shared vectors; key2 is the newest.
pub fn key_ring() -> KeyRing {
    let ring = KeyRing::new(KeyOrder::CertNotBefore);
    ring.insert(sealing_key("key1"));
    ring.insert(sealing_key("key2"));
    ring
}

pub fn key_config(renew_days: u64, cutoff: Option<time::OffsetDateTime>) -> KeyConfig {
    KeyConfig {
        namespace: "kube-system".into(),
        prefix: "sealed-secrets-key".into(),
        key_size: 2048,
        key_ttl: Duration::from_secs(3600 * 24),
        my_cn: "test".into(),
        renew_period: Duration::from_secs(renew_days * 86_400),
        cutoff,
        extra_labels: vec![],
        extra_annotations: vec![],
    }
}
