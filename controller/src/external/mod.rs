//! ExternalSecret sync from Vault and AWS Secrets Manager (External Secrets Operator compatible).
//!
//! Decisions live in plain modules (`schedule`, `data`, `template`, `secret`); providers sit
//! behind one trait (`provider`); the coalescing cache (`cache`) shares provider calls between
//! ExternalSecrets; `stores` keeps one provider client per store; `reconciler` is the thin
//! Kubernetes I/O around them, and [`run`] drives it from kube-runtime controllers.

pub mod cache;
pub mod data;
pub mod metrics;
pub mod plan;
pub mod provider;
pub mod reconciler;
pub mod schedule;
pub mod secret;
pub mod stores;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crds::external_secrets::{ClusterSecretStore, ExternalSecret, SecretStore};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, controller, watcher};

pub use metrics::Metrics;
pub use reconciler::{Context, Error};

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
        default_value_t = 4
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
        default_value = "default"
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
        default_value_t = 3
    )]
    pub aws_max_attempts: u32,

    /// Timeout of one provider call (Go duration).
    #[arg(
        long = "external-secrets-provider-timeout",
        env = "EXTERNAL_SECRETS_PROVIDER_TIMEOUT",
        default_value = "30s"
    )]
    pub provider_timeout: String,

    /// How often stores are re-validated (Go duration), ESO's `--store-requeue-interval`.
    #[arg(
        long = "external-secrets-store-requeue-interval",
        env = "EXTERNAL_SECRETS_STORE_REQUEUE_INTERVAL",
        default_value = "5m"
    )]
    pub store_requeue_interval: String,

    /// Upper bound of cached provider values shared between ExternalSecrets.
    #[arg(
        long = "external-secrets-cache-size",
        env = "EXTERNAL_SECRETS_CACHE_SIZE",
        default_value_t = 100_000
    )]
    pub cache_size: usize,

    /// Service-account token file for Vault Kubernetes auth without a serviceAccountRef.
    #[arg(
        long = "external-secrets-vault-token-path",
        env = "EXTERNAL_SECRETS_VAULT_TOKEN_PATH",
        default_value = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    )]
    pub vault_kubernetes_token_path: std::path::PathBuf,

    /// How long to wait for in-flight reconciles after shutdown before returning anyway (a
    /// watcher that never becomes ready, e.g. a missing CRD, would otherwise hold shutdown).
    #[arg(
        long = "external-secrets-shutdown-grace",
        env = "EXTERNAL_SECRETS_SHUTDOWN_GRACE",
        default_value = "10s"
    )]
    pub shutdown_grace: String,

    /// Name reported on Kubernetes Events.
    #[arg(
        long = "external-secrets-event-reporter",
        env = "EXTERNAL_SECRETS_EVENT_REPORTER",
        default_value = "secrets-controller"
    )]
    pub event_reporter: String,
}

impl Default for ExternalSecretsArgs {
    fn default() -> Self {
        ExternalSecretsArgs {
            enabled: true,
            concurrency: 4,
            namespace: None,
            controller_class: "default".into(),
            aws_secretsmanager_endpoint: None,
            aws_max_attempts: 3,
            provider_timeout: "30s".into(),
            store_requeue_interval: "5m".into(),
            cache_size: 100_000,
            vault_kubernetes_token_path: "/var/run/secrets/kubernetes.io/serviceaccount/token"
                .into(),
            event_reporter: "secrets-controller".into(),
            shutdown_grace: "10s".into(),
        }
    }
}

/// Errors that stop [`run`].
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("invalid flag: {0}")]
    Flag(String),
}

/// Creates the reconciler's metrics in the binary's /metrics registry.
pub fn register_metrics(registry: &mut prometheus_client::registry::Registry) -> Metrics {
    Metrics::register(registry)
}

