//! The sealing-key Secret: how a key pair is stored in Kubernetes, in Bitnami's format
//! (`kubernetes.io/tls`, `tls.key` as PKCS#1 PEM, `tls.crt`, labelled
//! `sealedsecrets.bitnami.com/sealed-secrets-key: active`), and the key backups users keep.
//!
//! The one reader and the one writer of that format: the controller's key manager and the
//! offline tools (`kubeseal --recovery-private-key`, `secrets-controller keygen` and `unseal`)
//! both go through here, so they accept the same Secrets. No Kubernetes client here.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use zeroize::Zeroizing;

use crate::error::KeyError;
use crate::keys::{Certificate, PEM_CERTIFICATE, PrivateKey, private_key_from_block};

// Macros so that the selector is built from the same literals at compile time.
macro_rules! label_sealing_key {
    () => {
        "sealedsecrets.bitnami.com/sealed-secrets-key"
    };
}
macro_rules! active {
    () => {
        "active"
    };
}

/// Label that marks sealing-key Secrets; its value says whether the key is in use.
pub const LABEL_SEALING_KEY: &str = label_sealing_key!();
/// The label value of keys in use (a key relabelled e.g. `compromised` is no longer loaded).
pub const ACTIVE: &str = active!();
/// Label selector of the keys in use: `LABEL_SEALING_KEY=ACTIVE`.
pub const ACTIVE_SELECTOR: &str = concat!(label_sealing_key!(), "=", active!());

const SECRET_TYPE: &str = "kubernetes.io/tls";
const TLS_KEY: &str = "tls.key";
const TLS_CRT: &str = "tls.crt";

/// A private key with its certificate, and where it was read from.
#[derive(Debug)]
pub struct KeyPair {
    pub private: PrivateKey,
    /// Optional in backups; when present it belongs to `private` (checked on reading).
    pub certificate: Option<Certificate>,
    /// "Secret NAME", or "document N" / "PEM" when read from a file.
    pub origin: String,
}

/// The key Secret for a key pair: `metadata` (name, namespace, extra labels and annotations)
/// with the active label added, type `kubernetes.io/tls`, `tls.key` in PKCS#1 PEM.
pub fn key_secret(
    private: &PrivateKey,
    certificate: &Certificate,
    mut metadata: ObjectMeta,
) -> Result<Secret, KeyError> {
    let mut data = BTreeMap::new();
    data.insert(
        TLS_KEY.to_string(),
        ByteString(private.to_pkcs1_pem()?.as_bytes().to_vec()),
    );
    data.insert(
        TLS_CRT.to_string(),
        ByteString(certificate.to_pem().into_bytes()),
    );
    metadata
        .labels
        .get_or_insert_default()
        .insert(LABEL_SEALING_KEY.to_string(), ACTIVE.to_string());
    Ok(Secret {
        metadata,
        type_: Some(SECRET_TYPE.to_string()),
        data: Some(data),
        ..Default::default()
    })
}

/// [`key_secret`] with only a name and namespace, as `secrets-controller keygen` writes it.
pub fn key_secret_manifest(
    private: &PrivateKey,
    certificate: &Certificate,
    name: &str,
    namespace: &str,
) -> Result<Secret, KeyError> {
    let metadata = ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(namespace.to_string()),
        ..Default::default()
    };
    key_secret(private, certificate, metadata)
}

/// Reads a key Secret as the API server returns it.
pub fn parse_key_secret(secret: &Secret) -> Result<KeyPair, KeyError> {
    let origin = origin_of(secret.metadata.name.as_deref(), "a key Secret");
    let field = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| &b.0[..])
    };
    key_pair(origin, field(TLS_KEY), field(TLS_CRT))
}

/// The one rule for a key Secret's data: `tls.key` holds a private key (PKCS#1 or PKCS#8 PEM);
/// `tls.crt`, when present, holds a certificate of that same key.
fn key_pair(
    origin: String,
    tls_key: Option<&[u8]>,
    tls_crt: Option<&[u8]>,
) -> Result<KeyPair, KeyError> {
    let bad = |detail: String| KeyError::Document(format!("{origin}: {detail}"));
    let text = |key: &str, bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .map(|t| Zeroizing::new(t.to_string()))
            .map_err(|_| bad(format!("{key} is not PEM text")))
    };
    let tls_key = tls_key.ok_or_else(|| bad(format!("has no data.{TLS_KEY:?}")))?;
    let private = PrivateKey::from_pem(&text(TLS_KEY, tls_key)?)
        .map_err(|e| bad(format!("{TLS_KEY}: {e}")))?;
    let certificate = match tls_crt {
        Some(pem) => {
            let certificate = Certificate::from_pem(&text(TLS_CRT, pem)?)
                .map_err(|e| bad(format!("{TLS_CRT}: {e}")))?;
            if certificate.public_key() != private.public_key() {
                return Err(bad(format!("{TLS_CRT} does not belong to {TLS_KEY}")));
            }
            Some(certificate)
        }
        None => None,
    };
    Ok(KeyPair {
        private,
        certificate,
        origin,
    })
}

fn origin_of(name: Option<&str>, otherwise: &str) -> String {
    match name.filter(|n| !n.is_empty()) {
        Some(name) => format!("Secret {name}"),
        None => otherwise.to_string(),
    }
}

