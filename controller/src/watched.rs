//! Controllers whose caches keep what the reconcilers read and no more: kube-runtime's own
//! `Controller::new` keeps every object whole, `managedFields` included (often the largest
//! part of an object the controller itself writes status to).

use std::fmt::Debug;
use std::hash::Hash;

use kube::api::Api;
use kube::runtime::reflector::{self, reflector};
use kube::runtime::{Controller, WatchStreamExt as _, watcher};
use kube::{Resource, ResourceExt as _};
use serde::de::DeserializeOwned;

/// `Controller::new(api, config)`, with `managedFields` dropped before objects are cached.
pub fn controller<K>(api: Api<K>, config: watcher::Config) -> Controller<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let objects = reflector(
        writer,
        watcher(api, config)
            .default_backoff()
            .modify(|object| object.managed_fields_mut().clear()),
    )
    .applied_objects();
    Controller::for_stream(objects, reader)
}
