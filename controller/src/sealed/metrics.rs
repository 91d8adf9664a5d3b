//! Prometheus metrics with Bitnami's names, plus ours for the RSA work saved.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `fetch`, `unseal`, `update`, `unmanaged` or `status`, as Bitnami's.
    pub reason: String,
    pub namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabels {
    pub namespace: String,
    pub name: String,
    pub condition: String,
    pub ss_app_kubernetes_io_instance: String,
}

#[derive(Clone, Debug, Default)]
pub struct SealedMetrics {
    pub unseal_requests: Counter,
    pub unseal_errors: Family<ErrorLabels, Counter>,
    /// 1 true, 0 unknown, -1 false.
    pub condition_info: Family<ConditionLabels, Gauge>,
    pub rsa_operations: Counter,
    pub skipped_unchanged: Counter,
}

impl SealedMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let prefixed = registry.sub_registry_with_prefix("sealed_secrets_controller");
        prefixed.register(
            "unseal_requests",
            "SealedSecrets processed by the reconciler",
            metrics.unseal_requests.clone(),
        );
        prefixed.register(
            "unseal_errors",
            "SealedSecrets that failed, by reason",
            metrics.unseal_errors.clone(),
        );
        prefixed.register(
            "condition_info",
            "Synced condition of each SealedSecret: 1 true, 0 unknown, -1 false",
            metrics.condition_info.clone(),
        );
        prefixed.register(
            "rsa_operations",
            "RSA private-key operations spent unsealing, failed tries included",
            metrics.rsa_operations.clone(),
        );
        prefixed.register(
            "unseal_skipped_unchanged",
            "Reconciles that found the Secret up to date and decrypted nothing",
            metrics.skipped_unchanged.clone(),
        );
        metrics
    }

    pub fn error(&self, reason: &str, namespace: &str) {
        self.unseal_errors
            .get_or_create(&ErrorLabels {
                reason: reason.into(),
                namespace: namespace.into(),
            })
            .inc();
    }
}
