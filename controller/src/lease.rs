//! Leader election on a `coordination.k8s.io/v1` Lease: one replica reconciles and renews keys,
//! every replica serves the HTTP API and keeps its watches warm (`Leadership`). A replica that
//! stops hands the lease over at once.
//!
//! The rules are client-go's. A follower never compares the holder's `renewTime` with its own
//! clock (clocks of two nodes may disagree by minutes, which would make two leaders): it takes
//! the lease only when the record has not changed for a lease duration, measured on its own
//! monotonic clock from when it first saw the record as it is. A leader keeps leading through
//! failed renewals until the renew deadline, which is shorter than the lease duration, so that
//! it has stopped before any follower can take over.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::controller::Action;
use tokio::sync::watch;

#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long followers wait, from when they last saw the lease record change, before taking
    /// it over.
    pub lease_duration: Duration,
    /// A leader that has not renewed for this long stops leading. Shorter than `lease_duration`.
    pub renew_deadline: Duration,
    /// Time between two tries to take or renew the lease.
    pub renew_every: Duration,
}

impl LeaseConfig {
    /// client-go's defaults: 15 s lease, 10 s renew deadline, a try every 2 s.
    pub fn new(name: String, namespace: String, identity: String) -> Self {
        Self {
            name,
            namespace,
            identity,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            renew_every: Duration::from_secs(2),
        }
    }
}

/// What to do with the lease as it stands.
#[derive(Debug, PartialEq, Eq)]
pub enum LeaseDecision {
    /// Nobody holds it, or the record has not changed for a lease duration: take it.
    Acquire,
    /// We hold it: renew.
    Renew,
    /// Someone else holds a live lease.
    Follow(String),
}

/// The lease record as last read, and when (on this replica's monotonic clock) it was first seen
/// as it is.
type Observed = (Option<(LeaseSpec, Option<String>)>, Instant);

/// One replica's view of the election.
#[derive(Debug)]
pub struct Elector {
    config: LeaseConfig,
    observed: Option<Observed>,
    /// When the last renewal that succeeded was started.
    renewed_at: Option<Instant>,
}

impl Elector {
    pub fn new(mut config: LeaseConfig) -> Self {
        if config.renew_deadline >= config.lease_duration {
            let deadline = config.lease_duration * 2 / 3;
            tracing::warn!(
                ?deadline,
                "the renew deadline must be shorter than the lease duration; using 2/3 of it"
            );
            config.renew_deadline = deadline;
        }
        Self {
            config,
            observed: None,
            renewed_at: None,
        }
    }

    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// Notes `lease` as read at `now` and decides what to do with it.
    pub fn observe(&mut self, lease: Option<&Lease>, now: Instant) -> LeaseDecision {
        let record = lease.map(|l| {
            (
                l.spec.clone().unwrap_or_default(),
                l.metadata.resource_version.clone(),
            )
        });
        let since = match self.observed.take() {
            Some((seen, since)) if seen == record => since,
            _ => now,
        };
        self.observed = Some((record, since));
        let Some(spec) = lease.and_then(|l| l.spec.as_ref()) else {
            return LeaseDecision::Acquire;
        };
        let holder = spec.holder_identity.as_deref().unwrap_or("");
        if holder.is_empty() {
            return LeaseDecision::Acquire;
        }
        if holder == self.config.identity {
            return LeaseDecision::Renew;
        }
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .filter(|&s| s > 0)
            .map_or(self.config.lease_duration, Duration::from_secs);
        if now.saturating_duration_since(since) >= duration {
            LeaseDecision::Acquire
        } else {
            LeaseDecision::Follow(holder.to_string())
        }
    }

    /// Reads the lease and takes or renews it when [`Elector::observe`] says so. Ok(true): we
    /// hold it now. `now` is when the try started (the renewal is dated from there).
    pub async fn try_once(&mut self, api: &Api<Lease>, now: Instant) -> Result<bool, kube::Error> {
        let current = api.get_opt(&self.config.name).await?;
        let decision = self.observe(current.as_ref(), now);
        let Some(desired) = next_lease(current.as_ref(), &decision, &self.config, Timestamp::now())
        else {
            return Ok(false);
        };
        // resourceVersion makes two replicas racing for an expired lease safe: one gets a conflict.
        let written = match current {
            Some(_) => {
                api.replace(&self.config.name, &PostParams::default(), &desired)
                    .await?
            }
            None => api.create(&PostParams::default(), &desired).await?,
        };
        self.observe(Some(&written), now);
        self.renewed_at = Some(now);
        Ok(true)
    }

    /// Whether we lead after a try that ended at `now` with `outcome`. A failed try (API error,
    /// conflict, time-out) keeps a leader leading until the renew deadline; a lease seen held by
    /// another replica ends leading at once.
    pub fn leading_after<E>(&mut self, outcome: &Result<bool, E>, now: Instant) -> bool {
        match outcome {
            Ok(true) => true,
            Ok(false) => {
                self.renewed_at = None;
                false
            }
            Err(_) => self
                .renewed_at
                .is_some_and(|t| now.saturating_duration_since(t) < self.config.renew_deadline),
        }
    }

