//! `secrets-controller` run mode, wired end to end against the in-memory Kubernetes API: Bitnami's
//! key Secrets are loaded, the leader takes the Lease, a listed SealedSecret is unsealed, every
//! endpoint answers, and shutdown releases the Lease.

use clap::Parser;
use controller::run::{RunArgs, run_with};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use test_kit::sealed_secrets::{self, read};

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    run: RunArgs,
}

/// The in-memory API holding the fixture world's key Secrets and its `basic` SealedSecret.
async fn cluster_with_keys_and_basic() -> kube::Client {
    let mut builder = test_kit::api::sealed_secrets();
    for key in sealed_secrets::key_secrets() {
        builder = builder.with_object(key);
    }
    let mut sealed = sealed_secrets::sealed_secret("basic");
    sealed.metadata.uid = Some("uid-basic".into());
    builder.with_object(sealed).build().await.unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_loads_keys_leads_unseals_serves_and_hands_over_on_shutdown() {
    let client = cluster_with_keys_and_basic().await;

    let port = free_port();
    let metrics_port = free_port();
    let flags = Flags::parse_from([
        "secrets-controller",
        "--listen-addr",
        &format!("127.0.0.1:{port}"),
        "--listen-metrics-addr",
        &format!("127.0.0.1:{metrics_port}"),
        "--namespace",
        "kube-system",
        "--all-namespaces=false",
        "--additional-namespaces",
        "default",
        "--enable-external-secrets=false",
    ]);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_with(flags.run, client.clone(), async {
        let _ = stop_rx.await;
    }));

    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let mut unsealed = None;
    for _ in 0..200 {
        if let Some(secret) = secrets.get_opt("mysecret").await.unwrap() {
            unsealed = Some(secret);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let unsealed = unsealed.expect("the leader unsealed the listed SealedSecret");
    let expected: Secret = serde_yaml::from_str(&read("expected-secrets/basic.yaml")).unwrap();
    assert_eq!(unsealed.data, expected.data);

    let http = reqwest::Client::new();
    let cert = http
        .get(format!("http://127.0.0.1:{port}/v1/cert.pem"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        cert.text().await.unwrap(),
        read("keys/key2.crt"),
        "the newest loaded key seals"
    );
    let metrics = http
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("sealed_secrets_controller_unseal_requests_total"),
        "{metrics}"
    );
    let on_api = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        on_api.status(),
        404,
        "the public API port serves no metrics"
    );

    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let lease = leases.get("secrets-controller").await.unwrap();
    assert!(
        lease.spec.unwrap().holder_identity.is_some(),
        "leader holds the lease"
    );

    stop_tx.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(30), task)
        .await
        .expect("run returns after shutdown")
        .unwrap()
        .unwrap();
    let lease = leases.get("secrets-controller").await.unwrap();
    assert!(
        lease.spec.unwrap().holder_identity.is_none(),
        "lease released on shutdown"
    );
}

/// Issue 8 item 6: with `--leader-elect=false` the controller exited by itself after start (the
/// leadership channel's sender was dropped, which read as "stop"). It must lead at once, take no
/// Lease, and run until told to stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_leader_election_it_leads_at_once_and_keeps_running() {
    let client = cluster_with_keys_and_basic().await;

    let port = free_port();
    let flags = Flags::parse_from([
        "secrets-controller",
        "--leader-elect=false",
        "--listen-addr",
        &format!("127.0.0.1:{port}"),
        "--listen-metrics-addr",
        "",
        "--namespace",
        "kube-system",
        "--all-namespaces=false",
        "--additional-namespaces",
        "default",
        "--enable-external-secrets=false",
    ]);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut task = tokio::spawn(run_with(flags.run, client.clone(), async {
        let _ = stop_rx.await;
    }));

    // The listed SealedSecret is unsealed: this replica leads without a Lease.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let mut unsealed = false;
    for _ in 0..200 {
        if secrets.get_opt("mysecret").await.unwrap().is_some() {
            unsealed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(unsealed, "the reconciler runs without leader election");
    let http = reqwest::Client::new();
    let mut answered = false;
    for _ in 0..100 {
        if http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            answered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(answered, "the API listener answers");
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    assert!(
        leases
            .get_opt("secrets-controller")
            .await
            .unwrap()
            .is_none(),
        "no Lease is taken without leader election"
    );

    // Before the fix run_with returned within a second or two of starting.
    let early = tokio::time::timeout(std::time::Duration::from_secs(3), &mut task).await;
    assert!(
        early.is_err(),
        "run_with returned without being told to stop: {early:?}"
    );
    assert!(
        http.get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success()),
        "still serving after 3 s"
    );

    stop_tx.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(30), task)
        .await
        .expect("run returns after shutdown")
        .unwrap()
        .unwrap();
}
