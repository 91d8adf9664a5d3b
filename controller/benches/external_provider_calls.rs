//! Provider calls per refresh cycle and sync throughput: 1,000 ExternalSecrets over 100 AWS
//! Secrets Manager secrets (moto on loopback), Kubernetes in memory.
//!
//! `cargo bench -p controller --bench external_provider_calls` (needs moto: run
//! scripts/install-peers.sh). Compares this controller (coalesced reads shared by all
//! ExternalSecrets of a store, batched reads) with one call per ExternalSecret and a fresh
//! provider client per reconcile, which is what ESO does.
#![allow(clippy::unwrap_used)]

#[path = "../tests/it/external_common.rs"]
mod external_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use controller::external::metrics::Metrics;
use controller::external::reconciler::reconcile;
use controller::external::{ExternalSecretsArgs, context};
use crds::external_secrets::{ExternalSecret, SecretStore};
use futures::StreamExt;
use kube::Api;
use kube::api::PostParams;

const EXTERNAL_SECRETS: usize = 1000;
const AWS_SECRETS: usize = 100;
const CONCURRENCY: usize = 8;

async fn kube_with(n_es: usize, keys_per_es: usize) -> kube::Client {
    let client = test_kit::api::external_secrets().build().await.unwrap();
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "awssm-secret", "namespace": "bench"},
        "data": {"access-key": "dGVzdA==", "secret-access-key": "dGVzdA=="}
    }))
    .unwrap();
    Api::namespaced(client.clone(), "bench")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let store: SecretStore = serde_yaml::from_str(
        "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {name: aws, namespace: bench}\nspec:\n  provider:\n    aws:\n      service: SecretsManager\n      region: us-east-1\n      auth:\n        secretRef:\n          accessKeyIDSecretRef: {name: awssm-secret, key: access-key}\n          secretAccessKeySecretRef: {name: awssm-secret, key: secret-access-key}\n",
    )
    .unwrap();
    Api::<SecretStore>::namespaced(client.clone(), "bench")
        .create(&PostParams::default(), &store)
        .await
        .unwrap();
    let api: Api<ExternalSecret> = Api::namespaced(client.clone(), "bench");
    for i in 0..n_es {
        let data: String = (0..keys_per_es)
            .map(|k| {
                format!(
                    "  - secretKey: k{k}\n    remoteRef: {{key: app/secret-{}, property: password}}\n",
                    (i + k * 7) % AWS_SECRETS
                )
            })
            .collect();
        let es: ExternalSecret = serde_yaml::from_str(&format!(
            "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: es-{i}, namespace: bench}}\nspec:\n  refreshInterval: 2s\n  secretStoreRef: {{name: aws}}\n  data:\n{data}"
        ))
        .unwrap();
        api.create(&PostParams::default(), &es).await.unwrap();
    }
    client
}

struct Cycle {
    calls: u64,
    elapsed: Duration,
}

/// Reconciles every ExternalSecret once; without a shared context it mimics ESO's provider
/// client per reconcile (no sharing between ExternalSecrets).
async fn cycle(
    client: &kube::Client,
    args: &ExternalSecretsArgs,
    metrics: &Metrics,
    shared: Option<Arc<controller::external::Context>>,
    n_es: usize,
) -> Cycle {
    let before = metrics.provider_calls_for("SecretStore/bench/aws");
    let api: Api<ExternalSecret> = Api::namespaced(client.clone(), "bench");
    let started = Instant::now();
    futures::stream::iter(0..n_es)
        .map(|i| {
            let api = api.clone();
            let ctx = shared.clone().unwrap_or_else(|| {
                Arc::new(context(client.clone(), args, metrics.clone(), false).unwrap())
            });
            async move {
                let es = api.get(&format!("es-{i}")).await.unwrap();
                reconcile(Arc::new(es), ctx).await.unwrap();
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let elapsed = started.elapsed();
    Cycle {
        calls: metrics.provider_calls_for("SecretStore/bench/aws") - before,
        elapsed,
    }
}

fn row(name: &str, es: usize, keys: usize, c: &Cycle) {
    println!(
        "| {name:<46} | {es:>5} | {keys:>4} | {:>14} | {:>9.0} |",
        c.calls,
        es as f64 / c.elapsed.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let moto = external_common::Moto::start();
    let seed = external_common::sdk_client(&moto).await;
    for i in 0..AWS_SECRETS {
        seed.create_secret()
            .name(format!("app/secret-{i}"))
            .secret_string(format!(r#"{{"user":"u{i}","password":"p{i}"}}"#))
            .send()
            .await
            .unwrap();
    }
    let args = ExternalSecretsArgs {
        aws_secretsmanager_endpoint: Some(moto.endpoint.clone()),
        aws_max_attempts: 1,
        ..Default::default()
    };

    println!(
        "\n{EXTERNAL_SECRETS} ExternalSecrets over {AWS_SECRETS} AWS secrets (moto), {CONCURRENCY} concurrent reconciles\n"
    );
    println!(
        "| {:<46} | {:>5} | {:>4} | {:>14} | {:>9} |",
        "scenario", "ES", "keys", "provider calls", "ES/s"
    );
    println!(
        "|{}|-------|------|----------------|-----------|",
        "-".repeat(48)
    );

    for keys in [1usize, 5] {
        // ESO's model: a new provider client per reconcile and one GetSecretValue per distinct
        // key of each ExternalSecret (its per-client cache dedups only within one object).
        println!(
            "| {:<46} | {EXTERNAL_SECRETS:>5} | {keys:>4} | {:>14} | {:>9} |",
            "ESO model: 1 GetSecretValue per key per ES",
            EXTERNAL_SECRETS * keys,
            "-"
        );
        // Measured: a fresh client per reconcile (no sharing between objects), our batching.
        let client = kube_with(EXTERNAL_SECRETS, keys).await;
        let metrics = Metrics::default();
        let c = cycle(&client, &args, &metrics, None, EXTERNAL_SECRETS).await;
        row(
            "fresh client per reconcile, no sharing",
            EXTERNAL_SECRETS,
            keys,
            &c,
        );

        // Ours: one shared context (store client + coalescing cache).
        let client = kube_with(EXTERNAL_SECRETS, keys).await;
        let metrics = Metrics::default();
        let ctx = Arc::new(context(client.clone(), &args, metrics.clone(), false).unwrap());
        let first = cycle(
            &client,
            &args,
            &metrics,
            Some(ctx.clone()),
            EXTERNAL_SECRETS,
        )
        .await;
        row("ours, first sync", EXTERNAL_SECRETS, keys, &first);
        // Next refresh window (interval 2 s plus at most 0.2 s jitter).
        tokio::time::sleep(Duration::from_millis(2300)).await;
        let next = cycle(
            &client,
            &args,
            &metrics,
            Some(ctx.clone()),
            EXTERNAL_SECRETS,
        )
        .await;
        row("ours, next refresh cycle", EXTERNAL_SECRETS, keys, &next);
        // Inside the window nothing is due: no provider call at all.
        let idle = cycle(&client, &args, &metrics, Some(ctx), EXTERNAL_SECRETS).await;
        row(
            "ours, reconcile inside the window",
            EXTERNAL_SECRETS,
            keys,
            &idle,
        );
    }
    println!();
}
