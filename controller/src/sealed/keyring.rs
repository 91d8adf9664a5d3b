//! The sealing keys the controller holds, newest first, shared by the reconciler, the HTTP
//! endpoints and the key manager.

use std::sync::{Arc, RwLock};

use sealing::{Certificate, PrivateKey};
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// One sealing key: the private key, its certificate and the Secret it lives in.
#[derive(Debug)]
pub struct SealingKey {
    pub private: PrivateKey,
    pub certificate: Certificate,
    /// Name of the key Secret in the controller's namespace.
    pub secret_name: String,
    /// When the key Secret was created (falls back to the certificate's notBefore).
    pub created: OffsetDateTime,
    /// Short, stable identity of the key: the first 16 hex digits of its public-key SHA-256.
    pub id: String,
    /// Key for the MAC that proves a Secret's data is what this key's unsealing wrote.
    data_mac_key: Zeroizing<[u8; 32]>,
}

impl SealingKey {
    pub fn new(
        private: PrivateKey,
        certificate: Certificate,
        secret_name: String,
        created: Option<OffsetDateTime>,
    ) -> Self {
        let id = private.public_key().fingerprint()[..16].to_string();
        let data_mac_key = private.derive_secret(b"gitops-secrets data-mac v1");
        let created = created.unwrap_or_else(|| certificate.not_before());
        Self {
            private,
            certificate,
            secret_name,
            created,
            id,
            data_mac_key,
        }
    }

    /// HMAC-SHA256 over the Secret's type and data: detects hand edits without storing a plain
    /// hash of secret values (which would allow offline guessing).
    pub fn data_mac<'a>(
        &self,
        type_: &str,
        data: impl IntoIterator<Item = (&'a String, &'a [u8])>,
    ) -> String {
        let key =
            aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, self.data_mac_key.as_ref());
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
        let mut field = |bytes: &[u8]| {
            ctx.update(&(bytes.len() as u64).to_be_bytes());
            ctx.update(bytes);
        };
        field(type_.as_bytes());
        for (k, v) in data {
            field(k.as_bytes());
            field(v);
        }
        hex::encode(ctx.sign().as_ref())
    }
}

/// Which key counts as the newest, as Bitnami's `--key-order-priority`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyOrder {
    #[default]
    #[value(name = "CertNotBefore")]
    CertNotBefore,
    #[value(name = "SecretCreationTimestamp")]
    SecretCreationTimestamp,
}

/// The keys, newest first. Cheap to clone; readers never wait on RSA work.
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    inner: Arc<RwLock<Vec<Arc<SealingKey>>>>,
    order: KeyOrder,
}

impl KeyRing {
    pub fn new(order: KeyOrder) -> Self {
        Self {
            inner: Arc::default(),
            order,
        }
    }

    fn sort_key(&self, key: &SealingKey) -> OffsetDateTime {
        match self.order {
            KeyOrder::CertNotBefore => key.certificate.not_before(),
            KeyOrder::SecretCreationTimestamp => key.created,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<SealingKey>>> {
        // A panic while holding the lock cannot leave the list half-written: recover it.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds or replaces (by Secret name) a key. Returns true when the ring changed.
    pub fn insert(&self, key: SealingKey) -> bool {
        let mut keys = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if keys
            .iter()
            .any(|k| k.secret_name == key.secret_name && k.id == key.id)
        {
            return false;
        }
        keys.retain(|k| k.secret_name != key.secret_name);
        keys.push(Arc::new(key));
        let mut sorted: Vec<_> = keys.drain(..).collect();
        sorted.sort_by_key(|k| std::cmp::Reverse(self.sort_key(k)));
        *keys = sorted;
        true
    }

    /// Drops the key kept in Secret `secret_name` (deleted, or relabelled e.g. `compromised`).
    pub fn remove(&self, secret_name: &str) -> bool {
        let mut keys = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let before = keys.len();
        keys.retain(|k| k.secret_name != secret_name);
        keys.len() != before
    }

    /// Names of the key Secrets in the ring.
    pub fn names(&self) -> Vec<String> {
        self.read().iter().map(|k| k.secret_name.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// The key that seals: the newest.
    pub fn newest(&self) -> Option<Arc<SealingKey>> {
        self.read().first().cloned()
    }

    pub fn by_id(&self, id: &str) -> Option<Arc<SealingKey>> {
        self.read().iter().find(|k| k.id == id).cloned()
    }

    /// Keys in the order to try them: `preferred` (the key that opened this object last time),
    /// then the newest, then the rest, newest first.
    pub fn try_order(&self, preferred: Option<&str>) -> Vec<Arc<SealingKey>> {
        let mut keys: Vec<_> = self.read().clone();
        if let Some(pos) = preferred.and_then(|id| keys.iter().position(|k| k.id == id)) {
            let key = keys.remove(pos);
            keys.insert(0, key);
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(name: &str, age_days: i64) -> SealingKey {
        let private = PrivateKey::generate(2048).unwrap();
        let cert =
            Certificate::self_signed(&private, "", std::time::Duration::from_secs(3600)).unwrap();
        let created = OffsetDateTime::now_utc() - time::Duration::days(age_days);
        SealingKey::new(private, cert, name.to_string(), Some(created))
    }

    #[test]
    fn try_order_puts_the_preferred_key_first_then_newest() {
        let ring = KeyRing::new(KeyOrder::SecretCreationTimestamp);
        let (old, mid, new) = (key("old", 60), key("mid", 30), key("new", 1));
        let (old_id, mid_id, new_id) = (old.id.clone(), mid.id.clone(), new.id.clone());
        assert!(ring.insert(mid));
        assert!(ring.insert(old));
        assert!(ring.insert(new));
        assert_eq!(ring.newest().unwrap().id, new_id);
        let ids = |v: Vec<Arc<SealingKey>>| v.iter().map(|k| k.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(ring.try_order(None)),
            vec![new_id.clone(), mid_id.clone(), old_id.clone()]
        );
        assert_eq!(
            ids(ring.try_order(Some(&old_id))),
            vec![old_id.clone(), new_id.clone(), mid_id]
        );
        assert!(ring.remove("new"));
        assert_eq!(ring.newest().unwrap().id, ids(ring.try_order(None))[0]);
        assert!(!ring.remove("new"));
    }

    #[test]
    fn data_mac_depends_on_key_type_and_every_byte() {
        let (a, b) = (key("a", 0), key("b", 0));
        let k = "k".to_string();
        let mac = a.data_mac("Opaque", [(&k, &b"v"[..])]);
        assert_eq!(mac, a.data_mac("Opaque", [(&k, &b"v"[..])]));
        assert_ne!(mac, b.data_mac("Opaque", [(&k, &b"v"[..])]));
        assert_ne!(mac, a.data_mac("Opaque", [(&k, &b"w"[..])]));
        assert_ne!(mac, a.data_mac("kubernetes.io/tls", [(&k, &b"v"[..])]));
        let kv = "kv".to_string();
        assert_ne!(
            mac,
            a.data_mac("Opaque", [(&kv, &b""[..])]),
            "no ambiguity in framing"
        );
    }
}
