//! The SealedSecret reconciler against an in-memory Kubernetes API (kube-fake-client): what a
//! user sees in the cluster after each reconcile.

use crate::sealed_common;

use std::collections::BTreeMap;
use std::sync::Arc;

use controller::sealed::desired::{
    ANNOTATION_MANAGED, ANNOTATION_PATCH, LABEL_OWNED, Plan, WriteMode, plan_observed,
};
use controller::sealed::keyring::{KeyOrder, KeyRing};
use controller::sealed::keys::{create_key, parse_key_secret};
use controller::sealed::metrics::SealedMetrics;
use controller::sealed::owned::Observed;
use controller::sealed::reconcile::{Context, reconcile};
use crds::SealedSecret;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, PostParams};
use kube_fake_client::ClientBuilder;
use sealed_common::{key_config, key_ring, read, sealing_key};

const CANARY: &str = canary::CANARY;

fn with_uid(mut sealed: SealedSecret, uid: &str) -> SealedSecret {
    sealed.metadata.uid = Some(uid.into());
    sealed.metadata.generation = Some(1);
    sealed
}

fn fixture_sealed(name: &str) -> SealedSecret {
    with_uid(
        test_kit::sealed_secrets::sealed_secret(name),
        &format!("uid-{name}"),
    )
}

/// A SealedSecret holding the canary value, sealed for key2.
fn canary_sealed(name: &str, namespace: &str) -> SealedSecret {
    let mut data = BTreeMap::new();
    data.insert(
        "password".to_string(),
        ByteString(CANARY.as_bytes().to_vec()),
    );
    data.insert("user".to_string(), ByteString(b"admin".to_vec()));
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    };
    let key2 = sealing_key("key2");
    let sealed =
        sealing::seal_secret(&secret, key2.private.public_key(), &Default::default()).unwrap();
    with_uid(sealed, &format!("uid-{name}"))
}

struct World {
    ctx: Arc<Context>,
    sealed_api: Api<SealedSecret>,
    secrets: Api<Secret>,
}

async fn world(objects: Vec<SealedSecret>, secrets: Vec<Secret>) -> World {
    world_with(objects, secrets, false).await
}

/// With `cached`, target Secrets are read from the owned-Secret watch, as the binary does.
async fn world_with(objects: Vec<SealedSecret>, secrets: Vec<Secret>, cached: bool) -> World {
    let mut builder = test_kit::api::sealed_secrets();
    for o in objects {
        builder = builder.with_object(o);
    }
    for s in secrets {
        builder = builder.with_object(s);
    }
    let client = builder.build().await.unwrap();
    let ctx = Arc::new(Context {
        client: client.clone(),
        keys: key_ring(),
        metrics: SealedMetrics::default(),
        recorder: None,
        update_status: true,
        unseal_threads: 2,
        rsa_slots: Context::rsa_slots(),
        owned: cached.then(|| controller::sealed::owned::owned_secrets(key_ring())),
        status_writes: Default::default(),
    });
    World {
        sealed_api: Api::namespaced(client.clone(), "default"),
        secrets: Api::namespaced(client, "default"),
        ctx,
    }
}

impl World {
    async fn reconcile(&self, name: &str) {
        let sealed = self.sealed_api.get(name).await.unwrap();
        reconcile(Arc::new(sealed), Arc::clone(&self.ctx))
            .await
            .unwrap();
    }

    async fn condition(&self, name: &str) -> crds::SealedSecretCondition {
        let sealed = self.sealed_api.get_status(name).await.unwrap();
        sealed.status.unwrap().conditions.remove(0)
    }

    fn rsa(&self) -> u64 {
        self.ctx.metrics.rsa_operations.get()
    }
}