/// Builds the shared reconcile context from the flags (also used by tests and the benchmark).
pub fn context(
    client: kube::Client,
    args: &ExternalSecretsArgs,
    metrics: Metrics,
    with_events: bool,
) -> Result<Context, RunError> {
    let timeout = schedule::parse_go_duration(&args.provider_timeout)
        .map_err(|e| RunError::Flag(e.to_string()))?;
    let options = stores::ProviderOptions {
        aws: provider::aws::AwsOptions {
            endpoint_override: args.aws_secretsmanager_endpoint.clone(),
            max_attempts: args.aws_max_attempts,
            operation_timeout: timeout,
            ..Default::default()
        },
        vault: provider::vault::VaultOptions { timeout },
        kube_token_path: Some(args.vault_kubernetes_token_path.clone()),
    };
    let recorder = with_events.then(|| {
        Recorder::new(
            client.clone(),
            Reporter {
                controller: args.event_reporter.clone(),
                instance: std::env::var("POD_NAME").ok(),
            },
        )
    });
    Ok(Context::new(
        client,
        metrics,
        options,
        args.controller_class.clone(),
        recorder,
        args.cache_size,
    ))
}

/// Runs the ExternalSecret, SecretStore and ClusterSecretStore reconcilers until `shutdown`
/// completes. With `--enable-external-secrets=false` it only waits for `shutdown`.
pub async fn run(
    client: kube::Client,
    args: ExternalSecretsArgs,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    if !args.enabled {
        shutdown.await;
        return Ok(());
    }
    let store_interval = schedule::parse_go_duration(&args.store_requeue_interval)
        .map_err(|e| RunError::Flag(e.to_string()))?;
    let grace = schedule::parse_go_duration(&args.shutdown_grace)
        .map_err(|e| RunError::Flag(e.to_string()))?;
    let ctx = Arc::new(context(client.clone(), &args, metrics, true)?);
    let shutdown = shutdown.boxed().shared();

    let (es_api, secret_api, ss_api): (Api<ExternalSecret>, Api<Secret>, Api<SecretStore>) =
        match &args.namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
            ),
        };
    let css_api: Api<ClusterSecretStore> = Api::all(client.clone());

    let es_controller = Controller::new(es_api, watcher::Config::default());
    let es_store = es_controller.store();
    // A changed store re-reconciles the ExternalSecrets that use it.
    let by_store = move |kind: &'static str, ns: Option<String>, name: String| {
        es_store
            .state()
            .into_iter()
            .filter(|es| {
                let r = &es.spec.secret_store_ref;
                let kind_ok = r.kind == kind || (kind == "SecretStore" && r.kind.is_empty());
                let ns_ok = ns.is_none() || es.metadata.namespace == ns;
                kind_ok && ns_ok && r.name == name
            })
            .map(|es| ObjectRef::from_obj(&*es))
            .collect::<Vec<_>>()
    };
    let by_store_css = by_store.clone();
    let es_loop = es_controller
        .owns(
            secret_api,
            watcher::Config::default().labels(&format!("{}=true", secret::MANAGED_LABEL)),
        )
        .watches(
            ss_api.clone(),
            watcher::Config::default(),
            move |s: SecretStore| {
                by_store(
                    "SecretStore",
                    s.metadata.namespace.clone(),
                    s.metadata.name.clone().unwrap_or_default(),
                )
            },
        )
        .watches(
            css_api.clone(),
            watcher::Config::default(),
            move |s: ClusterSecretStore| {
                by_store_css(
                    "ClusterSecretStore",
                    None,
                    s.metadata.name.clone().unwrap_or_default(),
                )
            },
        )
        .with_config(controller::Config::default().concurrency(args.concurrency))
        .graceful_shutdown_on(shutdown.clone())
        .run(reconciler::reconcile, reconciler::error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));

    let ss_loop = Controller::new(ss_api, watcher::Config::default())
        .graceful_shutdown_on(shutdown.clone())
        .run(
            move |s, c| stores_status::reconcile_secret_store(s, c, store_interval),
            stores_status::error_policy,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));
    let css_loop = Controller::new(css_api, watcher::Config::default())
        .graceful_shutdown_on(shutdown.clone())
        .run(
            move |s, c| stores_status::reconcile_cluster_store(s, c, store_interval),
            stores_status::error_policy,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));
    tracing::info!("external secrets reconciler started");
    let all = async {
        futures::join!(es_loop, ss_loop, css_loop);
    };
    let deadline = async move {
        shutdown.await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        () = all => {}
        () = deadline => {
            tracing::warn!("external secrets reconciler did not stop within the shutdown grace period");
        }
    }
    Ok(())
}

