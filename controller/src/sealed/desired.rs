//! Decisions of the SealedSecret reconciler, as plain functions: what to do with the existing
//! Secret, what the Secret should look like, and what the status says. No I/O here.

use std::collections::BTreeMap;

use crds::{SealedSecret, SealedSecretCondition, SealedSecretStatus};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource as _;
use sealing::UnsealedSecret;

use super::keyring::{KeyRing, SealingKey};

pub const ANNOTATION_MANAGED: &str = "sealedsecrets.bitnami.com/managed";
pub const ANNOTATION_PATCH: &str = "sealedsecrets.bitnami.com/patch";
pub const ANNOTATION_SKIP_OWNER: &str = "sealedsecrets.bitnami.com/skip-set-owner-references";
/// Set on every Secret we write, so that we watch only those, never all Secrets of the cluster.
pub const LABEL_OWNED: &str = "gitops-secrets.dev/sealed-secret";
/// SHA-256 of what was sealed (spec, name, namespace, scope): unchanged means nothing to decrypt.
pub const ANNOTATION_DIGEST: &str = "gitops-secrets.dev/sealed-digest";
/// Keyed MAC of the data we wrote: a hand edit shows up without decrypting anything.
pub const ANNOTATION_DATA_MAC: &str = "gitops-secrets.dev/data-mac";
/// The key that opened this SealedSecret last time: tried first next time.
pub const ANNOTATION_KEY: &str = "gitops-secrets.dev/sealing-key";

const BOOKKEEPING: [&str; 3] = [ANNOTATION_DIGEST, ANNOTATION_DATA_MAC, ANNOTATION_KEY];

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

fn is_true(meta: &ObjectMeta, key: &str) -> bool {
    annotation(meta, key) == Some("true")
}

/// Digest of everything that decides the Secret's content.
pub fn sealed_digest(sealed: &SealedSecret) -> String {
    let canonical = serde_json::json!({
        "namespace": sealed.metadata.namespace,
        "name": sealed.metadata.name,
        "scope": sealing::secret::sealed_scope(sealed).to_string(),
        "spec": sealed.spec,
    });
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.to_string().as_bytes());
    hex::encode(digest.as_ref())
}

/// How the existing Secret relates to the SealedSecret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Controlled by this SealedSecret (owner reference), or ours without one (skip annotation).
    Ours,
    /// Someone else's, annotated `managed: "true"`: we take it over.
    Managed,
    /// Someone else's, annotated `patch: "true"`: we merge our keys in and leave the rest.
    Patch,
    /// Someone else's: hands off.
    Foreign,
}

pub fn ownership(existing: &Secret, sealed: &SealedSecret) -> Ownership {
    let uid = sealed.meta().uid.as_deref();
    let controlled = existing
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| {
            r.controller == Some(true) && r.kind == "SealedSecret" && Some(r.uid.as_str()) == uid
        });
    if controlled {
        Ownership::Ours
    } else if is_true(&existing.metadata, ANNOTATION_PATCH) {
        Ownership::Patch
    } else if is_true(&existing.metadata, ANNOTATION_MANAGED) {
        Ownership::Managed
    } else {
        Ownership::Foreign
    }
}

/// What to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    Create,
    Replace,
    Patch,
}

/// The reconciler's decision before any decryption.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// The Secret already holds what the SealedSecret says: no RSA work at all.
    UpToDate,
    /// Decrypt, then write in this mode.
    Unseal(WriteMode),
    /// Leave the Secret alone and report why.
    Refuse(String),
}

/// Keys whose values we wrote (all of them when we own the Secret).
fn our_keys(sealed: &SealedSecret) -> Vec<&String> {
    let removed: Vec<&String> = sealed
        .spec
        .template
        .data
        .iter()
        .flatten()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k)
        .collect();
    let mut keys: Vec<&String> = sealed
        .spec
        .encrypted_data
        .keys()
        .chain(
            sealed
                .spec
                .template
                .data
                .iter()
                .flatten()
                .filter(|(_, v)| v.is_some())
                .map(|(k, _)| k),
        )
        .filter(|k| !removed.contains(k))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// MAC over the Secret's data: every key when we own it, only our keys when patching.