#[tokio::test]
async fn creates_the_secret_then_skips_unchanged_objects_without_rsa_work() {
    let w = world(vec![fixture_sealed("tls-typed")], vec![]).await;
    let sealed = sealed_api_get(&w, "web", "site-tls").await;
    reconcile(Arc::new(sealed), Arc::clone(&w.ctx))
        .await
        .unwrap();
    let expected: Secret = serde_yaml::from_str(&read("expected-secrets/tls-typed.yaml")).unwrap();
    // The fixture lives in namespace "web".
    let secrets: Api<Secret> = Api::namespaced(w.ctx.client.clone(), "web");
    let secret = secrets.get("site-tls").await.unwrap();
    assert_eq!(secret.data, expected.data);
    assert_eq!(secret.type_, expected.type_);
    assert_eq!(secret.metadata.labels.as_ref().unwrap()["app"], "web");
    assert_eq!(
        secret.metadata.labels.as_ref().unwrap()[LABEL_OWNED],
        "true"
    );
    let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("SealedSecret", "uid-tls-typed", Some(true))
    );
    let after_first = w.rsa();
    assert!(after_first >= 2);

    // Resync or restart: nothing to decrypt.
    let sealed = sealed_api_get(&w, "web", "site-tls").await;
    reconcile(Arc::new(sealed), Arc::clone(&w.ctx))
        .await
        .unwrap();
    assert_eq!(
        w.rsa(),
        after_first,
        "no RSA operation for an unchanged SealedSecret"
    );
    assert_eq!(w.ctx.metrics.skipped_unchanged.get(), 1);
}

async fn sealed_api_get(w: &World, ns: &str, name: &str) -> SealedSecret {
    Api::<SealedSecret>::namespaced(w.ctx.client.clone(), ns)
        .get(name)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_hand_edited_secret_is_restored_and_status_says_synced() {
    let w = world(vec![canary_sealed("db", "default")], vec![]).await;
    w.reconcile("db").await;
    let condition = w.condition("db").await;
    assert_eq!(
        (condition.type_.as_str(), condition.status.as_str()),
        ("Synced", "True")
    );
    assert_eq!(
        w.sealed_api
            .get_status("db")
            .await
            .unwrap()
            .status
            .unwrap()
            .observed_generation,
        Some(1)
    );

    let mut edited = w.secrets.get("db").await.unwrap();
    edited
        .data
        .as_mut()
        .unwrap()
        .insert("password".into(), ByteString(b"changed by hand".to_vec()));
    w.secrets
        .replace("db", &PostParams::default(), &edited)
        .await
        .unwrap();
    let before = w.rsa();
    w.reconcile("db").await;
    assert!(w.rsa() > before, "drift forces a decryption");
    let restored = w.secrets.get("db").await.unwrap();
    assert_eq!(restored.data.unwrap()["password"].0, CANARY.as_bytes());
}

/// The reconciler's watched copy of a Secret keeps no value, yet finds an untouched Secret up
/// to date and a hand-edited one changed, as the Secret itself would.
#[tokio::test]
async fn a_watched_copy_without_values_decides_like_the_secret_itself() {
    let w = world(vec![canary_sealed("db", "default")], vec![]).await;
    w.reconcile("db").await;
    let sealed = w.sealed_api.get("db").await.unwrap();
    let decide = |observed: &Observed| {
        plan_observed(
            &sealed,
            Some((&observed.secret, observed.data_mac.as_ref())),
            &w.ctx.keys,
        )
    };
    let observed = Observed::of(w.secrets.get("db").await.unwrap(), &w.ctx.keys);
    assert!(observed.complete && observed.secret.data.is_none());
    assert!(!format!("{observed:?}").contains(CANARY));
    assert_eq!(decide(&observed), Plan::UpToDate);

    let mut edited = w.secrets.get("db").await.unwrap();
    edited
        .data
        .as_mut()
        .unwrap()
        .insert("password".into(), ByteString(b"changed by hand".to_vec()));
    assert_eq!(
        decide(&Observed::of(edited, &w.ctx.keys)),
        Plan::Unseal(WriteMode::Replace)
    );
    assert_eq!(
        plan_observed(&sealed, None, &w.ctx.keys),
        Plan::Unseal(WriteMode::Create)
    );
}

#[tokio::test]
async fn an_undecryptable_update_leaves_the_secret_exactly_as_it_was() {
    let w = world(vec![canary_sealed("db", "default")], vec![]).await;
    w.reconcile("db").await;
    let good = w.secrets.get("db").await.unwrap();

    // Replace one value with one sealed for a key the controller does not hold.
    let unrelated = sealing::PrivateKey::from_pem(&read("keys/unrelated.pem")).unwrap();
    let mut sealed = w.sealed_api.get("db").await.unwrap();
    let bad = sealing::seal_value(unrelated.public_key(), b"default/db", b"x").unwrap();
    sealed.spec.encrypted_data.insert(
        "password".into(),
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bad),
    );
    sealed.metadata.generation = Some(2);
    w.sealed_api
        .replace("db", &PostParams::default(), &sealed)
        .await
        .unwrap();
    w.reconcile("db").await;

    let after = w.secrets.get("db").await.unwrap();
    assert_eq!(after.data, good.data);
    assert_eq!(after.metadata.annotations, good.metadata.annotations);
    let condition = w.condition("db").await;
    assert_eq!(condition.status, "False");
    assert_eq!(condition.reason.as_deref(), Some("UnsealFailed"));
    let message = condition.message.unwrap();
    assert!(
        message.contains("\"password\"") && message.contains("no key could decrypt"),
        "{message}"
    );
    assert!(!message.contains(CANARY));
}

