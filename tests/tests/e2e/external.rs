//! ExternalSecrets with the real binary: the fake provider, the Vault API stand-in and moto;
//! refresh and rotation, a provider outage, deletion policies, ClusterSecretStore conditions,
//! and edits seen through watches.

use std::time::Duration;

use e2e_tests::envtest::{Cluster, Controller, data, eventually, secret_data, wait_secret};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams};
use test_kit::moto::Moto;
use test_kit::vault_standin::VaultStandin;

use super::{ACT, GC, setup};

/// The `Ready` condition of an ExternalSecret: (status, reason).
fn ready(cluster: &Cluster, namespace: &str, name: &str) -> (String, String) {
    let out = cluster.kubectl_ok(&[
        "-n",
        namespace,
        "get",
        "externalsecret",
        name,
        "-o",
        r#"jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].reason}"#,
    ]);
    let mut parts = out.split_whitespace().map(String::from);
    (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    )
}

async fn wait_ready(cluster: &Cluster, namespace: &str, name: &str, status: &str) -> String {
    eventually(
        format!("ExternalSecret {namespace}/{name} Ready={status}"),
        ACT,
        || async {
            let (s, reason) = ready(cluster, namespace, name);
            (s == status).then_some(reason)
        },
    )
    .await
}

/// Failed syncs so far (ESO's name; with or without the `_total` suffix of OpenMetrics).
async fn sync_errors(controller: &Controller, name: &str) -> f64 {
    let label = format!("name=\"{name}\"");
    controller
        .metric("externalsecret_sync_calls_error", &[&label])
        .await
        + controller
            .metric("externalsecret_sync_calls_error_total", &[&label])
            .await
}

/// An ExternalSecret reading `remote_key`'s `property` into `secret_key`.
pub(super) fn external_secret(
    namespace: &str,
    name: &str,
    store: (&str, &str),
    refresh: &str,
    target_extra: &str,
    entries: &[(&str, &str, Option<&str>)],
) -> String {
    let (kind, store_name) = store;
    let mut yaml = format!(
        "apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: {name}
  namespace: {namespace}
spec:
  refreshInterval: {refresh}
  secretStoreRef:
    kind: {kind}
    name: {store_name}
  target:
    name: {name}
{target_extra}  data:
"
    );
    for (secret_key, remote, property) in entries {
        yaml.push_str(&format!(
            "    - secretKey: {secret_key}\n      remoteRef:\n        key: {remote}\n"
        ));
        if let Some(p) = property {
            yaml.push_str(&format!("        property: {p}\n"));
        }
    }
    yaml
}

/// A fake-provider SecretStore (ESO's `fake` provider: values live in the store's spec).
pub(super) fn fake_store(namespace: &str, name: &str, values: &[(&str, &str)]) -> String {
    let mut yaml = format!(
        "apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: {name}
  namespace: {namespace}
spec:
  provider:
    fake:
      data:
"
    );
    for (key, value) in values {
        yaml.push_str(&format!(
            "        - key: {key}\n          value: '{value}'\n"
        ));
    }
    yaml
}

