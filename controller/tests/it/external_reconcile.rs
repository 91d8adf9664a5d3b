//! The ExternalSecret reconciler against the in-memory Kubernetes API (kube-fake-client),
//! with the `fake` provider: create, update, force-sync, provider errors keeping the last good
//! Secret, backoff, coalescing across ExternalSecrets, and no secret value in logs or status.

use std::sync::Arc;

use controller::external::metrics::Metrics;
use controller::external::reconciler::reconcile;
use controller::external::{ExternalSecretsArgs, context};
use crds::external_secrets::{ExternalSecret, FakeProvider, FakeProviderData, SecretStore};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;

const CANARY: &str = canary::CANARY;

fn es_yaml(name: &str, extra: &str) -> ExternalSecret {
    serde_yaml::from_str(&format!(
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: {name}
  namespace: app
spec:
  refreshInterval: 1h
  secretStoreRef:
    name: fake
    kind: SecretStore
{extra}
"#
    ))
    .unwrap()
}

fn store(data: &[(&str, &str)]) -> SecretStore {
    let mut s: SecretStore = serde_yaml::from_str(
        "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {name: fake, namespace: app}\nspec:\n  provider:\n    fake: {data: []}\n",
    )
    .unwrap();
    s.spec.store.provider.fake = Some(FakeProvider {
        data: data
            .iter()
            .map(|(k, v)| FakeProviderData {
                key: k.to_string(),
                value: Some(v.to_string()),
                version: None,
            })
            .collect(),
    });
    s
}

async fn client() -> kube::Client {
    let ns: Namespace = serde_yaml::from_str("metadata: {name: app, labels: {team: a}}").unwrap();
    test_kit::api::external_secrets()
        .with_object(ns)
        .build()
        .await
        .unwrap()
}

struct Env {
    client: kube::Client,
    ctx: Arc<controller::external::Context>,
    metrics: Metrics,
}

impl Env {
    async fn new() -> Env {
        let client = client().await;
        let metrics = Metrics::default();
        let ctx = Arc::new(
            context(
                client.clone(),
                &ExternalSecretsArgs::default(),
                metrics.clone(),
                false,
            )
            .unwrap(),
        );
        Env {
            client,
            ctx,
            metrics,
        }
    }
    fn es_api(&self) -> Api<ExternalSecret> {
        Api::namespaced(self.client.clone(), "app")
    }
    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), "app")
    }
    fn stores(&self) -> Api<SecretStore> {
        Api::namespaced(self.client.clone(), "app")
    }
    async fn apply_es(&self, es: &ExternalSecret) -> ExternalSecret {
        self.es_api()
            .create(&PostParams::default(), es)
            .await
            .unwrap()
    }
    /// Reconciles the current version of an ExternalSecret, as the controller would.
    async fn reconcile(&self, name: &str) -> (Action, ExternalSecret) {
        let es = self.es_api().get(name).await.unwrap();
        let action = reconcile(Arc::new(es), self.ctx.clone()).await.unwrap();
        (action, self.es_api().get(name).await.unwrap())
    }
    fn calls(&self) -> u64 {
        self.metrics.provider_calls_for("SecretStore/app/fake")
    }
    async fn set_store(&self, data: &[(&str, &str)]) {
        let mut s = self.stores().get("fake").await.unwrap();
        s.spec = store(data).spec;
        self.stores()
            .replace("fake", &PostParams::default(), &s)
            .await
            .unwrap();
    }
    async fn force_sync(&self, name: &str, value: &str) {
        let patch = serde_json::json!({"metadata": {"annotations": {"force-sync": value}}});
        self.es_api()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }
}

fn data_of(s: &Secret, key: &str) -> String {
    String::from_utf8(s.data.as_ref().unwrap()[key].0.clone()).unwrap()
}

fn ready(es: &ExternalSecret) -> (String, String, String) {
    let c = &es.status.as_ref().unwrap().conditions[0];
    (
        c.status.clone(),
        c.reason.clone().unwrap_or_default(),
        c.message.clone().unwrap_or_default(),
    )
}