#[tokio::test]
async fn a_changed_sealed_secret_updates_the_secret() {
    let w = world(vec![canary_sealed("db", "default")], vec![]).await;
    w.reconcile("db").await;
    let mut newer = canary_sealed("db", "default");
    let current = w.sealed_api.get("db").await.unwrap();
    newer.metadata.resource_version = current.metadata.resource_version;
    newer.spec.template.metadata.as_mut().unwrap().labels =
        Some(BTreeMap::from([("tier".to_string(), "db".to_string())]));
    newer.spec.encrypted_data.remove("user");
    w.sealed_api
        .replace("db", &PostParams::default(), &newer)
        .await
        .unwrap();
    w.reconcile("db").await;
    let secret = w.secrets.get("db").await.unwrap();
    assert_eq!(
        secret.data.unwrap().keys().collect::<Vec<_>>(),
        vec!["password"]
    );
    assert_eq!(secret.metadata.labels.unwrap()["tier"], "db");
}

fn foreign_secret(annotations: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("db".into()),
            namespace: Some("default".into()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            labels: Some(BTreeMap::from([("team".to_string(), "a".to_string())])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "other".to_string(),
            ByteString(b"keep me".to_vec()),
        )])),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_foreign_secret_is_never_touched() {
    let w = world(
        vec![canary_sealed("db", "default")],
        vec![foreign_secret(&[])],
    )
    .await;
    w.reconcile("db").await;
    let secret = w.secrets.get("db").await.unwrap();
    assert_eq!(
        secret.data.unwrap().keys().collect::<Vec<_>>(),
        vec!["other"]
    );
    assert!(secret.metadata.owner_references.is_none());
    let condition = w.condition("db").await;
    assert_eq!(condition.reason.as_deref(), Some("Unmanaged"));
    assert!(condition.message.unwrap().contains("managed"));
    assert_eq!(w.rsa(), 0, "nothing decrypted for a refused object");
}