/// Reads private keys from what users keep as backups: a PEM file (PKCS#1 or PKCS#8, with or
/// without certificates), a key Secret in YAML or JSON (`tls.key`/`tls.crt`), several YAML
/// documents, or a `v1` `List` of them (`kubectl get secret -l ... -o yaml`).
pub fn load_private_keys(text: &str) -> Result<Vec<KeyPair>, KeyError> {
    let keys = if text.trim_start().starts_with("-----BEGIN") {
        keys_from_pem(text, "PEM")?
    } else {
        let mut keys = Vec::new();
        for document in crate::documents::documents(text) {
            let (index, document) = document.map_err(|e| KeyError::Document(e.to_string()))?;
            collect_key_secrets(&document.0, &format!("document {index}"), &mut keys)?;
        }
        keys
    };
    if keys.is_empty() {
        return Err(KeyError::NotFound("private key"));
    }
    Ok(keys)
}

fn keys_from_pem(text: &str, origin: &str) -> Result<Vec<KeyPair>, KeyError> {
    let blocks = pem::parse_many(text).map_err(|e| KeyError::Pem(format!("{origin}: {e}")))?;
    let certificates = blocks
        .iter()
        .filter(|b| b.tag() == PEM_CERTIFICATE)
        .map(|b| Certificate::from_der(b.contents()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut keys = Vec::new();
    for block in &blocks {
        if let Some(private) = private_key_from_block(block)? {
            let certificate = certificates
                .iter()
                .find(|c| c.public_key() == private.public_key())
                .cloned();
            keys.push(KeyPair {
                private,
                certificate,
                origin: origin.to_string(),
            });
        }
    }
    Ok(keys)
}

/// Key Secrets from a parsed document: a Secret, or a `List` (any `*List` kind) of them.
fn collect_key_secrets(
    value: &serde_json::Value,
    origin: &str,
    keys: &mut Vec<KeyPair>,
) -> Result<(), KeyError> {
    let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    if kind.ends_with("List") {
        let items = value
            .get("items")
            .and_then(|i| i.as_array())
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (index, item) in items.iter().enumerate() {
            collect_key_secrets(item, &format!("{origin}, item {}", index + 1), keys)?;
        }
        return Ok(());
    }
    if kind != "Secret" {
        return Err(KeyError::Document(format!(
            "{origin}: expected a key Secret or a List of them, found kind {kind:?}"
        )));
    }
    let name = value.pointer("/metadata/name").and_then(|n| n.as_str());
    let origin = origin_of(name, origin);
    // Decoded here rather than by deserializing a `Secret`: serde's error would quote the value.
    let field = |key: &str| -> Result<Option<Zeroizing<Vec<u8>>>, KeyError> {
        let Some(encoded) = value.get("data").and_then(|d| d.get(key)) else {
            return Ok(None);
        };
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or(""))
            .map(|bytes| Some(Zeroizing::new(bytes)))
            .map_err(|_| KeyError::Document(format!("{origin}: {key} is not valid base64")))
    };
    let (tls_key, tls_crt) = (field(TLS_KEY)?, field(TLS_CRT)?);
    keys.push(key_pair(
        origin,
        tls_key.as_deref().map(|v| &v[..]),
        tls_crt.as_deref().map(|v| &v[..]),
    )?);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_selector_is_the_label_and_its_active_value() {
        assert_eq!(ACTIVE_SELECTOR, format!("{LABEL_SEALING_KEY}={ACTIVE}"));
    }

    /// The one writer's output is what the one reader accepts, typed or as YAML text.
    #[test]
    fn a_written_key_secret_reads_back_both_ways() -> Result<(), Box<dyn std::error::Error>> {
        let key = PrivateKey::generate(2048)?;
        let cert = Certificate::self_signed(&key, "", std::time::Duration::from_secs(3600))?;
        let mut metadata = ObjectMeta {
            name: Some("k1".into()),
            ..Default::default()
        };
        metadata.labels = Some(BTreeMap::from([("team".to_string(), "a".to_string())]));
        let secret = key_secret(&key, &cert, metadata)?;
        let labels = secret.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get(LABEL_SEALING_KEY).map(String::as_str),
            Some(ACTIVE)
        );
        assert_eq!(labels.get("team").map(String::as_str), Some("a"));
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));

        let typed = parse_key_secret(&secret)?;
        assert_eq!(typed.private.public_key(), key.public_key());
        assert_eq!(typed.origin, "Secret k1");
        assert!(typed.certificate.is_some());

        let yaml = serde_yaml::to_string(&secret)?;
        let loaded = load_private_keys(&yaml)?;
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].private.public_key(), key.public_key());
        Ok(())
    }

    /// Both readers refuse a certificate of another key, and both accept a Secret without one.
    #[test]
    fn one_rule_about_tls_crt() -> Result<(), Box<dyn std::error::Error>> {
        let key = PrivateKey::generate(2048)?;
        let other = PrivateKey::generate(2048)?;
        let day = std::time::Duration::from_secs(86_400);
        let foreign = Certificate::self_signed(&other, "", day)?;
        let mut secret = key_secret_manifest(&key, &foreign, "mixed", "kube-system")?;
        let typed = parse_key_secret(&secret)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert_eq!(typed, "Secret mixed: tls.crt does not belong to tls.key");
        let text = load_private_keys(&serde_yaml::to_string(&secret)?)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert_eq!(text, typed);

        if let Some(data) = secret.data.as_mut() {
            data.remove(TLS_CRT);
        }
        assert!(parse_key_secret(&secret)?.certificate.is_none());
        let loaded = load_private_keys(&serde_yaml::to_string(&secret)?)?;
        assert!(loaded[0].certificate.is_none());
        Ok(())
    }
}
