//! Two replicas share one Lease through the (in-memory) Kubernetes API.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use controller::lease::{LeaseConfig, release, try_once};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

fn config(identity: &str) -> LeaseConfig {
    LeaseConfig {
        name: "secrets-controller".into(),
        namespace: "kube-system".into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(15),
        renew_every: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn only_one_replica_leads_and_a_release_hands_over_at_once() {
    let client = kube_fake_client::ClientBuilder::new()
        .build()
        .await
        .unwrap();
    let api: Api<Lease> = Api::namespaced(client, "kube-system");
    let (a, b) = (config("pod-a"), config("pod-b"));
    assert!(
        try_once(&api, &a).await.unwrap(),
        "first replica takes the free lease"
    );
    assert!(!try_once(&api, &b).await.unwrap(), "second replica follows");
    assert!(try_once(&api, &a).await.unwrap(), "leader renews");
    release(&api, &a).await;
    assert!(
        try_once(&api, &b).await.unwrap(),
        "released lease is taken without waiting"
    );
    assert!(!try_once(&api, &a).await.unwrap());
    let lease = api.get("secrets-controller").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("pod-b")
    );
}