pub fn data_mac(
    key: &SealingKey,
    secret: &Secret,
    sealed: &SealedSecret,
    mode: WriteMode,
) -> String {
    let empty = BTreeMap::new();
    let data = secret.data.as_ref().unwrap_or(&empty);
    let type_ = secret.type_.as_deref().unwrap_or("Opaque");
    match mode {
        WriteMode::Patch => {
            let keys = our_keys(sealed);
            key.data_mac(
                type_,
                keys.into_iter()
                    .map(|k| (k, data.get(k).map_or(&b""[..], |v| v.0.as_slice()))),
            )
        }
        WriteMode::Create | WriteMode::Replace => data_mac_all(key, secret),
    }
}

/// MAC over the Secret's type and all of its data (a Secret we own wholly).
pub fn data_mac_all(key: &SealingKey, secret: &Secret) -> String {
    let empty = BTreeMap::new();
    let data = secret.data.as_ref().unwrap_or(&empty);
    let type_ = secret.type_.as_deref().unwrap_or("Opaque");
    key.data_mac(type_, data.iter().map(|(k, v)| (k, v.0.as_slice())))
}

/// Decides what to do given the existing Secret, if any.
pub fn plan(sealed: &SealedSecret, existing: Option<&Secret>, keys: &KeyRing) -> Plan {
    plan_with(sealed, existing, keys, |key, existing, mode| {
        Some(data_mac(key, existing, sealed, mode))
    })
}

/// [`plan`] from a Secret whose values are gone and whose data MAC was taken on arrival
/// (`(key id, MAC)`, Secrets wholly ours only): no value is needed to find it up to date.
pub fn plan_observed(
    sealed: &SealedSecret,
    existing: Option<(&Secret, Option<&(String, String)>)>,
    keys: &KeyRing,
) -> Plan {
    let mac = existing.and_then(|(_, mac)| mac);
    plan_with(sealed, existing.map(|(s, _)| s), keys, |key, _, mode| {
        mac.filter(|(id, _)| *id == key.id && mode != WriteMode::Patch)
            .map(|(_, mac)| mac.clone())
    })
}

/// The plan, with the MAC of the existing data under a key and mode given by `observed_mac`.
fn plan_with(
    sealed: &SealedSecret,
    existing: Option<&Secret>,
    keys: &KeyRing,
    observed_mac: impl Fn(&SealingKey, &Secret, WriteMode) -> Option<String>,
) -> Plan {
    let Some(existing) = existing else {
        return Plan::Unseal(WriteMode::Create);
    };
    let mode = match ownership(existing, sealed) {
        Ownership::Foreign if is_ours_without_owner(existing, sealed) => WriteMode::Replace,
        Ownership::Foreign => {
            return Plan::Refuse(format!(
                "Secret {:?} already exists and is not managed by this SealedSecret (annotate it \
                 sealedsecrets.bitnami.com/managed=\"true\" to let the controller take it over)",
                existing.metadata.name.as_deref().unwrap_or_default()
            ));
        }
        // The patch annotation keeps merging even once we own the Secret (patch + managed).
        _ if is_true(&existing.metadata, ANNOTATION_PATCH) => WriteMode::Patch,
        _ => WriteMode::Replace,
    };
    let meta = &existing.metadata;
    let digest_matches =
        annotation(meta, ANNOTATION_DIGEST) == Some(sealed_digest(sealed).as_str());
    let mac_matches = annotation(meta, ANNOTATION_KEY)
        .and_then(|id| keys.by_id(id))
        .is_some_and(|key| {
            observed_mac(&key, existing, mode)
                .is_some_and(|mac| annotation(meta, ANNOTATION_DATA_MAC) == Some(mac.as_str()))
        });
    if digest_matches && mac_matches {
        Plan::UpToDate
    } else {
        Plan::Unseal(mode)
    }
}

