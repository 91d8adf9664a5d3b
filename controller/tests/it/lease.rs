//! Replicas share one Lease through the (in-memory) Kubernetes API.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use controller::lease::{Elector, LeaseConfig, release, run};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;

fn config(identity: &str) -> LeaseConfig {
    LeaseConfig::new(
        "secrets-controller".into(),
        "kube-system".into(),
        identity.into(),
    )
}

fn holder(lease: &Lease) -> Option<String> {
    lease.spec.as_ref().and_then(|s| s.holder_identity.clone())
}

#[tokio::test]
async fn only_one_replica_leads_and_a_release_hands_over_at_once() {
    let client = kube_fake_client::ClientBuilder::new()
        .build()
        .await
        .unwrap();
    let api: Api<Lease> = Api::namespaced(client, "kube-system");
    let (mut a, mut b) = (Elector::new(config("pod-a")), Elector::new(config("pod-b")));
    let now = Instant::now();
    assert!(
        a.try_once(&api, now).await.unwrap(),
        "first replica takes the free lease"
    );
    assert!(
        !b.try_once(&api, now).await.unwrap(),
        "second replica follows"
    );
    assert!(a.try_once(&api, now).await.unwrap(), "leader renews");
    release(&api, a.config()).await;
    assert!(
        b.try_once(&api, now).await.unwrap(),
        "released lease is taken without waiting"
    );
    assert!(!a.try_once(&api, now).await.unwrap());
    let lease = api.get("secrets-controller").await.unwrap();
    assert_eq!(holder(&lease).as_deref(), Some("pod-b"));
}

/// The holder's clock is an hour behind ours: its renewTime looks long expired, but it may well
/// be alive and renewing. Only a record that stays unchanged for a lease duration is taken.
#[tokio::test]
async fn a_skewed_renew_time_does_not_make_a_second_leader() {
    let client = kube_fake_client::ClientBuilder::new()
        .build()
        .await
        .unwrap();
    let api: Api<Lease> = Api::namespaced(client, "kube-system");
    let mut a = Elector::new(config("pod-a"));
    let t0 = Instant::now();
    assert!(a.try_once(&api, t0).await.unwrap());
    let mut lease = api.get("secrets-controller").await.unwrap();
    let spec = lease.spec.as_mut().unwrap();
    let skewed = Timestamp::now() - Duration::from_secs(3600);
    spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        skewed,
    ));
    spec.acquire_time = spec.renew_time.clone();
    api.replace("secrets-controller", &Default::default(), &lease)
        .await
        .unwrap();

    let mut b = Elector::new(config("pod-b"));
    let s = Duration::from_secs;
    assert!(
        !b.try_once(&api, t0).await.unwrap(),
        "seen for the first time"
    );
    assert!(!b.try_once(&api, t0 + s(14)).await.unwrap());
    // pod-a renews (with its skewed clock): pod-b's wait starts again when it sees that.
    let mut renewed = api.get("secrets-controller").await.unwrap();
    renewed.spec.as_mut().unwrap().renew_time = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(skewed + s(14)),
    );
    api.replace("secrets-controller", &Default::default(), &renewed)
        .await
        .unwrap();
    assert!(!b.try_once(&api, t0 + s(16)).await.unwrap());
    assert!(!b.try_once(&api, t0 + s(30)).await.unwrap());
    assert_eq!(
        holder(&api.get("secrets-controller").await.unwrap()).as_deref(),
        Some("pod-a")
    );
    // pod-a stopped renewing: 15 s after pod-b last saw a change, it takes over.
    assert!(b.try_once(&api, t0 + s(31)).await.unwrap());
    assert_eq!(
        holder(&api.get("secrets-controller").await.unwrap()).as_deref(),
        Some("pod-b")
    );
}

/// The API fails for a while: the leader keeps leading (and its reconcilers running) until the
/// renew deadline, not a moment longer, leads again once the API is back, and releases the lease
/// when it stops.
#[tokio::test]
async fn a_transient_api_error_keeps_leadership_until_the_renew_deadline() {
    let failing = Arc::new(AtomicBool::new(false));
    let fail = Arc::clone(&failing);
    let client = kube_fake_client::ClientBuilder::new()
        .with_interceptor_funcs(kube_fake_client::interceptor::Funcs::new().get(move |_| {
            if fail.load(Ordering::SeqCst) {
                return Err(kube_fake_client::Error::Internal(
                    "etcdserver: request timed out".into(),
                ));
            }
            Ok(None)
        }))
        .build()
        .await
        .unwrap();
    let api: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let (leader_tx, mut leader) = tokio::sync::watch::channel(false);
    let (stop_tx, mut stop) = tokio::sync::watch::channel(false);
    // client-go's proportions (15 s, 10 s, 2 s), scaled down to keep the test short.
    let mut config = config("pod-a");
    config.lease_duration = Duration::from_millis(1500);
    config.renew_deadline = Duration::from_millis(1000);
    config.renew_every = Duration::from_millis(200);
    let (deadline, every) = (config.renew_deadline, config.renew_every);
    let election = tokio::spawn(run(client, config, leader_tx, async move {
        let _ = stop.wait_for(|s| *s).await;
    }));
    leader.wait_for(|l| *l).await.unwrap();

    failing.store(true, Ordering::SeqCst);
    let failing_since = tokio::time::Instant::now();
    leader.wait_for(|l| !*l).await.unwrap();
    let lasted = failing_since.elapsed();
    // Never less than the deadline allows (a try may start up to one period after the failure
    // began); more only by scheduling delays.
    assert!(
        lasted + every >= deadline && lasted < deadline * 3,
        "led for {lasted:?} after the API began failing"
    );

    failing.store(false, Ordering::SeqCst);
    leader.wait_for(|l| *l).await.unwrap();
    assert_eq!(
        holder(&api.get("secrets-controller").await.unwrap()).as_deref(),
        Some("pod-a"),
        "nobody else took it meanwhile: it is renewed, not re-acquired"
    );
    stop_tx.send(true).unwrap();
    election.await.unwrap();
    assert!(!*leader.borrow());
    assert_eq!(holder(&api.get("secrets-controller").await.unwrap()), None);
}
