//! The decisions of one ExternalSecret reconcile, as plain functions of what was observed:
//! whether to sync now ([`gate`]), which provider values to ask for ([`value_refs`],
//! [`find_queries`]), how the answers - keyed by what was asked, never by position - become
//! Secret data ([`assemble`]), and what to write or delete ([`after_fetch`]). No Kubernetes
//! client and no async here; `reconciler` observes, performs what these functions decide and
//! reports.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crds::external_secrets::{
    DeletionPolicy, ExternalSecret, MetadataPolicy, RefreshPolicy, StoreSpec,
};
use k8s_openapi::api::core::v1::Secret;

use super::data::{self, DataError, SecretBytes, SecretMap};
use super::provider::{FindQuery, ProviderError, ValueRef};
use super::schedule::{self, DurationError, RefreshDecision, RefreshInput};
use super::secret::{self, Owner, PlanError, WritePlan};
use super::template;

/// Consecutive failed syncs of one object, with the time of the last attempt and the resource
/// version it was made for: gates retries to the backoff even when watch events arrive.
#[derive(Clone, Debug)]
pub struct Failure {
    pub count: u32,
    pub at: Instant,
    pub resource_version: String,
}

/// Why a sync cannot go on, decided without I/O. Messages name keys, never values.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("invalid refreshInterval: {0}")]
    Interval(#[from] DurationError),
    #[error("target Secret {0:?} does not exist and creationPolicy is Merge")]
    MissingForMerge(String),
}

/// What the observe phase saw before any provider call.
pub struct Seen<'a> {
    pub es: &'a ExternalSecret,
    /// Whether the target Secret still holds what we last wrote (`secret::target_is_valid`).
    pub target_valid: bool,
    /// The object's `<generation>-<labels/annotations hash>` (see `secret::resource_version`).
    pub current_rv: &'a str,
    pub now: SystemTime,
    /// Failures recorded for this resource version, and the time since the last one.
    pub failing: Option<(u32, Duration)>,
    /// The last sync this controller made of the object (resource version, time), which the
    /// watched copy's status may not show yet.
    pub last_sync: Option<(&'a str, SystemTime)>,
}

/// When to sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Nothing to do until the object changes.
    Idle,
    /// Nothing to do now; look again after this long.
    Wait(Duration),
    /// Fetch and write now.
    Sync(Schedule),
}

/// How a sync that goes ahead is timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub interval: Duration,
    /// Deterministic per-object delay added to each periodic refresh.
    pub jitter: Duration,
    /// Bypass the shared cache: the object changed since its last sync.
    pub force: bool,
}

/// A sync refused before it started; retried after the backoff for `interval`.
#[derive(Debug)]
pub struct Rejected {
    pub interval: Duration,
    pub error: DecisionError,
}

