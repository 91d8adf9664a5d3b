//! The ESO documentation manifests quoted in docs/external-secrets.md sync as documented:
//! Vault KV v2 against the Vault API stand-in, AWS Secrets Manager against moto, Kubernetes
//! through the in-memory API. The manifests are read from the docs file itself.

use crate::external_common;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_secretsmanager::types::Tag;
use controller::external::metrics::Metrics;
use controller::external::reconciler::reconcile;
use controller::external::{ExternalSecretsArgs, context};
use crds::external_secrets::{ExternalSecret, SecretStore};
use external_common::Moto;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use test_kit::vault_standin::VaultStandin;

/// The fenced ```yaml blocks of the docs, in order.
fn doc_blocks() -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/external-secrets.md");
    let text = std::fs::read_to_string(path).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```yaml") => current = Some(String::new()),
            (Some(_), "```") => blocks.push(current.take().unwrap()),
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

fn documents(block: &str) -> Vec<serde_json::Value> {
    serde_yaml::Deserializer::from_str(block)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &serde_json::Value| !v.is_null())
        .collect()
}

async fn kube() -> kube::Client {
    test_kit::api::external_secrets().build().await.unwrap()
}

/// Creates every document of a block in namespace `default`.
async fn apply(client: &kube::Client, block: &str, vault_addr: Option<&str>) {
    for mut doc in documents(block) {
        doc["metadata"]["namespace"] = json!("default");
        match doc["kind"].as_str().unwrap() {
            "ConfigMap" => {
                let c: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(doc).unwrap();
                Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), "default")
                    .create(&PostParams::default(), &c)
                    .await
                    .unwrap();
            }
            "Secret" => {
                let s: Secret = serde_json::from_value(doc).unwrap();
                Api::<Secret>::namespaced(client.clone(), "default")
                    .create(&PostParams::default(), &s)
                    .await
                    .unwrap();
            }
            "SecretStore" => {
                if let Some(addr) = vault_addr {
                    // The one substitution: the docs' Vault host becomes the loopback stand-in.
                    doc["spec"]["provider"]["vault"]["server"] = json!(addr);
                }
                let s: SecretStore = serde_json::from_value(doc).unwrap();
                Api::<SecretStore>::namespaced(client.clone(), "default")
                    .create(&PostParams::default(), &s)
                    .await
                    .unwrap();
            }
            "ExternalSecret" => {
                let s: ExternalSecret = serde_json::from_value(doc).unwrap();
                Api::<ExternalSecret>::namespaced(client.clone(), "default")
                    .create(&PostParams::default(), &s)
                    .await
                    .unwrap();
            }
            other => panic!("unexpected kind {other}"),
        }
    }
}

async fn sync(client: &kube::Client, args: &ExternalSecretsArgs, name: &str) -> ExternalSecret {
    let ctx = Arc::new(context(client.clone(), args, Metrics::default(), false).unwrap());
    let api: Api<ExternalSecret> = Api::namespaced(client.clone(), "default");
    let es = api.get(name).await.unwrap();
    reconcile(Arc::new(es), ctx).await.unwrap();
    let es = api.get(name).await.unwrap();
    let c = &es.status.as_ref().unwrap().conditions[0];
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("True", Some("SecretSynced")),
        "{:?}",
        c.message
    );
    es
}

fn data(client_secret: &Secret) -> std::collections::BTreeMap<String, String> {
    client_secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8(v.0.clone()).unwrap()))
        .collect()
}

