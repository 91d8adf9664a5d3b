//! The ExternalSecret reconciler: thin Kubernetes I/O around the decisions in `schedule`,
//! `data`, `secret` and the providers. `reconcile` can be called directly (tests use the
//! in-memory Kubernetes API); `run` in `mod.rs` drives it from a kube-runtime Controller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crds::external_secrets::{
    DeletionPolicy, ExternalSecret, ExternalSecretStatus, LocalObjectReference, MetadataPolicy,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Resource, ResourceExt};

use super::cache::{Coalescer, Served};
use super::data::{self, SecretMap};
use super::metrics::{EsLabels, Metrics};
use super::provider::{FindQuery, ProviderError, ValueRef};
use super::schedule::{self, RefreshDecision, RefreshInput};
use super::secret::{self, Owner, WritePlan};
use super::stores::{self, ProviderOptions, StoreError, StoreRegistry};

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
    /// Consecutive failures per object, with the time of the last attempt and the resource
    /// version it was made for: gates retries to the backoff even when watch events arrive.
    failures: Mutex<HashMap<String, Failure>>,
}

#[derive(Clone, Debug)]
struct Failure {
    count: u32,
    at: Instant,
    resource_version: String,
}

impl Context {
    pub fn new(
        client: kube::Client,
        metrics: Metrics,
        options: ProviderOptions,
        controller_class: String,
        recorder: Option<Recorder>,
        cache_size: usize,
    ) -> Self {
        Context {
            client,
            stores: StoreRegistry::default(),
            cache: Coalescer::new(cache_size),
            metrics,
            options,
            controller_class,
            recorder,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn failure(&self, key: &str) -> Option<Failure> {
        self.failures.lock().ok()?.get(key).cloned()
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

    fn clear_failure(&self, key: &str) {
        if let Ok(mut f) = self.failures.lock() {
            f.remove(key);
        }
    }
}

/// Why a sync failed: the text goes to the status condition and events. Never a value.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Data(#[from] data::DataError),
    #[error(transparent)]
    Plan(#[from] secret::PlanError),
    #[error("invalid refreshInterval: {0}")]
    Interval(#[from] schedule::DurationError),
    #[error("target Secret {0:?} does not exist and creationPolicy is Merge")]
    MissingForMerge(String),
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    k8s_openapi::jiff::Timestamp::from_second(secs as i64)
        .map(|ts| ts.to_string())
        .unwrap_or_default()
}

fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let ts: k8s_openapi::jiff::Timestamp = s.parse().ok()?;
    let secs = u64::try_from(ts.as_second()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// What one fetch produced.
struct Fetched {
    data: SecretMap,
    /// Every provider reference answered "not found".
    all_missing: bool,
}

async fn fetch(
    ctx: &Context,
    es: &ExternalSecret,
    store: &stores::ResolvedStore,
    interval: Duration,
    force: bool,
) -> Result<Fetched, SyncError> {
    let sc = ctx
        .stores
        .client_for(&ctx.client, store, &ctx.options, &ctx.metrics, &ctx.cache)
        .await?;
    let provider = sc.provider.as_ref();
    let deletion = es.spec.target.deletion_policy;
    // A `0` interval means fetch once: never serve it from another object's fetch.
    let max_age = if interval.is_zero() {
        Duration::ZERO
    } else {
        interval
    };

    // Every single-value read of this object goes through the cache in one batch.
    let mut refs: Vec<ValueRef> = Vec::new();
    for d in &es.spec.data {
        refs.push(ValueRef {
            key: d.remote_ref.key.clone(),
            version: d.remote_ref.version.clone(),
            metadata: d.remote_ref.metadata_policy == MetadataPolicy::Fetch,
        });
    }
    for df in &es.spec.data_from {
        if let Some(x) = &df.extract {
            refs.push(ValueRef {
                key: x.key.clone(),
                version: x.version.clone(),
                metadata: x.metadata_policy == MetadataPolicy::Fetch,
            });
        }
    }
    let results = ctx
        .cache
        .get_many(&sc.cache_key, provider, &refs, max_age, force)
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
    let mut results = results.into_iter().map(|(r, _)| r);
    let mut missing = 0usize;
    let mut total = 0usize;

    let mut out = SecretMap::new();
    // dataFrom first, in order; data entries override.
    let mut data_results = Vec::new();
    for _ in &es.spec.data {
        data_results.push(results.next());
    }
    for df in &es.spec.data_from {
        total += 1;
        let mut part = if let Some(x) = &df.extract {
            match results.next() {
                Some(Ok(v)) => {
                    let mut m = data::extract_map(&x.key, &v, x.property.as_deref())?;
                    for (k, val) in std::mem::take(&mut m) {
                        let decoded = data::decode(&k, val, x.decoding_strategy)?;
                        m.insert(k, decoded);
                    }
                    m
                }
                Some(Err(ProviderError::NotFound(msg))) => {
                    missing += 1;
                    if deletion == DeletionPolicy::Retain {
                        return Err(ProviderError::NotFound(msg).into());
                    }
                    SecretMap::new()
                }
                Some(Err(e)) => return Err(e.into()),
                None => return Err(ProviderError::Other("missing result".into()).into()),
            }
        } else if let Some(f) = &df.find {
            let q = FindQuery {
                path: f.path.clone(),
                name_regexp: f.name.as_ref().and_then(|n| n.regexp.clone()),
                tags: f.tags.clone(),
            };
            // A find is one more shared value: the whole result, keyed by the query.
            let query_key = ValueRef {
                key: format!(
                    "\u{0}find:{}\u{0}{}\u{0}{}",
                    q.path.as_deref().unwrap_or_default(),
                    q.name_regexp.as_deref().unwrap_or_default(),
                    serde_json::to_string(&q.tags).unwrap_or_default()
                ),
                version: None,
                metadata: false,
            };
            let (shared, _) = ctx
                .cache
                .get_or_fetch(&sc.cache_key, query_key, max_age, force, async {
                    let found = provider.find(&q).await?;
                    encode_map(&found)
                })
                .await;
            let found = decode_map(&shared?)?;
            if found.is_empty() {
                missing += 1;
            }
            let mut m = SecretMap::new();
            for (k, v) in found {
                // ESO's default key conversion: characters a Secret key cannot hold become `_`.
                let key: String = k
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || "-._".contains(c) {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let decoded = data::decode(&key, v, f.decoding_strategy)?;
                m.insert(key, decoded);
            }
            m
        } else {
            SecretMap::new()
        };
        part = data::rewrite_keys(part, &df.rewrite)?;
        out.extend(part);
    }
    for (d, r) in es.spec.data.iter().zip(data_results) {
        total += 1;
        match r {
            Some(Ok(v)) => {
                let selected =
                    data::select_property(&d.remote_ref.key, &v, d.remote_ref.property.as_deref())?;
                let decoded =
                    data::decode(&d.secret_key, selected, d.remote_ref.decoding_strategy)?;
                out.insert(d.secret_key.clone(), decoded);
            }
            Some(Err(ProviderError::NotFound(msg))) => {
                missing += 1;
                if deletion == DeletionPolicy::Retain {
                    return Err(ProviderError::NotFound(msg).into());
                }
            }
            Some(Err(e)) => return Err(e.into()),
            None => return Err(ProviderError::Other("missing result".into()).into()),
        }
    }
    Ok(Fetched {
        data: out,
        all_missing: total > 0 && missing == total,
    })
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

async fn publish(ctx: &Context, es: &ExternalSecret, warning: bool, reason: &str, note: String) {
    let Some(recorder) = &ctx.recorder else {
        return;
    };
    let ev = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.to_string(),
        note: Some(note),
        action: "Sync".into(),
        secondary: None,
    };
    // Events are best effort: a slow API server must not hold up the sync.
    match tokio::time::timeout(
        std::time::Duration::from_secs(5),
        recorder.publish(&ev, &es.object_ref(&())),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "publishing event failed"),
        Err(_) => tracing::debug!("publishing event timed out"),
    }
}

async fn write_status(
    api: &Api<ExternalSecret>,
    name: &str,
    status: &ExternalSecretStatus,
) -> Result<(), kube::Error> {
    let patch = serde_json::json!({ "status": status });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

/// Reconciles one ExternalSecret. Provider and template failures are reported in the status
/// (and retried with backoff); only Kubernetes API failures are returned as errors.
pub async fn reconcile(es: Arc<ExternalSecret>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let ns = es
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let name = es.name_any();
    if es.metadata.deletion_timestamp.is_some() {
        // Owned Secrets go with the owner reference; others are kept, as ESO does.
        return Ok(Action::await_change());
    }
    let labels = EsLabels {
        namespace: ns.clone(),
        name: name.clone(),
    };
    let object_key = format!("{ns}/{name}");
    let es_api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let status = es.status.clone().unwrap_or_default();
    let current_rv = secret::resource_version(&es.metadata);
    let now = SystemTime::now();
    let now_text = rfc3339(now);
    let attempt = Attempt {
        ctx: &ctx,
        es: &es,
        api: &es_api,
        status: &status,
        object_key: &object_key,
        current_rv: &current_rv,
        now_text: &now_text,
    };

    let interval = match schedule::refresh_interval(es.spec.refresh_interval.as_deref()) {
        Ok(i) => i,
        Err(e) => {
            return attempt.fail(Duration::ZERO, SyncError::from(e)).await;
        }
    };
    if let Err(e) = secret::validate(&es) {
        return attempt.fail(interval, e.into()).await;
    }

    let target = secret::target_name(&es);
    let existing = secrets.get_opt(&target).await?;
    let since_last_sync = status
        .refresh_time
        .as_deref()
        .and_then(parse_rfc3339)
        .map(|t| now.duration_since(t).unwrap_or(Duration::ZERO));
    let jitter = schedule::jitter_for(
        es.metadata.uid.as_deref().unwrap_or(object_key.as_str()),
        interval,
    );
    let decision = schedule::decide_refresh(&RefreshInput {
        policy: es.spec.refresh_policy.unwrap_or_default(),
        interval,
        synced_resource_version: status.synced_resource_version.as_deref(),
        current_resource_version: &current_rv,
        since_last_sync,
        target_valid: secret::target_is_valid(&es, existing.as_ref()),
        jitter,
    });
    // Only a change after a sync (spec edit, force-sync annotation) bypasses the shared
    // cache; a new object may reuse a value another object fetched within its window.
    let changed = status
        .synced_resource_version
        .as_deref()
        .is_some_and(|rv| rv != current_rv);
    match decision {
        RefreshDecision::Never => return Ok(Action::await_change()),
        RefreshDecision::After(d) => return Ok(Action::requeue(d)),
        RefreshDecision::Now => {}
    }
    // In error state, wait out the backoff whatever woke us (our own status write included),
    // unless the object itself changed.
    if let Some(f) = ctx
        .failure(&object_key)
        .filter(|f| f.resource_version == current_rv)
    {
        let wait = schedule::error_backoff(f.count, interval);
        let elapsed = f.at.elapsed();
        if elapsed < wait {
            return Ok(Action::requeue(wait - elapsed));
        }
    }

    let store = match stores::resolve_store(&ctx.client, &es).await {
        Ok(s) => s,
        Err(e) => {
            return attempt.fail(interval, e.into()).await;
        }
    };
    if store
        .spec
        .controller
        .as_deref()
        .is_some_and(|c| !c.is_empty() && c != ctx.controller_class)
    {
        return Ok(Action::await_change());
    }

    ctx.metrics.sync_calls.get_or_create(&labels).inc();
    let uid = es.metadata.uid.clone().unwrap_or_default();
    let owner = Owner {
        namespace: &ns,
        name: &name,
        uid: &uid,
    };
    // (reason, message, event reason when the Secret changed)
    let outcome: Result<(&str, String, Option<&str>), SyncError> = async {
        let fetched = fetch(&ctx, &es, &store, interval, changed).await?;
        if fetched.all_missing && fetched.data.is_empty() {
            match es.spec.target.deletion_policy {
                DeletionPolicy::Delete => {
                    if existing.is_some() {
                        secrets.delete(&target, &DeleteParams::default()).await?;
                    }
                    return Ok((
                        secret::REASON_DELETED,
                        "secret deleted due to DeletionPolicy".to_string(),
                        existing.is_some().then_some("Deleted"),
                    ));
                }
                DeletionPolicy::Merge => {
                    if let Some(mut s) = existing.clone() {
                        let keys = secret::spec_keys(&es);
                        if let Some(d) = s.data.as_mut() {
                            d.retain(|k, _| !keys.contains(k));
                        }
                        secrets.replace(&target, &PostParams::default(), &s).await?;
                    }
                    return Ok((
                        secret::REASON_DELETED,
                        "provider data removed from the secret due to DeletionPolicy".to_string(),
                        existing.is_some().then_some("Updated"),
                    ));
                }
                DeletionPolicy::Retain => {}
            }
        }
        let rendered = secret::apply_template(fetched.data, es.spec.target.template.as_ref())?;
        match secret::plan_write(&es, &owner, rendered, existing.as_ref())? {
            WritePlan::Create(s) => {
                secrets.create(&PostParams::default(), &s).await?;
                Ok((
                    secret::REASON_SYNCED,
                    "secret synced".to_string(),
                    Some("Created"),
                ))
            }
            WritePlan::Replace(s) => {
                secrets.replace(&target, &PostParams::default(), &s).await?;
                Ok((
                    secret::REASON_SYNCED,
                    "secret synced".to_string(),
                    Some("Updated"),
                ))
            }
            WritePlan::Unchanged | WritePlan::Nothing => {
                Ok((secret::REASON_SYNCED, "secret synced".to_string(), None))
            }
            WritePlan::MissingForMerge => Err(SyncError::MissingForMerge(target.clone())),
        }
    }
    .await;

    let result = match outcome {
        Ok((reason, message, event)) => {
            ctx.clear_failure(&object_key);
            let mut new_status = status.clone();
            new_status.conditions = secret::set_ready(
                &status.conditions,
                reason == secret::REASON_SYNCED,
                reason,
                &message,
                &now_text,
            );
            new_status.refresh_time = Some(now_text.clone());
            new_status.synced_resource_version = Some(current_rv.clone());
            new_status.binding = Some(LocalObjectReference {
                name: target.clone(),
            });
            write_status(&es_api, &name, &new_status).await?;
            ctx.metrics
                .condition(&ns, &name, reason == secret::REASON_SYNCED);
            tracing::info!(namespace = %ns, name = %name, reason, "external secret synced");
            // Events only when the Secret changed, not on every refresh.
            if let Some(event) = event {
                publish(&ctx, &es, false, event, message).await;
            }
            let policy = es.spec.refresh_policy.unwrap_or_default();
            if interval.is_zero() || policy != crds::external_secrets::RefreshPolicy::Periodic {
                Ok(Action::await_change())
            } else {
                Ok(Action::requeue(interval + jitter))
            }
        }
        Err(e) => attempt.fail(interval, e).await,
    };
    ctx.metrics
        .reconcile_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    result
}

/// What one reconcile knows about its object, so that a failure is recorded the same way from
/// every step.
struct Attempt<'a> {
    ctx: &'a Context,
    es: &'a ExternalSecret,
    api: &'a Api<ExternalSecret>,
    status: &'a ExternalSecretStatus,
    object_key: &'a str,
    current_rv: &'a str,
    now_text: &'a str,
}

impl Attempt<'_> {
    /// Records a failed sync: Ready=False with the error text, the last good Secret untouched,
    /// and a retry after the capped backoff.
    async fn fail(&self, interval: Duration, err: SyncError) -> Result<Action, Error> {
        let (ctx, es, status) = (self.ctx, self.es, self.status);
        let ns = es.namespace().unwrap_or_default();
        let name = es.name_any();
        let (reason, message) = match &err {
            SyncError::MissingForMerge(_) => (secret::REASON_MISSING, err.to_string()),
            _ => (secret::REASON_ERROR, err.to_string()),
        };
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
        let mut new_status = status.clone();
        new_status.conditions =
            secret::set_ready(&status.conditions, false, reason, &message, self.now_text);
        if new_status != *status {
            write_status(self.api, &name, &new_status).await?;
        }
        publish(ctx, es, true, "UpdateFailed", message).await;
        Ok(Action::requeue(schedule::error_backoff(failures, interval)))
    }
}

/// Requeue policy for Kubernetes API errors.
pub fn error_policy(_es: Arc<ExternalSecret>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(error = %err, "external secret reconcile error");
    Action::requeue(Duration::from_secs(30))
}