/// The refresh decision, the webhook's checks and the error backoff, in that order.
pub fn gate(seen: &Seen<'_>) -> Result<Gate, Rejected> {
    let es = seen.es;
    let interval =
        schedule::refresh_interval(es.spec.refresh_interval.as_deref()).map_err(|e| Rejected {
            interval: Duration::ZERO,
            error: e.into(),
        })?;
    secret::validate(es).map_err(|e| Rejected {
        interval,
        error: e.into(),
    })?;
    let status = es.status.clone().unwrap_or_default();
    let status_sync = status
        .refresh_time
        .as_deref()
        .and_then(crate::report::parse_rfc3339)
        .map(|t| (status.synced_resource_version.as_deref(), t));
    // Our own record wins when it is newer than the status the copy carries (the watch has not
    // delivered our status patch yet): syncing again would write the same status twice.
    let (synced_resource_version, last_sync_at) = match (status_sync, seen.last_sync) {
        (Some((_, at)), Some((rv, ours))) if ours > at => (Some(rv), Some(ours)),
        (None, Some((rv, ours))) => (Some(rv), Some(ours)),
        (Some((rv, at)), _) => (rv, Some(at)),
        (None, None) => (status.synced_resource_version.as_deref(), None),
    };
    let since_last_sync =
        last_sync_at.map(|t| seen.now.duration_since(t).unwrap_or(Duration::ZERO));
    let identity = match &es.metadata.uid {
        Some(uid) => uid.clone(),
        None => format!(
            "{}/{}",
            es.metadata.namespace.as_deref().unwrap_or_default(),
            es.metadata.name.as_deref().unwrap_or_default()
        ),
    };
    let jitter = schedule::jitter_for(&identity, interval);
    let decision = schedule::decide_refresh(&RefreshInput {
        policy: es.spec.refresh_policy.unwrap_or_default(),
        interval,
        synced_resource_version,
        current_resource_version: seen.current_rv,
        since_last_sync,
        target_valid: seen.target_valid,
        jitter,
    });
    match decision {
        RefreshDecision::Never => return Ok(Gate::Idle),
        RefreshDecision::After(d) => return Ok(Gate::Wait(d)),
        RefreshDecision::Now => {}
    }
    // In error state, wait out the backoff whatever woke us (our own status write included),
    // unless the object itself changed (the caller only passes failures of this version).
    if let Some((count, elapsed)) = seen.failing {
        let wait = schedule::error_backoff(count, interval);
        if elapsed < wait {
            return Ok(Gate::Wait(wait - elapsed));
        }
    }
    // Only a change after a sync (spec edit, force-sync annotation) bypasses the shared
    // cache; a new object may reuse a value another object fetched within its window.
    let force = synced_resource_version.is_some_and(|rv| rv != seen.current_rv);
    Ok(Gate::Sync(Schedule {
        interval,
        jitter,
        force,
    }))
}

/// Whether this controller instance serves a store (`spec.controller` unset, empty or ours).
pub fn serves(store: &StoreSpec, our_class: &str) -> bool {
    store
        .controller
        .as_deref()
        .is_none_or(|c| c.is_empty() || c == our_class)
}

/// When to reconcile again after a successful sync.
pub fn requeue_after_sync(es: &ExternalSecret, schedule: &Schedule) -> Option<Duration> {
    let periodic = es.spec.refresh_policy.unwrap_or_default() == RefreshPolicy::Periodic;
    (periodic && !schedule.interval.is_zero()).then(|| schedule.interval + schedule.jitter)
}

/// The single-value reads of `spec.data` and `dataFrom.extract`, each once.
pub fn value_refs(es: &ExternalSecret) -> Vec<ValueRef> {
    let mut refs = BTreeSet::new();
    for d in &es.spec.data {
        refs.insert(ValueRef {
            key: d.remote_ref.key.clone(),
            version: d.remote_ref.version.clone(),
            metadata: d.remote_ref.metadata_policy == MetadataPolicy::Fetch,
        });
    }
    for x in es.spec.data_from.iter().filter_map(|d| d.extract.as_ref()) {
        refs.insert(extract_ref(x));
    }
    refs.into_iter().collect()
}

fn extract_ref(x: &crds::external_secrets::ExternalSecretDataRemoteRef) -> ValueRef {
    ValueRef {
        key: x.key.clone(),
        version: x.version.clone(),
        metadata: x.metadata_policy == MetadataPolicy::Fetch,
    }
}

fn data_ref(d: &crds::external_secrets::ExternalSecretData) -> ValueRef {
    ValueRef {
        key: d.remote_ref.key.clone(),
        version: d.remote_ref.version.clone(),
        metadata: d.remote_ref.metadata_policy == MetadataPolicy::Fetch,
    }
}

fn find_query(f: &crds::external_secrets::ExternalSecretFind) -> FindQuery {
    FindQuery {
        path: f.path.clone(),
        name_regexp: f.name.as_ref().and_then(|n| n.regexp.clone()),
        tags: f.tags.clone(),
    }
}

