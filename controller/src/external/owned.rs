//! The ExternalSecret reconciler's view of its target Secrets, from the watch of the Secrets it
//! manages (see `crate::owned`): each Secret is reduced on arrival to its metadata and the hash
//! of its data, and its values are wiped. A reconcile decides from this copy when the policy
//! replaces the whole data; the others (merging, `deletionPolicy: Merge`, immutable Secrets)
//! need the values and read the Secret.

use std::sync::Arc;

use crds::external_secrets::{CreationPolicy, DeletionPolicy, ExternalSecret};
use k8s_openapi::api::core::v1::Secret;

use super::plan::{Synced, Write};
use super::secret::{DATA_HASH_ANNOTATION, data_hash};
use crate::owned::OwnedCache;

/// A target Secret without its values.
#[derive(Debug)]
pub struct Observed {
    /// The Secret without `data`, `stringData` or `managedFields`.
    pub secret: Secret,
    /// The hash of the data as it arrived (the one the data-hash annotation records).
    pub data_hash: String,
}

impl Observed {
    /// Reduces `secret` and wipes its values.
    pub fn of(mut secret: Secret) -> Self {
        let data_hash = data_hash(secret.data.as_ref().unwrap_or(&Default::default()));
        sealing::secret::wipe_secret(&mut secret);
        secret.data = None;
        secret.string_data = None;
        secret.metadata.managed_fields = None;
        Observed { secret, data_hash }
    }

    /// Whether the data is still what we last wrote (else: refresh now).
    pub fn valid(&self) -> bool {
        self.secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DATA_HASH_ANNOTATION))
            .is_some_and(|recorded| *recorded == self.data_hash)
    }
}

/// The cache of the Secrets ExternalSecrets manage.
pub type OwnedSecrets = OwnedCache<Observed>;

pub fn owned_secrets() -> OwnedSecrets {
    OwnedCache::new(Arc::new(Observed::of))
}

/// Whether `es` can be decided from a copy without values: its writes replace the whole data
/// (so the old values are never merged or compared key by key).
pub fn decidable_without_values(es: &ExternalSecret) -> bool {
    let target = &es.spec.target;
    matches!(
        target.creation_policy,
        CreationPolicy::Owner | CreationPolicy::Orphan
    ) && target.deletion_policy != DeletionPolicy::Merge
        && !target.immutable
}

/// A write planned against `copy` (no values): a replace that would leave the Secret as it is
/// (same metadata and type, same data) writes nothing.
pub fn settle_against_copy(write: Write, synced: Synced, copy: &Observed) -> (Write, Synced) {
    match write {
        Write::Replace(secret) if same_as_copy(&secret, copy) => {
            (Write::Nothing, Synced::Unchanged)
        }
        other => (other, synced),
    }
}

fn same_as_copy(secret: &Secret, copy: &Observed) -> bool {
    // Field by field rather than comparing a clone without values: a clone would copy the
    // values and drop them unwiped.
    let hash = data_hash(secret.data.as_ref().unwrap_or(&Default::default()));
    let old = &copy.secret;
    hash == copy.data_hash
        && secret.string_data.is_none()
        && secret.metadata == old.metadata
        && secret.type_ == old.type_
        && secret.immutable == old.immutable
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn written(value: &str) -> Secret {
        let data: std::collections::BTreeMap<String, ByteString> =
            [("k".to_string(), ByteString(value.as_bytes().to_vec()))].into();
        let mut s = Secret::default();
        s.metadata.name = Some("t".into());
        s.metadata.annotations =
            Some([(DATA_HASH_ANNOTATION.to_string(), data_hash(&data))].into());
        s.data = Some(data);
        s
    }

    #[test]
    fn the_copy_keeps_no_value_and_tells_a_hand_edit_from_our_write() {
        let copy = Observed::of(written("ours"));
        assert!(copy.secret.data.is_none());
        assert!(copy.valid());
        let mut edited = written("ours");
        edited
            .data
            .as_mut()
            .map(|d| d.insert("k".into(), ByteString(b"by hand".to_vec())));
        assert!(!Observed::of(edited).valid());
    }

    #[test]
    fn a_replace_equal_to_the_copy_is_no_write_and_a_different_one_is() {
        let copy = Observed::of(written("ours"));
        let (w, s) = settle_against_copy(Write::Replace(written("ours")), Synced::Updated, &copy);
        assert!(matches!(w, Write::Nothing));
        assert_eq!(s, Synced::Unchanged);
        let (w, s) = settle_against_copy(Write::Replace(written("new")), Synced::Updated, &copy);
        assert!(matches!(w, Write::Replace(_)));
        assert_eq!(s, Synced::Updated);
    }
}
