//! Shared by the SealedSecret tests: the fixture world's keys as the controller holds them.

use std::time::Duration;

use controller::sealed::keyring::{KeyOrder, KeyRing, SealingKey};
use controller::sealed::keys::KeyConfig;

pub use test_kit::sealed_secrets::read;

/// `key1` or `key2` of the shared vectors, as the controller holds them.
pub fn sealing_key(name: &str) -> SealingKey {
    use test_kit::sealed_secrets::{certificate, private_key};
    SealingKey::new(
        private_key(name),
        certificate(name),
        format!("sealed-secrets-key{name}"),
        None,
    )
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