#[tokio::test]
async fn vault_kv2_example_from_the_docs_syncs() {
    let blocks = doc_blocks();
    assert_eq!(blocks.len(), 7, "docs must keep the seven example blocks");
    let vault = VaultStandin::start(&[]).await.unwrap();
    vault.add_token("root", Duration::from_secs(3600), false);
    // `vault kv put secret/foo my-value=s3cr3t`, plus custom metadata for the Fetch entries.
    vault.put_kv2("", "secret", "foo", json!({"my-value": "s3cr3t"}));
    vault.set_kv2_custom_metadata("", "secret", "foo", [("dev".into(), "alice".into())].into());

    let client = kube().await;
    apply(&client, &blocks[0], Some(&vault.addr)).await;
    apply(&client, &blocks[1], None).await;
    sync(&client, &ExternalSecretsArgs::default(), "vault-example").await;
    let s = Api::<Secret>::namespaced(client.clone(), "default")
        .get("example-sync")
        .await
        .unwrap();
    let d = data(&s);
    assert_eq!(d["foobar"], "s3cr3t");
    assert_eq!(d["developer"], "alice");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&d["tags"]).unwrap(),
        json!({"dev": "alice"})
    );
}

#[tokio::test]
async fn template_from_config_map_example_from_the_docs_syncs() {
    let blocks = doc_blocks();
    let vault = VaultStandin::start(&[]).await.unwrap();
    vault.add_token("root", Duration::from_secs(3600), false);
    vault.put_kv2(
        "",
        "secret",
        "grafana",
        json!({"user": "admin", "password": "s3cr3t"}),
    );
    let client = kube().await;
    apply(&client, &blocks[0], Some(&vault.addr)).await;
    apply(&client, &blocks[4], None).await;
    sync(
        &client,
        &ExternalSecretsArgs::default(),
        "my-template-example",
    )
    .await;
    let s = Api::<Secret>::namespaced(client.clone(), "default")
        .get("secret-to-be-created")
        .await
        .unwrap();
    let d = data(&s);
    assert_eq!(d.keys().collect::<Vec<_>>(), ["config.yaml"]);
    assert_eq!(
        d["config.yaml"],
        "datasources:\n  - name: Graphite\n    type: graphite\n    access: proxy\n    url: http://localhost:8080\n    password: \"s3cr3t\"\n    user: \"admin\"\n"
    );
}

/// moto's Secrets Manager client in the docs store's region (eu-central-1).
async fn moto_in_store_region(moto: &Moto) -> aws_sdk_secretsmanager::Client {
    let seed = external_common::sdk_client(moto).await;
    aws_sdk_secretsmanager::Client::from_conf(
        seed.config()
            .to_builder()
            .region(aws_sdk_secretsmanager::config::Region::new("eu-central-1"))
            .build(),
    )
}