/// The `dataFrom.find` queries, each once.
pub fn find_queries(es: &ExternalSecret) -> Vec<FindQuery> {
    let queries: BTreeSet<FindQuery> = es
        .spec
        .data_from
        .iter()
        .filter_map(|d| d.find.as_ref())
        .map(find_query)
        .collect();
    queries.into_iter().collect()
}

/// One provider value as the shared cache hands it out.
pub type Answer = Result<Arc<SecretBytes>, ProviderError>;

/// The provider's answers, keyed by what was asked.
#[derive(Default)]
pub struct Answers {
    pub values: BTreeMap<ValueRef, Answer>,
    pub found: BTreeMap<FindQuery, Result<SecretMap, ProviderError>>,
}

/// What one fetch produced.
pub struct Fetched {
    pub data: SecretMap,
    /// Every provider reference answered "not found" (feeds deletionPolicy).
    pub all_missing: bool,
    /// What was skipped because it is gone at the provider and the deletion policy is not
    /// `Retain`: the messages of ESO's `MissingProviderSecret` events.
    pub missing: Vec<String>,
}

/// ESO's `MissingProviderSecret` event reason.
pub const REASON_MISSING_PROVIDER_SECRET: &str = "MissingProviderSecret";

/// An answer that was never asked for: a bug, reported rather than panicking.
fn unanswered() -> ProviderError {
    ProviderError::Other("missing result".into())
}

/// One provider value as the spec asked for it, or `None` when it is gone and the deletion
/// policy lets the sync go on without it.
fn present(
    answer: Option<&Answer>,
    deletion: DeletionPolicy,
) -> Result<Option<&[u8]>, DecisionError> {
    match answer {
        Some(Ok(v)) => Ok(Some(v.as_slice())),
        Some(Err(ProviderError::NotFound(_))) if deletion != DeletionPolicy::Retain => Ok(None),
        Some(Err(e)) => Err(e.clone().into()),
        None => Err(unanswered().into()),
    }
}

/// Builds the Secret data from the answers: `dataFrom` entries in order, then `data` entries,
/// later keys overriding earlier ones.
pub fn assemble(es: &ExternalSecret, answers: &Answers) -> Result<Fetched, DecisionError> {
    let deletion = es.spec.target.deletion_policy;
    let mut missing = 0usize;
    let mut notes = Vec::new();
    let mut out = SecretMap::new();
    for (index, df) in es.spec.data_from.iter().enumerate() {
        let part = if let Some(x) = &df.extract {
            match present(answers.values.get(&extract_ref(x)), deletion)? {
                Some(v) => {
                    let mut m = data::extract_map(&x.key, v, x.property.as_deref())?;
                    for (k, val) in std::mem::take(&mut m) {
                        let decoded = data::decode(&k, val, x.decoding_strategy)?;
                        m.insert(k, decoded);
                    }
                    m
                }
                None => {
                    missing += 1;
                    notes.push(format!(
                        "secret does not exist at provider using spec.dataFrom[{index}]"
                    ));
                    SecretMap::new()
                }
            }
        } else if let Some(f) = &df.find {
            let found = match answers.found.get(&find_query(f)) {
                Some(Ok(found)) => found,
                Some(Err(e)) => return Err(e.clone().into()),
                None => return Err(unanswered().into()),
            };
            if found.is_empty() {
                missing += 1;
            }
            let mut m = SecretMap::new();
            for (k, v) in found {
                let key = data::secret_key_from_name(k);
                let decoded = data::decode(&key, v.clone(), f.decoding_strategy)?;
                m.insert(key, decoded);
            }
            m
        } else {
            SecretMap::new()
        };
        out.extend(data::rewrite_keys(part, &df.rewrite)?);
    }
    for (index, d) in es.spec.data.iter().enumerate() {
        let Some(v) = present(answers.values.get(&data_ref(d)), deletion)? else {
            missing += 1;
            notes.push(format!(
                "secret does not exist at provider using spec.data[{index}] (key={})",
                d.remote_ref.key
            ));
            continue;
        };
        let selected =
            data::select_property(&d.remote_ref.key, v, d.remote_ref.property.as_deref())?;
        let decoded = data::decode(&d.secret_key, selected, d.remote_ref.decoding_strategy)?;
        out.insert(d.secret_key.clone(), decoded);
    }
    let total = es.spec.data.len() + es.spec.data_from.len();
    Ok(Fetched {
        data: out,
        all_missing: total > 0 && missing == total,
        missing: notes,
    })
}

