//! Prometheus metrics of the ExternalSecret reconciler. Names are exactly ESO's where ESO has one
//! (`externalsecret_provider_api_calls_count`, `externalsecret_sync_calls_total`,
//! `externalsecret_sync_calls_error`, `externalsecret_status_condition`), as ESO's Grafana
//! dashboard queries them; the per-store labels and the coalescing counters are ours.

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// `SecretStore/<namespace>/<name>` or `ClusterSecretStore/<name>`.
    pub store: String,
    pub provider: String,
    pub call: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreLabels {
    pub store: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EsLabels {
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabels {
    pub namespace: String,
    pub name: String,
    pub condition: String,
    pub status: String,
}

/// A counter exposed under its registered name exactly. prometheus-client appends `_total` to
/// every counter (OpenMetrics requires it), but ESO's `externalsecret_sync_calls_error` and
/// `externalsecret_provider_api_calls_count` have no such suffix and dashboards query them by
/// those names; OpenMetrics allows any name for type `unknown`, and PromQL's `rate`/`increase`
/// do not look at the type.
#[derive(Clone, Debug, Default)]
pub struct PlainCounter(Counter);

impl PlainCounter {
    pub fn inc(&self) -> u64 {
        self.0.inc()
    }

    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

impl TypedMetric for PlainCounter {
    const TYPE: MetricType = MetricType::Unknown;
}

impl EncodeMetric for PlainCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.0.get())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Unknown
    }
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// Cheap to clone: every field is a shared handle.
#[derive(Clone, Debug)]
pub struct Metrics {
    pub provider_calls: Family<CallLabels, PlainCounter>,
    pub cache_hits: Family<StoreLabels, Counter>,
    pub sync_calls: Family<EsLabels, Counter>,
    pub sync_errors: Family<EsLabels, PlainCounter>,
    pub status_condition: Family<ConditionLabels, Gauge>,
    pub reconcile_duration: Family<EsLabels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            provider_calls: Family::default(),
            cache_hits: Family::default(),
            sync_calls: Family::default(),
            sync_errors: Family::default(),
            status_condition: Family::default(),
            reconcile_duration: Family::new_with_constructor(duration_histogram),
        }
    }
}

impl Metrics {
    /// Creates the metrics and registers them in `registry` (the binary's /metrics registry).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Metrics::default();
        registry.register(
            "externalsecret_provider_api_calls_count",
            "Provider API calls, per store, call and status",
            m.provider_calls.clone(),
        );
        registry.register(
            "externalsecret_provider_cache_hits",
            "Provider reads served by the coalescing cache instead of a provider call",
            m.cache_hits.clone(),
        );
        registry.register(
            "externalsecret_sync_calls",
            "ExternalSecret syncs",
            m.sync_calls.clone(),
        );
        registry.register(
            "externalsecret_sync_calls_error",
            "ExternalSecret syncs that failed",
            m.sync_errors.clone(),
        );
        registry.register(
            "externalsecret_status_condition",
            "ExternalSecret status condition (1 for the current status)",
            m.status_condition.clone(),
        );
        registry.register(
            "externalsecret_reconcile_duration_seconds",
            "Time to reconcile one ExternalSecret",
            m.reconcile_duration.clone(),
        );
        m
    }

    pub fn provider_call(&self, store: &str, provider: &str, call: &str, status: &str) {
        self.provider_calls
            .get_or_create(&CallLabels {
                store: store.to_string(),
                provider: provider.to_string(),
                call: call.to_string(),
                status: status.to_string(),
            })
            .inc();
    }

    /// Sum of provider calls recorded for `store` (tests and the benchmark).
    pub fn provider_calls_for(&self, store: &str) -> u64 {
        // Family has no iteration API; encode and sum the matching lines instead.
        let mut registry = Registry::default();
        registry.register("c", "c", self.provider_calls.clone());
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &registry).is_err() {
            return 0;
        }
        let needle = format!("store=\"{store}\"");
        text.lines()
            .filter(|l| l.starts_with("c{") && l.contains(&needle))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    pub fn condition(&self, namespace: &str, name: &str, ready: bool) {
        for (status, value) in [("True", ready), ("False", !ready)] {
            self.status_condition
                .get_or_create(&ConditionLabels {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    condition: "Ready".to_string(),
                    status: status.to_string(),
                })
                .set(i64::from(value));
        }
    }
}