#[tokio::test]
async fn a_managed_secret_is_taken_over_and_a_patch_secret_is_merged() {
    let w = world(
        vec![canary_sealed("db", "default")],
        vec![foreign_secret(&[(ANNOTATION_MANAGED, "true")])],
    )
    .await;
    w.reconcile("db").await;
    let secret = w.secrets.get("db").await.unwrap();
    assert_eq!(
        secret.data.unwrap().keys().collect::<Vec<_>>(),
        vec!["password", "user"]
    );
    assert_eq!(secret.metadata.owner_references.unwrap()[0].uid, "uid-db");

    let w = world(
        vec![canary_sealed("db", "default")],
        vec![foreign_secret(&[(ANNOTATION_PATCH, "true")])],
    )
    .await;
    w.reconcile("db").await;
    let secret = w.secrets.get("db").await.unwrap();
    assert_eq!(
        secret.data.as_ref().unwrap().keys().collect::<Vec<_>>(),
        vec!["other", "password", "user"]
    );
    assert_eq!(secret.metadata.labels.as_ref().unwrap()["team"], "a");
    assert!(
        secret.metadata.owner_references.is_none(),
        "patch does not take ownership"
    );
    // Patched and unchanged: the next reconcile decrypts nothing.
    let before = w.rsa();
    w.reconcile("db").await;
    assert_eq!(w.rsa(), before);
}

#[tokio::test]
async fn an_empty_cluster_gets_a_key_secret_bitnami_can_read_and_existing_keys_load() {
    let key1: Secret = serde_yaml::from_str(&read("keys/key1-secret.yaml")).unwrap();
    let client = ClientBuilder::new()
        .with_object(key1)
        .build()
        .await
        .unwrap();
    let api: Api<Secret> = Api::namespaced(client.clone(), "kube-system");
    let listed = api
        .list(&ListParams::default().labels(controller::sealed::keys::ACTIVE_SELECTOR))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let existing = parse_key_secret(&listed.items[0]).unwrap();
    assert_eq!(
        existing.id,
        sealing_key("key1").id,
        "Bitnami's key Secret loads as is"
    );

    let created = create_key(&client, &key_config(30, None)).await.unwrap();
    let all = api
        .list(&ListParams::default().labels(controller::sealed::keys::ACTIVE_SELECTOR))
        .await
        .unwrap();
    assert_eq!(all.items.len(), 2);
    let stored = all
        .items
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(created.secret_name.as_str()))
        .unwrap();
    assert!(created.secret_name.starts_with("sealed-secrets-key"));
    assert_eq!(stored.type_.as_deref(), Some("kubernetes.io/tls"));
    assert_eq!(parse_key_secret(stored).unwrap().id, created.id);
    let pem = String::from_utf8(stored.data.as_ref().unwrap()["tls.key"].0.clone()).unwrap();
    assert!(
        pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
        "PKCS#1 as Bitnami writes it"
    );
}

#[tokio::test]
async fn the_canary_value_never_reaches_the_logs() {
    let captured = test_kit::logs::capture();

    let w = world(vec![canary_sealed("db", "default")], vec![]).await;
    w.reconcile("db").await;
    let mut edited = w.secrets.get("db").await.unwrap();
    edited
        .data
        .as_mut()
        .unwrap()
        .insert("user".into(), ByteString(CANARY.as_bytes().to_vec()));
    w.secrets
        .replace("db", &PostParams::default(), &edited)
        .await
        .unwrap();
    w.reconcile("db").await;
    let mut broken = w.sealed_api.get("db").await.unwrap();
    broken
        .spec
        .encrypted_data
        .insert("password".into(), "not base64 !".into());
    w.sealed_api
        .replace("db", &PostParams::default(), &broken)
        .await
        .unwrap();
    w.reconcile("db").await;

    let logs = captured.text();
    assert!(
        logs.contains("SealedSecret unsealed"),
        "logging was captured: {logs}"
    );
    assert!(logs.contains("SealedSecret not synced"));
    captured.assert_no_canary();
}

