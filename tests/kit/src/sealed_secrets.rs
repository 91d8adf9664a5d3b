//! The Sealed Secrets fixture world in `fixtures/sealed-secrets/` (its MANIFEST.md says where
//! each file comes from): two sealing keys (`key1`, `key2`; key2 is the newer) and one no
//! controller holds (`unrelated`), SealedSecrets sealed by the reference tools, and the Secrets
//! they must open to.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret;

/// The fixture directory.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sealed-secrets")
}

/// A file of the fixture world, e.g. `keys/key1.pem`.
pub fn path(rel: &str) -> PathBuf {
    dir().join(rel)
}

/// The text of a fixture file; panics naming the file when it cannot be read.
pub fn read(rel: &str) -> String {
    let path = path(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The private key `name` (`key1`, `key2`, `unrelated`).
pub fn private_key(name: &str) -> sealing::PrivateKey {
    sealing::PrivateKey::from_pem(&read(&format!("keys/{name}.pem"))).unwrap()
}

/// The certificate of key `name`.
pub fn certificate(name: &str) -> sealing::Certificate {
    sealing::Certificate::from_pem(&read(&format!("keys/{name}.crt"))).unwrap()
}

/// `key1` and `key2`, the keys every fixture SealedSecret opens with.
pub fn private_keys() -> Vec<sealing::PrivateKey> {
    ["key1", "key2"].into_iter().map(private_key).collect()
}

/// The SealedSecret `sealedsecrets/{name}.yaml`.
pub fn sealed_secret(name: &str) -> crds::SealedSecret {
    serde_yaml::from_str(&read(&format!("sealedsecrets/{name}.yaml"))).unwrap()
}

/// The key Secrets of `keys/all-keys-list.json`, as Bitnami's controller keeps them.
pub fn key_secrets() -> Vec<Secret> {
    let list: serde_json::Value = serde_json::from_str(&read("keys/all-keys-list.json")).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| serde_json::from_value(item.clone()).unwrap())
        .collect()
}
