//! The reconciler's decisions as plain functions: no API, no I/O.

use crate::sealed_common;

use std::time::Duration;

use controller::sealed::desired::{
    ANNOTATION_DIGEST, ANNOTATION_MANAGED, ANNOTATION_PATCH, FailReason, Outcome, Ownership, Plan,
    WriteMode, desired_secret, immutable_conflict, next_status, ownership, plan, sealed_digest,
};
use controller::sealed::keyring::{KeyOrder, KeyRing};
use controller::sealed::keys::{needs_new_key, until_next_renewal};
use crds::SealedSecret;
use k8s_openapi::api::core::v1::Secret;
use sealed_common::{key_config, key_ring, read, sealing_key};

fn sealed(name: &str) -> SealedSecret {
    let mut s: SealedSecret =
        serde_yaml::from_str(&read(&format!("sealedsecrets/{name}.yaml"))).unwrap();
    s.metadata.uid = Some("uid-1".into());
    s.metadata.generation = Some(3);
    s
}

fn written(sealed: &SealedSecret, ring: &KeyRing) -> Secret {
    let keys = ring.try_order(None);
    let refs: Vec<&sealing::PrivateKey> = keys.iter().map(|k| &k.private).collect();
    let unsealed = sealing::unseal(sealed, &refs).unwrap();
    let opener = &keys[unsealed.opened_with.unwrap()];
    desired_secret(sealed, &unsealed, opener, None, WriteMode::Create)
}

#[test]
fn no_secret_means_create_and_our_own_up_to_date_secret_means_nothing_to_do() {
    let ring = key_ring();
    let s = sealed("basic");
    assert_eq!(plan(&s, None, &ring), Plan::Unseal(WriteMode::Create));
    let secret = written(&s, &ring);
    assert_eq!(ownership(&secret, &s), Ownership::Ours);
    assert_eq!(plan(&s, Some(&secret), &ring), Plan::UpToDate);
}

#[test]
fn any_change_to_the_sealed_secret_or_the_secret_data_means_unseal_again() {
    let ring = key_ring();
    let s = sealed("basic");
    let secret = written(&s, &ring);

    let mut relabelled = s.clone();
    relabelled.spec.template.metadata.as_mut().unwrap().labels =
        Some([("a".to_string(), "b".to_string())].into());
    assert_ne!(sealed_digest(&relabelled), sealed_digest(&s));
    assert_eq!(
        plan(&relabelled, Some(&secret), &ring),
        Plan::Unseal(WriteMode::Replace)
    );

    let mut edited = secret.clone();
    edited
        .data
        .as_mut()
        .unwrap()
        .values_mut()
        .next()
        .unwrap()
        .0
        .push(b'!');
    assert_eq!(
        plan(&s, Some(&edited), &ring),
        Plan::Unseal(WriteMode::Replace)
    );

    let mut extra = secret.clone();
    extra
        .data
        .as_mut()
        .unwrap()
        .insert("extra".into(), k8s_openapi::ByteString(vec![1]));
    assert_eq!(
        plan(&s, Some(&extra), &ring),
        Plan::Unseal(WriteMode::Replace)
    );

    let mut forged = secret.clone();
    forged
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(ANNOTATION_DIGEST.into(), "0".repeat(64));
    assert_eq!(
        plan(&s, Some(&forged), &ring),
        Plan::Unseal(WriteMode::Replace)
    );

    // The key that wrote it is gone (e.g. marked compromised): decrypt again with what is left.
    let writer =
        secret.metadata.annotations.as_ref().unwrap()["gitops-secrets.dev/sealing-key"].clone();
    let other = if writer == sealing_key("key1").id {
        "key2"
    } else {
        "key1"
    };
    let without_writer = KeyRing::new(KeyOrder::CertNotBefore);
    without_writer.insert(sealing_key(other));
    assert_eq!(
        plan(&s, Some(&secret), &without_writer),
        Plan::Unseal(WriteMode::Replace)
    );
}

#[test]
fn takeover_rules_follow_the_annotations_of_the_existing_secret() {
    let ring = key_ring();
    let s = sealed("basic");
    let mut foreign = Secret::default();
    foreign.metadata.name = s.metadata.name.clone();
    assert_eq!(ownership(&foreign, &s), Ownership::Foreign);
    let Plan::Refuse(message) = plan(&s, Some(&foreign), &ring) else {
        panic!("must refuse")
    };
    assert!(
        message.contains("not managed") && message.contains(ANNOTATION_MANAGED),
        "{message}"
    );

    foreign.metadata.annotations =
        Some([(ANNOTATION_MANAGED.to_string(), "true".to_string())].into());
    assert_eq!(
        plan(&s, Some(&foreign), &ring),
        Plan::Unseal(WriteMode::Replace)
    );
    foreign.metadata.annotations =
        Some([(ANNOTATION_PATCH.to_string(), "true".to_string())].into());
    assert_eq!(
        plan(&s, Some(&foreign), &ring),
        Plan::Unseal(WriteMode::Patch)
    );

    // Owned by another SealedSecret of the same name (another uid): not ours.
    let mut other_owner = written(&s, &ring);
    other_owner.metadata.owner_references.as_mut().unwrap()[0].uid = "uid-2".into();
    assert!(matches!(
        plan(&s, Some(&other_owner), &ring),
        Plan::Refuse(_)
    ));
}

