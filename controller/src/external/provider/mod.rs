//! One small trait behind which every secret provider sits: get one key, get several keys,
//! find by name/tags, validate the store. Implementations: `fake`, `aws`, `vault`.

pub mod aws;
pub mod fake;
pub mod vault;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use super::data::{SecretBytes, SecretMap};
use super::metrics::Metrics;

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Produces a fresh credential token on demand (a service-account TokenRequest, or the pod's
/// rotated token file), so that logins long after start-up never use an expired one.
pub type TokenSource = std::sync::Arc<
    dyn Fn() -> BoxFut<'static, Result<zeroize::Zeroizing<String>, ProviderError>> + Send + Sync,
>;

/// Address of one provider value as the coalescing cache keys it: the whole value of `key` at
/// `version` (property selection happens afterwards, so it never causes a second call).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueRef {
    pub key: String,
    pub version: Option<String>,
    /// `metadataPolicy: Fetch`: the key's metadata/tags instead of its value.
    pub metadata: bool,
}

impl ValueRef {
    pub fn new(key: impl Into<String>) -> Self {
        ValueRef {
            key: key.into(),
            version: None,
            metadata: false,
        }
    }
}

/// `dataFrom.find`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct FindQuery {
    pub path: Option<String>,
    pub name_regexp: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// Provider failures. Messages come from the provider's error text and name keys, never values.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ProviderError {
    /// The secret (or version) does not exist or is scheduled for deletion: feeds deletionPolicy.
    #[error("secret not found: {0}")]
    NotFound(String),
    #[error("provider throttled the request: {0}")]
    Throttled(String),
    #[error("not authorized: {0}")]
    Unauthorized(String),
    #[error("invalid store configuration: {0}")]
    Config(String),
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    #[error("provider error: {0}")]
    Other(String),
}

impl ProviderError {
    pub fn status_label(&self) -> &'static str {
        match self {
            ProviderError::NotFound(_) => "not_found",
            ProviderError::Throttled(_) => "throttled",
            ProviderError::Unauthorized(_) => "unauthorized",
            ProviderError::Config(_) => "config",
            ProviderError::Unavailable(_) => "unavailable",
            ProviderError::Other(_) => "error",
        }
    }
}

pub type GetResult = Result<SecretBytes, ProviderError>;

pub trait SecretProvider: Send + Sync {
    /// `vault`, `aws` or `fake`.
    fn kind(&self) -> &'static str;

    /// The whole value of one key (Vault: the data map as JSON; AWS: SecretString or
    /// SecretBinary; fake: the value).
    fn get<'a>(&'a self, r: &'a ValueRef) -> BoxFut<'a, GetResult>;

    /// Several keys at once. Providers with a batch API (AWS BatchGetSecretValue) override it.
    fn get_many<'a>(&'a self, refs: &'a [ValueRef]) -> BoxFut<'a, Vec<GetResult>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(refs.len());
            for r in refs {
                out.push(self.get(r).await);
            }
            out
        })
    }

    /// Most ids one `get_many` call sends together (1: no batch API).
    fn batch_limit(&self) -> usize {
        1
    }

    /// Whether `get_many` fetches this reference in a batch call.
    fn batchable(&self, _r: &ValueRef) -> bool {
        false
    }

    /// Every secret matching the query, keyed by its name (relative to `path` where the
    /// provider lists by path).
    fn find<'a>(&'a self, q: &'a FindQuery) -> BoxFut<'a, Result<SecretMap, ProviderError>>;

    /// Checks that the store can authenticate (store status).
    fn validate(&self) -> BoxFut<'_, Result<(), ProviderError>>;
}

/// Counts provider calls per store for /metrics.
#[derive(Clone, Debug)]
pub struct CallRecorder {
    pub metrics: Metrics,
    pub store: String,
    pub provider: &'static str,
}

impl CallRecorder {
    pub fn record<T>(&self, call: &str, result: &Result<T, ProviderError>) {
        let status = match result {
            Ok(_) => "success",
            Err(e) => e.status_label(),
        };
        self.metrics
            .provider_call(&self.store, self.provider, call, status);
    }

    pub fn record_status(&self, call: &str, status: &str) {
        self.metrics
            .provider_call(&self.store, self.provider, call, status);
    }
}
