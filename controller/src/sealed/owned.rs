//! The Secrets the SealedSecret reconciler wrote, as a label-selected watch delivers them: the
//! reconciler reads its target Secret here instead of a GET per reconcile. Values are never kept: each Secret is
//! reduced on arrival to its metadata and the MAC of its data (the one `desired::plan`
//! compares), and its values are wiped.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::watcher;
use tokio::sync::watch;

use super::desired;
use super::keyring::KeyRing;

/// A target Secret as the reconciler needs it, without its values.
#[derive(Debug)]
pub struct Observed {
    /// The Secret without `data` or `managedFields`.
    pub secret: Secret,
    /// The MAC of the data as it arrived, under the key its annotation names, when that key is
    /// loaded and the Secret is wholly ours. `None` makes the plan decrypt (or fetch) again.
    pub data_mac: Option<(String, String)>,
    /// False for patch-mode and immutable Secrets: their plan needs the values (a GET).
    pub complete: bool,
}

impl Observed {
    /// Reduces `secret` and wipes its values.
    pub fn of(mut secret: Secret, keys: &KeyRing) -> Self {
        let annotations = secret.metadata.annotations.as_ref();
        let patching = annotations
            .and_then(|a| a.get(desired::ANNOTATION_PATCH))
            .is_some_and(|v| v == "true");
        let complete = !patching && secret.immutable != Some(true);
        let data_mac = complete
            .then(|| annotations.and_then(|a| a.get(desired::ANNOTATION_KEY)))
            .flatten()
            .and_then(|id| keys.by_id(id))
            .map(|key| (key.id.clone(), desired::data_mac_all(&key, &secret)));
        sealing::secret::wipe_secret(&mut secret);
        secret.data = None;
        secret.string_data = None;
        secret.metadata.managed_fields = None;
        Observed {
            secret,
            data_mac,
            complete,
        }
    }
}

type Key = (String, String);

#[derive(Default)]
struct State {
    secrets: HashMap<Key, Arc<Observed>>,
    /// Watches that have not finished their first listing.
    listing: usize,
}

/// The cache, shared by the watches (one per watched namespace, or one cluster-wide) and the
/// reconciles. Cheap to clone.
#[derive(Clone)]
pub struct OwnedSecrets {
    state: Arc<RwLock<State>>,
    ready: watch::Sender<bool>,
    keys: KeyRing,
}

impl OwnedSecrets {
    pub fn new(keys: KeyRing) -> Self {
        OwnedSecrets {
            state: Arc::default(),
            ready: watch::channel(false).0,
            keys,
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets the watches started so far (a new leadership term starts new ones); the values
    /// stay until the new watches list.
    pub fn restart(&self) {
        // `send_replace`, never `send`: `send` changes nothing while nobody is subscribed, and
        // the reconciles subscribe only when they first wait.
        self.write().listing = 0;
        let _ = self.ready.send_replace(false);
    }

    /// Waits until every watch has listed once (before that, absence means nothing).
    pub async fn ready(&self) {
        let mut ready = self.ready.subscribe();
        let _ = ready.wait_for(|r| *r).await;
    }

    /// The target Secret `namespace/name`, as last delivered.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<Observed>> {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .secrets
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Starts one watch of the owned Secrets through `api` (a background task, stopped when
    /// the returned guard drops).
    pub fn watch(&self, api: Api<Secret>, config: watcher::Config) -> AbortOnDrop {
        self.write().listing += 1;
        let _ = self.ready.send_replace(false);
        AbortOnDrop(tokio::spawn(self.clone().follow(api, config)))
    }

    async fn follow(self, api: Api<Secret>, config: watcher::Config) {
        let mut events = watcher(api, config).boxed();
        let mut relist: Option<HashMap<Key, Arc<Observed>>> = None;
        let mut listed_once = false;
        let mut mine: HashSet<Key> = HashSet::new();
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(e) => {
                    tracing::warn!(error = %e, "watching owned Secrets failed; retrying");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
            };
            match event {
                watcher::Event::Init => relist = Some(HashMap::new()),
                watcher::Event::InitApply(secret) => {
                    let (key, observed) = self.reduce(secret);
                    if let Some(relist) = relist.as_mut() {
                        relist.insert(key, observed);
                    }
                }
                watcher::Event::InitDone => {
                    let fresh = relist.take().unwrap_or_default();
                    let mut state = self.write();
                    // Other watches (namespaces) share the map: replace only this one's part.
                    for gone in mine.iter().filter(|k| !fresh.contains_key(*k)) {
                        state.secrets.remove(gone);
                    }
                    mine = fresh.keys().cloned().collect();
                    state.secrets.extend(fresh);
                    if !listed_once {
                        listed_once = true;
                        state.listing = state.listing.saturating_sub(1);
                        if state.listing == 0 {
                            let _ = self.ready.send_replace(true);
                        }
                    }
                }
                watcher::Event::Apply(secret) => {
                    let (key, observed) = self.reduce(secret);
                    mine.insert(key.clone());
                    self.write().secrets.insert(key, observed);
                }
                watcher::Event::Delete(mut secret) => {
                    sealing::secret::wipe_secret(&mut secret);
                    let key = key_of(&secret);
                    mine.remove(&key);
                    self.write().secrets.remove(&key);
                }
            }
        }
    }

    fn reduce(&self, secret: Secret) -> (Key, Arc<Observed>) {
        let key = key_of(&secret);
        (key, Arc::new(Observed::of(secret, &self.keys)))
    }
}

/// Stops a cache watch when dropped.
pub struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
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
    use crate::sealed::keyring::KeyOrder;

    #[tokio::test]
    async fn ready_once_listed_even_if_nobody_waited_during_the_listing() {
        let client = kube_fake_client::ClientBuilder::new()
            .build()
            .await
            .expect("in-memory API");
        let owned = OwnedSecrets::new(KeyRing::new(KeyOrder::CertNotBefore));
        let _watch = owned.watch(
            Api::namespaced(client, "default"),
            watcher::Config::default(),
        );
        // The listing finishes before any reconcile waits, as it usually does at start.
        let listed = async {
            while owned.state.read().map_or(1, |s| s.listing) > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), listed)
            .await
            .expect("the watch lists");
        tokio::time::timeout(Duration::from_secs(5), owned.ready())
            .await
            .expect("a reconcile arriving after the listing does not wait forever");
    }
}
