//! The Secret an ExternalSecret should produce, and the status it reports: templates,
//! creationPolicy / deletionPolicy, owner references, the managed label and data hash, the
//! Ready condition. Pure functions; the reconciler only performs what they decide.

use std::collections::BTreeMap;

use crds::external_secrets::{CreationPolicy, DeletionPolicy, ExternalSecret, StatusCondition};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use sha3::{Digest, Sha3_224};

use super::data::validate_key;
use super::template::{ApplyError, Rendered};

pub const MANAGED_LABEL: &str = "reconcile.external-secrets.io/managed";
pub const DATA_HASH_ANNOTATION: &str = "reconcile.external-secrets.io/data-hash";
pub const CREATED_BY_LABEL: &str = "reconcile.external-secrets.io/created-by";

pub const CONDITION_READY: &str = "Ready";
pub const REASON_SYNCED: &str = "SecretSynced";
pub const REASON_ERROR: &str = "SecretSyncedError";
pub const REASON_DELETED: &str = "SecretDeleted";
pub const REASON_MISSING: &str = "SecretMissing";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error(transparent)]
    Template(#[from] ApplyError),
    #[error(transparent)]
    Data(#[from] super::data::DataError),
    #[error("target Secret {0:?} is owned by another resource")]
    OwnedByOther(String),
    #[error("target Secret {0:?} is immutable and its data would change")]
    Immutable(String),
    #[error("invalid ExternalSecret: {0}")]
    Invalid(String),
}

/// `"<generation>-<sha3-224 of labels and annotations>"`: changes whenever the spec, a label or
/// an annotation changes (ESO's force-sync is an annotation change).
pub fn resource_version(meta: &ObjectMeta) -> String {
    let mut h = Sha3_224::new();
    for (tag, map) in [("labels", &meta.labels), ("annotations", &meta.annotations)] {
        h.update(tag.as_bytes());
        for (k, v) in map.iter().flatten() {
            h.update((k.len() as u64).to_be_bytes());
            h.update(k.as_bytes());
            h.update((v.len() as u64).to_be_bytes());
            h.update(v.as_bytes());
        }
    }
    format!(
        "{}-{}",
        meta.generation.unwrap_or(0),
        hex::encode(h.finalize())
    )
}

/// Hash of the data we wrote; a Secret whose annotation no longer matches was changed by
/// someone else and is rewritten.
pub fn data_hash(data: &BTreeMap<String, ByteString>) -> String {
    let mut h = Sha3_224::new();
    for (k, v) in data {
        h.update((k.len() as u64).to_be_bytes());
        h.update(k.as_bytes());
        h.update((v.0.len() as u64).to_be_bytes());
        h.update(&v.0);
    }
    hex::encode(h.finalize())
}

/// Label value identifying the ExternalSecret that created a Secret (ESO hashes `ns/name`).
pub fn created_by(namespace: &str, name: &str) -> String {
    let digest = Sha3_224::digest(format!("{namespace}/{name}").as_bytes());
    hex::encode(&digest[..16])
}

/// Static checks ESO's admission webhook makes.
pub fn validate(es: &ExternalSecret) -> Result<(), PlanError> {
    let spec = &es.spec;
    if spec.data.is_empty() && spec.data_from.is_empty() {
        return Err(PlanError::Invalid(
            "either data or dataFrom should be specified".into(),
        ));
    }
    if spec.target.deletion_policy == DeletionPolicy::Delete
        && matches!(
            spec.target.creation_policy,
            CreationPolicy::Merge | CreationPolicy::None
        )
    {
        return Err(PlanError::Invalid(
            "deletionPolicy=Delete must not be used when the controller doesn't own the secret; set creationPolicy=Owner".into(),
        ));
    }
    if spec.target.deletion_policy == DeletionPolicy::Merge
        && spec.target.creation_policy == CreationPolicy::None
    {
        return Err(PlanError::Invalid(
            "deletionPolicy=Merge must not be used with creationPolicy=None".into(),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for d in &spec.data {
        if !seen.insert(d.secret_key.as_str()) {
            return Err(PlanError::Invalid(format!(
                "duplicate secretKey {:?}",
                d.secret_key
            )));
        }
    }
    for d in &spec.data_from {
        if d.extract.is_some() == d.find.is_some() {
            return Err(PlanError::Invalid(
                "each dataFrom entry needs exactly one of extract or find".into(),
            ));
        }
    }
    Ok(())
}

/// What the reconciler must do with the target Secret.
#[derive(Debug, Clone, PartialEq)]
pub enum WritePlan {
    Create(Secret),
    Replace(Secret),
    /// Already as desired.
    Unchanged,
    /// `creationPolicy: Merge` and the Secret does not exist.
    MissingForMerge,
    /// `creationPolicy: None`: report only.
    Nothing,
}

/// Identity of the ExternalSecret owning the plan.
#[derive(Debug, Clone)]
pub struct Owner<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
}

pub fn target_name(es: &ExternalSecret) -> String {
    es.spec
        .target
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| es.metadata.name.clone().unwrap_or_default())
}

fn owner_reference(owner: &Owner<'_>) -> OwnerReference {
    OwnerReference {
        api_version: "external-secrets.io/v1".into(),
        kind: "ExternalSecret".into(),
        name: owner.name.into(),
        uid: owner.uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Builds the Secret to write from what the template rendered and the current Secret (if any).
pub fn plan_write(
    es: &ExternalSecret,
    owner: &Owner<'_>,
    rendered: Rendered,
    existing: Option<&Secret>,
) -> Result<WritePlan, PlanError> {
    let name = target_name(es);
    for k in rendered.data.keys() {
        validate_key(k)?;
    }
    let policy = es.spec.target.creation_policy;
    if let Some(refused) = refusal(policy, owner, existing, &name)? {
        return Ok(refused);
    }
    // Merge-style policies keep keys written by others; Owner and Orphan own the whole data.
    let merging = matches!(
        policy,
        CreationPolicy::Merge | CreationPolicy::CreateOrMerge
    ) && existing.is_some();
    let mut secret = existing.cloned().unwrap_or_else(|| Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(owner.namespace.to_string()),
            ..ObjectMeta::default()
        },
        ..Secret::default()
    });
    let mut new_data = if merging {
        secret.data.clone().unwrap_or_default()
    } else {
        BTreeMap::new()
    };
    new_data.extend(
        rendered
            .data
            .iter()
            .map(|(k, v)| (k.clone(), ByteString(v.to_vec()))),
    );
    mark_ours(&mut secret, es, owner, rendered, &new_data, merging);
    let Some(old) = existing else {
        secret.data = Some(new_data);
        return Ok(WritePlan::Create(secret));
    };
    if old.immutable == Some(true) && old.data.clone().unwrap_or_default() != new_data {
        return Err(PlanError::Immutable(name));
    }
    secret.data = Some(new_data);
    secret.string_data = None;
    Ok(if &secret == old {
        WritePlan::Unchanged
    } else {
        WritePlan::Replace(secret)
    })
}

/// What the creation policy decides before anything is built: report only, wait for the Secret
/// to merge into, or refuse a Secret another resource controls.
fn refusal(
    policy: CreationPolicy,
    owner: &Owner<'_>,
    existing: Option<&Secret>,
    name: &str,
) -> Result<Option<WritePlan>, PlanError> {
    if policy == CreationPolicy::None {
        return Ok(Some(WritePlan::Nothing));
    }
    let Some(s) = existing else {
        return Ok((policy == CreationPolicy::Merge).then_some(WritePlan::MissingForMerge));
    };
    let foreign_controller = s
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && r.uid != owner.uid);
    if foreign_controller && policy == CreationPolicy::Owner {
        return Err(PlanError::OwnedByOther(name.to_string()));
    }
    Ok(None)
}

/// The template's labels and annotations, our own (managed, created-by, data hash), the type,
/// the owner reference and immutability, on `secret`.
fn mark_ours(
    secret: &mut Secret,
    es: &ExternalSecret,
    owner: &Owner<'_>,
    rendered: Rendered,
    new_data: &BTreeMap<String, ByteString>,
    merging: bool,
) {
    let target = &es.spec.target;
    let policy = target.creation_policy;
    let labels = secret.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.extend(rendered.labels);
    if !merging {
        labels.insert(MANAGED_LABEL.into(), "true".into());
    }
    if policy == CreationPolicy::Owner {
        labels.insert(
            CREATED_BY_LABEL.into(),
            created_by(owner.namespace, owner.name),
        );
    }
    let annotations = secret
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new);
    annotations.extend(rendered.annotations);
    annotations.insert(DATA_HASH_ANNOTATION.into(), data_hash(new_data));
    if let Some(t) = target.template.as_ref().and_then(|t| t.type_.clone()) {
        secret.type_ = Some(t);
    } else if secret.type_.is_none() {
        secret.type_ = Some("Opaque".into());
    }
    if policy == CreationPolicy::Owner {
        let refs = secret
            .metadata
            .owner_references
            .get_or_insert_with(Vec::new);
        if !refs.iter().any(|r| r.uid == owner.uid) {
            refs.push(owner_reference(owner));
        }
    }
    if target.immutable {
        secret.immutable = Some(true);
    }
}

