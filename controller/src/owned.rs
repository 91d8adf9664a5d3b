//! The Secrets a reconciler wrote, as one label-selected watch delivers them, shared by both
//! halves: reconciles read their target Secret here instead of a GET per reconcile, and the same
//! watch wakes the reconcile of the Secret's owner. One watch for both is what makes the copy
//! trustworthy: the cache is updated before the owner's reconcile is queued, so a reconcile
//! woken by a change always sees that change.
//!
//! Values are never kept: each half reduces a Secret on arrival (metadata plus a digest of its
//! data) and the reduction wipes the values.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt as _};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::sync::watch;

/// `namespace/name` of a Secret.
pub type Key = (String, String);

/// Turns a delivered Secret into what the cache keeps; it must wipe the values.
pub type Reducer<T> = Arc<dyn Fn(Secret) -> T + Send + Sync>;

struct State<T> {
    secrets: HashMap<Key, Arc<T>>,
    /// Watches that have not finished their first listing.
    listing: usize,
}

/// The cache, shared by the watches (one per watched namespace, or one cluster-wide) and the
/// reconciles. Cheap to clone.
pub struct OwnedCache<T> {
    state: Arc<RwLock<State<T>>>,
    ready: watch::Sender<bool>,
    reduce: Reducer<T>,
}

impl<T> Clone for OwnedCache<T> {
    fn clone(&self) -> Self {
        OwnedCache {
            state: Arc::clone(&self.state),
            ready: self.ready.clone(),
            reduce: Arc::clone(&self.reduce),
        }
    }
}

impl<T: Send + Sync + 'static> OwnedCache<T> {
    pub fn new(reduce: Reducer<T>) -> Self {
        OwnedCache {
            state: Arc::new(RwLock::new(State {
                secrets: HashMap::new(),
                listing: 0,
            })),
            ready: watch::channel(false).0,
            reduce,
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State<T>> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until every watch has listed once (before that, absence means nothing).
    pub async fn ready(&self) {
        let mut ready = self.ready.subscribe();
        let _ = ready.wait_for(|r| *r).await;
    }

    /// The Secret `namespace/name`, as last delivered.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<T>> {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .secrets
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// How many Secrets the cache holds.
    pub fn len(&self) -> usize {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .secrets
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One watch of the owned Secrets through `api`, as the trigger stream of a controller
    /// (`Controller::owns_stream`): each Secret is stored before it is passed on, reduced to the
    /// metadata that names its owner. The watch runs while the controller polls the stream.
    pub fn watch(
        &self,
        api: Api<Secret>,
        config: watcher::Config,
    ) -> impl Stream<Item = Result<Secret, watcher::Error>> + Send + 'static {
        self.write().listing += 1;
        let _ = self.ready.send_replace(false);
        let mut follower = Follower::new(self.clone());
        watcher(api, config)
            .default_backoff()
            .flat_map(move |event| {
                let touched = match event {
                    Ok(event) => follower.apply(event).into_iter().map(Ok).collect(),
                    Err(e) => {
                        tracing::warn!(error = %e, "watching owned Secrets failed; retrying");
                        vec![Err(e)]
                    }
                };
                futures::stream::iter(touched)
            })
    }
}

/// The state of one watch: its listing in progress and the keys it delivered (other watches,
/// one per namespace, share the map).
struct Follower<T> {
    cache: OwnedCache<T>,
    relist: Option<HashMap<Key, Arc<T>>>,
    listed_once: bool,
    mine: HashSet<Key>,
}

impl<T: Send + Sync + 'static> Follower<T> {
    fn new(cache: OwnedCache<T>) -> Self {
        Follower {
            cache,
            relist: None,
            listed_once: false,
            mine: HashSet::new(),
        }
    }

    /// Applies one watch event to the cache; returns the Secrets whose owners must reconcile,
    /// as metadata only.
    fn apply(&mut self, event: watcher::Event<Secret>) -> Vec<Secret> {
        match event {
            watcher::Event::Init => {
                self.relist = Some(HashMap::new());
                Vec::new()
            }
            watcher::Event::InitApply(secret) => {
                let (key, owners, reduced) = self.reduce(secret);
                if let Some(relist) = self.relist.as_mut() {
                    relist.insert(key, reduced);
                }
                vec![owners]
            }
            watcher::Event::InitDone => {
                self.finish_listing();
                Vec::new()
            }
            watcher::Event::Apply(secret) => {
                let (key, owners, reduced) = self.reduce(secret);
                self.mine.insert(key.clone());
                self.cache.write().secrets.insert(key, reduced);
                vec![owners]
            }
            watcher::Event::Delete(mut secret) => {
                sealing::secret::wipe_secret(&mut secret);
                let owners = owners_of(&secret);
                let key = key_of(&secret);
                self.mine.remove(&key);
                self.cache.write().secrets.remove(&key);
                vec![owners]
            }
        }
    }

    /// Replaces this watch's part of the map with the fresh listing, and marks the cache ready
    /// once every watch has listed.
    fn finish_listing(&mut self) {
        let fresh = self.relist.take().unwrap_or_default();
        let cache = self.cache.clone();
        let mut state = cache.write();
        for gone in self.mine.iter().filter(|k| !fresh.contains_key(*k)) {
            state.secrets.remove(gone);
        }
        self.mine = fresh.keys().cloned().collect();
        state.secrets.extend(fresh);
        if !self.listed_once {
            self.listed_once = true;
            state.listing = state.listing.saturating_sub(1);
            if state.listing == 0 {
                let _ = self.cache.ready.send_replace(true);
            }
        }
    }

    fn reduce(&self, secret: Secret) -> (Key, Secret, Arc<T>) {
        let key = key_of(&secret);
        let owners = owners_of(&secret);
        (key, owners, Arc::new((self.cache.reduce)(secret)))
    }
}

