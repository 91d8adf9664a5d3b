//! The SealedSecret reconciler: thin Kubernetes I/O around the decisions in `desired`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crds::{SealedSecret, SealedSecretStatus};
use futures::{Stream, StreamExt as _};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt as _;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{self, Action};
use kube::runtime::watcher;

use super::desired::{self, ANNOTATION_KEY, FailReason, Outcome, Plan, WriteMode};
use super::keyring::KeyRing;
use super::metrics::{ConditionLabels, SealedMetrics};
use super::owned::OwnedSecrets;
use crate::events::Recorder;
use crate::lease::Leadership;
use crate::report::{self, Note};

/// What every reconcile needs.
pub struct Context {
    pub client: kube::Client,
    pub keys: KeyRing,
    pub metrics: SealedMetrics,
    pub recorder: Option<Recorder>,
    pub update_status: bool,
    /// Values of one SealedSecret opened at once.
    pub unseal_threads: usize,
    /// SealedSecrets being decrypted at once: one per CPU keeps the RSA work on the CPUs
    /// without a thread (and its memory) per waiting object.
    pub rsa_slots: Arc<tokio::sync::Semaphore>,
    /// The Secrets we wrote, as the watch delivered them; `None`: read each with a GET.
    pub owned: Option<OwnedSecrets>,
    /// The status last written for each SealedSecret, and the version it was decided from.
    pub status_writes: StatusWrites,
}

/// Status writes already made: a reconcile that sees the same version of a SealedSecret again
/// (the watch has not yet delivered our own status patch) would write the same status twice.
#[derive(Default)]
pub struct StatusWrites(std::sync::Mutex<HashMap<(String, String), (String, SealedSecretStatus)>>);

/// Forgotten all at once beyond this many objects: a forgotten entry costs one redundant write.
const MAX_STATUS_WRITES: usize = 100_000;

impl StatusWrites {
    /// Whether `status` was already written for this version of the object.
    fn already_written(
        &self,
        key: &(String, String),
        version: &str,
        status: &SealedSecretStatus,
    ) -> bool {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(key)
            .is_some_and(|(v, s)| v == version && same_status(s, status))
    }

    fn record(&self, key: (String, String), version: String, status: SealedSecretStatus) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_STATUS_WRITES {
            seen.clear();
        }
        seen.insert(key, (version, status));
    }
}

/// Equal but for the times of its conditions.
fn same_status(a: &SealedSecretStatus, b: &SealedSecretStatus) -> bool {
    let strip = |s: &SealedSecretStatus| {
        let mut s = s.clone();
        for c in &mut s.conditions {
            c.last_update_time = None;
            c.last_transition_time = None;
        }
        s
    };
    strip(a) == strip(b)
}

impl Context {
    /// One RSA slot per CPU.
    pub fn rsa_slots() -> Arc<tokio::sync::Semaphore> {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(tokio::sync::Semaphore::new(cpus))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("SealedSecret has no namespace or name")]
    Unnamed,
    #[error("no sealing key is loaded yet")]
    NoKeys,
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("unsealing was interrupted: {0}")]
    Interrupted(String),
}

/// Decrypts and writes; the Secret is left untouched on any failure.
async fn unseal_and_write(
    sealed: &Arc<SealedSecret>,
    existing: Option<&Secret>,
    mode: WriteMode,
    api: &Api<Secret>,
    ctx: &Context,
) -> Result<Outcome, ReconcileError> {
    let preferred = existing
        .and_then(|s| s.metadata.annotations.as_ref())
        .and_then(|a| a.get(ANNOTATION_KEY))
        .cloned();
    let keys = ctx.keys.try_order(preferred.as_deref());
    if keys.is_empty() {
        return Err(ReconcileError::NoKeys);
    }
    let job_sealed = Arc::clone(sealed);
    let threads = ctx.unseal_threads;
    let job_keys = keys.clone();
    let slot = ctx
        .rsa_slots
        .acquire()
        .await
        .map_err(|e| ReconcileError::Interrupted(e.to_string()))?;
    // RSA work is CPU-bound: keep it off the async workers.
    let unsealed = tokio::task::spawn_blocking(move || {
        let refs: Vec<&sealing::PrivateKey> = job_keys.iter().map(|k| &k.private).collect();
        sealing::secret::unseal_parallel(&job_sealed, &refs, threads)
    })
    .await
    .map_err(|e| ReconcileError::Interrupted(e.to_string()))?;
    drop(slot);
    let unsealed = match unsealed {
        Ok(u) => u,
        Err(e) => {
            ctx.metrics.rsa_operations.inc_by(keys.len() as u64);
            return Ok(Outcome::Failed {
                reason: FailReason::UnsealFailed,
                message: e.to_string(),
            });
        }
    };
    ctx.metrics
        .rsa_operations
        .inc_by(unsealed.rsa_operations as u64);
    let key = &keys[unsealed.opened_with.unwrap_or(0)];
    let mut secret = desired::desired_secret(sealed, &unsealed, key, existing, mode);
    if let Some(conflict) = existing.and_then(|e| desired::immutable_conflict(e, &secret)) {
        sealing::secret::wipe_secret(&mut secret);
        return Ok(Outcome::Failed {
            reason: FailReason::UpdateFailed,
            message: conflict,
        });
    }
    let name = sealed.name_any();
    let result = match mode {
        WriteMode::Create => api.create(&PostParams::default(), &secret).await,
        WriteMode::Replace | WriteMode::Patch => {
            api.replace(&name, &PostParams::default(), &secret).await
        }
    };
    sealing::secret::wipe_secret(&mut secret);
    let mut written = result?;
    sealing::secret::wipe_secret(&mut written);
    Ok(Outcome::Synced)
}

