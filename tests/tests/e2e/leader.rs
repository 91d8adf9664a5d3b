//! Two replicas with leader election: the standby takes over when the leader dies.

use std::time::{Duration, Instant};

use e2e_tests::envtest::{data, eventually, wait_secret};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

use super::{ACT, seal, sealed_secret_yaml, setup};

/// (holder, leaseDurationSeconds) of the controller's Lease.
async fn lease(api: &Api<Lease>) -> Option<(String, i32)> {
    let spec = api.get_opt("secrets-controller").await.ok()??.spec?;
    Some((spec.holder_identity?, spec.lease_duration_seconds?))
}

#[tokio::test]
async fn two_replicas_one_killed_the_other_takes_over_within_the_lease() {
    let Some(cluster) =
        setup("leader::two_replicas_one_killed_the_other_takes_over_within_the_lease")
    else {
        return;
    };
    let client = cluster.client().await;
    let ns = cluster.namespace(&client, "leader", &[]).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);

    let mut a = cluster.controller(&ns).name("replica-a").start();
    a.ready().await;
    eventually("replica-a to lead", ACT, || async {
        lease(&leases).await.filter(|(h, _)| h == "replica-a")
    })
    .await;
    let mut b = cluster.controller(&ns).name("replica-b").start();
    b.ready().await;
    // The standby serves the same certificate (kubeseal works through either replica).
    let cert = eventually("replica-b to serve the certificate", ACT, || {
        b.get("/v1/cert.pem")
    })
    .await;
    assert_eq!(Some(&cert), a.get("/v1/cert.pem").await.as_ref());

    cluster.apply(&sealed_secret_yaml(
        &ns,
        "before",
        &[("v", &seal(&cert, &ns, "before", "one"))],
        "",
    ));
    wait_secret(&client, &ns, "before", &data(&[("v", "one")]), ACT).await;
    assert_eq!(
        lease(&leases).await.map(|l| l.0).as_deref(),
        Some("replica-a")
    );

    // The leader dies without handing over (kill -9: no lease release).
    a.kill();
    let killed = Instant::now();
    let duration = eventually(
        "replica-b to take the lease",
        Duration::from_secs(60),
        || async {
            lease(&leases)
                .await
                .filter(|(h, _)| h == "replica-b")
                .map(|(_, d)| d)
        },
    )
    .await;
    let took = killed.elapsed();
    eprintln!("takeover {took:?} after the kill (lease duration {duration}s)");
    // The lease expires at most `duration` after the kill; the standby retries every 5 s.
    let bound = Duration::from_secs(u64::try_from(duration).unwrap() + 5 + 2);
    assert!(took <= bound, "takeover took {took:?}, more than {bound:?}");

    cluster.apply(&sealed_secret_yaml(
        &ns,
        "after",
        &[("v", &seal(&cert, &ns, "after", "two"))],
        "",
    ));
    wait_secret(&client, &ns, "after", &data(&[("v", "two")]), ACT).await;
    b.assert_running();
}