#[test]
fn skip_owner_references_writes_no_owner_but_keeps_the_secret_ours() {
    let ring = key_ring();
    let mut s = sealed("basic");
    s.spec.template.metadata.as_mut().unwrap().annotations = Some(
        [(
            "sealedsecrets.bitnami.com/skip-set-owner-references".to_string(),
            "true".to_string(),
        )]
        .into(),
    );
    let secret = written(&s, &ring);
    assert!(secret.metadata.owner_references.is_none());
    assert_eq!(
        secret.metadata.annotations.as_ref().unwrap()[ANNOTATION_MANAGED],
        "true"
    );
    assert_eq!(plan(&s, Some(&secret), &ring), Plan::UpToDate);
}

#[test]
fn an_immutable_secret_with_new_data_is_a_conflict() {
    let ring = key_ring();
    let s = sealed("immutable-plain-data");
    let mut existing = written(&s, &ring);
    let desired = existing.clone();
    assert!(immutable_conflict(&existing, &desired).is_none());
    existing
        .data
        .as_mut()
        .unwrap()
        .insert("secret".into(), k8s_openapi::ByteString(b"old".to_vec()));
    assert!(
        immutable_conflict(&existing, &desired)
            .unwrap()
            .contains("immutable")
    );
}

#[test]
fn status_is_written_only_when_it_changes() {
    let mut s = sealed("basic");
    let failed = Outcome::Failed {
        reason: FailReason::UnsealFailed,
        message: "key \"a\": no key could decrypt secret".into(),
    };
    let first = next_status(&s, &failed, "2026-01-01T00:00:00Z").unwrap();
    assert_eq!(first.observed_generation, Some(3));
    let c = &first.conditions[0];
    assert_eq!(
        (c.type_.as_str(), c.status.as_str(), c.reason.as_deref()),
        ("Synced", "False", Some("UnsealFailed"))
    );
    s.status = Some(first.clone());
    assert!(
        next_status(&s, &failed, "2026-01-01T00:01:00Z").is_none(),
        "same failure: no write"
    );
    let synced = next_status(&s, &Outcome::Synced, "2026-01-01T00:02:00Z").unwrap();
    let c = &synced.conditions[0];
    assert_eq!(
        (c.status.as_str(), c.last_transition_time.as_deref()),
        ("True", Some("2026-01-01T00:02:00Z"))
    );
    assert!(c.message.is_none());
    s.status = Some(synced);
    s.metadata.generation = Some(4);
    let bumped = next_status(&s, &Outcome::Synced, "2026-01-01T00:03:00Z").unwrap();
    assert_eq!(
        bumped.conditions[0].last_transition_time.as_deref(),
        Some("2026-01-01T00:02:00Z")
    );
    assert_eq!(bumped.observed_generation, Some(4));
}

#[test]
fn a_new_key_is_due_when_none_exists_the_newest_is_too_old_or_before_the_cutoff() {
    let newest = sealing_key("key2"); // notBefore 2026-05-22
    let born = newest.certificate.not_before();
    let day = time::Duration::days(1);
    assert!(needs_new_key(None, born, &key_config(30, None)));
    assert!(!needs_new_key(
        Some(&newest),
        born + day * 29,
        &key_config(30, None)
    ));
    assert!(needs_new_key(
        Some(&newest),
        born + day * 30,
        &key_config(30, None)
    ));
    assert!(
        !needs_new_key(Some(&newest), born + day * 3650, &key_config(0, None)),
        "0 disables renewal"
    );
    assert!(needs_new_key(
        Some(&newest),
        born + day,
        &key_config(0, Some(born + day))
    ));
    assert!(!needs_new_key(
        Some(&newest),
        born + day,
        &key_config(0, Some(born - day))
    ));
    assert_eq!(
        until_next_renewal(Some(&newest), born + day * 10, &key_config(30, None)),
        Some(Duration::from_secs(20 * 86_400))
    );
    assert_eq!(
        until_next_renewal(Some(&newest), born, &key_config(0, None)),
        None
    );
}
