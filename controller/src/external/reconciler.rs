//! The ExternalSecret reconciler in four phases: observe (the object, its target Secret and
//! its failure record), decide (the pure functions of `plan`), act (the only Secret writes)
//! and report (status, metrics, events, requeue). `reconcile` can be called directly (tests
//! use the in-memory Kubernetes API); `run` in `mod.rs` drives it from a kube-runtime
//! Controller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crds::external_secrets::{ExternalSecret, ExternalSecretStatus, LocalObjectReference};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use zeroize::Zeroizing;

use super::cache::{Coalescer, Served};
use super::data::SecretMap;
use super::metrics::{EsLabels, Metrics};
use super::owned::{self, OwnedSecrets};
use super::plan::{self, Answers, DecisionError, Failure, Gate, Schedule, Synced, Write};
use super::provider::{ProviderError, ValueRef};
use super::registry::{ProviderOptions, StoreClient, StoreRegistry};
use super::schedule;
use super::secret::{self, Owner};
use super::settings::Settings;
use super::stores::{self, StoreError};
use super::template::{self, SourceKind};
use crate::events::Recorder;
use crate::report::{self, Note};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("object has no {0}")]
    MissingField(&'static str),
}

/// Shared state of all reconciles.
pub struct Context {
    pub client: kube::Client,
    pub stores: StoreRegistry,
    pub cache: Coalescer,
    pub metrics: Metrics,
    pub options: ProviderOptions,
    /// Store `spec.controller` values this instance serves (`default` also matches unset).
    pub controller_class: String,
    pub recorder: Option<Recorder>,
    /// How templates run: budget and delimiters.
    pub template: templating::Options,
    /// The managed Secrets, as the watch delivered them; `None`: read each with a GET.
    pub owned: Option<OwnedSecrets>,
    /// The stores, as the controller's store watches delivered them; `None`: GET each.
    pub stores_watched: Option<stores::WatchedStores>,
    /// Consecutive failures per object, with the time of the last attempt and the resource
    /// version it was made for: gates retries to the backoff even when watch events arrive.
    failures: Mutex<HashMap<String, Failure>>,
    /// The last successful sync of each object (resource version, time): the watched copy may
    /// not carry that status yet.
    synced: Mutex<HashMap<String, (String, SystemTime)>>,
}

impl Context {
    pub fn new(
        client: kube::Client,
        metrics: Metrics,
        settings: &Settings,
        recorder: Option<Recorder>,
    ) -> Self {
        Context {
            client,
            stores: StoreRegistry::default(),
            cache: Coalescer::new(settings.cache_size),
            metrics,
            options: settings.provider.clone(),
            controller_class: settings.controller_class.clone(),
            recorder,
            template: settings.template.clone(),
            owned: None,
            stores_watched: None,
            failures: Mutex::new(HashMap::new()),
            synced: Mutex::new(HashMap::new()),
        }
    }

    /// The provider client of a store, built once per store configuration.
    pub async fn store_client(
        &self,
        store: &stores::ResolvedStore,
    ) -> Result<Arc<StoreClient>, StoreError> {
        self.stores
            .client_for(
                &self.client,
                store,
                &self.options,
                &self.metrics,
                &self.cache,
            )
            .await
    }

    /// Failures recorded for this version of the object: count and time since the last one.
    fn failing(&self, key: &str, resource_version: &str) -> Option<(u32, Duration)> {
        let failures = self.failures.lock().ok()?;
        let f = failures
            .get(key)
            .filter(|f| f.resource_version == resource_version)?;
        Some((f.count, f.at.elapsed()))
    }

    fn record_failure(&self, key: &str, resource_version: &str) -> u32 {
        let Ok(mut f) = self.failures.lock() else {
            return 1;
        };
        let entry = f.entry(key.to_string()).or_insert(Failure {
            count: 0,
            at: Instant::now(),
            resource_version: resource_version.to_string(),
        });
        if entry.resource_version != resource_version {
            entry.count = 0;
            entry.resource_version = resource_version.to_string();
        }
        entry.count += 1;
        entry.at = Instant::now();
        entry.count
    }

