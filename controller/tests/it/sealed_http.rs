//! The HTTP endpoints with a real HTTP client, as kubeseal and Prometheus use them.

use crate::sealed_common;

use std::sync::Arc;

use controller::sealed::http::{
    self, HttpState, MAX_BODY_BYTES, MAX_HEADERS, MAX_IN_FLIGHT, MAX_RSA_OPERATIONS,
    MAX_YAML_ALIASES, MAX_YAML_DEPTH, RateLimiter, RsaBudget, TrustedProxies, open_values,
};
use controller::sealed::keyring::{KeyOrder, KeyRing};
use controller::sealed::metrics::SealedMetrics;
use sealed_common::{key_ring, read, sealing_key};

fn state(keys: KeyRing, rate: f64, burst: u32) -> HttpState {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = SealedMetrics::register(&mut registry);
    metrics.unseal_requests.inc();
    HttpState::new(keys, Arc::new(registry), RateLimiter::new(rate, burst))
}

async fn serve_state(state: HttpState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(http::serve(
        listener,
        http::router(state),
        std::future::pending(),
    ));
    format!("http://{addr}")
}

async fn serve(keys: KeyRing, rate: f64, burst: u32) -> String {
    serve_state(state(keys, rate, burst)).await
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
    // Metrics name every object: they are served on --listen-metrics-addr, never on the API.
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 404);

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

/// A `v1` `List` of these fixtures, as `kubeseal --re-encrypt` batches them.
fn list_of(fixtures: &[&str]) -> String {
    let items: Vec<serde_json::Value> = fixtures
        .iter()
        .map(|f| serde_yaml::from_str(&read(&format!("sealedsecrets/{f}"))).unwrap())
        .collect();
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

#[tokio::test]
async fn rotate_takes_a_list_and_answers_each_item_in_order() {
    let base = serve(key_ring(), 0.0, 1).await;
    let http = reqwest::Client::new();
    let post = |body: String| http.post(format!("{base}/v1/rotate")).body(body).send();
    let names = ["basic.yaml", "namespace-wide.yaml", "cluster-wide.yaml"];
    let response = post(list_of(&names)).await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["kind"], "List");
    let items = answer["items"].as_array().unwrap();
    assert_eq!(items.len(), names.len());
    let key1 = sealing_key("key1");
    let key2 = sealing_key("key2");
    for (name, item) in names.iter().zip(items) {
        let rotated: crds::SealedSecret = serde_json::from_value(item.clone()).unwrap();
        let before: crds::SealedSecret =
            serde_yaml::from_str(&read(&format!("sealedsecrets/{name}"))).unwrap();
        assert_eq!(rotated.metadata.name, before.metadata.name, "{name}");
        let with_key2_only = sealing::unseal(&rotated, &[&key2.private]).unwrap();
        let original = sealing::unseal(&before, &[&key1.private, &key2.private]).unwrap();
        assert_eq!(with_key2_only.data, original.data, "{name}");
    }

    // One item that cannot be opened fails the batch and is named.
    let refused = post(list_of(&["basic.yaml", "negative-renamed.yaml"]))
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    let message = refused.text().await.unwrap();
    assert!(message.starts_with("item 1 ("), "{message}");
    // A batch shares one request's RSA budget.
    let too_many = vec!["basic.yaml"; MAX_RSA_OPERATIONS / 2 + 1];
    assert_eq!(post(list_of(&too_many)).await.unwrap().status(), 413);
    assert_eq!(post(list_of(&[])).await.unwrap().status(), 400);
}

