//! Leader election on a `coordination.k8s.io/v1` Lease: one replica reconciles and renews keys,
//! every replica serves the HTTP API. A replica that stops hands the lease over at once.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;

#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_every: Duration,
}

/// What to do with the lease as it stands.
#[derive(Debug, PartialEq, Eq)]
pub enum LeaseDecision {
    /// Nobody holds it, or the holder stopped renewing: take it.
    Acquire,
    /// We hold it: renew.
    Renew,
    /// Someone else holds a live lease.
    Follow(String),
}

pub fn decide(lease: Option<&Lease>, identity: &str, now: Timestamp) -> LeaseDecision {
    let Some(spec) = lease.and_then(|l| l.spec.as_ref()) else {
        return LeaseDecision::Acquire;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder.is_empty() {
        return LeaseDecision::Acquire;
    }
    if holder == identity {
        return LeaseDecision::Renew;
    }
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    let expired = spec
        .renew_time
        .as_ref()
        .is_none_or(|renewed| renewed.0.as_second() + duration < now.as_second());
    if expired {
        LeaseDecision::Acquire
    } else {
        LeaseDecision::Follow(holder.to_string())
    }
}

/// The lease as it should be written after `decision` (`None`: nothing to write).
pub fn next_lease(
    current: Option<&Lease>,
    decision: &LeaseDecision,
    config: &LeaseConfig,
    now: Timestamp,
) -> Option<Lease> {
    let now_micro = MicroTime(now);
    let mut lease = current.cloned().unwrap_or_else(|| Lease {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            namespace: Some(config.namespace.clone()),
            ..Default::default()
        },
        spec: Some(LeaseSpec::default()),
    });
    let spec = lease.spec.get_or_insert_default();
    match decision {
        LeaseDecision::Follow(_) => return None,
        LeaseDecision::Acquire => {
            spec.holder_identity = Some(config.identity.clone());
            spec.acquire_time = Some(now_micro.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        LeaseDecision::Renew => {}
    }
    spec.renew_time = Some(now_micro);
    spec.lease_duration_seconds =
        Some(i32::try_from(config.lease_duration.as_secs()).unwrap_or(15));
    Some(lease)
}

pub async fn try_once(api: &Api<Lease>, config: &LeaseConfig) -> Result<bool, kube::Error> {
    let current = api.get_opt(&config.name).await?;
    let now = Timestamp::now();
    let decision = decide(current.as_ref(), &config.identity, now);
    let Some(desired) = next_lease(current.as_ref(), &decision, config, now) else {
        return Ok(false);
    };
    // resourceVersion makes two replicas racing for an expired lease safe: one gets a conflict.
    match current {
        Some(_) => {
            api.replace(&config.name, &PostParams::default(), &desired)
                .await?
        }
        None => api.create(&PostParams::default(), &desired).await?,
    };
    Ok(true)
}

/// Keeps trying to lead; `leader` says whether we do. On `shutdown`, releases the lease.
pub async fn run(
    client: kube::Client,
    config: LeaseConfig,
    leader: watch::Sender<bool>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    tokio::pin!(shutdown);
    loop {
        let leading = match try_once(&api, &config).await {
            Ok(leading) => leading,
            Err(e) => {
                tracing::debug!(error = %e, "lease update failed");
                false
            }
        };
        if *leader.borrow() != leading {
            tracing::info!(leading, identity = %config.identity, "leadership changed");
            let _ = leader.send(leading);
        }
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(config.renew_every) => {}
        }
    }
    if *leader.borrow() {
        let _ = leader.send(false);
        release(&api, &config).await;
    }
}

/// Clears the holder so another replica takes over without waiting for expiry.
pub async fn release(api: &Api<Lease>, config: &LeaseConfig) {
    if let Ok(Some(mut lease)) = api.get_opt(&config.name).await
        && let Some(spec) = lease.spec.as_mut()
        && spec.holder_identity.as_deref() == Some(config.identity.as_str())
    {
        spec.holder_identity = None;
        spec.renew_time = None;
        match api
            .replace(&config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!("lease released"),
            Err(e) => tracing::warn!(error = %e, "cannot release the lease"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(identity: &str) -> LeaseConfig {
        LeaseConfig {
            name: "l".into(),
            namespace: "ns".into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        }
    }

    fn held_by(holder: &str, renewed: Timestamp) -> Lease {
        next_lease(None, &LeaseDecision::Acquire, &config(holder), renewed).unwrap_or_default()
    }

    #[test]
    fn a_live_lease_is_followed_an_expired_or_released_one_taken() {
        let t0 = Timestamp::from_second(1_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let later = |s: i64| Timestamp::from_second(t0.as_second() + s).unwrap_or(t0);
        assert_eq!(decide(None, "a", t0), LeaseDecision::Acquire);
        let lease = held_by("a", t0);
        assert_eq!(decide(Some(&lease), "a", later(5)), LeaseDecision::Renew);
        assert_eq!(
            decide(Some(&lease), "b", later(10)),
            LeaseDecision::Follow("a".into())
        );
        assert_eq!(decide(Some(&lease), "b", later(16)), LeaseDecision::Acquire);
        let mut released = lease.clone();
        if let Some(spec) = released.spec.as_mut() {
            spec.holder_identity = None;
        }
        assert_eq!(
            decide(Some(&released), "b", later(1)),
            LeaseDecision::Acquire
        );
        let taken = next_lease(
            Some(&lease),
            &LeaseDecision::Acquire,
            &config("b"),
            later(16),
        )
        .unwrap_or_default();
        let spec = taken.spec.unwrap_or_default();
        assert_eq!(spec.holder_identity.as_deref(), Some("b"));
        assert_eq!(spec.lease_transitions, Some(2));
        assert!(
            next_lease(
                Some(&lease),
                &LeaseDecision::Follow("a".into()),
                &config("b"),
                t0
            )
            .is_none()
        );
    }
}