/// The only writes a reconcile makes to its target Secret.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Create(Secret),
    Replace(Secret),
    /// Delete the Secret of this name.
    Delete(String),
    Nothing,
}

/// How a sync that went through ended: decides the condition, the event and the requeue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synced {
    Created,
    Updated,
    /// The Secret already held the data (or `creationPolicy: None`).
    Unchanged,
    /// All provider data is gone and `deletionPolicy: Delete` removed the Secret.
    Deleted {
        existed: bool,
    },
    /// All provider data is gone and `deletionPolicy: Merge` removed our keys.
    DataRemoved {
        existed: bool,
    },
}

impl Synced {
    /// Whether the Ready condition is True.
    pub fn ready(self) -> bool {
        self.condition_reason() == secret::REASON_SYNCED
    }

    /// `status.conditions[Ready].reason`.
    pub fn condition_reason(self) -> &'static str {
        match self {
            Synced::Created | Synced::Updated | Synced::Unchanged => secret::REASON_SYNCED,
            Synced::Deleted { .. } | Synced::DataRemoved { .. } => secret::REASON_DELETED,
        }
    }

    /// `status.conditions[Ready].message` and the event's note.
    pub fn message(self) -> &'static str {
        match self {
            Synced::Created | Synced::Updated | Synced::Unchanged => "secret synced",
            Synced::Deleted { .. } => "secret deleted due to DeletionPolicy",
            Synced::DataRemoved { .. } => {
                "provider data removed from the secret due to DeletionPolicy"
            }
        }
    }

    /// The event reason, only when the Secret changed: no event on a plain refresh.
    pub fn event_reason(self) -> Option<&'static str> {
        match self {
            Synced::Created => Some("Created"),
            Synced::Updated | Synced::DataRemoved { existed: true } => Some("Updated"),
            Synced::Deleted { existed: true } => Some("Deleted"),
            Synced::Unchanged
            | Synced::Deleted { existed: false }
            | Synced::DataRemoved { existed: false } => None,
        }
    }
}

/// What the template reads besides the provider data: the `templateFrom` objects and how to
/// run templates (budget, delimiters).
pub struct TemplateInput<'a> {
    pub sources: &'a template::Sources,
    pub options: &'a templating::Options,
}