/// Whether the current Secret still carries the data we wrote (else: refresh now).
pub fn target_is_valid(es: &ExternalSecret, existing: Option<&Secret>) -> bool {
    match (es.spec.target.creation_policy, existing) {
        (CreationPolicy::None, _) => true,
        (_, None) => false,
        (_, Some(s)) => {
            let Some(recorded) = s
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DATA_HASH_ANNOTATION))
            else {
                return false;
            };
            *recorded == data_hash(&s.data.clone().unwrap_or_default())
        }
    }
}

/// Keys the spec names explicitly; `deletionPolicy: Merge` removes them when the provider data
/// is gone.
pub fn spec_keys(es: &ExternalSecret) -> Vec<String> {
    let mut keys: Vec<String> = es.spec.data.iter().map(|d| d.secret_key.clone()).collect();
    if let Some(t) = &es.spec.target.template {
        keys.extend(t.data.keys().cloned());
    }
    keys
}

/// `existing` without `keys`: what `deletionPolicy: Merge` leaves when the provider data is gone.
pub fn without_keys(existing: &Secret, keys: &[String]) -> Secret {
    let mut s = existing.clone();
    if let Some(d) = s.data.as_mut() {
        d.retain(|k, _| !keys.contains(k));
    }
    s
}

/// Sets the Ready condition, keeping `lastTransitionTime` when the status does not change.
pub fn set_ready(
    conditions: &[StatusCondition],
    ready: bool,
    reason: &str,
    message: &str,
    now: &str,
) -> Vec<StatusCondition> {
    let status = if ready { "True" } else { "False" };
    let previous = conditions.iter().find(|c| c.type_ == CONDITION_READY);
    let transition = match previous {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => Some(now.to_string()),
    };
    let mut out: Vec<StatusCondition> = conditions
        .iter()
        .filter(|c| c.type_ != CONDITION_READY)
        .cloned()
        .collect();
    out.insert(
        0,
        StatusCondition {
            type_: CONDITION_READY.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_transition_time: transition,
        },
    );
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crds::external_secrets::{
        ExternalSecretSpec, ExternalSecretTarget, ExternalSecretTemplate,
    };

    fn es(policy: CreationPolicy, template: Option<ExternalSecretTemplate>) -> ExternalSecret {
        let mut es = ExternalSecret::new(
            "es1",
            ExternalSecretSpec {
                target: ExternalSecretTarget {
                    creation_policy: policy,
                    template,
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        es.metadata.namespace = Some("ns".into());
        es.metadata.uid = Some("uid-1".into());
        es
    }

    fn owner() -> Owner<'static> {
        Owner {
            namespace: "ns",
            name: "es1",
            uid: "uid-1",
        }
    }

    fn map(pairs: &[(&str, &str)]) -> Rendered {
        Rendered {
            data: pairs
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        zeroize::Zeroizing::new(v.as_bytes().to_vec()),
                    )
                })
                .collect(),
            ..Rendered::default()
        }
    }

    fn data_of(s: &Secret) -> BTreeMap<String, String> {
        s.data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), String::from_utf8(v.0.clone()).unwrap()))
            .collect()
    }

    #[test]
    fn owner_creates_with_owner_reference_label_and_hash() {
        let e = es(CreationPolicy::Owner, None);
        let WritePlan::Create(s) = plan_write(&e, &owner(), map(&[("a", "1")]), None).unwrap()
        else {
            panic!()
        };
        assert_eq!(s.metadata.name.as_deref(), Some("es1"));
        assert_eq!(s.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(s.type_.as_deref(), Some("Opaque"));
        assert_eq!(data_of(&s)["a"], "1");
        let r = &s.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (r.kind.as_str(), r.uid.as_str(), r.controller),
            ("ExternalSecret", "uid-1", Some(true))
        );
        assert_eq!(s.metadata.labels.as_ref().unwrap()[MANAGED_LABEL], "true");
        assert!(target_is_valid(&e, Some(&s)));
        // Re-planning the same data over the written Secret is a no-op.
        assert_eq!(
            plan_write(&e, &owner(), map(&[("a", "1")]), Some(&s)).unwrap(),
            WritePlan::Unchanged
        );
        // Tampering invalidates the hash.
        let mut t = s.clone();
        t.data
            .as_mut()
            .unwrap()
            .insert("a".into(), ByteString(b"x".to_vec()));
        assert!(!target_is_valid(&e, Some(&t)));
        assert!(!target_is_valid(&e, None));
    }

    #[test]
    fn orphan_has_no_owner_reference_and_replaces_data() {
        let e = es(CreationPolicy::Orphan, None);
        let mut existing = Secret::default();
        existing.metadata.name = Some("es1".into());
        existing.data = Some([("old".to_string(), ByteString(b"o".to_vec()))].into());
        let WritePlan::Replace(s) =
            plan_write(&e, &owner(), map(&[("a", "1")]), Some(&existing)).unwrap()
        else {
            panic!()
        };
        assert!(s.metadata.owner_references.is_none());
        assert_eq!(data_of(&s).len(), 1);
    }

    #[test]
    fn merge_patches_only_our_keys_and_never_creates() {
        let e = es(CreationPolicy::Merge, None);
        assert_eq!(
            plan_write(&e, &owner(), map(&[("a", "1")]), None).unwrap(),
            WritePlan::MissingForMerge
        );
        let mut existing = Secret::default();
        existing.metadata.name = Some("es1".into());
        existing.data = Some(
            [
                ("theirs".to_string(), ByteString(b"t".to_vec())),
                ("a".to_string(), ByteString(b"old".to_vec())),
            ]
            .into(),
        );
        let WritePlan::Replace(s) =
            plan_write(&e, &owner(), map(&[("a", "1")]), Some(&existing)).unwrap()
        else {
            panic!()
        };
        assert_eq!(data_of(&s)["theirs"], "t");
        assert_eq!(data_of(&s)["a"], "1");
        assert!(s.metadata.owner_references.is_none());
        assert_eq!(
            plan_write(&es(CreationPolicy::None, None), &owner(), map(&[]), None).unwrap(),
            WritePlan::Nothing
        );
    }

    #[test]
    fn foreign_owner_and_immutable_are_errors() {
        let e = es(CreationPolicy::Owner, None);
        let mut existing = Secret::default();
        existing.metadata.owner_references = Some(vec![OwnerReference {
            uid: "other".into(),
            controller: Some(true),
            ..Default::default()
        }]);
        assert!(matches!(
            plan_write(&e, &owner(), map(&[("a", "1")]), Some(&existing)),
            Err(PlanError::OwnedByOther(_))
        ));
        let existing = Secret {
            immutable: Some(true),
            data: Some([("a".to_string(), ByteString(b"0".to_vec()))].into()),
            ..Default::default()
        };
        assert!(matches!(
            plan_write(&e, &owner(), map(&[("a", "1")]), Some(&existing)),
            Err(PlanError::Immutable(_))
        ));
        assert!(plan_write(&e, &owner(), map(&[("a/b", "1")]), None).is_err());
    }

    #[test]
    fn template_type_and_rendered_metadata_reach_the_secret() {
        let t = ExternalSecretTemplate {
            type_: Some("kubernetes.io/basic-auth".into()),
            engine_version: "v2".into(),
            ..Default::default()
        };
        let e = es(CreationPolicy::Owner, Some(t));
        let mut rendered = map(&[("url", "u")]);
        rendered.labels.insert("app".into(), "x".into());
        rendered.labels.insert(MANAGED_LABEL.into(), "no".into());
        rendered.annotations.insert("a".into(), "y".into());
        let WritePlan::Create(s) = plan_write(&e, &owner(), rendered, None).unwrap() else {
            panic!()
        };
        assert_eq!(s.type_.as_deref(), Some("kubernetes.io/basic-auth"));
        let labels = s.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["app"], "x");
        assert_eq!(labels[MANAGED_LABEL], "true", "our labels win");
        assert_eq!(s.metadata.annotations.as_ref().unwrap()["a"], "y");
    }

    #[test]
    fn resource_version_tracks_labels_annotations_generation() {
        let mut m = ObjectMeta {
            generation: Some(3),
            ..Default::default()
        };
        let a = resource_version(&m);
        assert!(a.starts_with("3-"));
        m.annotations = Some([("force-sync".to_string(), "1".to_string())].into());
        let b = resource_version(&m);
        assert_ne!(a, b);
        m.annotations = Some([("force-sync".to_string(), "2".to_string())].into());
        assert_ne!(b, resource_version(&m));
        m.generation = Some(4);
        assert!(resource_version(&m).starts_with("4-"));
    }

    #[test]
    fn ready_condition_transitions() {
        let c = set_ready(&[], true, REASON_SYNCED, "secret synced", "t1");
        assert_eq!(c[0].last_transition_time.as_deref(), Some("t1"));
        let c = set_ready(&c, true, REASON_SYNCED, "secret synced", "t2");
        assert_eq!(c[0].last_transition_time.as_deref(), Some("t1"));
        let c = set_ready(&c, false, REASON_ERROR, "boom", "t3");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].status, "False");
        assert_eq!(c[0].last_transition_time.as_deref(), Some("t3"));
    }

    #[test]
    fn webhook_validation() {
        let mut e = es(CreationPolicy::Owner, None);
        assert!(validate(&e).is_err()); // neither data nor dataFrom
        e.spec
            .data
            .push(crds::external_secrets::ExternalSecretData {
                secret_key: "a".into(),
                remote_ref: Default::default(),
            });
        assert!(validate(&e).is_ok());
        e.spec.data.push(e.spec.data[0].clone());
        assert!(validate(&e).unwrap_err().to_string().contains("duplicate"));
        e.spec.data.pop();
        e.spec.target.creation_policy = CreationPolicy::Merge;
        e.spec.target.deletion_policy = DeletionPolicy::Delete;
        assert!(validate(&e).is_err());
    }
}
