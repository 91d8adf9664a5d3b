//! Coalescing of provider reads across ExternalSecrets: within one refresh window the same
//! (store, key, version) is fetched once, however many ExternalSecrets refer to it, and
//! concurrent readers of a key wait for the one call in flight.
//!
//! Guarantees: a reader never gets a value older than its own refresh interval (`max_age`);
//! `force` (a force-sync or a spec change) always reaches the provider; errors are shared only
//! by readers that arrive while the failing call is in flight or within `ERROR_TTL`, so a
//! provider outage does not fan out into one call per ExternalSecret. The number of entries is
//! bounded so that tenants cannot grow it without limit (external-secrets#6628).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::data::SecretBytes;
use super::provider::{ProviderError, SecretProvider, ValueRef};

const ERROR_TTL: Duration = Duration::from_secs(5);

type Shared = Result<Arc<SecretBytes>, ProviderError>;
/// A slot's content: `None` while its value is being fetched.
type Entry = Option<(Instant, Shared)>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    /// Store identity plus its configuration fingerprint: a changed store never reuses values.
    store: String,
    value: ValueRef,
}

struct Slot {
    rx: watch::Receiver<Entry>,
    /// Last time a reader asked for this value: only values still read are refreshed ahead.
    last_used: Instant,
}

/// How a read was served (for tests and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    Provider,
    Cache,
}

pub struct Coalescer {
    slots: Mutex<HashMap<CacheKey, Slot>>,
    max_entries: usize,
}

impl Default for Coalescer {
    fn default() -> Self {
        Coalescer::new(100_000)
    }
}