/// Store validation: a Ready condition on every SecretStore / ClusterSecretStore.
pub mod stores_status {
    use super::*;
    use crds::external_secrets::{SecretStoreStatus, StoreSpec};
    use kube::ResourceExt;
    use kube::api::{Patch, PatchParams};
    use kube::runtime::controller::Action;

    async fn validate(
        ctx: &Context,
        store: &stores::ResolvedStore,
    ) -> (bool, &'static str, String) {
        if let Err(e) = store.spec.provider.kind() {
            return (false, "InvalidProviderConfig", e);
        }
        match ctx
            .stores
            .client_for(&ctx.client, store, &ctx.options, &ctx.metrics, &ctx.cache)
            .await
        {
            Err(e) => (false, "InvalidProviderConfig", e.to_string()),
            Ok(sc) => match sc.provider.validate().await {
                Ok(()) => (true, "Valid", "store validated".into()),
                Err(e) => (false, "ValidationFailed", e.to_string()),
            },
        }
    }

    fn status(
        prev: Option<&SecretStoreStatus>,
        ok: bool,
        reason: &str,
        message: &str,
    ) -> SecretStoreStatus {
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        let prev_conditions = prev.map(|p| p.conditions.clone()).unwrap_or_default();
        SecretStoreStatus {
            conditions: secret::set_ready(&prev_conditions, ok, reason, message, &now),
            capabilities: Some("ReadOnly".into()),
        }
    }

    fn resolved(
        kind: &str,
        ns: Option<String>,
        name: String,
        spec: StoreSpec,
    ) -> stores::ResolvedStore {
        stores::ResolvedStore {
            id: match &ns {
                Some(ns) => format!("{kind}/{ns}/{name}"),
                None => format!("{kind}/{name}"),
            },
            kind: kind.to_string(),
            cluster: ns.is_none(),
            secrets_namespace: ns.unwrap_or_default(),
            name,
            spec,
        }
    }

    pub async fn reconcile_secret_store(
        s: Arc<SecretStore>,
        ctx: Arc<Context>,
        every: Duration,
    ) -> Result<Action, Error> {
        let ns = s.namespace().unwrap_or_default();
        let store = resolved(
            "SecretStore",
            Some(ns.clone()),
            s.name_any(),
            s.spec.store.clone(),
        );
        let (ok, reason, message) = validate(&ctx, &store).await;
        let st = status(s.status.as_ref(), ok, reason, &message);
        if s.status.as_ref() != Some(&st) {
            let api: Api<SecretStore> = Api::namespaced(ctx.client.clone(), &ns);
            api.patch_status(
                &s.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&serde_json::json!({"status": st})),
            )
            .await?;
        }
        Ok(Action::requeue(every))
    }

    pub async fn reconcile_cluster_store(
        s: Arc<ClusterSecretStore>,
        ctx: Arc<Context>,
        every: Duration,
    ) -> Result<Action, Error> {
        // Auth refs of a cluster store without a namespace cannot be checked here.
        let store = resolved(
            "ClusterSecretStore",
            None,
            s.name_any(),
            s.spec.store.clone(),
        );
        let (ok, reason, message) = validate(&ctx, &store).await;
        let st = status(s.status.as_ref(), ok, reason, &message);
        if s.status.as_ref() != Some(&st) {
            let api: Api<ClusterSecretStore> = Api::all(ctx.client.clone());
            api.patch_status(
                &s.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&serde_json::json!({"status": st})),
            )
            .await?;
        }
        Ok(Action::requeue(every))
    }

    pub fn error_policy<K>(_s: Arc<K>, err: &Error, _ctx: Arc<Context>) -> Action {
        tracing::warn!(error = %err, "store reconcile error");
        Action::requeue(Duration::from_secs(60))
    }
}