/// The docs' AWS SecretStore (under `name`) and the access keys its auth.secretRef points at.
async fn aws_store(client: &kube::Client, blocks: &[String], name: &str) {
    let creds: Secret = serde_json::from_value(json!({
        "metadata": {"name": "awssm-secret", "namespace": "default"},
        "data": {"access-key": "dGVzdA==", "secret-access-key": "dGVzdA=="}
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &creds)
        .await
        .unwrap();
    let store = blocks[2].replace("name: aws-secretsmanager", &format!("name: {name}"));
    apply(client, &store, None).await;
}

fn moto_args(moto: &Moto) -> ExternalSecretsArgs {
    ExternalSecretsArgs {
        aws_secretsmanager_endpoint: Some(moto.endpoint.clone()),
        aws_max_attempts: 1,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_example_from_the_docs_syncs() {
    let blocks = doc_blocks();
    let moto = Moto::start();
    let seed = moto_in_store_region(&moto).await;
    // The docs' example secret, and one with the `dev` tag for the Fetch entries.
    seed.create_secret()
        .name("friendslist")
        .secret_string(
            r#"{"name":{"first":"Tom","last":"Anderson"},"friends":[{"first":"Dale","last":"Murphy"},{"first":"Roger","last":"Craig"},{"first":"Jane","last":"Murphy"}]}"#,
        )
        .send()
        .await
        .unwrap();
    seed.create_secret()
        .name("database-credentials")
        .secret_string(r#"{"user":"db"}"#)
        .tags(Tag::builder().key("dev").value("seb").build())
        .send()
        .await
        .unwrap();

    let client = kube().await;
    aws_store(&client, &blocks, "aws-secretsmanager").await;
    apply(&client, &blocks[3], None).await;
    sync(&client, &moto_args(&moto), "example").await;
    let s = Api::<Secret>::namespaced(client.clone(), "default")
        .get("friends")
        .await
        .unwrap();
    let d = data(&s);
    assert_eq!(d["my_name"], "Tom");
    assert_eq!(d["first_friend"], "Roger");
    assert_eq!(d["developer"], "seb");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&d["tags"]).unwrap(),
        json!({"dev": "seb"})
    );
    assert_eq!(
        s.metadata.owner_references.as_ref().unwrap()[0].name,
        "example"
    );
}

fn openssl(dir: &std::path::Path, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_from_pkcs12_and_dockerconfigjson_examples_from_the_docs_sync() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: openssl is not installed (scripts/install-peers.sh installs it)");
        return;
    }
    let blocks = doc_blocks();
    // A self-signed certificate and its key, archived as PKCS#12 (no password) by openssl.
    let dir = tempfile::tempdir().unwrap();
    openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "1",
            "-subj",
            "/CN=docs.example",
        ],
    );
    openssl(
        dir.path(),
        &[
            "pkcs12",
            "-export",
            "-in",
            "cert.pem",
            "-inkey",
            "key.pem",
            "-out",
            "bundle.p12",
            "-passout",
            "pass:",
        ],
    );
    let archive = std::fs::read(dir.path().join("bundle.p12")).unwrap();

    let moto = Moto::start();
    let seed = moto_in_store_region(&moto).await;
    seed.create_secret()
        .name("ssl-certificate-p12-example")
        .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(archive))
        .send()
        .await
        .unwrap();
    seed.create_secret()
        .name("docker-auth-example")
        .secret_string(
            r#"{"registryName":"Team-A","registryHost":"registry.example.com","password":"s3cr3t"}"#,
        )
        .send()
        .await
        .unwrap();
    let client = kube().await;
    aws_store(&client, &blocks, "example").await;
    apply(&client, &blocks[5], None).await;
    apply(&client, &blocks[6], None).await;
    let secrets = Api::<Secret>::namespaced(client.clone(), "default");

    sync(&client, &moto_args(&moto), "template-tls-example").await;
    let tls = secrets.get("secret-to-be-created").await.unwrap();
    assert_eq!(tls.type_.as_deref(), Some("kubernetes.io/tls"));
    let d = data(&tls);
    // What openssl itself reads from the archive's parts: the same certificate, the same key.
    std::fs::write(dir.path().join("out.crt"), &d["tls.crt"]).unwrap();
    std::fs::write(dir.path().join("out.key"), &d["tls.key"]).unwrap();
    let modulus = |args: &[&str]| openssl(dir.path(), args);
    assert_eq!(
        modulus(&["x509", "-noout", "-modulus", "-in", "out.crt"]),
        modulus(&["x509", "-noout", "-modulus", "-in", "cert.pem"])
    );
    assert_eq!(
        modulus(&["rsa", "-noout", "-modulus", "-in", "out.key"]),
        modulus(&["rsa", "-noout", "-modulus", "-in", "key.pem"])
    );

    sync(&client, &moto_args(&moto), "dk-cfg-example").await;
    let docker = secrets.get("secret-to-be-created-docker").await.unwrap();
    assert_eq!(
        docker.type_.as_deref(),
        Some("kubernetes.io/dockerconfigjson")
    );
    let config: serde_json::Value =
        serde_json::from_str(&data(&docker)[".dockerconfigjson"]).unwrap();
    assert_eq!(
        config,
        json!({"auths": {"team-a.registry.example.com": {
            "username": "Team-A",
            "password": "s3cr3t",
            "auth": "VGVhbS1BOnMzY3IzdA=="
        }}})
    );
}