impl Coalescer {
    pub fn new(max_entries: usize) -> Self {
        Coalescer {
            slots: Mutex::new(HashMap::new()),
            max_entries: max_entries.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.lock().map(|s| s.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads `refs` through the cache; keys not fresh enough are fetched in one
    /// `get_many` call (AWS turns that into BatchGetSecretValue).
    pub async fn get_many(
        &self,
        store: &str,
        provider: &dyn SecretProvider,
        refs: &[ValueRef],
        max_age: Duration,
        force: bool,
    ) -> Vec<(Shared, Served)> {
        let batch = self.plan_reads(store, provider, refs, max_age, force);
        let fetched = fetch_and_publish(provider, &batch.lead_refs, batch.senders).await;
        let mut out = Vec::with_capacity(batch.reads.len());
        for (index, read) in batch.reads.into_iter().enumerate() {
            out.push(match read {
                Read::Lead(i) => (
                    fetched
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| Err(ProviderError::Other("missing result".into()))),
                    Served::Provider,
                ),
                Read::Wait(rx) => match wait_for_leader(rx).await {
                    Some(r) => (r, Served::Cache),
                    // The leader was cancelled before it finished: fetch ourselves.
                    None => (
                        Box::pin(get_one_uncached(provider, refs, index)).await,
                        Served::Provider,
                    ),
                },
            });
        }
        out
    }

    /// Decides, under the lock, how each of `refs` is served: reused (fresh, or in flight),
    /// or led by this caller, whose batch is then topped up by `refresh_ahead`. Slots for the
    /// led values are in the map before the lock is released, so later readers wait for them.
    fn plan_reads(
        &self,
        store: &str,
        provider: &dyn SecretProvider,
        refs: &[ValueRef],
        max_age: Duration,
        force: bool,
    ) -> Batch {
        let mut batch = Batch {
            reads: Vec::with_capacity(refs.len()),
            lead_refs: Vec::new(),
            senders: Vec::new(),
        };
        let mut slots = self.lock();
        let now = Instant::now();
        for r in refs {
            let key = CacheKey {
                store: store.to_string(),
                value: r.clone(),
            };
            if let Some(slot) = slots
                .get_mut(&key)
                .filter(|slot| !force && reusable(slot, now, max_age))
            {
                slot.last_used = now;
                batch.reads.push(Read::Wait(slot.rx.clone()));
                continue;
            }
            // A key listed twice in one request is fetched once.
            if let Some(i) = batch.lead_refs.iter().position(|x| x == r) {
                batch.reads.push(Read::Lead(i));
                continue;
            }
            let (tx, rx) = watch::channel(None);
            slots.insert(key, Slot { rx, last_used: now });
            batch.reads.push(Read::Lead(batch.lead_refs.len()));
            batch.lead_refs.push(r.clone());
            batch.senders.push(tx);
        }
        Self::refresh_ahead(
            &mut slots,
            store,
            provider,
            max_age,
            now,
            &mut batch.lead_refs,
            &mut batch.senders,
        );
        if slots.len() > self.max_entries {
            Self::evict(&mut slots, self.max_entries);
        }
        batch
    }

    /// The slot map; a panic in another reader does not take the cache down with it.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Slot>> {
        match self.slots.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A batch call costs one API call for 1 or 20 ids (AWS bills per call): fill the batch
    /// that must be sent anyway with other values of the same store that are past half their
    /// window and still read. Values only get fresher, and in steady state a store's keys are
    /// refreshed about `batch_limit` at a time instead of one call each.
    #[allow(clippy::too_many_arguments)]
    fn refresh_ahead(
        slots: &mut HashMap<CacheKey, Slot>,
        store: &str,
        provider: &dyn SecretProvider,
        max_age: Duration,
        now: Instant,
        lead_refs: &mut Vec<ValueRef>,
        senders: &mut Vec<watch::Sender<Entry>>,
    ) {
        let limit = provider.batch_limit();
        let batched = lead_refs.iter().filter(|r| provider.batchable(r)).count();
        if limit <= 1 || batched == 0 || max_age.is_zero() || batched % limit == 0 {
            return;
        }
        let room = limit - batched % limit;
        let mut candidates: Vec<(Instant, CacheKey)> = slots
            .iter()
            .filter(|(k, slot)| {
                k.store == store
                    && provider.batchable(&k.value)
                    && !lead_refs.contains(&k.value)
                    && now.duration_since(slot.last_used) <= max_age * 2
                    && matches!(&*slot.rx.borrow(), Some((at, Ok(_))) if now.duration_since(*at) >= max_age / 2)
            })
            .filter_map(|(k, slot)| {
                let at = slot.rx.borrow().as_ref().map(|(at, _)| *at)?;
                Some((at, k.clone()))
            })
            .collect();
        candidates.sort_by_key(|(at, _)| *at);
        for (_, key) in candidates.into_iter().take(room) {
            let last_used = slots.get(&key).map(|s| s.last_used).unwrap_or(now);
            let (tx, rx) = watch::channel(None);
            lead_refs.push(key.value.clone());
            senders.push(tx);
            slots.insert(key, Slot { rx, last_used });
        }
    }

    /// One value computed by `fetch` (e.g. a `find` listing), shared like provider reads:
    /// concurrent callers wait for one fetch, later ones reuse it within `max_age`.
    pub async fn get_or_fetch<F>(
        &self,
        store: &str,
        key: ValueRef,
        max_age: Duration,
        force: bool,
        fetch: F,
    ) -> (Shared, Served)
    where
        F: std::future::Future<Output = Result<SecretBytes, ProviderError>>,
    {
        let cache_key = CacheKey {
            store: store.to_string(),
            value: key,
        };
        let waiting = {
            let mut slots = self.lock();
            let now = Instant::now();
            match slots
                .get_mut(&cache_key)
                .filter(|slot| !force && reusable(slot, now, max_age))
            {
                Some(slot) => {
                    slot.last_used = now;
                    Err(slot.rx.clone())
                }
                None => {
                    let (tx, rx) = watch::channel(None);
                    slots.insert(cache_key, Slot { rx, last_used: now });
                    Ok(tx)
                }
            }
        };
        match waiting {
            Ok(tx) => {
                let shared: Shared = fetch.await.map(Arc::new);
                tx.send_replace(Some((Instant::now(), shared.clone())));
                (shared, Served::Provider)
            }
            Err(rx) => match wait_for_leader(rx).await {
                Some(r) => (r, Served::Cache),
                // The fetching caller was cancelled: fetch here.
                None => (fetch.await.map(Arc::new), Served::Provider),
            },
        }
    }

    /// Drops finished entries, oldest first, until under the bound; in-flight ones stay.
    fn evict(slots: &mut HashMap<CacheKey, Slot>, max: usize) {
        let mut done: Vec<(Instant, CacheKey)> = slots
            .iter()
            .filter_map(|(k, s)| s.rx.borrow().as_ref().map(|(at, _)| (*at, k.clone())))
            .collect();
        done.sort_by_key(|(at, _)| *at);
        let excess = slots.len().saturating_sub(max);
        for (_, k) in done.into_iter().take(excess) {
            slots.remove(&k);
        }
    }

    /// Removes every entry of a store (its configuration changed or it was deleted).
    pub fn forget_store(&self, store: &str) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.retain(|k, _| k.store != store);
        }
    }
}