/// A Secret written with `skip-set-owner-references` carries no owner reference; our label and
/// the managed annotation we add then mark it as ours.
fn is_ours_without_owner(existing: &Secret, sealed: &SealedSecret) -> bool {
    skips_owner_reference(sealed)
        && existing
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_OWNED))
            .is_some()
}

fn skips_owner_reference(sealed: &SealedSecret) -> bool {
    sealed
        .spec
        .template
        .metadata
        .as_ref()
        .is_some_and(|m| is_true(m, ANNOTATION_SKIP_OWNER))
}

pub fn owner_reference(sealed: &SealedSecret) -> OwnerReference {
    OwnerReference {
        api_version: "bitnami.com/v1alpha1".into(),
        kind: "SealedSecret".into(),
        name: sealed.metadata.name.clone().unwrap_or_default(),
        uid: sealed.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

/// The Secret to write. In patch mode the existing Secret's other keys, labels and annotations
/// stay; otherwise the SealedSecret's template decides everything.
pub fn desired_secret(
    sealed: &SealedSecret,
    unsealed: &UnsealedSecret,
    key: &SealingKey,
    existing: Option<&Secret>,
    mode: WriteMode,
) -> Secret {
    let data: BTreeMap<String, ByteString> = unsealed
        .data
        .iter()
        .map(|(k, v)| (k.clone(), ByteString(v.to_vec())))
        .collect();
    let mut secret = match (mode, existing) {
        (WriteMode::Patch, Some(existing)) => {
            let mut merged = existing.clone();
            merged.data.get_or_insert_default().extend(data);
            if let Some(removed) = &sealed.spec.template.data {
                for (k, v) in removed {
                    if v.is_none() {
                        merged.data.get_or_insert_default().remove(k);
                    }
                }
            }
            let template = &unsealed.metadata;
            merged
                .metadata
                .labels
                .get_or_insert_default()
                .extend(template.labels.clone().unwrap_or_default());
            merged
                .metadata
                .annotations
                .get_or_insert_default()
                .extend(template.annotations.clone().unwrap_or_default());
            merged.string_data = None;
            merged
        }
        _ => Secret {
            metadata: ObjectMeta {
                name: unsealed.metadata.name.clone(),
                namespace: unsealed.metadata.namespace.clone(),
                labels: unsealed.metadata.labels.clone(),
                annotations: unsealed.metadata.annotations.clone(),
                finalizers: unsealed.metadata.finalizers.clone(),
                resource_version: existing.and_then(|e| e.metadata.resource_version.clone()),
                ..Default::default()
            },
            type_: Some(unsealed.type_.clone()),
            immutable: unsealed.immutable,
            data: Some(data),
            ..Default::default()
        },
    };
    // Patching takes ownership only when the Secret is also annotated managed (as Bitnami's).
    let takes_ownership = mode != WriteMode::Patch
        || existing.is_none_or(|e| is_true(&e.metadata, ANNOTATION_MANAGED));
    if takes_ownership {
        if skips_owner_reference(sealed) {
            secret.metadata.owner_references = None;
            secret
                .metadata
                .annotations
                .get_or_insert_default()
                .insert(ANNOTATION_MANAGED.into(), "true".into());
        } else {
            secret.metadata.owner_references = Some(vec![owner_reference(sealed)]);
        }
    }
    secret
        .metadata
        .labels
        .get_or_insert_default()
        .insert(LABEL_OWNED.into(), "true".into());
    let mac = data_mac(
        key,
        &secret,
        sealed,
        if mode == WriteMode::Patch {
            WriteMode::Patch
        } else {
            WriteMode::Replace
        },
    );
    let annotations = secret.metadata.annotations.get_or_insert_default();
    for k in BOOKKEEPING {
        annotations.remove(k);
    }
    annotations.insert(ANNOTATION_DIGEST.into(), sealed_digest(sealed));
    annotations.insert(ANNOTATION_DATA_MAC.into(), mac);
    annotations.insert(ANNOTATION_KEY.into(), key.id.clone());
    secret
}

/// Why an immutable Secret cannot take the new content, if it cannot.
pub fn immutable_conflict(existing: &Secret, desired: &Secret) -> Option<String> {
    (existing.immutable == Some(true) && (existing.data != desired.data || existing.type_ != desired.type_)).then(|| {
        format!(
            "Secret {:?} is immutable and its data changed: delete it to let the controller recreate it",
            existing.metadata.name.as_deref().unwrap_or_default()
        )
    })
}

/// Why the reconcile ended as it did, for the status, events and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Synced,
    /// A reason and a message without secret values.
    Failed {
        reason: FailReason,
        message: String,
    },
}

/// Why a SealedSecret did not sync. Each reason decides its condition reason, event, metric
/// label and retry, so a new reason cannot fall into a catch-all arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// The Secret exists and is not ours (no owner reference, no managed/patch annotation).
    Unmanaged,
    /// No key could decrypt, or the template failed.
    UnsealFailed,
    /// Writing the Secret failed (API error, immutable Secret).
    UpdateFailed,
}