/// The part of a Secret a controller needs to find its owner.
fn owners_of(secret: &Secret) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: secret.metadata.name.clone(),
            namespace: secret.metadata.namespace.clone(),
            owner_references: secret.metadata.owner_references.clone(),
            ..ObjectMeta::default()
        },
        ..Secret::default()
    }
}

fn key_of(secret: &Secret) -> Key {
    (
        secret.metadata.namespace.clone().unwrap_or_default(),
        secret.metadata.name.clone().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn cache() -> OwnedCache<Option<usize>> {
        // Keeps how many values the Secret had, and wipes them.
        OwnedCache::new(Arc::new(|mut s: Secret| {
            let n = s.data.as_ref().map(|d| d.len());
            sealing::secret::wipe_secret(&mut s);
            n
        }))
    }

    fn secret(ns: &str, name: &str, values: usize) -> Secret {
        let mut s = Secret::default();
        s.metadata.namespace = Some(ns.into());
        s.metadata.name = Some(name.into());
        s.data = Some(
            (0..values)
                .map(|i| (format!("k{i}"), ByteString(b"v".to_vec())))
                .collect(),
        );
        s
    }

    #[test]
    fn the_cache_holds_a_change_before_the_owner_is_woken() {
        let cache = cache();
        cache.write().listing = 1;
        let mut follower = Follower::new(cache.clone());
        assert!(follower.apply(watcher::Event::Init).is_empty());
        let woken = follower.apply(watcher::Event::InitApply(secret("a", "one", 1)));
        assert_eq!(woken[0].metadata.name.as_deref(), Some("one"));
        assert!(
            woken[0].data.is_none(),
            "only metadata travels to the trigger"
        );
        assert!(cache.get("a", "one").is_none(), "a listing lands whole");
        assert!(follower.apply(watcher::Event::InitDone).is_empty());
        assert_eq!(cache.get("a", "one").as_deref(), Some(&Some(1)));
        assert!(
            *cache.ready.borrow(),
            "listed once: absence now means absent"
        );

        // A hand edit: by the time the trigger is handed to the controller, the copy is new.
        follower.apply(watcher::Event::Apply(secret("a", "one", 3)));
        assert_eq!(cache.get("a", "one").as_deref(), Some(&Some(3)));
        follower.apply(watcher::Event::Delete(secret("a", "one", 3)));
        assert!(cache.get("a", "one").is_none());
    }

    #[test]
    fn a_relist_drops_what_this_watch_no_longer_sees_and_keeps_other_watches_entries() {
        let cache = cache();
        cache.write().listing = 2;
        let mut a = Follower::new(cache.clone());
        let mut b = Follower::new(cache.clone());
        for (f, ns) in [(&mut a, "a"), (&mut b, "b")] {
            f.apply(watcher::Event::Init);
            f.apply(watcher::Event::InitApply(secret(ns, "x", 1)));
            f.apply(watcher::Event::InitDone);
        }
        assert!(*cache.ready.borrow());
        // Watch a desynced and lists again without its Secret.
        a.apply(watcher::Event::Init);
        a.apply(watcher::Event::InitDone);
        assert!(cache.get("a", "x").is_none());
        assert!(cache.get("b", "x").is_some());
    }

    #[tokio::test]
    async fn ready_once_listed_even_if_nobody_waited_during_the_listing() {
        let client = kube_fake_client::ClientBuilder::new()
            .build()
            .await
            .expect("in-memory API");
        let cache = cache();
        let watch = cache.watch(
            Api::namespaced(client, "default"),
            watcher::Config::default(),
        );
        let driven = tokio::spawn(watch.for_each(|_| async {}));
        tokio::time::timeout(std::time::Duration::from_secs(5), cache.ready())
            .await
            .expect("a reconcile arriving after the listing does not wait forever");
        driven.abort();
    }
}
