//! The reference for the ExternalSecret first sync: how fast this API server takes the writes
//! one sync makes (create the target Secret, patch the ExternalSecret's status, create an
//! Event), issued by the bench itself with no controller running. Measured in the same run as
//! the controller, on the same API server, so the ratio between the two says how close the
//! controller comes to what the server allows.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};

use crate::{Options, namespace_of, remote_value};

/// Syncs' writes in flight at once: far more than the controller's default, to find the
/// server's limit rather than the bench's.
pub const CONCURRENCY: usize = 64;

/// Makes the three writes of a first sync for each of the N ExternalSecrets (on Secrets named
/// `write-ref-{i}`, beside the real targets) and returns the time they took.
pub async fn reference(client: &kube::Client, options: &Options) -> Result<Duration> {
    let started = Instant::now();
    futures::stream::iter(0..options.n)
        .map(|i| sync_writes(client.clone(), namespace_of(i, options), i))
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(started.elapsed())
}

async fn sync_writes(client: kube::Client, ns: String, i: usize) -> Result<()> {
    let external = format!("external-{i}");
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(format!("write-ref-{i}")),
            namespace: Some(ns.clone()),
            ..Default::default()
        },
        data: Some(
            [(
                "value".to_string(),
                ByteString(remote_value(i % crate::REMOTE_KEYS).into_bytes()),
            )]
            .into(),
        ),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .map_err(|e| anyhow!("reference: create Secret: {e}"))?;

    let now = Timestamp::now().to_string();
    let status = serde_json::json!({"status": {
        "refreshTime": now,
        "syncedResourceVersion": format!("1-reference-{i}"),
        "conditions": [{
            "type": "Ready", "status": "True", "reason": "SecretSynced",
            "message": "secret synced (write reference)", "lastTransitionTime": now,
        }],
    }});
    let externals: Api<crds::external_secrets::ExternalSecret> =
        Api::namespaced(client.clone(), &ns);
    externals
        .patch_status(&external, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .map_err(|e| anyhow!("reference: patch status: {e}"))?;

    let event = Event {
        metadata: ObjectMeta {
            name: Some(format!("{external}.write-ref")),
            namespace: Some(ns.clone()),
            ..Default::default()
        },
        event_time: Some(MicroTime(Timestamp::now())),
        action: Some("Sync".into()),
        reason: Some("Updated".into()),
        note: Some("write reference".into()),
        type_: Some("Normal".into()),
        reporting_controller: Some("scale-bench".into()),
        reporting_instance: Some("scale-bench".into()),
        regarding: Some(ObjectReference {
            api_version: Some("external-secrets.io/v1".into()),
            kind: Some("ExternalSecret".into()),
            name: Some(external),
            namespace: Some(ns.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    Api::<Event>::namespaced(client, &ns)
        .create(&PostParams::default(), &event)
        .await
        .map_err(|e| anyhow!("reference: create Event: {e}"))?;
    Ok(())
}
