//! The HTTP endpoints with a real HTTP client, as kubeseal and Prometheus use them.
#![allow(clippy::unwrap_used)]

mod sealed_common;

use std::sync::Arc;

use controller::sealed::http::{HttpState, MAX_BODY_BYTES, RateLimiter, router};
use controller::sealed::keyring::{KeyOrder, KeyRing};
use controller::sealed::metrics::SealedMetrics;
use sealed_common::{key_ring, read, sealing_key};

async fn serve(keys: KeyRing, rate: f64, burst: u32) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = SealedMetrics::register(&mut registry);
    metrics.unseal_requests.inc();
    let state = HttpState {
        keys,
        registry: Arc::new(registry),
        limiter: Arc::new(RateLimiter::new(rate, burst)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn cert_health_and_metrics() {
    let base = serve(key_ring(), 0.0, 1).await;
    let http = reqwest::Client::new();
    let cert = http
        .get(format!("{base}/v1/cert.pem"))
        .send()
        .await
        .unwrap();
    assert_eq!(cert.status(), 200);
    assert_eq!(cert.headers()["content-type"], "application/x-pem-file");
    assert_eq!(
        cert.text().await.unwrap(),
        read("keys/key2.crt"),
        "the newest key (key2) seals"
    );
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.text().await.unwrap(), "ok\n");
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("sealed_secrets_controller_unseal_requests_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("sealed_secrets_controller_rsa_operations_total"));

    let empty = serve(KeyRing::default(), 0.0, 1).await;
    assert_eq!(
        http.get(format!("{empty}/v1/cert.pem"))
            .send()
            .await
            .unwrap()
            .status(),
        500
    );
}

#[tokio::test]
async fn verify_answers_200_409_or_400_and_never_the_plaintext() {
    let base = serve(key_ring(), 0.0, 1).await;
    let http = reqwest::Client::new();
    let post = |body: String| http.post(format!("{base}/v1/verify")).body(body).send();
    let ok = post(read("sealedsecrets/basic.yaml")).await.unwrap();
    assert_eq!(ok.status(), 200);
    let body = ok.text().await.unwrap();
    assert!(!body.contains("hunter") && body.len() < 10);
    assert_eq!(
        post(read("sealedsecrets/negative-renamed.yaml"))
            .await
            .unwrap()
            .status(),
        409
    );
    assert_eq!(post("kind: [".into()).await.unwrap().status(), 400);

    // A template that fails only for the right plaintext must not change the answer.
    let mut probe: crds::SealedSecret =
        serde_yaml::from_str(&read("sealedsecrets/basic.yaml")).unwrap();
    probe.spec.template.data = Some(std::collections::BTreeMap::from([(
        "probe".to_string(),
        Some("{{ if eq .password \"x\" }}{{ fail \"guessed\" }}{{ end }}".to_string()),
    )]));
    assert_eq!(
        post(serde_json::to_string(&probe).unwrap())
            .await
            .unwrap()
            .status(),
        200
    );

    let too_big = "x".repeat(MAX_BODY_BYTES + 1);
    assert_eq!(post(too_big).await.unwrap().status(), 413);
}

#[tokio::test]
async fn rotate_re_encrypts_with_the_newest_key() {
    let ring = KeyRing::new(KeyOrder::CertNotBefore);
    ring.insert(sealing_key("key1"));
    let base = serve(ring.clone(), 0.0, 1).await;
    ring.insert(sealing_key("key2"));
    let http = reqwest::Client::new();
    let original = read("sealedsecrets/namespace-wide.yaml");
    let response = http
        .post(format!("{base}/v1/rotate"))
        .body(original.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rotated: crds::SealedSecret =
        serde_json::from_str(&response.text().await.unwrap()).unwrap();
    let before: crds::SealedSecret = serde_yaml::from_str(&original).unwrap();
    assert_eq!(rotated.metadata, before.metadata);
    assert_eq!(rotated.spec.template, before.spec.template);
    let key1 = sealing_key("key1");
    let key2 = sealing_key("key2");
    let with_key2_only = sealing::unseal(&rotated, &[&key2.private]).unwrap();
    let with_key1 = sealing::unseal(&before, &[&key1.private, &key2.private]).unwrap();
    assert_eq!(with_key2_only.data, with_key1.data);

    let bad = http
        .post(format!("{base}/v1/rotate"))
        .body(read("sealedsecrets/negative-renamed.yaml"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 409);
}

#[tokio::test]
async fn verify_is_rate_limited_per_client() {
    let base = serve(key_ring(), 0.5, 2).await;
    let http = reqwest::Client::new();
    let post = |client: &'static str| {
        http.post(format!("{base}/v1/verify"))
            .header("x-forwarded-for", client)
            .body(read("sealedsecrets/basic.yaml"))
            .send()
    };
    assert_eq!(post("client-a").await.unwrap().status(), 200);
    assert_eq!(post("client-a").await.unwrap().status(), 200);
    assert_eq!(post("client-a").await.unwrap().status(), 429);
    assert_eq!(post("client-b").await.unwrap().status(), 200);
}