/// How one requested value is served.
enum Read {
    /// From the slot of an earlier or concurrent reader.
    Wait(watch::Receiver<Entry>),
    /// From this caller's provider call: the index into its `lead_refs`.
    Lead(usize),
}

/// What one `get_many` call reads, and what it must fetch and publish itself.
struct Batch {
    /// One per requested value, in request order.
    reads: Vec<Read>,
    lead_refs: Vec<ValueRef>,
    /// One per `lead_refs`: where the answer is published to other readers.
    senders: Vec<watch::Sender<Entry>>,
}

/// Whether a slot can answer a reader with window `max_age` at `now`: in flight, a value no
/// older than the window, or an error no older than `ERROR_TTL` (nor the window).
fn reusable(slot: &Slot, now: Instant, max_age: Duration) -> bool {
    match &*slot.rx.borrow() {
        None => true,
        Some((at, Ok(_))) => now.duration_since(*at) <= max_age,
        Some((at, Err(_))) => now.duration_since(*at) <= ERROR_TTL.min(max_age),
    }
}

/// Fetches `lead_refs` in one provider call and publishes each answer to its slot.
async fn fetch_and_publish(
    provider: &dyn SecretProvider,
    lead_refs: &[ValueRef],
    senders: Vec<watch::Sender<Entry>>,
) -> Vec<Shared> {
    if lead_refs.is_empty() {
        return Vec::new();
    }
    let results = provider.get_many(lead_refs).await;
    let at = Instant::now();
    let mut fetched = Vec::with_capacity(senders.len());
    for (i, tx) in senders.iter().enumerate() {
        let shared: Shared = match results.get(i) {
            Some(Ok(v)) => Ok(Arc::new(v.clone())),
            Some(Err(e)) => Err(e.clone()),
            None => Err(ProviderError::Other(
                "provider returned too few results".into(),
            )),
        };
        // Receivers may all be gone; the value then just stays for later readers.
        tx.send_replace(Some((at, shared.clone())));
        fetched.push(shared);
    }
    fetched
}

/// The answer the slot's leader publishes; `None` when it was cancelled before answering.
async fn wait_for_leader(mut rx: watch::Receiver<Entry>) -> Option<Shared> {
    rx.wait_for(|v| v.is_some())
        .await
        .ok()
        .and_then(|v| v.as_ref().map(|(_, r)| r.clone()))
}