    fn last_sync(&self, key: &str) -> Option<(String, SystemTime)> {
        self.synced.lock().ok()?.get(key).cloned()
    }

    fn record_sync(&self, key: &str, resource_version: &str, at: SystemTime) {
        if let Ok(mut synced) = self.synced.lock() {
            // A forgotten entry costs one redundant sync: forget all at once past the bound.
            if synced.len() >= MAX_SYNC_RECORDS {
                synced.clear();
            }
            synced.insert(key.to_string(), (resource_version.to_string(), at));
        }
    }

    fn clear_failure(&self, key: &str) {
        if let Ok(mut f) = self.failures.lock() {
            f.remove(key);
        }
    }
}

/// Objects whose last sync is remembered (see `Context::record_sync`).
const MAX_SYNC_RECORDS: usize = 100_000;

/// Why a sync failed: the text goes to the status condition and events. Never a value.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error(transparent)]
    Decision(#[from] DecisionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

impl SyncError {
    /// `status.conditions[Ready].reason` of the failure.
    fn condition_reason(&self) -> &'static str {
        match self {
            SyncError::Decision(DecisionError::MissingForMerge(_)) => secret::REASON_MISSING,
            _ => secret::REASON_ERROR,
        }
    }
}

impl From<ProviderError> for SyncError {
    fn from(e: ProviderError) -> Self {
        SyncError::Decision(e.into())
    }
}

