//! Metric names are exactly the ones ESO's Grafana dashboard and Bitnami's alerts query
//! (tests/fixtures/eso-dashboard-metrics.txt): no `_total` appended to ESO's counters that have
//! none, and the labels the queries filter and group by.

use controller::external::metrics::{EsLabels, Metrics};
use controller::sealed::metrics::SealedMetrics;

fn exposition() -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    let external = Metrics::register(&mut registry);
    let sealed = SealedMetrics::register(&mut registry);
    let es = EsLabels {
        namespace: "app".into(),
        name: "db".into(),
    };
    external.provider_call("SecretStore/app/vault", "vault", "Get", "error");
    external.sync_calls.get_or_create(&es).inc();
    external.sync_errors.get_or_create(&es).inc();
    external.condition("app", "db", false);
    sealed.unseal_requests.inc();
    sealed.error("unseal", "app");
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    text
}

#[test]
fn eso_dashboard_metrics_exist_with_their_labels() {
    let text = exposition();
    let fixture = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/eso-dashboard-metrics.txt"),
    )
    .unwrap();
    for line in fixture
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let mut words = line.split_whitespace();
        let name = words.next().unwrap();
        let sample = text
            .lines()
            .find(|l| l.starts_with(&format!("{name}{{")))
            .unwrap_or_else(|| panic!("no sample named exactly {name} in\n{text}"));
        for label in words {
            assert!(
                sample.contains(&format!("{label}=\"")),
                "{name} lacks label {label}: {sample}"
            );
        }
    }
    assert!(
        !text.contains("externalsecret_sync_calls_error_total"),
        "{text}"
    );
    assert!(
        !text.contains("externalsecret_provider_api_calls_count_total"),
        "{text}"
    );
    assert!(
        text.contains("externalsecret_sync_calls_error{namespace=\"app\",name=\"db\"} 1"),
        "{text}"
    );
}

#[test]
fn bitnami_metric_names_are_kept() {
    let text = exposition();
    for sample in [
        "sealed_secrets_controller_unseal_requests_total 1",
        "sealed_secrets_controller_unseal_errors_total{reason=\"unseal\",namespace=\"app\"} 1",
    ] {
        assert!(text.contains(sample), "missing {sample} in\n{text}");
    }
}