pub async fn reconcile(
    sealed: Arc<SealedSecret>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let namespace = sealed.namespace().ok_or(ReconcileError::Unnamed)?;
    let name = sealed
        .metadata
        .name
        .clone()
        .ok_or(ReconcileError::Unnamed)?;
    ctx.metrics.unseal_requests.inc();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    // The watch's copy first; a GET only when the values are needed (patch mode, immutable
    // Secrets) or the copy proved stale (a write conflict).
    let mut cached = match &ctx.owned {
        Some(owned) => {
            owned.ready().await;
            Some(owned.get(&namespace, &name)).filter(|o| o.as_ref().is_none_or(|o| o.complete))
        }
        None => None,
    };
    loop {
        let from_cache = cached.is_some();
        let (existing, plan) = match cached.take() {
            Some(observed) => {
                let plan = desired::plan_observed(
                    &sealed,
                    observed
                        .as_deref()
                        .map(|o| (&o.secret, o.data_mac.as_ref())),
                    &ctx.keys,
                );
                (observed.map(|o| o.secret.clone()), plan)
            }
            None => {
                let existing = match api.get_opt(&name).await {
                    Ok(existing) => existing,
                    Err(e) => {
                        ctx.metrics.error("fetch", &namespace);
                        return Err(e.into());
                    }
                };
                let plan = desired::plan(&sealed, existing.as_ref(), &ctx.keys);
                (existing, plan)
            }
        };
        let (outcome, wrote) = match plan {
            Plan::UpToDate => {
                ctx.metrics.skipped_unchanged.inc();
                (Outcome::Synced, false)
            }
            Plan::Refuse(message) => (
                Outcome::Failed {
                    reason: FailReason::Unmanaged,
                    message,
                },
                false,
            ),
            Plan::Unseal(mode) => {
                match unseal_and_write(&sealed, existing.as_ref(), mode, &api, &ctx).await {
                    Ok(outcome) => (outcome, true),
                    // The watch had not delivered the Secret's last version (or it is someone
                    // else's): decide again from the API server's copy.
                    Err(ReconcileError::Kube(kube::Error::Api(e)))
                        if from_cache && e.code == 409 =>
                    {
                        continue;
                    }
                    Err(ReconcileError::Kube(e)) => {
                        ctx.metrics.error("update", &namespace);
                        report(
                            &sealed,
                            &ctx,
                            &Outcome::Failed {
                                reason: FailReason::UpdateFailed,
                                message: e.to_string(),
                            },
                            true,
                        )
                        .await;
                        return Err(ReconcileError::Kube(e));
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        if let Outcome::Failed { reason, .. } = &outcome {
            ctx.metrics.error(reason.metric_label(), &namespace);
        }
        report(&sealed, &ctx, &outcome, wrote).await;
        return Ok(match outcome {
            Outcome::Synced => Action::await_change(),
            Outcome::Failed { reason, .. } => reason
                .retry_after()
                .map_or_else(Action::await_change, Action::requeue),
        });
    }
}

/// Status, event, condition metric and log line for one outcome.
async fn report(sealed: &SealedSecret, ctx: &Context, outcome: &Outcome, wrote: bool) {
    let namespace = sealed.namespace().unwrap_or_default();
    let name = sealed.name_any();
    let instance = sealed
        .labels()
        .get("app.kubernetes.io/instance")
        .cloned()
        .unwrap_or_default();
    let condition_value = if *outcome == Outcome::Synced { 1 } else { -1 };
    ctx.metrics
        .condition_info
        .get_or_create(&ConditionLabels {
            namespace: namespace.clone(),
            name: name.clone(),
            condition: "Synced".into(),
            ss_app_kubernetes_io_instance: instance,
        })
        .set(condition_value);
    let note = match outcome {
        Outcome::Synced => {
            if wrote {
                tracing::info!(%namespace, %name, "SealedSecret unsealed");
            }
            wrote.then(|| Note {
                warning: false,
                reason: "Unsealed".into(),
                message: "SealedSecret unsealed successfully".into(),
                action: "Unseal",
            })
        }
        Outcome::Failed { reason, message } => {
            tracing::warn!(%namespace, %name, reason = reason.condition_reason(), %message, "SealedSecret not synced");
            Some(Note {
                warning: true,
                reason: reason.event_reason().into(),
                message: message.clone(),
                action: "Unseal",
            })
        }
    };
    if let Some(note) = note {
        report::publish(ctx.recorder.as_ref(), sealed, note);
    }
    if ctx.update_status
        && let Some(status) = desired::next_status(sealed, outcome, &report::now_rfc3339())
    {
        let key = (namespace.clone(), name.clone());
        let version = sealed.resource_version().unwrap_or_default();
        if ctx.status_writes.already_written(&key, &version, &status) {
            return;
        }
        let api: Api<SealedSecret> = Api::namespaced(ctx.client.clone(), &namespace);
        match report::patch_status(&api, &name, &status).await {
            Ok(_) => ctx.status_writes.record(key, version, status),
            Err(e) => {
                ctx.metrics.error("status", &namespace);
                tracing::warn!(%namespace, %name, error = %e, "cannot update status");
            }
        }
    }
}

pub fn error_policy(
    sealed: Arc<SealedSecret>,
    error: &ReconcileError,
    _ctx: Arc<Context>,
) -> Action {
    tracing::warn!(namespace = ?sealed.namespace(), name = %sealed.name_any(), %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(15))
}

/// Reconciles at once: enough to keep the API round trips of some overlapping the RSA work of
/// others (itself held to one object per CPU), few enough to bound connections and memory.
pub const RECONCILE_CONCURRENCY: u16 = 16;

/// Which namespaces to watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    All,
    Namespaces(Vec<String>),
}

/// Runs the reconciler until `shutdown`. Watches SealedSecrets and only the Secrets we own.
pub async fn run(
    ctx: Arc<Context>,
    scope: Scope,
    label_selector: Option<String>,
    key_changes: impl Stream<Item = ()> + Send + 'static,
    leadership: Leadership,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let sealed_config = match &label_selector {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    };
    let owned_config = watcher::Config::default().labels(&format!("{}=true", desired::LABEL_OWNED));
    let client = ctx.client.clone();
    let apis: Vec<(Api<SealedSecret>, Api<Secret>)> = match scope {
        Scope::All => vec![(Api::all(client.clone()), Api::all(client))],
        Scope::Namespaces(namespaces) => namespaces
            .iter()
            .map(|ns| {
                (
                    Api::namespaced(client.clone(), ns),
                    Api::namespaced(client.clone(), ns),
                )
            })
            .collect(),
    };
    // One stream of key changes and new terms, fanned out to every per-namespace controller:
    // either one means every SealedSecret is looked at again.
    let (tick_tx, _) = tokio::sync::broadcast::channel::<()>(16);
    let forward = {
        let tick_tx = tick_tx.clone();
        let ticks = futures::stream::select(key_changes, leadership.terms());
        async move {
            futures::pin_mut!(ticks);
            while ticks.next().await.is_some() {
                let _ = tick_tx.send(());
            }
        }
    };
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    let controllers = apis.into_iter().map(|(sealed_api, secret_api)| {
        let key_ticks = ticks(tick_tx.subscribe());
        let controller = crate::watched::controller(sealed_api, sealed_config.clone());
        // With the cache, its watch is the one that wakes owners (see `crate::owned`).
        let controller = match &ctx.owned {
            Some(owned) => controller.owns_stream(owned.watch(secret_api, owned_config.clone())),
            None => controller.owns(secret_api, owned_config.clone()),
        };
        controller
            .with_config(controller::Config::default().concurrency(RECONCILE_CONCURRENCY))
            .reconcile_all_on(key_ticks)
            .graceful_shutdown_on(shutdown.clone())
            .run(leadership.gate(reconcile), error_policy, Arc::clone(&ctx))
            .for_each(|result| async move {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "reconcile error");
                }
            })
    });
    let all = futures::future::join_all(controllers.collect::<Vec<_>>());
    futures::future::select(Box::pin(all), Box::pin(forward)).await;
}

/// A broadcast receiver as a stream of ticks (a lagging receiver still ticks).
pub fn ticks(rx: tokio::sync::broadcast::Receiver<()>) -> impl Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(()) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Some(((), rx)),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    })
}
