//! SealedSecrets with the real binary: keys already in the cluster (Bitnami's), the life of one
//! SealedSecret, keys added or compromised while running, and a restart.

use std::time::Instant;

use e2e_tests::envtest::{Cluster, Controller, data, eventually, secret_data, wait_secret};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams};

use super::{ACT, GC, b64, fixture, key_file, key_secret_yaml, seal, sealed_secret_yaml, setup};

const KEY_LABEL: &str = "sealedsecrets.bitnami.com/sealed-secrets-key";

/// `status.conditions[Synced]` as (status, observedGeneration == generation).
fn synced(cluster: &Cluster, namespace: &str, name: &str) -> (String, bool) {
    let out = cluster.kubectl_ok(&[
        "-n",
        namespace,
        "get",
        "sealedsecret",
        name,
        "-o",
        r#"jsonpath={.status.conditions[?(@.type=="Synced")].status} {.status.observedGeneration} {.metadata.generation}"#,
    ]);
    let parts: Vec<&str> = out.split_whitespace().collect();
    match parts.as_slice() {
        [status, observed, generation] => (status.to_string(), observed == generation),
        _ => (String::new(), false),
    }
}

async fn wait_synced(cluster: &Cluster, namespace: &str, name: &str, want: &str) {
    eventually(
        format!("SealedSecret {namespace}/{name} Synced={want} for its generation"),
        ACT,
        || async { (synced(cluster, namespace, name) == (want.to_string(), true)).then_some(()) },
    )
    .await;
}

async fn cert(controller: &Controller) -> String {
    eventually("the controller to serve /v1/cert.pem", ACT, || {
        controller.get("/v1/cert.pem")
    })
    .await
}

fn same_cert(a: &str, b: &str) -> bool {
    sealing::Certificate::from_pem(a).unwrap().der()
        == sealing::Certificate::from_pem(b).unwrap().der()
}

async fn key_secrets(client: &kube::Client, namespace: &str) -> Vec<String> {
    Api::<Secret>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&format!("{KEY_LABEL}=active")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect()
}

#[tokio::test]
async fn bitnami_key_secrets_present_at_start_are_used() {
    let Some(cluster) = setup("sealed::bitnami_key_secrets_present_at_start_are_used") else {
        return;
    };
    let client = cluster.client().await;
    let ns = cluster.namespace(&client, "ss-keys", &[]).await;
    // Two keys as Bitnami's controller leaves them, and values kubesealpy sealed to each.
    cluster.apply(&key_secret_yaml(
        &ns,
        "sealed-secrets-keyabcde",
        &key_file("key1.pem"),
        &key_file("key1.crt"),
    ));
    cluster.apply(&key_secret_yaml(
        &ns,
        "sealed-secrets-keyfghij",
        &key_file("key2.pem"),
        &key_file("key2.crt"),
    ));
    let vectors: Vec<serde_json::Value> =
        serde_json::from_str(&fixture("third-party-sealed.json")).unwrap();
    let cluster_wide = "  annotations:\n    sealedsecrets.bitnami.com/cluster-wide: \"true\"\n";
    let mut expected = Vec::new();
    for v in &vectors {
        let name = format!("from-{}", v["sealed_with"].as_str().unwrap());
        cluster.apply(&sealed_secret_yaml(
            &ns,
            &name,
            &[("value", v["sealed_b64"].as_str().unwrap())],
            cluster_wide,
        ));
        let plain = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            v["plaintext_b64"].as_str().unwrap(),
        )
        .unwrap();
        expected.push((name, String::from_utf8(plain).unwrap()));
    }
    assert_eq!(expected.len(), 2);

    let mut controller = cluster.controller(&ns).arg("--key-renew-period=0").start();
    controller.ready().await;
    for (name, plain) in &expected {
        wait_secret(&client, &ns, name, &data(&[("value", plain)]), ACT).await;
        wait_synced(cluster, &ns, name, "True").await;
    }
    // No key of its own: it seals with the newest of the two (key2, by certificate notBefore).
    assert!(same_cert(&cert(&controller).await, &key_file("key2.crt")));
    let mut keys = key_secrets(&client, &ns).await;
    keys.sort();
    assert_eq!(keys, ["sealed-secrets-keyabcde", "sealed-secrets-keyfghij"]);
    controller.assert_running();
}

