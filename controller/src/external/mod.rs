//! ExternalSecret sync from Vault and AWS Secrets Manager (External Secrets Operator compatible).
//!
//! Decisions live in plain modules (`schedule`, `data`, `template`, `secret`); providers sit
//! behind one trait (`provider`); the coalescing cache (`cache`) shares provider calls between
//! ExternalSecrets; `stores` keeps one provider client per store; `owned` holds the managed
//! Secrets as their watch delivers them (no values); `reconciler` is the thin Kubernetes I/O
//! around them, and [`run`] drives it from kube-runtime controllers.

pub mod cache;
pub mod credentials;
pub mod data;
pub mod gjson;
pub mod metrics;
pub mod owned;
pub mod plan;
pub mod provider;
pub mod reconciler;
pub mod registry;
pub mod schedule;
pub mod secret;
pub mod settings;
pub mod store_status;
pub mod stores;
pub mod template;

use std::future::Future;
use std::sync::Arc;

use crds::external_secrets::{ClusterSecretStore, ExternalSecret, SecretStore};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::runtime::reflector::{self, reflector};
use kube::runtime::{Controller, WatchStreamExt as _, controller, watcher};

use crate::events::{Recorder, Reporter};
use crate::lease::Leadership;

pub use metrics::Metrics;
pub use reconciler::{Context, Error};
pub use settings::{ExternalSecretsArgs, Settings};

/// Store events a slow store-status reconciler may lag behind before the shared watch waits.
const STORE_EVENTS_BUFFER: usize = 256;