    /// How long the next try may take: a leader must know before its renew deadline.
    fn try_timeout(&self, now: Instant) -> Duration {
        let deadline = self.config.renew_deadline;
        self.renewed_at.map_or(deadline, |t| {
            deadline
                .saturating_sub(now.saturating_duration_since(t))
                .max(Duration::from_millis(100))
        })
    }
}

/// The lease as it should be written after `decision` (`None`: nothing to write). `now` is the
/// wall-clock time written for other tools to read; no replica decides by it.
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

/// This replica's monotonic clock; tokio's, so that tests can run it paused.
fn monotonic_now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Keeps trying to lead; `leader` says whether we do. On `shutdown`, releases the lease.
pub async fn run(
    client: kube::Client,
    config: LeaseConfig,
    leader: watch::Sender<bool>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let mut elector = Elector::new(config);
    tokio::pin!(shutdown);
    loop {
        let started = monotonic_now();
        let outcome = match tokio::time::timeout(
            elector.try_timeout(started),
            elector.try_once(&api, started),
        )
        .await
        {
            Ok(Ok(held)) => Ok(held),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the Kubernetes API did not answer in time".to_string()),
        };
        if let Err(e) = &outcome {
            tracing::debug!(error = %e, "lease update failed");
        }
        let leading = elector.leading_after(&outcome, monotonic_now());
        if *leader.borrow() != leading {
            tracing::info!(leading, identity = %elector.config().identity, "leadership changed");
            let _ = leader.send(leading);
        }
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(elector.config().renew_every) => {}
        }
    }
    if *leader.borrow() {
        let _ = leader.send(false);
        release(&api, elector.config()).await;
    }
}

/// Whether this replica leads, as the election says, for the reconcilers to follow. The
/// reconcilers and their watches run on every replica, so a new term (after an API server outage
/// outlasted the renew deadline, or on a standby taking over) starts from warm caches instead of
/// listing every object again; only leaders act on what they see.
#[derive(Clone, Debug)]
pub struct Leadership(watch::Receiver<bool>);

impl Leadership {
    /// Follows the channel `run` sends on.
    pub fn following(leader: watch::Receiver<bool>) -> Self {
        Self(leader)
    }

    /// Leads for good: no election.
    pub fn always() -> Self {
        Self(watch::channel(true).1)
    }

    /// Runs one reconcile while this replica leads. A follower does nothing and waits for the
    /// next term (see `terms`); a reconcile cut short by the end of the term is tried again
    /// shortly, by whichever replica leads then.
    pub async fn reconcile<E>(
        &self,
        work: impl std::future::Future<Output = Result<Action, E>>,
    ) -> Result<Action, E> {
        let mut leader = self.0.clone();
        if !*leader.borrow_and_update() {
            return Ok(Action::await_change());
        }
        let lost = async {
            // Without a sender the term never ends: shutdown is the reconcilers' own signal.
            if leader.wait_for(|leading| !*leading).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            outcome = work => outcome,
            () = lost => Ok(Action::requeue(RETRY_AFTER_LOST_TERM)),
        }
    }

    /// `reconcile`, acting only while this replica leads (see `reconcile`), in the shape
    /// kube's `Controller::run` takes.
    pub fn gate<K, C, E, F, Fut>(
        &self,
        reconcile: F,
    ) -> impl Fn(Arc<K>, Arc<C>) -> BoxFuture<'static, Result<Action, E>> + use<K, C, E, F, Fut>
    where
        F: Fn(Arc<K>, Arc<C>) -> Fut,
        Fut: std::future::Future<Output = Result<Action, E>> + Send + 'static,
        E: Send + 'static,
    {
        let leadership = self.clone();
        move |object, ctx| {
            let leadership = leadership.clone();
            let work = reconcile(object, ctx);
            async move { leadership.reconcile(work).await }.boxed()
        }
    }

    /// A tick each time this replica starts to lead, for a reconcile of everything it watches:
    /// what it saw as a follower was left alone.
    pub fn terms(&self) -> impl futures::Stream<Item = ()> + Send + 'static {
        let leader = self.0.clone();
        let leading = *leader.borrow();
        futures::stream::unfold((leader, leading), |(mut leader, mut leading)| async move {
            loop {
                leader.changed().await.ok()?;
                let now = *leader.borrow_and_update();
                let gained = now && !leading;
                leading = now;
                if gained {
                    return Some(((), (leader, leading)));
                }
            }
        })
    }
}