#[tokio::test]
async fn the_key_watcher_loads_active_and_legacy_keys_and_skips_compromised_ones() {
    let active: Secret = serde_yaml::from_str(&read("keys/key1-secret.yaml")).unwrap();
    let mut compromised: Secret = serde_yaml::from_str(&read("keys/key1-secret.yaml")).unwrap();
    compromised.metadata.name = Some("sealed-secrets-keyold".into());
    compromised.metadata.labels.as_mut().unwrap().insert(
        sealing::key_secret::LABEL_SEALING_KEY.into(),
        "compromised".into(),
    );
    // key2 as a pre-0.9 install kept it: named exactly the prefix, no label.
    let key2 = sealing_key("key2");
    let mut legacy = sealing::key_secret::key_secret_manifest(
        &key2.private,
        &key2.certificate,
        "sealed-secrets-key",
        "kube-system",
    )
    .unwrap();
    legacy.metadata.labels = None;
    let client = ClientBuilder::new()
        .with_object(active)
        .with_object(compromised)
        .with_object(legacy)
        .build()
        .await
        .unwrap();
    let ring = KeyRing::new(KeyOrder::CertNotBefore);
    // A key deleted from the cluster while the watch was down must go on the next listing.
    let stale = sealing_key("key1");
    ring.insert(controller::sealed::keyring::SealingKey::new(
        stale.private,
        stale.certificate,
        "sealed-secrets-keydeleted".into(),
        None,
    ));
    let (loaded_tx, mut loaded) = tokio::sync::watch::channel(false);
    let (changes, mut ticks) = tokio::sync::broadcast::channel(8);
    let task = tokio::spawn(controller::sealed::keys::watch_keys(
        client,
        key_config(30, None),
        ring.clone(),
        loaded_tx,
        changes,
    ));
    tokio::time::timeout(std::time::Duration::from_secs(10), loaded.wait_for(|l| *l))
        .await
        .unwrap()
        .unwrap();
    task.abort();
    let names: Vec<String> = ring
        .try_order(None)
        .iter()
        .map(|k| k.secret_name.clone())
        .collect();
    assert_eq!(
        names,
        vec![
            "sealed-secrets-key".to_string(),
            "sealed-secrets-keyabcde".to_string()
        ]
    );
    assert!(
        ticks.try_recv().is_ok(),
        "a change notification re-checks failed SealedSecrets"
    );
}