/// Reconciles one ExternalSecret. Provider and template failures are reported in the status
/// (and retried with backoff); only Kubernetes API failures are returned as errors.
pub async fn reconcile(es: Arc<ExternalSecret>, ctx: Arc<Context>) -> Result<Action, Error> {
    if es.metadata.deletion_timestamp.is_some() {
        // Owned Secrets go with the owner reference; others are kept, as ESO does.
        return Ok(Action::await_change());
    }
    let seen = observe(&ctx, &es).await?;
    let now = SystemTime::now();
    // By uid: an object deleted and made again under the same name starts with no record.
    let last_sync = ctx.last_sync(&seen.uid);
    let attempt = Attempt {
        ctx: &ctx,
        es: &es,
        object_key: &seen.object_key,
        current_rv: &seen.current_rv,
        now,
        now_text: &report::rfc3339(now),
    };
    let schedule = match plan::gate(&plan::Seen {
        es: &es,
        target_valid: seen.target_valid,
        current_rv: &seen.current_rv,
        now,
        failing: ctx.failing(&seen.object_key, &seen.current_rv),
        last_sync: last_sync.as_ref().map(|(rv, at)| (rv.as_str(), *at)),
    }) {
        Ok(Gate::Idle) => return Ok(Action::await_change()),
        Ok(Gate::Wait(d)) => return Ok(Action::requeue(d)),
        Ok(Gate::Sync(schedule)) => schedule,
        Err(rejected) => return attempt.fail(rejected.interval, rejected.error.into()).await,
    };
    let store = match stores::resolve_store(&ctx.client, ctx.stores_watched.as_ref(), &es).await {
        Ok(store) => store,
        Err(e) => return attempt.fail(schedule.interval, e.into()).await,
    };
    if !plan::serves(&store.spec, &ctx.controller_class) {
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    ctx.metrics.sync_calls.get_or_create(&seen.labels).inc();
    let outcome = sync(&ctx, &es, &seen, &store, &schedule).await;
    let action = match outcome {
        Ok(synced) => attempt.succeed(&schedule, synced).await,
        Err(e) => attempt.fail(schedule.interval, e).await,
    };
    ctx.metrics
        .reconcile_duration
        .get_or_create(&seen.labels)
        .observe(started.elapsed().as_secs_f64());
    action
}

/// What the observe phase read: the object's identity and its target Secret.
struct Observed {
    object_key: String,
    labels: EsLabels,
    current_rv: String,
    uid: String,
    target_name: String,
    existing: Option<Secret>,
    target_valid: bool,
    /// The target as the watch delivered it (no values) when the decision is made from that
    /// copy; `from_watch` also covers a Secret the watch has never seen.
    copy: Option<Arc<owned::Observed>>,
    from_watch: bool,
    secrets: Api<Secret>,
}

async fn observe(ctx: &Context, es: &ExternalSecret) -> Result<Observed, Error> {
    let ns = es
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let name = es.name_any();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let target_name = secret::target_name(es);
    let watched = match &ctx.owned {
        Some(owned) if owned::decidable_without_values(es) => {
            owned.ready().await;
            Some(owned.get(&ns, &target_name))
        }
        _ => None,
    };
    // An immutable Secret is compared value by value: read it.
    let watched = watched.filter(|copy| {
        copy.as_ref()
            .is_none_or(|c| c.secret.immutable != Some(true))
    });
    let (existing, copy, target_valid, from_watch) = match watched {
        Some(Some(copy)) => (
            Some(copy.secret.clone()),
            Some(copy.clone()),
            copy.valid(),
            true,
        ),
        Some(None) => (None, None, secret::target_is_valid(es, None), true),
        None => {
            let existing = secrets.get_opt(&target_name).await?;
            let valid = secret::target_is_valid(es, existing.as_ref());
            (existing, None, valid, false)
        }
    };
    Ok(Observed {
        object_key: format!("{ns}/{name}"),
        labels: EsLabels {
            namespace: ns,
            name,
        },
        current_rv: secret::resource_version(&es.metadata),
        uid: es.metadata.uid.clone().unwrap_or_default(),
        target_name,
        existing,
        target_valid,
        copy,
        from_watch,
        secrets,
    })
}

/// Fetch, decide, act: the part of a reconcile whose failure is reported in the status.
async fn sync(
    ctx: &Context,
    es: &ExternalSecret,
    seen: &Observed,
    store: &stores::ResolvedStore,
    schedule: &Schedule,
) -> Result<Synced, SyncError> {
    let answers = fetch(ctx, es, store, schedule).await?;
    let fetched = plan::assemble(es, &answers)?;
    for message in &fetched.missing {
        let note = Note {
            warning: false,
            reason: plan::REASON_MISSING_PROVIDER_SECRET.into(),
            message: message.clone(),
            action: "Sync",
        };
        report::publish(ctx.recorder.as_ref(), es, note);
    }
    let owner = Owner {
        namespace: &seen.labels.namespace,
        name: &seen.labels.name,
        uid: &seen.uid,
    };
    let sources = read_template_sources(&seen.secrets, ctx, es).await?;
    let templates = plan::TemplateInput {
        sources: &sources,
        options: &ctx.template,
    };
    let decide = |fetched, existing: Option<&Secret>, copy: Option<&owned::Observed>| {
        let (write, synced) =
            off_the_async_worker(|| plan::after_fetch(es, &owner, fetched, existing, &templates))?;
        Ok::<_, SyncError>(match copy {
            Some(copy) => owned::settle_against_copy(write, synced, copy),
            None => (write, synced),
        })
    };
    let (write, synced) = decide(fetched, seen.existing.as_ref(), seen.copy.as_deref())?;
    match act(&seen.secrets, write).await {
        // The watch had not delivered the Secret's last version (or it is not one we manage):
        // decide again from the API server's copy.
        Err(kube::Error::Api(e)) if seen.from_watch && e.code == 409 => {
            let existing = seen.secrets.get_opt(&seen.target_name).await?;
            let fetched = plan::assemble(es, &answers)?;
            let (write, synced) = decide(fetched, existing.as_ref(), None)?;
            act(&seen.secrets, write).await?;
            Ok(synced)
        }
        written => {
            written?;
            Ok(synced)
        }
    }
}

/// Runs `work` without stalling the other tasks of this async worker: templates are rendered
/// here, and a tenant's template may spend its whole budget on bcrypt or key generation (about
/// a second). Other runtimes (single-threaded tests) run it in place.
fn off_the_async_worker<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// Reads the ConfigMaps and Secrets `templateFrom` names, in the ExternalSecret's namespace
/// only; a missing object is recorded as such and reported by the template step.
async fn read_template_sources(
    secrets: &Api<Secret>,
    ctx: &Context,
    es: &ExternalSecret,
) -> Result<template::Sources, kube::Error> {
    let mut out = template::Sources::new();
    let refs = template::sources(es);
    if refs.is_empty() {
        return Ok(out);
    }
    let ns = es.namespace().unwrap_or_default();
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    for r in refs {
        let contents = match r.kind {
            SourceKind::ConfigMap => config_maps.get_opt(&r.name).await?.map(|cm| {
                cm.data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, Zeroizing::new(v.into_bytes())))
                    .collect()
            }),
            SourceKind::Secret => secrets.get_opt(&r.name).await?.map(|s| {
                s.data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, Zeroizing::new(v.0)))
                    .collect()
            }),
        };
        out.insert(r, contents);
    }
    Ok(out)
}