/// What to do with the target Secret once the provider answered: the deletion policy when
/// every value is gone, else the template and the creation policy.
pub fn after_fetch(
    es: &ExternalSecret,
    owner: &Owner<'_>,
    fetched: Fetched,
    existing: Option<&Secret>,
    templates: &TemplateInput<'_>,
) -> Result<(Write, Synced), DecisionError> {
    let target = secret::target_name(es);
    if fetched.all_missing && fetched.data.is_empty() {
        match es.spec.target.deletion_policy {
            DeletionPolicy::Delete => {
                let write = match existing {
                    Some(_) => Write::Delete(target),
                    None => Write::Nothing,
                };
                return Ok((
                    write,
                    Synced::Deleted {
                        existed: existing.is_some(),
                    },
                ));
            }
            DeletionPolicy::Merge => {
                let write = match existing {
                    Some(s) => Write::Replace(secret::without_keys(s, &secret::spec_keys(es))),
                    None => Write::Nothing,
                };
                return Ok((
                    write,
                    Synced::DataRemoved {
                        existed: existing.is_some(),
                    },
                ));
            }
            DeletionPolicy::Retain => {}
        }
    }
    let rendered = template::apply(es, fetched.data, templates.sources, templates.options)
        .map_err(PlanError::from)?;
    Ok(match secret::plan_write(es, owner, rendered, existing)? {
        WritePlan::Create(s) => (Write::Create(s), Synced::Created),
        WritePlan::Replace(s) => (Write::Replace(s), Synced::Updated),
        WritePlan::Unchanged | WritePlan::Nothing => (Write::Nothing, Synced::Unchanged),
        WritePlan::MissingForMerge => return Err(DecisionError::MissingForMerge(target)),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use zeroize::Zeroizing;

    fn es(yaml: &str) -> ExternalSecret {
        serde_yaml::from_str(&format!(
            "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: es1, namespace: ns, uid: u1}}\nspec:\n  secretStoreRef: {{name: s}}\n{yaml}"
        ))
        .unwrap()
    }

    fn owner() -> Owner<'static> {
        Owner {
            namespace: "ns",
            name: "es1",
            uid: "u1",
        }
    }

    fn bytes(v: &str) -> Answer {
        Ok(Arc::new(Zeroizing::new(v.as_bytes().to_vec())))
    }

    fn gone() -> Answer {
        Err(ProviderError::NotFound("k".into()))
    }

    fn text(m: &SecretMap, k: &str) -> String {
        String::from_utf8(m[k].to_vec()).unwrap()
    }

    #[test]
    fn answers_are_matched_by_reference_whatever_the_order() {
        let e = es(r#"  data:
  - {secretKey: b, remoteRef: {key: second}}
  - {secretKey: a, remoteRef: {key: first, property: p}}
  dataFrom:
  - extract: {key: third}
"#);
        let refs = value_refs(&e);
        assert_eq!(refs.len(), 3);
        let mut answers = Answers::default();
        // Inserted in an order unrelated to the spec's.
        answers
            .values
            .insert(ValueRef::new("third"), bytes(r#"{"x":"3"}"#));
        answers
            .values
            .insert(ValueRef::new("first"), bytes(r#"{"p":"1"}"#));
        answers.values.insert(ValueRef::new("second"), bytes("2"));
        let f = assemble(&e, &answers).unwrap();
        assert_eq!(
            (text(&f.data, "a"), text(&f.data, "b"), text(&f.data, "x")),
            ("1".into(), "2".into(), "3".into())
        );
        assert!(!f.all_missing);
        answers.values.remove(&ValueRef::new("first"));
        assert!(
            assemble(&e, &answers).is_err(),
            "an unanswered ref is an error"
        );
    }

    #[test]
    fn the_same_key_twice_is_asked_once() {
        let e = es(r#"  data:
  - {secretKey: u, remoteRef: {key: db, property: user}}
  - {secretKey: p, remoteRef: {key: db, property: pass}}
"#);
        assert_eq!(value_refs(&e), vec![ValueRef::new("db")]);
    }

    #[test]
    fn data_overrides_data_from_and_find_keys_are_converted() {
        let e = es(r#"  data:
  - {secretKey: x, remoteRef: {key: one}}
  dataFrom:
  - extract: {key: all}
  - find: {path: app}
"#);
        let mut answers = Answers::default();
        answers.values.insert(
            ValueRef::new("all"),
            bytes(r#"{"x":"from-extract","y":"y"}"#),
        );
        answers
            .values
            .insert(ValueRef::new("one"), bytes("from-data"));
        let found: SecretMap = [("a/b c".to_string(), Zeroizing::new(b"v".to_vec()))].into();
        answers.found.insert(find_queries(&e)[0].clone(), Ok(found));
        let f = assemble(&e, &answers).unwrap();
        assert_eq!(text(&f.data, "x"), "from-data");
        assert_eq!(text(&f.data, "a_b_c"), "v");
    }

    /// {Retain, Delete, Merge} x {target exists, absent} x {all missing, some missing}.
    #[test]
    fn deletion_policy_table() {
        let spec = |policy: &str| {
            es(&format!(
                r#"  target: {{deletionPolicy: {policy}, creationPolicy: Owner}}
  data:
  - {{secretKey: a, remoteRef: {{key: a}}}}
  - {{secretKey: b, remoteRef: {{key: b}}}}
"#
            ))
        };
        let mut existing = Secret::default();
        existing.metadata.name = Some("es1".into());
        existing.data = Some(
            [
                ("a".to_string(), ByteString(b"1".to_vec())),
                ("theirs".to_string(), ByteString(b"t".to_vec())),
            ]
            .into(),
        );
        let all_missing = || {
            let mut a = Answers::default();
            a.values.insert(ValueRef::new("a"), gone());
            a.values.insert(ValueRef::new("b"), gone());
            a
        };
        let some_missing = || {
            let mut a = Answers::default();
            a.values.insert(ValueRef::new("a"), bytes("1"));
            a.values.insert(ValueRef::new("b"), gone());
            a
        };
        let run = |policy: &str, answers: Answers, existing: Option<&Secret>| {
            let e = spec(policy);
            let fetched = assemble(&e, &answers)?;
            let templates = TemplateInput {
                sources: &template::Sources::new(),
                options: &templating::Options::default(),
            };
            after_fetch(&e, &owner(), fetched, existing, &templates)
        };

        // Retain: a missing value is an error; the Secret stays as it is.
        for ex in [Some(&existing), None] {
            assert!(matches!(
                run("Retain", all_missing(), ex),
                Err(DecisionError::Provider(ProviderError::NotFound(_)))
            ));
            assert!(run("Retain", some_missing(), ex).is_err());
        }
        // Not Retain: each gone reference is noted for a MissingProviderSecret event.
        let fetched = assemble(&spec("Delete"), &some_missing()).unwrap();
        assert_eq!(
            fetched.missing,
            vec!["secret does not exist at provider using spec.data[1] (key=b)".to_string()]
        );
        // Delete: all missing deletes an existing Secret; some missing writes what is left.
        let (w, s) = run("Delete", all_missing(), Some(&existing)).unwrap();
        assert_eq!(w, Write::Delete("es1".into()));
        assert_eq!(s, Synced::Deleted { existed: true });
        assert_eq!(s.event_reason(), Some("Deleted"));
        assert!(!s.ready());
        let (w, s) = run("Delete", all_missing(), None).unwrap();
        assert_eq!((w, s.event_reason()), (Write::Nothing, None));
        let (w, s) = run("Delete", some_missing(), None).unwrap();
        assert!(matches!(w, Write::Create(_)));
        assert_eq!(s, Synced::Created);
        assert!(matches!(
            run("Delete", some_missing(), Some(&existing)).unwrap(),
            (Write::Replace(_), Synced::Updated)
        ));
        // Merge: all missing strips the spec's keys and keeps the rest.
        let (w, s) = run("Merge", all_missing(), Some(&existing)).unwrap();
        let Write::Replace(stripped) = w else {
            panic!("{w:?}")
        };
        let keys: Vec<_> = stripped.data.unwrap().into_keys().collect();
        assert_eq!(keys, vec!["theirs"]);
        assert_eq!(s, Synced::DataRemoved { existed: true });
        assert_eq!(s.condition_reason(), secret::REASON_DELETED);
        let (w, s) = run("Merge", all_missing(), None).unwrap();
        assert_eq!(
            (w, s),
            (Write::Nothing, Synced::DataRemoved { existed: false })
        );
        assert!(matches!(
            run("Merge", some_missing(), None).unwrap(),
            (Write::Create(_), Synced::Created)
        ));
    }

    #[test]
    fn a_copy_older_than_our_own_sync_waits_instead_of_syncing_again() {
        let mut e = es("  refreshInterval: 1h\n  data:\n  - {secretKey: a, remoteRef: {key: a}}\n");
        let now = SystemTime::now();
        let gate_with = |e: &ExternalSecret, last_sync| {
            gate(&Seen {
                es: e,
                target_valid: true,
                current_rv: "1-x",
                now,
                failing: None,
                last_sync,
            })
        };
        // The watch handed over the object from before our status patch: no status at all.
        assert!(matches!(gate_with(&e, None), Ok(Gate::Sync(_))));
        assert!(matches!(
            gate_with(&e, Some(("1-x", now))),
            Ok(Gate::Wait(_))
        ));
        // Our record is of another version: the object changed since, sync it.
        let Ok(Gate::Sync(s)) = gate_with(&e, Some(("0-old", now))) else {
            panic!()
        };
        assert!(s.force);
        // A status newer than our record (another replica synced since) is the one read.
        e.status = Some(crds::external_secrets::ExternalSecretStatus {
            synced_resource_version: Some("0-old".into()),
            refresh_time: Some(crate::report::rfc3339(now)),
            ..Default::default()
        });
        let an_hour_ago = now - Duration::from_secs(3600);
        assert!(matches!(
            gate_with(&e, Some(("1-x", an_hour_ago))),
            Ok(Gate::Sync(s)) if s.force
        ));
    }

    #[test]
    fn gate_waits_for_the_interval_and_the_backoff() {
        let mut e = es("  refreshInterval: 1h\n  data:\n  - {secretKey: a, remoteRef: {key: a}}\n");
        let now = SystemTime::now();
        let seen = |e: &ExternalSecret, failing| {
            let seen = Seen {
                es: e,
                target_valid: false,
                current_rv: "1-x",
                now,
                failing,
                last_sync: None,
            };
            gate(&seen)
        };
        // Never synced: now, not forced (a new object may share a cached value).
        let Ok(Gate::Sync(s)) = seen(&e, None) else {
            panic!()
        };
        assert_eq!((s.interval, s.force), (Duration::from_secs(3600), false));
        assert!(s.jitter < Duration::from_secs(300));
        assert_eq!(requeue_after_sync(&e, &s), Some(s.interval + s.jitter));
        // A first failure a second ago: wait out the backoff.
        assert!(matches!(
            seen(&e, Some((1, Duration::from_secs(1)))),
            Ok(Gate::Wait(_))
        ));
        assert!(matches!(
            seen(&e, Some((1, Duration::from_secs(3600)))),
            Ok(Gate::Sync(_))
        ));
        // Changed since the last sync: forced past the cache.
        e.status = Some(crds::external_secrets::ExternalSecretStatus {
            synced_resource_version: Some("0-old".into()),
            refresh_time: Some(crate::report::rfc3339(now)),
            ..Default::default()
        });
        let Ok(Gate::Sync(s)) = seen(&e, None) else {
            panic!()
        };
        assert!(s.force);
        // Synced just now at this version: wait for the interval.
        e.status.as_mut().unwrap().synced_resource_version = Some("1-x".into());
        assert!(matches!(seen(&e, None), Ok(Gate::Sync(_))), "no target yet");
        // A bad interval is rejected with no interval to back off from.
        e.spec.refresh_interval = Some("soon".into());
        let Err(r) = seen(&e, None) else { panic!() };
        assert_eq!(r.interval, Duration::ZERO);
        assert!(r.error.to_string().contains("refreshInterval"));
    }

    #[test]
    fn only_our_controller_class_is_served() {
        let mut s: StoreSpec = serde_yaml::from_str("provider: {fake: {data: []}}").unwrap();
        assert!(serves(&s, "default"));
        s.controller = Some(String::new());
        assert!(serves(&s, "default"));
        s.controller = Some("other".into());
        assert!(!serves(&s, "default"));
        assert!(serves(&s, "other"));
    }
}