#[tokio::test]
async fn create_update_error_keeps_last_good_and_never_logs_values() {
    let captured = test_kit::logs::capture();

    let env = Env::new().await;
    env.stores()
        .create(
            &PostParams::default(),
            &store(&[(
                "db",
                &format!(r#"{{"user":"admin","password":"{CANARY}"}}"#),
            )]),
        )
        .await
        .unwrap();
    let es = es_yaml(
        "db",
        r#"  target:
    name: db-credentials
  data:
  - secretKey: password
    remoteRef: {key: db, property: password}
  - secretKey: user
    remoteRef: {key: db, property: user}
"#,
    );
    env.apply_es(&es).await;

    // Create.
    let (action, es) = env.reconcile("db").await;
    assert_eq!(ready(&es).0, "True");
    assert_eq!(ready(&es).1, "SecretSynced");
    let status = es.status.clone().unwrap();
    assert!(status.refresh_time.is_some());
    assert!(status.synced_resource_version.is_some());
    assert_eq!(status.binding.unwrap().name, "db-credentials");
    let secret = env.secrets().get("db-credentials").await.unwrap();
    assert_eq!(data_of(&secret, "password"), CANARY);
    assert_eq!(data_of(&secret, "user"), "admin");
    let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(owner.kind, "ExternalSecret");
    assert_eq!(
        secret.metadata.labels.as_ref().unwrap()["reconcile.external-secrets.io/managed"],
        "true"
    );
    // Requeued at the interval plus its jitter (at most 5 minutes for 1h).
    let requeue = format!("{action:?}");
    assert!(requeue.contains("requeue_after: Some("), "{requeue}");
    assert_eq!(env.calls(), 1);

    // Reconciling again inside the window calls nobody.
    let (_, _) = env.reconcile("db").await;
    assert_eq!(env.calls(), 1);

    // Provider data changes + force-sync annotation: reaches the provider, Secret updated.
    env.set_store(&[("db", r#"{"user":"admin2","password":"pw2"}"#)])
        .await;
    env.force_sync("db", "1").await;
    let (_, es) = env.reconcile("db").await;
    assert_eq!(ready(&es).1, "SecretSynced");
    assert_eq!(env.calls(), 2);
    let secret = env.secrets().get("db-credentials").await.unwrap();
    assert_eq!(data_of(&secret, "user"), "admin2");

    // The key disappears (deletionPolicy Retain): error status, last good Secret untouched.
    env.set_store(&[("other", "x")]).await;
    env.force_sync("db", "2").await;
    let (action, es) = env.reconcile("db").await;
    let (st, reason, message) = ready(&es);
    assert_eq!(
        (st.as_str(), reason.as_str()),
        ("False", "SecretSyncedError")
    );
    assert!(message.contains("not found"), "{message}");
    let secret = env.secrets().get("db-credentials").await.unwrap();
    assert_eq!(data_of(&secret, "user"), "admin2");
    let calls = env.calls();
    // In error state a reconcile triggered by anything else waits out the backoff.
    let (again, _) = env.reconcile("db").await;
    assert_eq!(env.calls(), calls);
    assert!(format!("{action:?}").contains("requeue_after: Some("));
    assert!(format!("{again:?}").contains("requeue_after: Some("));

    // A template error names the key, not the value.
    let mut es = env.es_api().get("db").await.unwrap();
    env.set_store(&[("db", &format!(r#"{{"user":"u","password":"{CANARY}"}}"#))])
        .await;
    es.spec.target.template =
        serde_yaml::from_str("data:\n  dsn: '{{ .password | mustFromJson }}'\n").unwrap();
    es.metadata.managed_fields = None;
    env.es_api()
        .replace("db", &PostParams::default(), &es)
        .await
        .unwrap();
    env.force_sync("db", "3").await;
    let (_, es) = env.reconcile("db").await;
    let (_, reason, message) = ready(&es);
    assert_eq!(reason, "SecretSyncedError");
    assert!(
        message.contains("template at data key \"dsn\""),
        "{message}"
    );

    let logs = captured.text();
    assert!(
        logs.contains("external secret sync"),
        "nothing captured: {logs}"
    );
    captured.assert_no_canary();
    let all = env.es_api().get("db").await.unwrap();
    assert!(!serde_json::to_string(&all).unwrap().contains(CANARY));
}

#[tokio::test]
async fn many_external_secrets_share_one_provider_call() {
    let env = Env::new().await;
    env.stores()
        .create(&PostParams::default(), &store(&[("shared", "v")]))
        .await
        .unwrap();
    for i in 0..20 {
        env.apply_es(&es_yaml(
            &format!("es-{i}"),
            "  data:\n  - secretKey: k\n    remoteRef: {key: shared}\n",
        ))
        .await;
    }
    for i in 0..20 {
        let (_, es) = env.reconcile(&format!("es-{i}")).await;
        assert_eq!(ready(&es).0, "True");
    }
    assert_eq!(env.calls(), 1);
    // force-sync on one of them always reaches the provider.
    env.force_sync("es-3", "now").await;
    env.reconcile("es-3").await;
    assert_eq!(env.calls(), 2);
}

#[tokio::test]
async fn policies_merge_template_and_deletion() {
    let env = Env::new().await;
    env.stores()
        .create(
            &PostParams::default(),
            &store(&[("a", r#"{"x":"1","y":"2"}"#)]),
        )
        .await
        .unwrap();
    // creationPolicy Merge without a Secret: SecretMissing, nothing created.
    env.apply_es(&es_yaml(
        "merge",
        "  target: {name: existing, creationPolicy: Merge}\n  dataFrom:\n  - extract: {key: a}\n",
    ))
    .await;
    let (_, es) = env.reconcile("merge").await;
    assert_eq!(ready(&es).1, "SecretMissing");
    assert!(env.secrets().get_opt("existing").await.unwrap().is_none());
    // With the Secret present: our keys merged, theirs kept, no owner reference.
    let mut s = Secret::default();
    s.metadata.name = Some("existing".into());
    s.data = Some([("theirs".to_string(), k8s_openapi::ByteString(b"t".to_vec()))].into());
    env.secrets()
        .create(&PostParams::default(), &s)
        .await
        .unwrap();
    env.force_sync("merge", "1").await;
    let (_, es) = env.reconcile("merge").await;
    assert_eq!(ready(&es).1, "SecretSynced");
    let s = env.secrets().get("existing").await.unwrap();
    assert_eq!(data_of(&s, "theirs"), "t");
    assert_eq!(data_of(&s, "x"), "1");
    assert!(s.metadata.owner_references.is_none());

    // Template with type, labels and a rewrite.
    env.apply_es(&es_yaml(
        "tpl",
        r#"  target:
    name: tpl
    template:
      type: kubernetes.io/basic-auth
      metadata: {labels: {app: web}}
      data:
        username: "{{ .pre_x | upper }}"
        password: "{{ .pre_y }}"
  dataFrom:
  - extract: {key: a}
    rewrite:
    - regexp: {source: "^(.*)$", target: "pre_$1"}
"#,
    ))
    .await;
    let (_, es) = env.reconcile("tpl").await;
    assert_eq!(ready(&es).1, "SecretSynced", "{:?}", ready(&es));
    let s = env.secrets().get("tpl").await.unwrap();
    assert_eq!(s.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    assert_eq!(s.metadata.labels.as_ref().unwrap()["app"], "web");
    assert_eq!(data_of(&s, "username"), "1");
    assert_eq!(s.data.as_ref().unwrap().len(), 2);

    // deletionPolicy Delete: provider data gone → Secret deleted, reason SecretDeleted.
    env.apply_es(&es_yaml(
        "del",
        "  target: {name: del, deletionPolicy: Delete}\n  data:\n  - secretKey: k\n    remoteRef: {key: a, property: x}\n",
    ))
    .await;
    env.reconcile("del").await;
    assert!(env.secrets().get_opt("del").await.unwrap().is_some());
    env.set_store(&[]).await;
    env.force_sync("del", "1").await;
    let (_, es) = env.reconcile("del").await;
    assert_eq!(ready(&es).1, "SecretDeleted");
    assert!(env.secrets().get_opt("del").await.unwrap().is_none());
}

#[tokio::test]
async fn unknown_provider_and_cluster_store_conditions() {
    let env = Env::new().await;
    let gcp: SecretStore = serde_yaml::from_str(
        "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {name: fake, namespace: app}\nspec:\n  provider:\n    gcpsm: {projectID: p}\n",
    )
    .unwrap();
    env.stores()
        .create(&PostParams::default(), &gcp)
        .await
        .unwrap();
    env.apply_es(&es_yaml(
        "e",
        "  data:\n  - secretKey: k\n    remoteRef: {key: a}\n",
    ))
    .await;
    let (_, es) = env.reconcile("e").await;
    let (_, reason, message) = ready(&es);
    assert_eq!(reason, "SecretSyncedError");
    assert!(message.contains("unsupported provider gcpsm"), "{message}");

    // ClusterSecretStore conditions are unit-tested in `stores`: kube-fake-client 0.3 registers
    // every custom resource as namespaced, so a cluster-scoped store cannot be created here.
}

#[tokio::test]
async fn store_status_reports_valid_and_invalid_providers() {
    use controller::external::store_status::reconcile_secret_store;
    let env = Env::new().await;
    env.stores()
        .create(&PostParams::default(), &store(&[("a", "b")]))
        .await
        .unwrap();
    let s = env.stores().get("fake").await.unwrap();
    reconcile_secret_store(
        Arc::new(s),
        env.ctx.clone(),
        std::time::Duration::from_secs(300),
    )
    .await
    .unwrap();
    let s = env.stores().get("fake").await.unwrap();
    let c = &s.status.as_ref().unwrap().conditions[0];
    assert_eq!((c.type_.as_str(), c.status.as_str()), ("Ready", "True"));
    assert_eq!(c.reason.as_deref(), Some("Valid"));

    let mut bad: SecretStore = serde_yaml::from_str(
        "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {name: gcp, namespace: app}\nspec:\n  provider:\n    gcpsm: {projectID: p}\n",
    )
    .unwrap();
    bad = env
        .stores()
        .create(&PostParams::default(), &bad)
        .await
        .unwrap();
    reconcile_secret_store(
        Arc::new(bad),
        env.ctx.clone(),
        std::time::Duration::from_secs(300),
    )
    .await
    .unwrap();
    let s = env.stores().get("gcp").await.unwrap();
    let c = &s.status.as_ref().unwrap().conditions[0];
    assert_eq!(c.status, "False");
    assert_eq!(c.reason.as_deref(), Some("InvalidProviderConfig"));
    assert!(
        c.message
            .as_deref()
            .unwrap()
            .contains("unsupported provider gcpsm")
    );
}

#[tokio::test]
async fn metrics_are_registered_and_count_calls_per_store() {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = controller::external::register_metrics(&mut registry);
    metrics.provider_call("SecretStore/app/fake", "fake", "Get", "success");
    let es = controller::external::metrics::EsLabels {
        namespace: "app".into(),
        name: "x".into(),
    };
    metrics
        .cache_hits
        .get_or_create(&controller::external::metrics::StoreLabels {
            store: "SecretStore/app/fake".into(),
        })
        .inc();
    metrics.sync_calls.get_or_create(&es).inc();
    metrics.sync_errors.get_or_create(&es).inc();
    metrics.condition("app", "x", true);
    metrics.reconcile_duration.get_or_create(&es).observe(0.1);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for name in [
        "externalsecret_provider_api_calls_count{store=\"SecretStore/app/fake\",provider=\"fake\",call=\"Get\",status=\"success\"} 1",
        "# TYPE externalsecret_provider_cache_hits counter",
        "# TYPE externalsecret_sync_calls counter",
        "# TYPE externalsecret_sync_calls_error unknown",
        "# TYPE externalsecret_status_condition gauge",
        "# TYPE externalsecret_reconcile_duration_seconds histogram",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
}

#[tokio::test]
async fn disabled_run_returns_at_shutdown() {
    let env = Env::new().await;
    let args = ExternalSecretsArgs {
        enabled: false,
        ..Default::default()
    };
    controller::external::run(
        env.client.clone(),
        args,
        Metrics::default(),
        controller::lease::Leadership::always(),
        async {},
    )
    .await
    .unwrap();
}

#[test]
fn flags_parse_from_command_line_and_env_names() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        es: ExternalSecretsArgs,
    }
    let cli = Cli::parse_from([
        "x",
        "--enable-external-secrets=false",
        "--external-secrets-concurrent",
        "16",
        "--aws-secretsmanager-endpoint",
        "http://127.0.0.1:1",
    ]);
    assert!(!cli.es.enabled);
    assert_eq!(cli.es.concurrency, 16);
    assert_eq!(
        cli.es.aws_secretsmanager_endpoint.as_deref(),
        Some("http://127.0.0.1:1")
    );
    assert_eq!(cli.es.provider_timeout, "30s");
}

#[tokio::test]
async fn find_rewrite_and_decoding_through_the_reconciler() {
    let env = Env::new().await;
    env.stores()
        .create(
            &PostParams::default(),
            &store(&[
                ("/dev/config", r#"{"a":"1"}"#),
                ("/dev/db", "ZGItcGFzcw=="),
                ("/prod/db", "x"),
            ]),
        )
        .await
        .unwrap();
    env.apply_es(&es_yaml(
        "find",
        r#"  target: {name: found}
  data:
  - secretKey: decoded
    remoteRef: {key: /dev/db, decodingStrategy: Base64}
  dataFrom:
  - find:
      name: {regexp: "^/dev/"}
    rewrite:
    - regexp: {source: "^_dev_", target: ""}
"#,
    ))
    .await;
    let (_, es) = env.reconcile("find").await;
    assert_eq!(ready(&es).1, "SecretSynced", "{:?}", ready(&es));
    let s = env.secrets().get("found").await.unwrap();
    let keys: Vec<_> = s.data.as_ref().unwrap().keys().cloned().collect();
    // `/dev/config` becomes `_dev_config` (ESO's key conversion), then the rewrite strips it.
    assert_eq!(keys, vec!["config", "db", "decoded"]);
    assert_eq!(data_of(&s, "decoded"), "db-pass");
    assert_eq!(data_of(&s, "db"), "ZGItcGFzcw==");
}

#[tokio::test]
async fn refresh_policies_created_once_and_zero_interval() {
    let env = Env::new().await;
    env.stores()
        .create(&PostParams::default(), &store(&[("k", "v1")]))
        .await
        .unwrap();
    env.apply_es(&es_yaml(
        "once",
        "  refreshPolicy: CreatedOnce\n  data:\n  - secretKey: k\n    remoteRef: {key: k}\n",
    ))
    .await;
    let (action, _) = env.reconcile("once").await;
    assert!(
        format!("{action:?}").contains("requeue_after: None"),
        "{action:?}"
    );
    env.set_store(&[("k", "v2")]).await;
    // A label/annotation change does not refetch a CreatedOnce ExternalSecret.
    env.force_sync("once", "1").await;
    env.reconcile("once").await;
    assert_eq!(
        data_of(&env.secrets().get("once").await.unwrap(), "k"),
        "v1"
    );
    assert_eq!(env.calls(), 1);
    // But a deleted target Secret is recreated.
    env.secrets()
        .delete("once", &Default::default())
        .await
        .unwrap();
    env.reconcile("once").await;
    assert!(env.secrets().get_opt("once").await.unwrap().is_some());
}

/// The kube-runtime wiring of `run`: the initial list reaches `reconcile` and the Secret is
/// written. (kube-fake-client has no watch, so later changes are not seen; the task is
/// aborted rather than shut down because its watchers keep re-listing.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_syncs_listed_objects() {
    let env = Env::new().await;
    env.stores()
        .create(&PostParams::default(), &store(&[("k", "v")]))
        .await
        .unwrap();
    env.apply_es(&es_yaml(
        "via-run",
        "  data:\n  - secretKey: k\n    remoteRef: {key: k}\n",
    ))
    .await;
    let args = ExternalSecretsArgs {
        namespace: Some("app".into()),
        ..Default::default()
    };
    let task = tokio::spawn(controller::external::run(
        env.client.clone(),
        args,
        Metrics::default(),
        controller::lease::Leadership::always(),
        futures::future::pending(),
    ));
    let mut found = None;
    for _ in 0..200 {
        if let Some(s) = env.secrets().get_opt("via-run").await.unwrap() {
            found = Some(s);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    task.abort();
    let s = found.expect("run() reconciled the listed ExternalSecret");
    assert_eq!(data_of(&s, "k"), "v");
}

#[tokio::test]
async fn identical_find_queries_share_one_listing() {
    let env = Env::new().await;
    env.stores()
        .create(
            &PostParams::default(),
            &store(&[("app/a", "1"), ("app/b", "2")]),
        )
        .await
        .unwrap();
    for i in 0..10 {
        env.apply_es(&es_yaml(
            &format!("f-{i}"),
            "  dataFrom:\n  - find: {path: app}\n",
        ))
        .await;
    }
    for i in 0..10 {
        let (_, es) = env.reconcile(&format!("f-{i}")).await;
        assert_eq!(ready(&es).1, "SecretSynced", "{:?}", ready(&es));
    }
    let s = env.secrets().get("f-9").await.unwrap();
    assert_eq!(data_of(&s, "app_a"), "1");
    assert_eq!(env.calls(), 1);
}

/// Shutdown ends `run` within the grace period even when a watcher never becomes ready
/// (here: kube-fake-client has no watch; in a cluster: e.g. a CRD that is not installed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_returns_after_shutdown_within_the_grace_period() {
    let env = Env::new().await;
    env.stores()
        .create(&PostParams::default(), &store(&[("k", "v")]))
        .await
        .unwrap();
    env.apply_es(&es_yaml(
        "e",
        "  data:\n  - secretKey: k\n    remoteRef: {key: k}\n",
    ))
    .await;
    let args = ExternalSecretsArgs {
        namespace: Some("app".into()),
        shutdown_grace: "1s".into(),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        controller::external::run(
            env.client.clone(),
            args,
            Metrics::default(),
            controller::lease::Leadership::always(),
            tokio::time::sleep(std::time::Duration::from_millis(300)),
        ),
    )
    .await
    .expect("run returns after shutdown")
    .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
}

/// The tenant boundary on every path that reads from a namespace: a ClusterSecretStore being
/// validated (no ExternalSecret) must name the namespace of each ref; a SecretStore reads only
/// its own namespace whatever a ref names.
#[tokio::test]
async fn every_auth_ref_respects_the_store_namespace_rule() {
    use controller::external::stores::ResolvedStore;
    let env = Env::new().await;
    let token: Secret = serde_yaml::from_str(
        "metadata: {name: vault-token, namespace: app}\ndata: {token: dG9r}\n",
    )
    .unwrap();
    env.secrets()
        .create(&PostParams::default(), &token)
        .await
        .unwrap();
    let spec = |provider: &str| -> crds::external_secrets::StoreSpec {
        serde_yaml::from_str(&format!("provider:\n{provider}")).unwrap()
    };
    let vault = |auth: &str, extra: &str| {
        spec(&format!(
            "  vault:\n    server: http://127.0.0.1:1\n    auth:\n{auth}{extra}"
        ))
    };
    let token_ref = "      tokenSecretRef: {name: vault-token, key: token}\n";
    let cases = [
        ("auth Secret \"vault-token\"", vault(token_ref, "")),
        (
            "auth Secret \"approle\"",
            vault(
                "      appRole: {path: approle, roleId: r, secretRef: {name: approle, key: s}}\n",
                "",
            ),
        ),
        (
            "service account \"vault-sa\"",
            vault(
                "      kubernetes: {mountPath: kubernetes, role: r, serviceAccountRef: {name: vault-sa}}\n",
                "",
            ),
        ),
        (
            "service account \"irsa\"",
            spec(
                "  aws:\n    service: SecretsManager\n    region: eu-west-1\n    auth: {jwt: {serviceAccountRef: {name: irsa}}}\n",
            ),
        ),
        (
            "caProvider ConfigMap \"ca\"",
            vault(
                "      tokenSecretRef: {name: vault-token, key: token, namespace: app}\n",
                "    caProvider: {type: ConfigMap, name: ca}\n",
            ),
        ),
    ];
    for (what, spec) in cases {
        let cluster = ResolvedStore::standalone("ClusterSecretStore", None, "c".into(), spec);
        let err = env
            .ctx
            .store_client(&cluster)
            .await
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            format!("invalid store: {what} of a ClusterSecretStore needs a namespace")
        );
    }

    // A SecretStore naming another namespace still reads its own.
    let namespaced = ResolvedStore::standalone(
        "SecretStore",
        Some("app".into()),
        "s".into(),
        spec(
            "  aws:\n    service: SecretsManager\n    region: eu-west-1\n    auth: {jwt: {serviceAccountRef: {name: irsa, namespace: other}}}\n",
        ),
    );
    let err = env
        .ctx
        .store_client(&namespaced)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("service account app/irsa not found"), "{err}");
    let namespaced = ResolvedStore::standalone(
        "SecretStore",
        Some("app".into()),
        "s".into(),
        vault(
            "      tokenSecretRef: {name: vault-token, key: token, namespace: other}\n",
            "",
        ),
    );
    assert!(env.ctx.store_client(&namespaced).await.is_ok());
}

/// `templateFrom` reads a ConfigMap and a Secret of the ExternalSecret's namespace through the
/// Kubernetes API; labels and annotations are templated; a missing source is a clear status
/// error that leaves the last good Secret alone.
#[tokio::test]
async fn template_from_config_map_and_secret_with_templated_metadata() {
    let env = Env::new().await;
    env.stores()
        .create(
            &PostParams::default(),
            &store(&[(
                "db",
                &format!(r#"{{"user":"admin","password":"{CANARY}"}}"#),
            )]),
        )
        .await
        .unwrap();
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_yaml::from_str(
        r#"
metadata: {name: tpl, namespace: app}
data:
  config.yaml: |
    url: postgres://{{ .user }}:{{ .password }}@db
  extra: |
    team: '{{ .user | upper }}'
"#,
    )
    .unwrap();
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(env.client.clone(), "app");
    config_maps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let tpl_secret: Secret = serde_yaml::from_str(
        "metadata: {name: tpl-secret, namespace: app}\nstringData: {}\ndata: {note: 'dXNlcj17eyAudXNlciB9fQ=='}\n",
    )
    .unwrap();
    env.secrets()
        .create(&PostParams::default(), &tpl_secret)
        .await
        .unwrap();
    env.apply_es(&es_yaml(
        "from",
        r#"  target:
    template:
      metadata:
        annotations: {owner: "{{ .user }}"}
      templateFrom:
      - configMap:
          name: tpl
          items:
          - key: config.yaml
          - {key: extra, templateAs: KeysAndValues}
      - target: Labels
        configMap:
          name: tpl
          items: [{key: extra, templateAs: KeysAndValues}]
      - secret:
          name: tpl-secret
          items: [{key: note}]
  dataFrom:
  - extract: {key: db}
"#,
    ))
    .await;
    let (_, es) = env.reconcile("from").await;
    assert_eq!(ready(&es).1, "SecretSynced", "{:?}", ready(&es));
    let s = env.secrets().get("from").await.unwrap();
    assert_eq!(
        data_of(&s, "config.yaml"),
        format!("url: postgres://admin:{CANARY}@db\n")
    );
    assert_eq!(data_of(&s, "team"), "ADMIN");
    assert_eq!(data_of(&s, "note"), "user=admin");
    assert!(!s.data.as_ref().unwrap().contains_key("password"));
    assert_eq!(s.metadata.labels.as_ref().unwrap()["team"], "ADMIN");
    assert_eq!(s.metadata.annotations.as_ref().unwrap()["owner"], "admin");

    // The ConfigMap goes away: a clear error; the Secret keeps its data.
    config_maps
        .delete("tpl", &Default::default())
        .await
        .unwrap();
    env.force_sync("from", "1").await;
    let (_, es) = env.reconcile("from").await;
    let (status, reason, message) = ready(&es);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "SecretSyncedError")
    );
    assert_eq!(
        message,
        "templateFrom: ConfigMap \"tpl\" not found in the ExternalSecret's namespace"
    );
    let s = env.secrets().get("from").await.unwrap();
    assert_eq!(data_of(&s, "team"), "ADMIN");
}
