//! The ExternalSecret reconciler's flags in two stages, as ripgrep does it: [`ExternalSecretsArgs`]
//! is what clap parsed (text, each default written once as a constant), [`Settings`] is the
//! validated form the reconciler runs with (durations parsed, provider options built). Nothing
//! else reads the flags.

use std::path::PathBuf;
use std::time::Duration;

use super::provider::{aws::AwsOptions, vault::VaultOptions};
use super::registry::ProviderOptions;
use crate::duration::parse_go_duration;

pub const DEFAULT_CONCURRENCY: u16 = 4;
pub const DEFAULT_CONTROLLER_CLASS: &str = "default";
pub const DEFAULT_AWS_MAX_ATTEMPTS: u32 = 3;
pub const DEFAULT_PROVIDER_TIMEOUT: &str = "30s";
pub const DEFAULT_STORE_REQUEUE_INTERVAL: &str = "5m";
pub const DEFAULT_CACHE_SIZE: usize = 100_000;
/// The pod's own service-account token, projected and rotated by the kubelet.
pub const DEFAULT_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
pub const DEFAULT_SHUTDOWN_GRACE: &str = "10s";
/// ESO's reporter name: alerting and `kubectl get events` filters key on it.
pub const DEFAULT_EVENT_REPORTER: &str = "external-secrets";
pub const DEFAULT_LEFT_DELIMITER: &str = "{{";
pub const DEFAULT_RIGHT_DELIMITER: &str = "}}";

/// Flags of the ExternalSecret reconciler (each also read from an environment variable).
#[derive(clap::Args, Debug, Clone)]
pub struct ExternalSecretsArgs {
    /// Run the ExternalSecret reconciler.
    #[arg(
        long = "enable-external-secrets",
        env = "ENABLE_EXTERNAL_SECRETS",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub enabled: bool,

    /// ExternalSecrets reconciled in parallel.
    #[arg(
        long = "external-secrets-concurrent",
        env = "EXTERNAL_SECRETS_CONCURRENT",
        default_value_t = DEFAULT_CONCURRENCY
    )]
    pub concurrency: u16,

    /// Only watch this namespace (default: all namespaces).
    #[arg(
        long = "external-secrets-namespace",
        env = "EXTERNAL_SECRETS_NAMESPACE"
    )]
    pub namespace: Option<String>,

    /// Serve stores whose `spec.controller` is this class (stores without one are always served).
    #[arg(
        long = "external-secrets-controller-class",
        env = "EXTERNAL_SECRETS_CONTROLLER_CLASS",
        default_value = DEFAULT_CONTROLLER_CLASS
    )]
    pub controller_class: String,

    /// ESO's endpoint override for Secrets Manager (`AWS_ENDPOINT_URL` and
    /// `AWS_ENDPOINT_URL_SECRETS_MANAGER` are honoured by the AWS SDK itself).
    #[arg(
        long = "aws-secretsmanager-endpoint",
        env = "AWS_SECRETSMANAGER_ENDPOINT"
    )]
    pub aws_secretsmanager_endpoint: Option<String>,

    /// Attempts per AWS call (throttling and 5xx are retried with jittered backoff).
    #[arg(
        long = "external-secrets-aws-max-attempts",
        env = "EXTERNAL_SECRETS_AWS_MAX_ATTEMPTS",
        default_value_t = DEFAULT_AWS_MAX_ATTEMPTS
    )]
    pub aws_max_attempts: u32,

    /// Timeout of one provider call (Go duration).
    #[arg(
        long = "external-secrets-provider-timeout",
        env = "EXTERNAL_SECRETS_PROVIDER_TIMEOUT",
        default_value = DEFAULT_PROVIDER_TIMEOUT
    )]
    pub provider_timeout: String,

    /// How often stores are re-validated (Go duration), ESO's `--store-requeue-interval`.
    #[arg(
        long = "external-secrets-store-requeue-interval",
        env = "EXTERNAL_SECRETS_STORE_REQUEUE_INTERVAL",
        default_value = DEFAULT_STORE_REQUEUE_INTERVAL
    )]
    pub store_requeue_interval: String,

    /// Upper bound of cached provider values shared between ExternalSecrets.
    #[arg(
        long = "external-secrets-cache-size",
        env = "EXTERNAL_SECRETS_CACHE_SIZE",
        default_value_t = DEFAULT_CACHE_SIZE
    )]
    pub cache_size: usize,

    /// Service-account token file for Vault Kubernetes auth without a serviceAccountRef.
    #[arg(
        long = "external-secrets-vault-token-path",
        env = "EXTERNAL_SECRETS_VAULT_TOKEN_PATH",
        default_value = DEFAULT_TOKEN_PATH
    )]
    pub vault_kubernetes_token_path: PathBuf,

    /// How long to wait for in-flight reconciles after shutdown before returning anyway (a
    /// watcher that never becomes ready, e.g. a missing CRD, would otherwise hold shutdown).
    #[arg(
        long = "external-secrets-shutdown-grace",
        env = "EXTERNAL_SECRETS_SHUTDOWN_GRACE",
        default_value = DEFAULT_SHUTDOWN_GRACE
    )]
    pub shutdown_grace: String,

    /// Name reported on Kubernetes Events (ESO's is `external-secrets`).
    #[arg(
        long = "external-secrets-event-reporter",
        env = "EXTERNAL_SECRETS_EVENT_REPORTER",
        default_value = DEFAULT_EVENT_REPORTER
    )]
    pub event_reporter: String,

    /// Left delimiter of template actions (ESO's flag of the same name).
    #[arg(
        long = "template-left-delimiter",
        env = "TEMPLATE_LEFT_DELIMITER",
        default_value = DEFAULT_LEFT_DELIMITER
    )]
    pub template_left_delimiter: String,

    /// Right delimiter of template actions (ESO's flag of the same name).
    #[arg(
        long = "template-right-delimiter",
        env = "TEMPLATE_RIGHT_DELIMITER",
        default_value = DEFAULT_RIGHT_DELIMITER
    )]
    pub template_right_delimiter: String,
}