/// ESO logs in to Vault on every reconcile (external-secrets#376); here 50 ExternalSecrets
/// reconciled twice through one AppRole store cost one login.
#[tokio::test]
async fn vault_approle_store_logs_in_once_for_many_external_secrets() {
    let vault = VaultStandin::start(&[]).await.unwrap();
    vault.add_approle("approle", "role-1", "secret-1");
    vault.put_kv2("", "secret", "shared", json!({"password": "pw"}));
    let client = kube().await;
    let store = format!(
        r#"apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: vault-approle
spec:
  provider:
    vault:
      server: "{}"
      path: "secret"
      version: "v2"
      auth:
        appRole:
          path: "approle"
          roleId: "role-1"
          secretRef:
            name: "approle-secret"
            key: "secret-id"
---
apiVersion: v1
kind: Secret
metadata:
  name: approle-secret
data:
  secret-id: c2VjcmV0LTE=
"#,
        vault.addr
    );
    apply(&client, &store, None).await;
    for i in 0..50 {
        apply(
            &client,
            &format!(
                "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: es-{i}}}\nspec:\n  refreshInterval: 3s\n  secretStoreRef: {{name: vault-approle, kind: SecretStore}}\n  data:\n  - secretKey: password\n    remoteRef: {{key: shared, property: password}}\n"
            ),
            None,
        )
        .await;
    }
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
    let api: Api<ExternalSecret> = Api::namespaced(client.clone(), "default");
    for round in 0..2 {
        if round == 1 {
            // Past the 3 s window (plus its jitter), which a loaded 2-core CI machine needs for
            // the first round of 50 reconciles.
            tokio::time::sleep(Duration::from_millis(3400)).await;
        }
        for i in 0..50 {
            let es = api.get(&format!("es-{i}")).await.unwrap();
            reconcile(Arc::new(es), ctx.clone()).await.unwrap();
        }
    }
    let c = vault.counters();
    assert_eq!(c.logins, 1, "{c:?}");
    assert_eq!(vault.live_tokens(), 1);
    // Two refresh windows: the shared key was read once per window.
    assert_eq!(c.reads, 2, "{c:?}");
    let s = Api::<Secret>::namespaced(client.clone(), "default")
        .get("es-49")
        .await
        .unwrap();
    assert_eq!(data(&s)["password"], "pw");
}

#[tokio::test]
async fn vault_ca_provider_is_read_from_a_config_map() {
    let vault = VaultStandin::start(&[]).await.unwrap();
    vault.add_token("root", Duration::from_secs(3600), false);
    vault.put_kv2("", "secret", "foo", json!({"my-value": "s3cr3t"}));
    let client = kube().await;
    let store = format!(
        "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {{name: vault-ca}}\nspec:\n  provider:\n    vault:\n      server: \"{}\"\n      path: secret\n      caProvider: {{type: ConfigMap, name: vault-ca, key: ca.pem}}\n      auth:\n        tokenSecretRef: {{name: vault-token, key: token}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: vault-token}}\ndata: {{token: cm9vdA==}}\n",
        vault.addr
    );
    apply(&client, &store, None).await;
    apply(
        &client,
        "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: ca}\nspec:\n  secretStoreRef: {name: vault-ca}\n  data:\n  - secretKey: v\n    remoteRef: {key: foo, property: my-value}\n",
        None,
    )
    .await;
    let ctx = Arc::new(
        context(
            client.clone(),
            &ExternalSecretsArgs::default(),
            Metrics::default(),
            false,
        )
        .unwrap(),
    );
    let api: Api<ExternalSecret> = Api::namespaced(client.clone(), "default");
    // Without the ConfigMap: a clear status error, no provider call.
    reconcile(Arc::new(api.get("ca").await.unwrap()), ctx.clone())
        .await
        .unwrap();
    let es = api.get("ca").await.unwrap();
    let msg = es.status.unwrap().conditions[0].message.clone().unwrap();
    assert!(
        msg.contains("caProvider ConfigMap default/vault-ca"),
        "{msg}"
    );
    assert_eq!(vault.counters().reads, 0);
    // With it (the stand-in speaks plain HTTP, so the bundle is read but not needed).
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "vault-ca", "namespace": "default"},
        "data": {"ca.pem": "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"}
    }))
    .unwrap();
    Api::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    sync(&client, &ExternalSecretsArgs::default(), "ca").await;
}
