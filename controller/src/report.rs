//! What both reconcilers (SealedSecret and ExternalSecret) share in their report phase: the
//! status timestamp, best-effort events published in the background, and the status patch. A fix here lands
//! in both halves. No decisions: callers pass the event and the status they decided on.

use std::fmt::Debug;
use std::time::{Duration, SystemTime};

use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::events::{Event, EventType, Recorder};

/// `t` as RFC 3339 in whole seconds (`2026-11-25T23:42:22Z`), as status timestamps are written.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    k8s_openapi::jiff::Timestamp::from_second(i64::try_from(secs).unwrap_or(0))
        .map(|ts| ts.to_string())
        .unwrap_or_default()
}

/// The current time for a status field.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// Parses a status timestamp written by [`rfc3339`] (or by anyone else, in RFC 3339).
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let ts: k8s_openapi::jiff::Timestamp = s.parse().ok()?;
    let secs = u64::try_from(ts.as_second()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// An event about one object, as a reconciler decided it.
pub struct Note {
    pub warning: bool,
    pub reason: String,
    pub message: String,
    /// What the controller was doing (`Sync`, `Unseal`).
    pub action: &'static str,
}

/// Publishes `note` on `object` if events are enabled, in the background: never fails and
/// never waits (see `Recorder::post`).
pub fn publish<K>(recorder: Option<&Recorder>, object: &K, note: Note)
where
    K: Resource<DynamicType = ()>,
{
    let Some(recorder) = recorder else {
        return;
    };
    let event = Event {
        type_: if note.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: note.reason,
        note: Some(note.message),
        action: note.action.into(),
        secondary: None,
    };
    recorder.post(event, object.object_ref(&()));
}

/// Merge-patches the `status` of object `name` through `api` (namespaced or cluster-wide).
pub async fn patch_status<K, S>(api: &Api<K>, name: &str, status: &S) -> kube::Result<()>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    S: Serialize,
{
    let patch = serde_json::json!({ "status": status });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_in_whole_seconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_900);
        let text = rfc3339(t);
        assert_eq!(text, "2026-11-18T11:06:40Z");
        assert_eq!(
            parse_rfc3339(&text).unwrap(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000)
        );
        assert!(parse_rfc3339("yesterday").is_none());
        assert!(now_rfc3339().ends_with('Z'));
    }
}