#[tokio::test]
async fn fake_provider_sync_and_edits_seen_through_watches() {
    let Some(cluster) = setup("external::fake_provider_sync_and_edits_seen_through_watches") else {
        return;
    };
    let client = cluster.client().await;
    let ns = cluster.namespace(&client, "es-fake", &[]).await;
    let canary = "canary-es-3b9e-password";
    cluster.apply(&fake_store(
        &ns,
        "fake",
        &[
            ("db", &format!(r#"{{"user":"app","password":"{canary}"}}"#)),
            ("token", "tok-1"),
        ],
    ));
    let mut controller = cluster.controller(&ns).start();
    controller.ready().await;

    // refreshInterval 1h: after the first sync only a watch event can make it act again.
    let es = |entries: &[(&str, &str, Option<&str>)]| {
        external_secret(&ns, "creds", ("SecretStore", "fake"), "1h", "", entries)
    };
    cluster.apply(&es(&[
        ("password", "db", Some("password")),
        ("token", "token", None),
    ]));
    wait_secret(
        &client,
        &ns,
        "creds",
        &data(&[("password", canary), ("token", "tok-1")]),
        ACT,
    )
    .await;
    assert_eq!(
        wait_ready(cluster, &ns, "creds", "True").await,
        "SecretSynced"
    );

    // The ExternalSecret is edited.
    cluster.apply(&es(&[
        ("password", "db", Some("password")),
        ("token", "token", None),
        ("user", "db", Some("user")),
    ]));
    wait_secret(
        &client,
        &ns,
        "creds",
        &data(&[("password", canary), ("token", "tok-1"), ("user", "app")]),
        ACT,
    )
    .await;

    // The target Secret is deleted or edited by hand: the owned-Secret watch restores it.
    Api::<Secret>::namespaced(client.clone(), &ns)
        .delete("creds", &DeleteParams::default())
        .await
        .unwrap();
    wait_secret(
        &client,
        &ns,
        "creds",
        &data(&[("password", canary), ("token", "tok-1"), ("user", "app")]),
        ACT,
    )
    .await;
    cluster.kubectl_ok(&[
        "-n",
        &ns,
        "patch",
        "secret",
        "creds",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/data/token"}]"#,
    ]);
    wait_secret(
        &client,
        &ns,
        "creds",
        &data(&[("password", canary), ("token", "tok-1"), ("user", "app")]),
        ACT,
    )
    .await;

    // Deleting the ExternalSecret (creationPolicy Owner) lets the garbage collector take the Secret.
    cluster.kubectl_ok(&[
        "-n",
        &ns,
        "delete",
        "externalsecret",
        "creds",
        "--wait=false",
    ]);
    eventually(
        "the garbage collector to delete Secret creds",
        GC,
        || async {
            secret_data(&client, &ns, "creds")
                .await
                .is_none()
                .then_some(())
        },
    )
    .await;
    controller.assert_running();
    controller.assert_log_lacks(canary);
}

#[tokio::test]
async fn vault_standin_refresh_rotation_and_outage_keeps_the_secret() {
    let Some(cluster) =
        setup("external::vault_standin_refresh_rotation_and_outage_keeps_the_secret")
    else {
        return;
    };
    let vault = VaultStandin::start(&[]).await.unwrap();
    vault.add_token("e2e-root-token", Duration::from_secs(3600), true);
    vault.put_kv2(
        "",
        "secret",
        "app/db",
        serde_json::json!({"password": "vault-v1"}),
    );
    let client = cluster.client().await;
    let ns = cluster.namespace(&client, "es-vault", &[]).await;
    cluster.apply(&format!(
        "apiVersion: v1
kind: Secret
metadata:
  name: vault-token
  namespace: {ns}
stringData:
  token: e2e-root-token
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: vault
  namespace: {ns}
spec:
  provider:
    vault:
      server: {}
      path: secret
      version: v2
      auth:
        tokenSecretRef:
          name: vault-token
          key: token
",
        vault.addr
    ));
    let mut controller = cluster
        .controller(&ns)
        .arg("--external-secrets-provider-timeout=3s")
        .start();
    controller.ready().await;
    cluster.apply(&external_secret(
        &ns,
        "db",
        ("SecretStore", "vault"),
        "1s",
        "",
        &[("password", "app/db", Some("password"))],
    ));
    wait_secret(&client, &ns, "db", &data(&[("password", "vault-v1")]), ACT).await;

    // Rotation in Vault reaches the Secret on the next refresh.
    vault.put_kv2(
        "",
        "secret",
        "app/db",
        serde_json::json!({"password": "vault-v2"}),
    );
    wait_secret(&client, &ns, "db", &data(&[("password", "vault-v2")]), ACT).await;

    // Outage: reported on the ExternalSecret and in the metrics; the Secret keeps its value.
    vault.set_sealed(true);
    wait_ready(cluster, &ns, "db", "False").await;
    let errors = sync_errors(&controller, "db").await;
    eventually("more failed refreshes during the outage", ACT, || async {
        (sync_errors(&controller, "db").await >= errors + 2.0).then_some(())
    })
    .await;
    assert_eq!(
        secret_data(&client, &ns, "db").await,
        Some(data(&[("password", "vault-v2")]))
    );

    // Back up: the next value arrives.
    vault.set_sealed(false);
    vault.put_kv2(
        "",
        "secret",
        "app/db",
        serde_json::json!({"password": "vault-v3"}),
    );
    wait_secret(&client, &ns, "db", &data(&[("password", "vault-v3")]), ACT).await;
    wait_ready(cluster, &ns, "db", "True").await;
    controller.assert_running();
    controller.assert_log_lacks("e2e-root-token");
}

#[tokio::test]
async fn moto_refresh_rotation_and_outage_keeps_the_secret() {
    let Some(cluster) = setup("external::moto_refresh_rotation_and_outage_keeps_the_secret") else {
        return;
    };
    let mut moto = Moto::start();
    moto.create_secret("e2e/api", r#"{"key":"aws-v1"}"#).await;
    let client = cluster.client().await;
    let ns = cluster.namespace(&client, "es-aws", &[]).await;
    cluster.apply(&format!(
        "apiVersion: v1
kind: Secret
metadata:
  name: aws-creds
  namespace: {ns}
stringData:
  access-key: test
  secret-access-key: test
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: aws
  namespace: {ns}
spec:
  provider:
    aws:
      service: SecretsManager
      region: us-east-1
      auth:
        secretRef:
          accessKeyIDSecretRef: {{name: aws-creds, key: access-key}}
          secretAccessKeySecretRef: {{name: aws-creds, key: secret-access-key}}
"
    ));
    let mut controller = cluster
        .controller(&ns)
        .arg(&format!("--aws-secretsmanager-endpoint={}", moto.endpoint))
        .arg("--external-secrets-aws-max-attempts=1")
        .arg("--external-secrets-provider-timeout=3s")
        .start();
    controller.ready().await;
    cluster.apply(&external_secret(
        &ns,
        "api",
        ("SecretStore", "aws"),
        "1s",
        "",
        &[("key", "e2e/api", Some("key"))],
    ));
    wait_secret(&client, &ns, "api", &data(&[("key", "aws-v1")]), ACT).await;

    moto.put_secret_value("e2e/api", r#"{"key":"aws-v2"}"#)
        .await;
    wait_secret(&client, &ns, "api", &data(&[("key", "aws-v2")]), ACT).await;

    // moto goes away: connection refused on every call.
    moto.stop();
    wait_ready(cluster, &ns, "api", "False").await;
    let errors = sync_errors(&controller, "api").await;
    eventually("more failed refreshes during the outage", ACT, || async {
        (sync_errors(&controller, "api").await >= errors + 2.0).then_some(())
    })
    .await;
    assert_eq!(
        secret_data(&client, &ns, "api").await,
        Some(data(&[("key", "aws-v2")]))
    );
    controller.assert_running();
}

#[tokio::test]
async fn deletion_policies_when_the_provider_value_is_gone() {
    let Some(cluster) = setup("external::deletion_policies_when_the_provider_value_is_gone") else {
        return;
    };
    let client = cluster.client().await;
    let ns = cluster.namespace(&client, "es-deletion", &[]).await;
    cluster.apply(&fake_store(&ns, "fake", &[("kept", "k"), ("gone", "g")]));
    // A Secret made by someone else that the Merge ExternalSecret adds to.
    cluster.apply(&format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: merge\n  namespace: {ns}\nstringData:\n  own: mine\n"));
    let mut controller = cluster.controller(&ns).start();
    controller.ready().await;
    let store = ("SecretStore", "fake");
    cluster.apply(&external_secret(
        &ns,
        "delete",
        store,
        "1s",
        "    deletionPolicy: Delete\n",
        &[("v", "gone", None)],
    ));
    cluster.apply(&external_secret(
        &ns,
        "merge",
        store,
        "1s",
        "    creationPolicy: Merge\n    deletionPolicy: Merge\n",
        &[("v", "gone", None)],
    ));
    cluster.apply(&external_secret(
        &ns,
        "retain",
        store,
        "1s",
        "    deletionPolicy: Retain\n",
        &[("v", "gone", None)],
    ));
    wait_secret(&client, &ns, "delete", &data(&[("v", "g")]), ACT).await;
    wait_secret(
        &client,
        &ns,
        "merge",
        &data(&[("own", "mine"), ("v", "g")]),
        ACT,
    )
    .await;
    wait_secret(&client, &ns, "retain", &data(&[("v", "g")]), ACT).await;

    // The value disappears from the provider.
    cluster.apply(&fake_store(&ns, "fake", &[("kept", "k")]));
    eventually(
        "deletionPolicy Delete to delete its Secret",
        ACT,
        || async {
            secret_data(&client, &ns, "delete")
                .await
                .is_none()
                .then_some(())
        },
    )
    .await;
    wait_secret(&client, &ns, "merge", &data(&[("own", "mine")]), ACT).await;
    wait_ready(cluster, &ns, "retain", "False").await;
    assert_eq!(
        secret_data(&client, &ns, "retain").await,
        Some(data(&[("v", "g")]))
    );
    controller.assert_running();
}

#[tokio::test]
async fn cluster_secret_store_namespace_conditions() {
    let Some(cluster) = setup("external::cluster_secret_store_namespace_conditions") else {
        return;
    };
    let client = cluster.client().await;
    let team = format!("team-{}", std::process::id());
    let by_label = cluster
        .namespace(&client, "css-label", &[("e2e-team", &team)])
        .await;
    let by_name = cluster.namespace(&client, "css-name", &[]).await;
    let outside = cluster.namespace(&client, "css-outside", &[]).await;
    let store = format!("e2e-css-{}", std::process::id());
    cluster.apply(&format!(
        "apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata:
  name: {store}
spec:
  conditions:
    - namespaceSelector:
        matchLabels:
          e2e-team: {team}
    - namespaces: [{by_name}]
  provider:
    fake:
      data:
        - key: shared
          value: from-the-cluster-store
"
    ));
    // One namespaced controller each: their scopes never overlap with other tests.
    let mut controllers = Vec::new();
    for ns in [&by_label, &by_name, &outside] {
        let mut c = cluster
            .controller(ns)
            .arg("--enable-sealed-secrets=false")
            .start();
        c.ready().await;
        cluster.apply(&external_secret(
            ns,
            "shared",
            ("ClusterSecretStore", &store),
            "1h",
            "",
            &[("v", "shared", None)],
        ));
        controllers.push(c);
    }
    for ns in [&by_label, &by_name] {
        wait_secret(
            &client,
            ns,
            "shared",
            &data(&[("v", "from-the-cluster-store")]),
            ACT,
        )
        .await;
    }
    wait_ready(cluster, &outside, "shared", "False").await;
    assert!(secret_data(&client, &outside, "shared").await.is_none());
    for c in &mut controllers {
        c.assert_running();
    }
}