/// The kube-runtime wiring of `run`: the initial list reaches `reconcile` and the Secret is
/// written. (kube-fake-client answers a watch with a list, so later changes are not seen; the
/// task is aborted at the end.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_unseals_listed_sealed_secrets() {
    let w = world_with(vec![canary_sealed("db", "default")], vec![], true).await;
    let task = tokio::spawn(controller::sealed::reconcile::run(
        Arc::clone(&w.ctx),
        controller::sealed::reconcile::Scope::Namespaces(vec!["default".into()]),
        None,
        futures::stream::pending(),
        controller::lease::Leadership::always(),
        futures::future::pending(),
    ));
    let mut found = None;
    for _ in 0..200 {
        if let Some(secret) = w.secrets.get_opt("db").await.unwrap() {
            found = Some(secret);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    task.abort();
    let secret = found.expect("run() unsealed the listed SealedSecret");
    assert_eq!(secret.data.unwrap()["user"].0, b"admin");
}

/// A standby replica watches but writes nothing; when it starts to lead, it unseals what its
/// watch already delivered, without waiting for a change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_writes_nothing_and_catches_up_when_it_leads() {
    let w = world_with(vec![canary_sealed("db", "default")], vec![], true).await;
    let (leader_tx, leader) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(controller::sealed::reconcile::run(
        Arc::clone(&w.ctx),
        controller::sealed::reconcile::Scope::Namespaces(vec!["default".into()]),
        None,
        futures::stream::pending(),
        controller::lease::Leadership::following(leader),
        futures::future::pending(),
    ));
    // Polls for the Secret for up to `tries` × 50 ms.
    let secrets = &w.secrets;
    let written = |tries: usize| async move {
        for _ in 0..tries {
            if secrets.get_opt("db").await.unwrap().is_some() {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    };
    assert!(!written(40).await, "a standby wrote a Secret");
    leader_tx.send(true).unwrap();
    // Generous: a loaded CI machine can take seconds to unseal.
    let unsealed = written(600).await;
    task.abort();
    assert!(
        unsealed,
        "the new leader did not unseal what it had watched"
    );
}

#[tokio::test]
async fn events_say_unsealed_or_why_not() {
    let client = test_kit::api::sealed_secrets()
        .with_object(canary_sealed("db", "default"))
        .with_object(fixture_sealed("negative-renamed"))
        .build()
        .await
        .unwrap();
    let reporter = kube::runtime::events::Reporter {
        controller: "sealed-secrets".into(),
        instance: None,
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        keys: key_ring(),
        metrics: SealedMetrics::default(),
        recorder: Some(controller::events::Recorder::new(client.clone(), reporter)),
        update_status: true,
        unseal_threads: 1,
        rsa_slots: Context::rsa_slots(),
        owned: None,
        status_writes: Default::default(),
    });
    let sealed_api: Api<SealedSecret> = Api::namespaced(client.clone(), "default");
    for name in ["db", "renamed"] {
        let sealed = sealed_api.get(name).await.unwrap();
        reconcile(Arc::new(sealed), Arc::clone(&ctx)).await.unwrap();
    }
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client, "default");
    // Events are published in the background: wait for them as a user would.
    let listed = events_once(&events, |items| items.len() >= 2).await;
    let seen: Vec<(String, String, String)> = listed
        .items
        .iter()
        .map(|e| {
            (
                e.regarding
                    .as_ref()
                    .and_then(|r| r.name.clone())
                    .unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                e.type_.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        seen.contains(&("db".into(), "Unsealed".into(), "Normal".into())),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("renamed".into(), "ErrUnsealFailed".into(), "Warning".into())),
        "{seen:?}"
    );
    let note = listed
        .items
        .iter()
        .find(|e| e.reason.as_deref() == Some("ErrUnsealFailed"))
        .and_then(|e| e.note.clone())
        .unwrap_or_default();
    assert!(note.contains("no key could decrypt"), "{note}");

    // The same failure again within minutes: the Event counts it instead of a second Event.
    let renamed = sealed_api.get("renamed").await.unwrap();
    reconcile(Arc::new(renamed), Arc::clone(&ctx))
        .await
        .unwrap();
    let counted = |e: &k8s_openapi::api::events::v1::Event| e.series.is_some();
    let failures: Vec<_> = events_once(&events, |items| items.iter().any(counted))
        .await
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("ErrUnsealFailed"))
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].series.as_ref().map(|s| s.count), Some(2));
}

/// The Events listed once `ready` holds for them (or after five seconds, for the asserts to
/// say what is missing).
async fn events_once(
    events: &Api<k8s_openapi::api::events::v1::Event>,
    ready: impl Fn(&[k8s_openapi::api::events::v1::Event]) -> bool,
) -> kube::core::ObjectList<k8s_openapi::api::events::v1::Event> {
    for _ in 0..100 {
        let listed = events.list(&ListParams::default()).await.unwrap();
        if ready(&listed.items) {
            return listed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    events.list(&ListParams::default()).await.unwrap()
}

#[tokio::test]
async fn a_stale_copy_of_the_same_version_does_not_write_the_status_again() {
    let w = world(vec![fixture_sealed("tls-typed")], vec![]).await;
    // The watch can hand a reconcile the version from before our own status patch.
    let stale = sealed_api_get(&w, "web", "site-tls").await;
    reconcile(Arc::new(stale.clone()), Arc::clone(&w.ctx))
        .await
        .unwrap();
    let after_first = sealed_api_get(&w, "web", "site-tls").await;
    assert!(
        after_first.status.is_some(),
        "the first reconcile writes the status"
    );
    reconcile(Arc::new(stale), Arc::clone(&w.ctx))
        .await
        .unwrap();
    let after_second = sealed_api_get(&w, "web", "site-tls").await;
    assert_eq!(
        after_second.metadata.resource_version, after_first.metadata.resource_version,
        "no second status write"
    );
}