fn trusting(proxies: &str, state: HttpState) -> HttpState {
    state.with_trusted_proxies(TrustedProxies::parse(proxies).unwrap())
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_limit_charges_the_hop_it_appended() {
    let base = serve_state(trusting("127.0.0.1", state(key_ring(), 0.5, 2))).await;
    let http = reqwest::Client::new();
    let post = |forwarded: String| {
        http.post(format!("{base}/v1/verify"))
            .header("x-forwarded-for", forwarded)
            .body(read("sealedsecrets/basic.yaml"))
            .send()
    };
    // The API server's proxy appends the caller's address; what comes before is the caller's.
    for (i, expected) in [200, 200, 429, 429].into_iter().enumerate() {
        let forged = format!("192.0.2.{i}, 10.0.0.7");
        assert_eq!(post(forged).await.unwrap().status(), expected, "try {i}");
    }
    assert_eq!(post("10.0.0.8".into()).await.unwrap().status(), 200);
    // Not an address: not the proxy's doing, so the proxy itself (127.0.0.1) is charged.
    assert_eq!(post("client-a".into()).await.unwrap().status(), 200);
    assert_eq!(post("client-b".into()).await.unwrap().status(), 200);
    assert_eq!(post("client-c".into()).await.unwrap().status(), 429);
}

#[tokio::test]
async fn a_direct_client_cannot_buy_fresh_buckets_with_forged_forwarded_for() {
    // 127.0.0.1 is not a trusted proxy here: what it writes in X-Forwarded-For is ignored.
    let base = serve_state(trusting("10.0.0.0/8", state(key_ring(), 0.5, 2))).await;
    let http = reqwest::Client::new();
    let mut accepted = 0;
    for i in 0..20 {
        let status = http
            .post(format!("{base}/v1/verify"))
            .header("x-forwarded-for", format!("10.1.0.{i}, 192.0.2.{i}"))
            .body(read("sealedsecrets/basic.yaml"))
            .send()
            .await
            .unwrap()
            .status();
        accepted += usize::from(status == 200);
    }
    assert_eq!(accepted, 2, "only the burst of the peer's own bucket");
}

#[test]
fn hops_are_read_back_past_trusted_proxies_only() {
    let trusted = TrustedProxies::parse("10.0.0.0/8, fd00::1").unwrap();
    let headers = |values: &[&str]| {
        let mut map = axum::http::HeaderMap::new();
        for value in values {
            map.append("x-forwarded-for", value.parse().unwrap());
        }
        map
    };
    let ip = |text: &str| text.parse::<std::net::IpAddr>().unwrap();
    let proxy = ip("10.0.0.5");
    let cases: [(&[&str], std::net::IpAddr, &str); 6] = [
        (&["198.51.100.1, 203.0.113.9"], proxy, "203.0.113.9"),
        (
            &["198.51.100.1", "203.0.113.9, 10.9.9.9"],
            proxy,
            "203.0.113.9",
        ),
        (&["203.0.113.9, fd00::1"], ip("fd00::1"), "203.0.113.9"),
        (&["10.1.1.1, 10.2.2.2"], proxy, "10.1.1.1"),
        (&["198.51.100.1, not-an-ip"], proxy, "10.0.0.5"),
        (&["198.51.100.1"], ip("192.0.2.7"), "192.0.2.7"),
    ];
    for (values, peer, charged) in cases {
        assert_eq!(
            http::client_address(&headers(values), peer, &trusted),
            ip(charged),
            "{values:?} from {peer}"
        );
    }
    assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
    assert!(TrustedProxies::parse("").is_ok());
}

#[tokio::test]
async fn clients_without_forwarded_for_are_limited_by_their_own_address() {
    let base = serve(key_ring(), 0.5, 1).await;
    let from = |last: u8| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, last]))
            .build()
            .unwrap()
    };
    let post = |client: reqwest::Client| {
        let url = format!("{base}/v1/verify");
        async move {
            client
                .post(url)
                .body(read("sealedsecrets/basic.yaml"))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(post(from(2)).await, 200);
    assert_eq!(post(from(2)).await, 429);
    assert_eq!(post(from(3)).await, 200, "another peer has its own bucket");
}

#[test]
fn the_limiter_keeps_a_bounded_number_of_buckets() {
    let limiter = RateLimiter::new(1.0, 1);
    let now = std::time::Instant::now();
    for i in 0..(http::MAX_BUCKETS as u32 + 500) {
        let client = std::net::IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        assert!(limiter.allow(http::Endpoint::Verify, client, now));
    }
    assert_eq!(limiter.len(), http::MAX_BUCKETS);
    // A client seen recently keeps its (empty) bucket.
    let last = std::net::IpAddr::from(std::net::Ipv4Addr::from(
        0x0a00_0000 + http::MAX_BUCKETS as u32 + 499,
    ));
    assert!(!limiter.allow(http::Endpoint::Verify, last, now));
}

#[tokio::test]
async fn oversized_request_heads_are_answered_431() {
    let base = serve(key_ring(), 0.0, 1).await;
    let http = reqwest::Client::new();
    let huge = "1".repeat(300 * 1024);
    let response = http
        .post(format!("{base}/v1/verify"))
        .header("x-forwarded-for", huge)
        .body(read("sealedsecrets/basic.yaml"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    let mut many = http.post(format!("{base}/v1/verify"));
    for i in 0..=MAX_HEADERS {
        many = many.header(format!("x-filler-{i}"), "x");
    }
    let response = many
        .body(read("sealedsecrets/basic.yaml"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    // A body near the limit still gets through a bounded read buffer.
    let mut sealed: crds::SealedSecret =
        serde_yaml::from_str(&read("sealedsecrets/basic.yaml")).unwrap();
    sealed.metadata.annotations = Some(std::collections::BTreeMap::from([(
        "padding".to_string(),
        "p".repeat(MAX_BODY_BYTES - 4096),
    )]));
    let response = http
        .post(format!("{base}/v1/verify"))
        .body(serde_json::to_string(&sealed).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn requests_beyond_the_in_flight_cap_are_answered_503() {
    let state = state(key_ring(), 0.0, 1);
    let base = serve_state(state.clone()).await;
    let busy = state
        .in_flight
        .clone()
        .acquire_many_owned(MAX_IN_FLIGHT as u32)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let post = || {
        http.post(format!("{base}/v1/verify"))
            .body(read("sealedsecrets/basic.yaml"))
            .send()
    };
    let refused = post().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "health checks are never queued");
    drop(busy);
    assert_eq!(post().await.unwrap().status(), 200);
}

/// 5,000 aliases of one garbage value: every value against every key cost 41.6 s of CPU.
#[tokio::test]
async fn alias_floods_and_deep_nesting_are_refused_before_parsing() {
    let base = serve(key_ring(), 0.0, 1).await;
    let http = reqwest::Client::new();
    let post = |body: String| {
        let request = http.post(format!("{base}/v1/verify")).body(body);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let garbage = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        [&[2u8, 0][..], &[7u8; 512][..], &[9u8; 64][..]].concat(),
    );
    let mut aliased = format!(
        "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {{name: a, namespace: n}}\nspec:\n  encryptedData:\n    k0: &v {garbage}\n"
    );
    for i in 1..5000 {
        aliased.push_str(&format!("    k{i}: *v\n"));
    }
    let (status, text) = post(aliased).await;
    assert_eq!(status, 400);
    assert!(
        text.contains(&format!("more than {MAX_YAML_ALIASES} YAML aliases")),
        "{text}"
    );

    let laughs = {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        doc
    };
    let (status, text) = post(laughs).await;
    assert_eq!(status, 400);
    assert!(text.contains("YAML nodes (aliases expanded)"), "{text}");

    let deep =
        |open: &str, close: &str, n: usize| format!("{}x{}", open.repeat(n), close.repeat(n));
    for deep in [
        deep("[", "]", 20_000),
        deep("{a: ", "}", 10_000),
        deep("- ", "", 10_000),
    ] {
        let start = deep[..8].to_string();
        let (status, text) = post(deep).await;
        assert_eq!(status, 400, "{start}");
        assert!(
            text.contains(&format!("nests deeper than {MAX_YAML_DEPTH}")),
            "{text} {start}"
        );
    }
}

fn sealed_with_values(values: usize, garbage_from: usize) -> crds::SealedSecret {
    let key = sealing_key("key2");
    let secret = k8s_openapi::api::core::v1::Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("many".into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        data: Some(
            (0..values)
                .map(|i| {
                    (
                        format!("k{i:04}"),
                        k8s_openapi::ByteString(format!("value-{i}").into_bytes()),
                    )
                })
                .collect(),
        ),
        ..Default::default()
    };
    let mut sealed =
        sealing::seal_secret(&secret, key.private.public_key(), &Default::default()).unwrap();
    let garbage = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        [&[2u8, 0][..], &[7u8; 512][..], &[9u8; 64][..]].concat(),
    );
    for (_, value) in sealed.spec.encrypted_data.iter_mut().skip(garbage_from) {
        value.clone_from(&garbage);
    }
    sealed
}

#[test]
fn opening_stops_at_the_first_value_no_key_opens() {
    let (key1, key2) = (sealing_key("key1"), sealing_key("key2"));
    let keys = [&key1.private, &key2.private];
    // Two good values, then 60 that no key opens.
    let sealed = sealed_with_values(62, 2);
    let mut budget = RsaBudget::new(MAX_RSA_OPERATIONS);
    let refusal = open_values(&sealed, &keys, &mut budget).unwrap_err();
    assert_eq!(refusal.status, 409);
    // key1 fails then key2 opens the first value; key2 the second; both keys fail the third.
    assert_eq!(budget.spent, 2 + 1 + 2);

    let good = sealed_with_values(10, 10);
    let mut budget = RsaBudget::new(MAX_RSA_OPERATIONS);
    let opened = open_values(&good, &keys, &mut budget).unwrap();
    assert_eq!(opened.len(), 10);
    assert_eq!(opened["k0003"].as_slice(), b"value-3");
    assert_eq!(budget.spent, 11, "the key that opened one value goes first");
}

#[tokio::test]
async fn a_sealed_secret_costing_more_rsa_operations_than_the_cap_is_refused() {
    let base = serve(key_ring(), 0.0, 1).await;
    let http = reqwest::Client::new();
    let body =
        serde_json::to_string(&sealed_with_values(MAX_RSA_OPERATIONS + 1, usize::MAX)).unwrap();
    for endpoint in ["verify", "rotate"] {
        let response = http
            .post(format!("{base}/v1/{endpoint}"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413, "{endpoint}");
        let text = response.text().await.unwrap();
        assert!(text.contains("RSA operations"), "{text}");
    }
    let (key1, key2) = (sealing_key("key1"), sealing_key("key2"));
    let at_cap = sealed_with_values(MAX_RSA_OPERATIONS - 1, usize::MAX);
    let mut budget = RsaBudget::new(MAX_RSA_OPERATIONS);
    assert!(open_values(&at_cap, &[&key1.private, &key2.private], &mut budget).is_ok());
    assert!(budget.spent <= MAX_RSA_OPERATIONS);
}