/// Errors that stop [`run`].
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("invalid flag {0}")]
    Flag(#[from] settings::FlagError),
    #[error("internal error: {0}")]
    Internal(&'static str),
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
    Ok(context_with(
        client,
        &args.settings()?,
        metrics,
        with_events,
    ))
}

fn context_with(
    client: kube::Client,
    settings: &Settings,
    metrics: Metrics,
    with_events: bool,
) -> Context {
    let recorder = with_events.then(|| {
        Recorder::new(
            client.clone(),
            Reporter {
                controller: settings.event_reporter.clone(),
                instance: std::env::var("POD_NAME").ok(),
            },
        )
    });
    Context::new(client, metrics, settings, recorder)
}

/// The APIs of the namespaced kinds: one namespace's with `--namespace`, else every namespace's.
fn scoped_apis(
    client: &kube::Client,
    namespace: Option<&str>,
) -> (Api<ExternalSecret>, Api<Secret>, Api<SecretStore>) {
    match namespace {
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
    }
}

/// The ExternalSecrets among `all` whose `secretStoreRef` names the store `kind`/`name` (in
/// namespace `ns` for a SecretStore; an empty kind means SecretStore).
fn users_of_store(
    all: &[Arc<ExternalSecret>],
    kind: &str,
    ns: Option<&str>,
    name: &str,
) -> Vec<reflector::ObjectRef<ExternalSecret>> {
    all.iter()
        .filter(|es| {
            let r = &es.spec.secret_store_ref;
            let kind_ok = r.kind == kind || (kind == "SecretStore" && r.kind.is_empty());
            let ns_ok = ns.is_none() || es.metadata.namespace.as_deref() == ns;
            kind_ok && ns_ok && r.name == name
        })
        .map(|es| reflector::ObjectRef::from_obj(&**es))
        .collect()
}

/// Runs the ExternalSecret, SecretStore and ClusterSecretStore reconcilers until `shutdown`
/// completes. With `--enable-external-secrets=false` it only waits for `shutdown`.
pub async fn run(
    client: kube::Client,
    args: ExternalSecretsArgs,
    metrics: Metrics,
    leadership: Leadership,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let settings = args.settings()?;
    if !settings.enabled {
        shutdown.await;
        return Ok(());
    }
    let store_interval = settings.store_requeue_interval;
    let grace = settings.shutdown_grace;
    let shutdown = shutdown.boxed().shared();
    let (es_api, secret_api, ss_api) = scoped_apis(&client, settings.namespace.as_deref());
    let css_api: Api<ClusterSecretStore> = Api::all(client.clone());

    // Each cache is filled by the watch that wakes the ExternalSecrets it concerns, so a woken
    // reconcile finds the change that woke it (see `crate::owned`).
    // One watch per store kind serves the lookups, wakes the ExternalSecrets and (subscribed)
    // drives the store-status reconcilers: one list per kind, not two.
    let owned = owned::owned_secrets();
    let (ss_reader, ss_writer) = reflector::store_shared(STORE_EVENTS_BUFFER);
    let (css_reader, css_writer) = reflector::store_shared(STORE_EVENTS_BUFFER);
    let (Some(ss_events), Some(css_events)) = (ss_writer.subscribe(), css_writer.subscribe())
    else {
        return Err(RunError::Internal(
            "a shared store watch gave no subscription",
        ));
    };
    let status_readers = (ss_reader.clone(), css_reader.clone());
    let mut ctx = context_with(client.clone(), &settings, metrics, true);
    ctx.owned = Some(owned.clone());
    ctx.stores_watched = Some(stores::WatchedStores {
        namespaced: ss_reader,
        cluster: css_reader,
    });
    let ctx = Arc::new(ctx);
    let ss_watch = reflector(
        ss_writer,
        watcher(ss_api, watcher::Config::default()).default_backoff(),
    )
    .touched_objects();
    let css_watch = reflector(
        css_writer,
        watcher(css_api, watcher::Config::default()).default_backoff(),
    )
    .touched_objects();

    let es_controller = crate::watched::controller(es_api, watcher::Config::default());
    let es_store = es_controller.store();
    // A changed store re-reconciles the ExternalSecrets that use it.
    let by_store = move |kind: &'static str, ns: Option<String>, name: String| {
        users_of_store(&es_store.state(), kind, ns.as_deref(), &name)
    };
    let by_store_css = by_store.clone();
    let managed = owned.watch(
        secret_api,
        watcher::Config::default().labels(&format!("{}=true", secret::MANAGED_LABEL)),
    );
    let es_loop = es_controller
        .owns_stream(managed)
        .watches_stream(ss_watch, move |s: SecretStore| {
            by_store(
                "SecretStore",
                s.metadata.namespace.clone(),
                s.metadata.name.clone().unwrap_or_default(),
            )
        })
        .watches_stream(css_watch, move |s: ClusterSecretStore| {
            by_store_css(
                "ClusterSecretStore",
                None,
                s.metadata.name.clone().unwrap_or_default(),
            )
        })
        .with_config(controller::Config::default().concurrency(settings.concurrency))
        .reconcile_all_on(leadership.terms())
        .graceful_shutdown_on(shutdown.clone())
        .run(
            leadership.gate(reconciler::reconcile),
            reconciler::error_policy,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));

    let ss_loop = Controller::for_shared_stream(ss_events, status_readers.0)
        .reconcile_all_on(leadership.terms())
        .graceful_shutdown_on(shutdown.clone())
        .run(
            leadership.gate(move |s, c| store_status::reconcile_secret_store(s, c, store_interval)),
            store_status::error_policy,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));
    let css_loop = Controller::for_shared_stream(css_events, status_readers.1)
        .reconcile_all_on(leadership.terms())
        .graceful_shutdown_on(shutdown.clone())
        .run(
            leadership
                .gate(move |s, c| store_status::reconcile_cluster_store(s, c, store_interval)),
            store_status::error_policy,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn es(ns: &str, name: &str, kind: &str, store: &str) -> Arc<ExternalSecret> {
        let mut es = ExternalSecret::new(name, Default::default());
        es.metadata.namespace = Some(ns.into());
        es.spec.secret_store_ref.kind = kind.into();
        es.spec.secret_store_ref.name = store.into();
        Arc::new(es)
    }

    #[test]
    fn a_changed_store_wakes_exactly_the_external_secrets_that_name_it() {
        let all = [
            es("a", "implicit-kind", "", "vault"),
            es("a", "explicit", "SecretStore", "vault"),
            es("b", "other-namespace", "SecretStore", "vault"),
            es("a", "cluster", "ClusterSecretStore", "vault"),
            es("b", "cluster-b", "ClusterSecretStore", "vault"),
            es("a", "other-store", "SecretStore", "aws"),
        ];
        let names = |refs: Vec<reflector::ObjectRef<ExternalSecret>>| {
            refs.into_iter().map(|r| r.name).collect::<Vec<_>>()
        };
        assert_eq!(
            names(users_of_store(&all, "SecretStore", Some("a"), "vault")),
            ["implicit-kind", "explicit"]
        );
        assert_eq!(
            names(users_of_store(&all, "ClusterSecretStore", None, "vault")),
            ["cluster", "cluster-b"]
        );
    }
}