async fn get_one_uncached(
    provider: &dyn SecretProvider,
    refs: &[ValueRef],
    index: usize,
) -> Shared {
    match refs.get(index) {
        Some(r) => provider.get(r).await.map(Arc::new),
        None => Err(ProviderError::Other("missing reference".into())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::external::data::SecretMap;
    use crate::external::provider::{BoxFut, FindQuery, GetResult};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use zeroize::Zeroizing;

    #[derive(Default)]
    struct Counting {
        calls: AtomicUsize,
        batch_calls: AtomicUsize,
        fail: bool,
        batch_limit: usize,
        no_delay: bool,
    }

    impl SecretProvider for Counting {
        fn kind(&self) -> &'static str {
            "test"
        }
        fn get<'a>(&'a self, r: &'a ValueRef) -> BoxFut<'a, GetResult> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                if !self.no_delay {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                if self.fail {
                    Err(ProviderError::Unavailable("down".into()))
                } else {
                    Ok(Zeroizing::new(format!("v-{}", r.key).into_bytes()))
                }
            })
        }
        fn get_many<'a>(&'a self, refs: &'a [ValueRef]) -> BoxFut<'a, Vec<GetResult>> {
            Box::pin(async move {
                self.batch_calls.fetch_add(1, Ordering::SeqCst);
                let mut out = Vec::new();
                for r in refs {
                    out.push(self.get(r).await);
                }
                out
            })
        }
        fn find<'a>(&'a self, _: &'a FindQuery) -> BoxFut<'a, Result<SecretMap, ProviderError>> {
            Box::pin(async { Ok(SecretMap::new()) })
        }
        fn batch_limit(&self) -> usize {
            self.batch_limit.max(1)
        }
        fn batchable(&self, _: &ValueRef) -> bool {
            true
        }
        fn validate(&self) -> BoxFut<'_, Result<(), ProviderError>> {
            Box::pin(async { Ok(()) })
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn concurrent_and_later_readers_share_one_call() {
        let p = Counting::default();
        let c = Coalescer::default();
        let refs = [ValueRef::new("a")];
        let futs = (0..50).map(|_| c.get_many("s", &p, &refs, HOUR, false));
        let results = futures::future::join_all(futs).await;
        assert_eq!(p.calls.load(Ordering::SeqCst), 1);
        assert!(
            results
                .iter()
                .all(|r| r[0].0.as_ref().unwrap().as_slice() == b"v-a")
        );
        let providers = results
            .iter()
            .filter(|r| r[0].1 == Served::Provider)
            .count();
        assert_eq!(providers, 1);
        c.get_many("s", &p, &refs, HOUR, false).await;
        assert_eq!(p.calls.load(Ordering::SeqCst), 1);
        // Another store, or another version, is another value.
        c.get_many("t", &p, &refs, HOUR, false).await;
        let v = ValueRef {
            version: Some("2".into()),
            ..ValueRef::new("a")
        };
        c.get_many("s", &p, &[v], HOUR, false).await;
        assert_eq!(p.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn force_and_max_age_reach_the_provider() {
        let p = Counting::default();
        let c = Coalescer::default();
        let refs = [ValueRef::new("a")];
        c.get_many("s", &p, &refs, HOUR, false).await;
        c.get_many("s", &p, &refs, HOUR, true).await;
        assert_eq!(p.calls.load(Ordering::SeqCst), 2);
        tokio::time::sleep(Duration::from_millis(30)).await;
        // A reader with a shorter window than the entry's age fetches again.
        c.get_many("s", &p, &refs, Duration::from_millis(10), false)
            .await;
        assert_eq!(p.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn missing_keys_are_fetched_in_one_batch() {
        let p = Counting::default();
        let c = Coalescer::default();
        let refs: Vec<_> = ["a", "b", "c", "a"]
            .iter()
            .map(|k| ValueRef::new(*k))
            .collect();
        let out = c.get_many("s", &p, &refs, HOUR, false).await;
        assert_eq!(out.len(), 4);
        assert_eq!(p.batch_calls.load(Ordering::SeqCst), 1);
        assert_eq!(p.calls.load(Ordering::SeqCst), 3);
        assert_eq!(out[3].0.as_ref().unwrap().as_slice(), b"v-a");
    }

    #[tokio::test]
    async fn errors_are_shared_briefly_only() {
        let p = Counting {
            fail: true,
            ..Default::default()
        };
        let c = Coalescer::default();
        let refs = [ValueRef::new("a")];
        let futs = (0..10).map(|_| c.get_many("s", &p, &refs, HOUR, false));
        let results = futures::future::join_all(futs).await;
        assert!(results.iter().all(|r| r[0].0.is_err()));
        assert_eq!(p.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn size_is_bounded() {
        let p = Counting::default();
        let c = Coalescer::new(10);
        for i in 0..30 {
            c.get_many("s", &p, &[ValueRef::new(format!("k{i}"))], HOUR, false)
                .await;
        }
        assert!(c.len() <= 11, "{}", c.len());
    }

    #[tokio::test]
    async fn due_batches_refresh_other_values_ahead() {
        let p = Counting {
            batch_limit: 20,
            no_delay: true,
            ..Default::default()
        };
        let c = Coalescer::default();
        let fill = Duration::from_secs(10);
        for i in 0..30 {
            c.get_many("s", &p, &[ValueRef::new(format!("k{i}"))], fill, false)
                .await;
        }
        assert_eq!(p.batch_calls.load(Ordering::SeqCst), 30);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let window = Duration::from_millis(250);
        // k0 is due: the batch sent for it carries 19 more keys past half their window.
        c.get_many("s", &p, &[ValueRef::new("k0")], window, false)
            .await;
        assert_eq!(p.batch_calls.load(Ordering::SeqCst), 31);
        assert_eq!(p.calls.load(Ordering::SeqCst), 30 + 20);
        // Every other key is now read once: k1..k19 are fresh, k20 is due and takes the
        // remaining nine with it.
        for i in 1..30 {
            c.get_many("s", &p, &[ValueRef::new(format!("k{i}"))], window, false)
                .await;
        }
        assert_eq!(p.batch_calls.load(Ordering::SeqCst), 32);
        assert_eq!(p.calls.load(Ordering::SeqCst), 30 + 20 + 10);

        // Without a batch API nothing is piggybacked.
        let single = Counting {
            no_delay: true,
            ..Default::default()
        };
        let c = Coalescer::default();
        for i in 0..5 {
            c.get_many("s", &single, &[ValueRef::new(format!("k{i}"))], fill, false)
                .await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.get_many("s", &single, &[ValueRef::new("k0")], window, false)
            .await;
        assert_eq!(single.calls.load(Ordering::SeqCst), 6);
    }
}