/// The only writes to the target Secret.
async fn act(secrets: &Api<Secret>, write: Write) -> Result<(), kube::Error> {
    match write {
        Write::Create(s) => secrets.create(&PostParams::default(), &s).await.map(drop),
        Write::Replace(s) => secrets
            .replace(&s.name_any(), &PostParams::default(), &s)
            .await
            .map(drop),
        Write::Delete(name) => secrets
            .delete(&name, &DeleteParams::default())
            .await
            .map(drop),
        Write::Nothing => Ok(()),
    }
}

/// Reads every value the object asks for through the shared cache; answers come back keyed
/// by what was asked.
async fn fetch(
    ctx: &Context,
    es: &ExternalSecret,
    store: &stores::ResolvedStore,
    schedule: &Schedule,
) -> Result<Answers, SyncError> {
    let sc = ctx.store_client(store).await?;
    let provider = sc.provider.as_ref();
    let refs = plan::value_refs(es);
    let results = ctx
        .cache
        .get_many(
            &sc.cache_key,
            provider,
            &refs,
            schedule.interval,
            schedule.force,
        )
        .await;
    let hits = results.iter().filter(|(_, s)| *s == Served::Cache).count();
    if hits > 0 {
        ctx.metrics
            .cache_hits
            .get_or_create(&super::metrics::StoreLabels {
                store: store.id.clone(),
            })
            .inc_by(hits as u64);
    }
    let mut answers = Answers {
        values: refs
            .into_iter()
            .zip(results.into_iter().map(|(r, _)| r))
            .collect(),
        ..Answers::default()
    };
    for query in plan::find_queries(es) {
        // A find is one more shared value: the whole result, keyed by the query.
        let (shared, _) = ctx
            .cache
            .get_or_fetch(
                &sc.cache_key,
                find_cache_key(&query),
                schedule.interval,
                schedule.force,
                async {
                    let found = provider.find(&query).await?;
                    encode_map(&found)
                },
            )
            .await;
        let found = shared.and_then(|bytes| decode_map(&bytes));
        answers.found.insert(query, found);
    }
    Ok(answers)
}

/// The cache address of a `find` result: a key no provider value can have.
fn find_cache_key(q: &super::provider::FindQuery) -> ValueRef {
    ValueRef {
        key: format!(
            "\u{0}find:{}\u{0}{}\u{0}{}",
            q.path.as_deref().unwrap_or_default(),
            q.name_regexp.as_deref().unwrap_or_default(),
            serde_json::to_string(&q.tags).unwrap_or_default()
        ),
        version: None,
        metadata: false,
    }
}

/// A find result as one cacheable value: JSON of name → base64 value.
fn encode_map(map: &SecretMap) -> Result<super::data::SecretBytes, ProviderError> {
    use base64::Engine as _;
    let encoded: std::collections::BTreeMap<&str, String> = map
        .iter()
        .map(|(k, v)| {
            (
                k.as_str(),
                base64::engine::general_purpose::STANDARD.encode(&v[..]),
            )
        })
        .collect();
    let bytes = serde_json::to_vec(&encoded).map_err(|e| ProviderError::Other(e.to_string()))?;
    Ok(zeroize::Zeroizing::new(bytes))
}

fn decode_map(bytes: &[u8]) -> Result<SecretMap, ProviderError> {
    use base64::Engine as _;
    let corrupt = || ProviderError::Other("cached find result is corrupt".into());
    let mut encoded: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(bytes).map_err(|_| corrupt())?;
    let mut out = SecretMap::new();
    for (k, v) in encoded.iter_mut() {
        let decoded = base64::engine::general_purpose::STANDARD.decode(v.as_bytes());
        zeroize::Zeroize::zeroize(v);
        out.insert(
            k.clone(),
            zeroize::Zeroizing::new(decoded.map_err(|_| corrupt())?),
        );
    }
    Ok(out)
}