#[tokio::test]
async fn sealed_secret_create_update_undecryptable_tamper_delete() {
    let Some(cluster) = setup("sealed::sealed_secret_create_update_undecryptable_tamper_delete")
    else {
        return;
    };
    let client = cluster.client().await;
    let ns = cluster.namespace(&client, "ss-life", &[]).await;
    let mut controller = cluster.controller(&ns).start();
    controller.ready().await;
    let cert_pem = cert(&controller).await;
    // Planted values: they must reach the Secret and nothing else (logs, events, status).
    let (first, second) = ("canary-7c1d-first-value", "canary-7c1d-second-value");

    // Create.
    cluster.apply(&sealed_secret_yaml(
        &ns,
        "app",
        &[
            ("password", &seal(&cert_pem, &ns, "app", first)),
            ("user", &seal(&cert_pem, &ns, "app", "admin")),
        ],
        "",
    ));
    wait_secret(
        &client,
        &ns,
        "app",
        &data(&[("password", first), ("user", "admin")]),
        ACT,
    )
    .await;
    wait_synced(cluster, &ns, "app", "True").await;
    let secret: Secret = Api::namespaced(client.clone(), &ns)
        .get("app")
        .await
        .unwrap();
    let owner = &secret.metadata.owner_references.unwrap_or_default()[..];
    assert!(
        matches!(owner, [o] if o.kind == "SealedSecret" && o.name == "app" && o.controller == Some(true)),
        "owner references: {owner:?}"
    );

    // Update: seen through the watch (a synced object is not requeued, so no resync does it).
    let edited = Instant::now();
    cluster.apply(&sealed_secret_yaml(
        &ns,
        "app",
        &[("password", &seal(&cert_pem, &ns, "app", second))],
        "",
    ));
    wait_secret(&client, &ns, "app", &data(&[("password", second)]), ACT).await;
    eprintln!("update seen after {:?}", edited.elapsed());

    // Someone edits the Secret by hand: the owned-Secret watch puts the sealed value back.
    cluster.kubectl_ok(&[
        "-n",
        &ns,
        "patch",
        "secret",
        "app",
        "-p",
        &format!(r#"{{"data":{{"password":"{}"}}}}"#, b64(b"tampered")),
    ]);
    wait_secret(&client, &ns, "app", &data(&[("password", second)]), ACT).await;

    // An update nobody can decrypt: reported, and the last good Secret stays.
    cluster.apply(&sealed_secret_yaml(
        &ns,
        "app",
        &[(
            "password",
            &seal(&key_file("unrelated.crt"), &ns, "app", "never-seen"),
        )],
        "",
    ));
    wait_synced(cluster, &ns, "app", "False").await;
    assert_eq!(
        secret_data(&client, &ns, "app").await,
        Some(data(&[("password", second)]))
    );
    let events = cluster.kubectl_ok(&[
        "-n",
        &ns,
        "get",
        "events",
        "-o",
        "jsonpath={.items[*].reason}",
    ]);
    assert!(
        events.contains("ErrUnsealFailed") && events.contains("Unsealed"),
        "events: {events}"
    );

    // Delete: the garbage collector (kube-controller-manager) removes the owned Secret.
    cluster.kubectl_ok(&["-n", &ns, "delete", "sealedsecret", "app", "--wait=false"]);
    eventually("the garbage collector to delete Secret app", GC, || async {
        secret_data(&client, &ns, "app")
            .await
            .is_none()
            .then_some(())
    })
    .await;

    controller.assert_running();
    for planted in [
        first,
        second,
        &b64(first.as_bytes()),
        &b64(second.as_bytes()),
    ] {
        controller.assert_log_lacks(planted);
    }
    let dump = cluster.kubectl_ok(&["-n", &ns, "get", "events,sealedsecrets", "-o", "yaml"]);
    assert!(
        !dump.contains(first) && !dump.contains(second),
        "a planted value leaked into events or status"
    );
}

#[tokio::test]
async fn key_secret_added_or_compromised_while_running() {
    let Some(cluster) = setup("sealed::key_secret_added_or_compromised_while_running") else {
        return;
    };
    let client = cluster.client().await;
    let ns = cluster.namespace(&client, "ss-rotate", &[]).await;
    cluster.apply(&key_secret_yaml(
        &ns,
        "sealed-secrets-key1",
        &key_file("key1.pem"),
        &key_file("key1.crt"),
    ));
    let mut controller = cluster.controller(&ns).arg("--key-renew-period=0").start();
    controller.ready().await;
    assert!(same_cert(&cert(&controller).await, &key_file("key1.crt")));

    // Sealed to a key the controller does not have yet.
    let key2 = key_file("key2.crt");
    cluster.apply(&sealed_secret_yaml(
        &ns,
        "later",
        &[("v", &seal(&key2, &ns, "later", "sealed-to-key2"))],
        "",
    ));
    wait_synced(cluster, &ns, "later", "False").await;

    // The key Secret arrives (a restore from backup): picked up without a restart, and the
    // waiting SealedSecret is retried.
    cluster.apply(&key_secret_yaml(
        &ns,
        "sealed-secrets-key2",
        &key_file("key2.pem"),
        &key2,
    ));
    eventually("the new key to be served", ACT, || async {
        controller
            .get("/v1/cert.pem")
            .await
            .filter(|c| same_cert(c, &key2))
    })
    .await;
    wait_secret(
        &client,
        &ns,
        "later",
        &data(&[("v", "sealed-to-key2")]),
        ACT,
    )
    .await;
    wait_synced(cluster, &ns, "later", "True").await;

    // key2 leaks: labelled compromised, it is dropped for sealing and unsealing alike.
    cluster.kubectl_ok(&[
        "-n",
        &ns,
        "label",
        "secret",
        "sealed-secrets-key2",
        &format!("{KEY_LABEL}=compromised"),
        "--overwrite",
    ]);
    eventually("the compromised key to stop being served", ACT, || async {
        controller
            .get("/v1/cert.pem")
            .await
            .filter(|c| same_cert(c, &key_file("key1.crt")))
    })
    .await;
    cluster.apply(&sealed_secret_yaml(
        &ns,
        "after-leak",
        &[("v", &seal(&key2, &ns, "after-leak", "x"))],
        "",
    ));
    wait_synced(cluster, &ns, "after-leak", "False").await;
    assert!(secret_data(&client, &ns, "after-leak").await.is_none());
    // What was unsealed before stays.
    assert_eq!(
        secret_data(&client, &ns, "later").await,
        Some(data(&[("v", "sealed-to-key2")]))
    );
    controller.assert_running();
}

#[tokio::test]
async fn restart_does_no_rsa_work_for_unchanged_objects() {
    let Some(cluster) = setup("sealed::restart_does_no_rsa_work_for_unchanged_objects") else {
        return;
    };
    let client = cluster.client().await;
    let ns = cluster.namespace(&client, "ss-restart", &[]).await;
    let mut first = cluster.controller(&ns).start();
    first.ready().await;
    let cert_pem = cert(&first).await;
    let names = ["one", "two", "three"];
    for name in names {
        let values = [
            ("a", seal(&cert_pem, &ns, name, "value-a")),
            ("b", seal(&cert_pem, &ns, name, "value-b")),
        ];
        let values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
        cluster.apply(&sealed_secret_yaml(&ns, name, &values, ""));
    }
    for name in names {
        wait_secret(
            &client,
            &ns,
            name,
            &data(&[("a", "value-a"), ("b", "value-b")]),
            ACT,
        )
        .await;
    }
    let rsa = "sealed_secrets_controller_rsa_operations_total";
    assert!(first.metric(rsa, &[]).await >= 6.0, "6 values unsealed");
    first.terminate().await;

    let mut second = cluster.controller(&ns).start();
    second.ready().await;
    let skipped = "sealed_secrets_controller_unseal_skipped_unchanged_total";
    eventually(
        "the restarted controller to look at all three",
        ACT,
        || async { (second.metric(skipped, &[]).await >= names.len() as f64).then_some(()) },
    )
    .await;
    assert_eq!(
        second.metric(rsa, &[]).await,
        0.0,
        "RSA work after a restart with nothing changed"
    );
    for name in names {
        assert_eq!(
            secret_data(&client, &ns, name).await,
            Some(data(&[("a", "value-a"), ("b", "value-b")]))
        );
    }
    // Deleting a Secret is a change: it alone is unsealed again.
    Api::<Secret>::namespaced(client.clone(), &ns)
        .delete("two", &DeleteParams::default())
        .await
        .unwrap();
    wait_secret(
        &client,
        &ns,
        "two",
        &data(&[("a", "value-a"), ("b", "value-b")]),
        ACT,
    )
    .await;
    let after = second.metric(rsa, &[]).await;
    assert_eq!(
        after, 2.0,
        "RSA operations for one SealedSecret of two values"
    );
    second.assert_running();
}