impl FailReason {
    /// `status.conditions[].reason`, as Bitnami writes it.
    pub fn condition_reason(self) -> &'static str {
        match self {
            FailReason::Unmanaged => "Unmanaged",
            FailReason::UnsealFailed => "UnsealFailed",
            FailReason::UpdateFailed => "UpdateFailed",
        }
    }

    /// Event reason, as Bitnami publishes it.
    pub fn event_reason(self) -> &'static str {
        match self {
            FailReason::UnsealFailed => "ErrUnsealFailed",
            FailReason::Unmanaged | FailReason::UpdateFailed => "ErrUpdateFailed",
        }
    }

    /// `reason` label of `sealed_secrets_controller_unseal_errors_total`.
    pub fn metric_label(self) -> &'static str {
        match self {
            FailReason::Unmanaged => "unmanaged",
            FailReason::UnsealFailed => "unseal",
            FailReason::UpdateFailed => "update",
        }
    }

    /// When to look again without a watch event: a foreign Secret may be annotated later and
    /// is not watched; undecryptable objects wait for a spec change or a key change.
    pub fn retry_after(self) -> Option<std::time::Duration> {
        match self {
            FailReason::Unmanaged => Some(std::time::Duration::from_secs(300)),
            FailReason::UnsealFailed | FailReason::UpdateFailed => None,
        }
    }
}

/// The status to write, or `None` when the current one already says it (no API call).
pub fn next_status(
    sealed: &SealedSecret,
    outcome: &Outcome,
    now: &str,
) -> Option<SealedSecretStatus> {
    let previous = sealed.status.as_ref();
    let previous_condition =
        previous.and_then(|s| s.conditions.iter().find(|c| c.type_ == "Synced"));
    let (status, reason, message) = match outcome {
        Outcome::Synced => ("True", None, None),
        Outcome::Failed { reason, message } => (
            "False",
            Some(reason.condition_reason().to_string()),
            Some(message.clone()),
        ),
    };
    let unchanged = previous_condition
        .is_some_and(|c| c.status == status && c.reason == reason && c.message == message)
        && previous.and_then(|s| s.observed_generation) == sealed.metadata.generation;
    if unchanged {
        return None;
    }
    let transitioned = previous_condition.is_none_or(|c| c.status != status);
    let last_transition_time = if transitioned {
        Some(now.to_string())
    } else {
        previous_condition.and_then(|c| c.last_transition_time.clone())
    };
    Some(SealedSecretStatus {
        observed_generation: sealed.metadata.generation,
        conditions: vec![SealedSecretCondition {
            type_: "Synced".into(),
            status: status.into(),
            last_update_time: Some(now.to_string()),
            last_transition_time,
            reason,
            message,
        }],
    })
}