/// The report phase of one reconcile: what it knows about its object, so that successes and
/// failures are recorded the same way from every step.
struct Attempt<'a> {
    ctx: &'a Context,
    es: &'a ExternalSecret,
    object_key: &'a str,
    current_rv: &'a str,
    now: SystemTime,
    now_text: &'a str,
}

impl Attempt<'_> {
    fn api(&self) -> Api<ExternalSecret> {
        let ns = self.es.namespace().unwrap_or_default();
        Api::namespaced(self.ctx.client.clone(), &ns)
    }

    fn status(&self) -> ExternalSecretStatus {
        self.es.status.clone().unwrap_or_default()
    }

    /// Records a sync that went through: Ready, refresh time, binding, metric, event when the
    /// Secret changed, and the next periodic refresh.
    async fn succeed(&self, schedule: &Schedule, synced: Synced) -> Result<Action, Error> {
        let (ctx, es) = (self.ctx, self.es);
        let (ns, name) = (es.namespace().unwrap_or_default(), es.name_any());
        ctx.clear_failure(self.object_key);
        let status = self.status();
        let mut new_status = status.clone();
        let reason = synced.condition_reason();
        new_status.conditions = secret::set_ready(
            &status.conditions,
            synced.ready(),
            reason,
            synced.message(),
            self.now_text,
        );
        new_status.refresh_time = Some(self.now_text.to_string());
        new_status.synced_resource_version = Some(self.current_rv.to_string());
        new_status.binding = Some(LocalObjectReference {
            name: secret::target_name(es),
        });
        report::patch_status(&self.api(), &name, &new_status).await?;
        ctx.record_sync(
            &self.es.metadata.uid.clone().unwrap_or_default(),
            self.current_rv,
            self.now,
        );
        ctx.metrics.condition(&ns, &name, synced.ready());
        tracing::info!(namespace = %ns, name = %name, reason, "external secret synced");
        if let Some(reason) = synced.event_reason() {
            let note = Note {
                warning: false,
                reason: reason.into(),
                message: synced.message().into(),
                action: "Sync",
            };
            report::publish(ctx.recorder.as_ref(), es, note);
        }
        Ok(plan::requeue_after_sync(es, schedule)
            .map_or_else(Action::await_change, Action::requeue))
    }

    /// Records a failed sync: Ready=False with the error text, the last good Secret untouched,
    /// and a retry after the capped backoff.
    async fn fail(&self, interval: Duration, err: SyncError) -> Result<Action, Error> {
        let (ctx, es) = (self.ctx, self.es);
        let (ns, name) = (es.namespace().unwrap_or_default(), es.name_any());
        let message = err.to_string();
        let failures = ctx.record_failure(self.object_key, self.current_rv);
        ctx.metrics
            .sync_errors
            .get_or_create(&EsLabels {
                namespace: ns.clone(),
                name: name.clone(),
            })
            .inc();
        ctx.metrics.condition(&ns, &name, false);
        tracing::warn!(namespace = %ns, name = %name, error = %message, failures, "external secret sync failed");
        let status = self.status();
        let mut new_status = status.clone();
        new_status.conditions = secret::set_ready(
            &status.conditions,
            false,
            err.condition_reason(),
            &message,
            self.now_text,
        );
        if new_status != status {
            report::patch_status(&self.api(), &name, &new_status).await?;
        }
        let note = Note {
            warning: true,
            reason: "UpdateFailed".into(),
            message,
            action: "Sync",
        };
        report::publish(ctx.recorder.as_ref(), es, note);
        Ok(Action::requeue(schedule::error_backoff(failures, interval)))
    }
}

/// Requeue policy for Kubernetes API errors.
pub fn error_policy(_es: Arc<ExternalSecret>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(error = %err, "external secret reconcile error");
    Action::requeue(Duration::from_secs(30))
}