/// When a reconcile cut short by a lost term runs again (a no-op unless this replica leads).
const RETRY_AFTER_LOST_TERM: Duration = Duration::from_secs(5);

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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(identity: &str) -> LeaseConfig {
        LeaseConfig::new("l".into(), "ns".into(), identity.into())
    }

    fn held_by(holder: &str, renewed: Timestamp, version: &str) -> Lease {
        let mut lease =
            next_lease(None, &LeaseDecision::Acquire, &config(holder), renewed).unwrap_or_default();
        lease.metadata.resource_version = Some(version.into());
        lease
    }

    #[test]
    fn a_lease_expires_a_lease_duration_after_its_record_last_changed_here() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // Written by a holder whose clock is an hour behind, then by one an hour ahead.
        let behind = Timestamp::now() - s(3600);
        let ahead = Timestamp::now() + s(3600);
        let mut b = Elector::new(config("b"));
        assert_eq!(b.observe(None, t0), LeaseDecision::Acquire);
        let lease = held_by("a", behind, "1");
        assert_eq!(
            b.observe(Some(&lease), t0),
            LeaseDecision::Follow("a".into())
        );
        assert_eq!(
            b.observe(Some(&lease), t0 + s(14)),
            LeaseDecision::Follow("a".into())
        );
        let renewed = held_by("a", ahead, "2");
        assert_eq!(
            b.observe(Some(&renewed), t0 + s(14)),
            LeaseDecision::Follow("a".into()),
            "a renewal restarts the wait"
        );
        assert_eq!(
            b.observe(Some(&renewed), t0 + s(28)),
            LeaseDecision::Follow("a".into())
        );
        assert_eq!(
            b.observe(Some(&renewed), t0 + s(29)),
            LeaseDecision::Acquire
        );

        let mut a = Elector::new(config("a"));
        assert_eq!(a.observe(Some(&renewed), t0), LeaseDecision::Renew);
        let mut released = lease.clone();
        if let Some(spec) = released.spec.as_mut() {
            spec.holder_identity = None;
        }
        assert_eq!(b.observe(Some(&released), t0), LeaseDecision::Acquire);
        let taken = next_lease(
            Some(&lease),
            &LeaseDecision::Acquire,
            &config("b"),
            Timestamp::now(),
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
                Timestamp::now()
            )
            .is_none()
        );
    }

    #[test]
    fn failed_renewals_keep_a_leader_until_the_renew_deadline_only() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut a = Elector::new(config("a"));
        let failed: Result<bool, ()> = Err(());
        assert!(!a.leading_after(&failed, t0), "no leader before a renewal");
        a.renewed_at = Some(t0);
        assert!(a.leading_after(&Ok::<_, ()>(true), t0));
        assert!(a.leading_after(&failed, t0 + s(9)));
        assert!(!a.leading_after(&failed, t0 + s(10)));
        assert!(a.leading_after(&Ok::<_, ()>(true), t0 + s(11)));
        assert!(!a.leading_after(&Ok::<_, ()>(false), t0 + s(11)));
        assert!(!a.leading_after(&failed, t0 + s(12)), "someone else leads");

        let mut odd = config("a");
        odd.renew_deadline = s(20);
        assert!(Elector::new(odd).config().renew_deadline < s(15));
    }

    async fn counted(runs: &std::sync::atomic::AtomicUsize) -> Result<Action, ()> {
        runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Action::requeue(Duration::from_secs(60)))
    }

    #[tokio::test]
    async fn only_a_leader_reconciles_and_a_lost_term_cuts_its_reconcile_short() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (leader_tx, leader) = watch::channel(false);
        let leadership = Leadership::following(leader);
        let runs = AtomicUsize::new(0);
        let idle = leadership.reconcile(counted(&runs)).await;
        assert_eq!(idle, Ok(Action::await_change()));
        assert_eq!(runs.load(Ordering::SeqCst), 0, "a follower ran a reconcile");

        leader_tx.send(true).unwrap();
        let done = leadership.reconcile(counted(&runs)).await;
        assert_eq!(done, Ok(Action::requeue(Duration::from_secs(60))));
        assert_eq!(runs.load(Ordering::SeqCst), 1);

        let stuck = leadership.reconcile(std::future::pending::<Result<Action, ()>>());
        let lose = async {
            tokio::task::yield_now().await;
            leader_tx.send(false).unwrap();
        };
        let (cut, ()) =
            tokio::time::timeout(Duration::from_secs(5), async { tokio::join!(stuck, lose) })
                .await
                .expect("the end of the term ends the reconcile");
        assert_eq!(cut, Ok(Action::requeue(RETRY_AFTER_LOST_TERM)));
    }

    #[tokio::test]
    async fn a_term_ticks_once_when_it_starts_and_never_when_it_ends() {
        use futures::StreamExt as _;
        let (leader_tx, leader) = watch::channel(false);
        let terms = Leadership::following(leader).terms();
        futures::pin_mut!(terms);
        let next = |terms: &mut std::pin::Pin<&mut _>| {
            futures::FutureExt::now_or_never(futures::StreamExt::next(terms))
        };
        assert_eq!(next(&mut terms), None, "no term yet");
        leader_tx.send(true).unwrap();
        assert_eq!(terms.next().await, Some(()));
        leader_tx.send(true).unwrap();
        leader_tx.send(false).unwrap();
        assert_eq!(next(&mut terms), None, "renewals and losses do not tick");
        leader_tx.send(true).unwrap();
        assert_eq!(terms.next().await, Some(()), "a second term ticks");
        drop(leader_tx);
        assert_eq!(terms.next().await, None);
    }
}
