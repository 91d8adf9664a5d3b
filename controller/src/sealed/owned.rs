//! The SealedSecret reconciler's view of its target Secrets (see `crate::owned`): each Secret is
//! reduced on arrival to its metadata and the MAC of its data (the one `desired::plan`
//! compares), and its values are wiped.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;

use crate::owned::OwnedCache;

use super::desired;
use super::keyring::KeyRing;

/// A target Secret as the reconciler needs it, without its values.
#[derive(Debug)]
pub struct Observed {
    /// The Secret without `data` or `managedFields`.
    pub secret: Secret,
    /// The MAC of the data as it arrived, under the key its annotation names, when that key is
    /// loaded and the Secret is wholly ours. `None` makes the plan decrypt (or fetch) again.
    pub data_mac: Option<(String, String)>,
    /// False for patch-mode and immutable Secrets: their plan needs the values (a GET).
    pub complete: bool,
}

impl Observed {
    /// Reduces `secret` and wipes its values.
    pub fn of(mut secret: Secret, keys: &KeyRing) -> Self {
        let annotations = secret.metadata.annotations.as_ref();
        let patching = annotations
            .and_then(|a| a.get(desired::ANNOTATION_PATCH))
            .is_some_and(|v| v == "true");
        let complete = !patching && secret.immutable != Some(true);
        let data_mac = complete
            .then(|| annotations.and_then(|a| a.get(desired::ANNOTATION_KEY)))
            .flatten()
            .and_then(|id| keys.by_id(id))
            .map(|key| (key.id.clone(), desired::data_mac_all(&key, &secret)));
        sealing::secret::wipe_secret(&mut secret);
        secret.data = None;
        secret.string_data = None;
        secret.metadata.managed_fields = None;
        Observed {
            secret,
            data_mac,
            complete,
        }
    }
}

/// The SealedSecret reconciler's cache of its target Secrets.
pub type OwnedSecrets = OwnedCache<Observed>;

/// A cache whose entries carry the data MAC under the keys loaded in `keys`.
pub fn owned_secrets(keys: KeyRing) -> OwnedSecrets {
    OwnedCache::new(Arc::new(move |secret| Observed::of(secret, &keys)))
}