impl Default for ExternalSecretsArgs {
    fn default() -> Self {
        ExternalSecretsArgs {
            enabled: true,
            concurrency: DEFAULT_CONCURRENCY,
            namespace: None,
            controller_class: DEFAULT_CONTROLLER_CLASS.into(),
            aws_secretsmanager_endpoint: None,
            aws_max_attempts: DEFAULT_AWS_MAX_ATTEMPTS,
            provider_timeout: DEFAULT_PROVIDER_TIMEOUT.into(),
            store_requeue_interval: DEFAULT_STORE_REQUEUE_INTERVAL.into(),
            cache_size: DEFAULT_CACHE_SIZE,
            vault_kubernetes_token_path: DEFAULT_TOKEN_PATH.into(),
            event_reporter: DEFAULT_EVENT_REPORTER.into(),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE.into(),
            template_left_delimiter: DEFAULT_LEFT_DELIMITER.into(),
            template_right_delimiter: DEFAULT_RIGHT_DELIMITER.into(),
        }
    }
}

/// A flag that does not hold a valid value.
#[derive(Debug, thiserror::Error)]
#[error("--{flag}: {problem}")]
pub struct FlagError {
    pub flag: &'static str,
    pub problem: String,
}

/// The validated settings the reconciler runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub enabled: bool,
    pub concurrency: u16,
    pub namespace: Option<String>,
    pub controller_class: String,
    pub provider: ProviderOptions,
    pub store_requeue_interval: Duration,
    pub cache_size: usize,
    pub shutdown_grace: Duration,
    pub event_reporter: String,
    /// How templates run: the budget and the delimiters.
    pub template: templating::Options,
}

fn duration(flag: &'static str, text: &str) -> Result<Duration, FlagError> {
    parse_go_duration(text).map_err(|e| FlagError {
        flag,
        problem: e.to_string(),
    })
}

/// A delimiter must be non-empty text without whitespace (Go would accept more, but a
/// delimiter with spaces or newlines only ever produces confusing templates).
fn delimiter(flag: &'static str, text: &str) -> Result<String, FlagError> {
    if text.is_empty() || text.chars().any(char::is_whitespace) {
        return Err(FlagError {
            flag,
            problem: "must be non-empty and contain no whitespace".into(),
        });
    }
    Ok(text.to_string())
}

impl ExternalSecretsArgs {
    /// Checks every flag once and builds the settings.
    pub fn settings(&self) -> Result<Settings, FlagError> {
        let timeout = duration("external-secrets-provider-timeout", &self.provider_timeout)?;
        if self.aws_max_attempts == 0 {
            return Err(FlagError {
                flag: "external-secrets-aws-max-attempts",
                problem: "must be at least 1".into(),
            });
        }
        Ok(Settings {
            enabled: self.enabled,
            concurrency: self.concurrency,
            namespace: self.namespace.clone().filter(|n| !n.is_empty()),
            controller_class: self.controller_class.clone(),
            provider: ProviderOptions {
                aws: AwsOptions {
                    endpoint_override: self.aws_secretsmanager_endpoint.clone(),
                    max_attempts: self.aws_max_attempts,
                    operation_timeout: timeout,
                    ..Default::default()
                },
                vault: VaultOptions { timeout },
                kube_token_path: self.vault_kubernetes_token_path.clone(),
            },
            store_requeue_interval: duration(
                "external-secrets-store-requeue-interval",
                &self.store_requeue_interval,
            )?,
            cache_size: self.cache_size,
            shutdown_grace: duration("external-secrets-shutdown-grace", &self.shutdown_grace)?,
            event_reporter: self.event_reporter.clone(),
            template: templating::Options {
                left_delim: delimiter("template-left-delimiter", &self.template_left_delimiter)?,
                right_delim: delimiter("template-right-delimiter", &self.template_right_delimiter)?,
                ..templating::Options::default()
            },
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_name_their_flag() {
        let s = ExternalSecretsArgs::default().settings().unwrap();
        assert_eq!(s.store_requeue_interval, Duration::from_secs(300));
        assert_eq!(s.provider.vault.timeout, Duration::from_secs(30));
        assert_eq!(
            s.provider.kube_token_path,
            PathBuf::from(DEFAULT_TOKEN_PATH)
        );
        assert_eq!(s.event_reporter, "external-secrets");
        let bad = ExternalSecretsArgs {
            shutdown_grace: "soon".into(),
            ..Default::default()
        };
        let e = bad.settings().unwrap_err().to_string();
        assert!(e.starts_with("--external-secrets-shutdown-grace:"), "{e}");
        let bad = ExternalSecretsArgs {
            aws_max_attempts: 0,
            ..Default::default()
        };
        assert!(bad.settings().is_err());
        assert_eq!(
            (
                s.template.left_delim.as_str(),
                s.template.right_delim.as_str()
            ),
            ("{{", "}}")
        );
        let bad = ExternalSecretsArgs {
            template_left_delimiter: String::new(),
            ..Default::default()
        };
        let e = bad.settings().unwrap_err().to_string();
        assert!(e.starts_with("--template-left-delimiter:"), "{e}");
    }
}
