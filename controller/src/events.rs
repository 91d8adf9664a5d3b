//! Kubernetes Events (events.k8s.io/v1) as kube-runtime's `Recorder` writes them: a repeat of
//! the same event on the same object within six minutes becomes a series (count, last seen) on
//! the first Event instead of a new one. What differs is memory: kube's recorder keeps every
//! Event it published, whole, in a table that never shrinks (7 MiB after the first sync of
//! 1,000 SealedSecrets and 1,000 ExternalSecrets, measured with dhat); this one keeps a hash of
//! each event's identity with the Event's name and count, at most `MAX_REMEMBERED` of them.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
pub use kube::runtime::events::{Event, EventType, Reporter};
use tokio::sync::Semaphore;

/// How long a repeat counts as the same event (kube's and client-go's figure).
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
/// Events remembered for series at most; past this, the oldest half is forgotten (a forgotten
/// event's next repeat is a new Event, as after six minutes).
const MAX_REMEMBERED: usize = 4096;
/// Events published at once at most (each holds one Event, about a kilobyte, while it waits).
const MAX_IN_FLIGHT: usize = 256;
/// How long publishing an Event may take: a slow API server must not pile them up.
const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

struct Published {
    name: String,
    count: i32,
    last: Instant,
}

/// Publishes Events for one controller instance. Clones share one memory of recent events.
#[derive(Clone)]
pub struct Recorder(Arc<Shared>);

struct Shared {
    client: kube::Client,
    reporter: Reporter,
    recent: Mutex<HashMap<u64, Published>>,
    /// Events being published; one more is dropped, as client-go drops events when its
    /// queue is full.
    in_flight: Arc<Semaphore>,
}

impl Recorder {
    pub fn new(client: kube::Client, reporter: Reporter) -> Self {
        Recorder(Arc::new(Shared {
            client,
            reporter,
            recent: Mutex::new(HashMap::new()),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }))
    }

    /// Publishes `event` about `regarding` in the background and returns at once, as client-go's
    /// recorder does: an Event is best effort and a reconcile does not wait for it (one API
    /// round trip less per sync). Never fails; a failed or dropped Event is logged at debug.
    pub fn post(&self, event: Event, regarding: ObjectReference) {
        let Ok(permit) = Arc::clone(&self.0.in_flight).try_acquire_owned() else {
            tracing::debug!(
                reason = %event.reason,
                "event dropped: {MAX_IN_FLIGHT} others are being published"
            );
            return;
        };
        let recorder = self.clone();
        tokio::spawn(async move {
            let outcome =
                tokio::time::timeout(EVENT_TIMEOUT, recorder.publish(&event, &regarding)).await;
            drop(permit);
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "publishing event failed"),
                Err(_) => tracing::debug!("publishing event timed out"),
            }
        });
    }

    /// Publishes `event` about `regarding`: a new Event, or the next count of a recent one.
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let key = identity(event, regarding);
        let now = Instant::now();
        let repeat = self.remember_repeat(key, now);
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let api: Api<K8sEvent> = Api::namespaced(self.0.client.clone(), &namespace);
        if let Some((name, count)) = repeat {
            let series = K8sEvent {
                series: Some(EventSeries {
                    count,
                    last_observed_time: MicroTime(Timestamp::now()),
                }),
                ..K8sEvent::default()
            };
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&series))
                .await
            {
                Ok(_) => return Ok(()),
                // Deleted (or expired) meanwhile: start a new Event.
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let new = self.new_event(event, regarding);
        // Remembered before it exists: a repeat published meanwhile continues this Event
        // instead of making a second one (and makes a new one should this create fail).
        self.remember_new(key, new.metadata.name.clone().unwrap_or_default(), now);
        api.create(&PostParams::default(), &new).await?;
        Ok(())
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Published>> {
        self.0.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The Event a repeat of `key` continues, with its next count, if it was seen lately.
    fn remember_repeat(&self, key: u64, now: Instant) -> Option<(String, i32)> {
        let mut recent = self.recent();
        let seen = recent
            .get_mut(&key)
            .filter(|p| now.duration_since(p.last) < SERIES_WINDOW)?;
        seen.count = seen.count.saturating_add(1);
        seen.last = now;
        Some((seen.name.clone(), seen.count))
    }

    fn remember_new(&self, key: u64, name: String, now: Instant) {
        let mut recent = self.recent();
        if recent.len() >= MAX_REMEMBERED {
            recent.retain(|_, p| now.duration_since(p.last) < SERIES_WINDOW);
            if recent.len() >= MAX_REMEMBERED / 2 {
                let mut ages: Vec<Instant> = recent.values().map(|p| p.last).collect();
                ages.sort_unstable();
                let cutoff = ages[ages.len() / 2];
                recent.retain(|_, p| p.last > cutoff);
            }
            recent.shrink_to_fit();
        }
        recent.insert(
            key,
            Published {
                name,
                count: 1,
                last: now,
            },
        );
    }

    fn new_event(&self, event: &Event, regarding: &ObjectReference) -> K8sEvent {
        let now = Timestamp::now();
        K8sEvent {
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            note: event.note.clone(),
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                name: Some(format!(
                    "{}.{:x}",
                    regarding
                        .name
                        .as_ref()
                        .unwrap_or(&self.0.reporter.controller),
                    now.as_nanosecond()
                )),
                ..ObjectMeta::default()
            },
            reporting_controller: Some(self.0.reporter.controller.clone()),
            reporting_instance: Some(
                self.0
                    .reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.0.reporter.controller.clone()),
            ),
            type_: Some(
                match event.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            related: event.secondary.clone(),
            ..K8sEvent::default()
        }
    }
}

/// What makes two events the same for a series: kube's `EventKey` (type, action, reason and the
/// object; the reporter is the same for one recorder), as a hash.
fn identity(event: &Event, regarding: &ObjectReference) -> u64 {
    let mut h = DefaultHasher::new();
    matches!(event.type_, EventType::Warning).hash(&mut h);
    event.action.hash(&mut h);
    event.reason.hash(&mut h);
    regarding.uid.hash(&mut h);
    regarding.namespace.hash(&mut h);
    regarding.name.hash(&mut h);
    regarding.kind.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder() -> Recorder {
        // Never contacted: these tests exercise the memory only.
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("url"));
        let client = kube::Client::try_from(config).expect("client");
        Recorder::new(
            client,
            Reporter {
                controller: "test".into(),
                instance: None,
            },
        )
    }

    #[tokio::test]
    async fn posting_never_waits_and_bounds_the_events_in_flight() {
        // An API server that accepts connections and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", silent.local_addr().expect("addr"));
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((conn, _)) = silent.accept().await {
                open.push(conn);
            }
        });
        let config = kube::Config::new(url.parse().expect("url"));
        let r = Recorder::new(
            kube::Client::try_from(config).expect("client"),
            Reporter {
                controller: "test".into(),
                instance: None,
            },
        );
        let event = || Event {
            type_: EventType::Normal,
            reason: "Synced".into(),
            note: None,
            action: "Sync".into(),
            secondary: None,
        };
        let started = Instant::now();
        for i in 0..(MAX_IN_FLIGHT + 50) {
            let regarding = ObjectReference {
                name: Some(format!("obj-{i}")),
                namespace: Some("ns".into()),
                ..ObjectReference::default()
            };
            r.post(event(), regarding);
        }
        assert!(started.elapsed() < Duration::from_secs(1), "post waited");
        assert_eq!(r.0.in_flight.available_permits(), 0, "all slots taken");
        // Let the posted events start: each is remembered, then waits on the silent server.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            r.recent().len(),
            MAX_IN_FLIGHT,
            "past the bound, events are dropped"
        );
        held.abort();
    }

    #[tokio::test]
    async fn a_repeat_within_the_window_continues_the_series_and_a_late_one_starts_anew() {
        let r = recorder();
        let t0 = Instant::now();
        assert_eq!(r.remember_repeat(1, t0), None);
        r.remember_new(1, "obj.1".into(), t0);
        assert_eq!(
            r.remember_repeat(1, t0 + Duration::from_secs(60)),
            Some(("obj.1".into(), 2))
        );
        assert_eq!(
            r.remember_repeat(1, t0 + Duration::from_secs(120)),
            Some(("obj.1".into(), 3))
        );
        assert_eq!(
            r.remember_repeat(1, t0 + Duration::from_secs(120) + SERIES_WINDOW),
            None
        );
    }

    #[tokio::test]
    async fn memory_stays_bounded_after_a_burst() {
        let r = recorder();
        let t0 = Instant::now();
        for key in 0..(3 * MAX_REMEMBERED as u64) {
            r.remember_new(key, format!("obj.{key}"), t0 + Duration::from_millis(key));
        }
        let remembered = r.recent().len();
        assert!(
            remembered <= MAX_REMEMBERED,
            "{remembered} events remembered"
        );
        // The newest are the ones kept.
        let newest = 3 * MAX_REMEMBERED as u64 - 1;
        assert!(
            r.remember_repeat(newest, t0 + Duration::from_secs(20))
                .is_some()
        );
    }

    #[test]
    fn identity_tells_objects_reasons_and_types_apart() {
        let event = |reason: &str, type_| Event {
            type_,
            reason: reason.into(),
            note: Some("changing notes do not start a new series".into()),
            action: "Sync".into(),
            secondary: None,
        };
        let object = |name: &str| ObjectReference {
            kind: Some("SealedSecret".into()),
            namespace: Some("ns".into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectReference::default()
        };
        let base = identity(&event("Unsealed", EventType::Normal), &object("a"));
        let mut other_note = event("Unsealed", EventType::Normal);
        other_note.note = Some("another note".into());
        assert_eq!(base, identity(&other_note, &object("a")));
        assert_ne!(
            base,
            identity(&event("Unsealed", EventType::Normal), &object("b"))
        );
        assert_ne!(
            base,
            identity(&event("ErrUnsealFailed", EventType::Normal), &object("a"))
        );
        assert_ne!(
            base,
            identity(&event("Unsealed", EventType::Warning), &object("a"))
        );
    }
}
