//! One long-lived provider client per store, rebuilt only when the store's spec or its
//! credentials change (the cache entries of the old configuration are dropped with it).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::cache::Coalescer;
use super::credentials::{Creds, Reader, service_account_token};
use super::metrics::Metrics;
use super::provider::aws::{AwsCredentialSource, AwsOptions, AwsProvider};
use super::provider::fake::FakeProvider;
use super::provider::vault::{VaultOptions, VaultProvider};
use super::provider::{CallRecorder, SecretProvider};
use super::stores::{ResolvedStore, SelectedProvider, StoreError};

/// Options every provider client is built with.
#[derive(Clone, Debug)]
pub struct ProviderOptions {
    pub aws: AwsOptions,
    pub vault: VaultOptions,
    /// The controller's own service-account token, for Vault Kubernetes auth without refs.
    pub kube_token_path: PathBuf,
}

impl Default for ProviderOptions {
    fn default() -> Self {
        ProviderOptions {
            aws: AwsOptions::default(),
            vault: VaultOptions::default(),
            kube_token_path: super::settings::DEFAULT_TOKEN_PATH.into(),
        }
    }
}

/// A provider client bound to one store configuration.
pub struct StoreClient {
    /// Cache namespace: store id plus configuration fingerprint.
    pub cache_key: String,
    pub provider: Arc<dyn SecretProvider>,
}

/// One provider client per store, reused across reconciles.
#[derive(Default)]
pub struct StoreRegistry {
    entries: tokio::sync::Mutex<HashMap<String, Arc<StoreClient>>>,
}

impl StoreRegistry {
    pub async fn client_for(
        &self,
        client: &kube::Client,
        store: &ResolvedStore,
        options: &ProviderOptions,
        metrics: &Metrics,
        cache: &Coalescer,
    ) -> Result<Arc<StoreClient>, StoreError> {
        let selected = store.provider()?;
        let reader = Reader {
            client,
            store,
            own_token_path: &options.kube_token_path,
        };
        let creds = reader.read(selected).await?;
        let vault_ca = match selected {
            SelectedProvider::Vault(v) => reader.vault_ca(v).await?,
            _ => None,
        };
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(&store.spec.provider).unwrap_or_default());
        creds.fingerprint(&mut h);
        h.update(vault_ca.as_deref().unwrap_or_default().as_bytes());
        let cache_key = format!("{}#{}", store.id, hex::encode(&h.finalize()[..12]));
        let mut entries = self.entries.lock().await;
        if let Some(existing) = entries.get(&store.id) {
            if existing.cache_key == cache_key {
                return Ok(existing.clone());
            }
            cache.forget_store(&existing.cache_key);
        }
        let calls = CallRecorder {
            metrics: metrics.clone(),
            store: store.id.clone(),
            provider: selected.name(),
        };
        let provider = build(client, selected, creds, vault_ca, options, calls).await?;
        let entry = Arc::new(StoreClient {
            cache_key,
            provider,
        });
        entries.insert(store.id.clone(), entry.clone());
        Ok(entry)
    }
}

/// A provider client from the store's spec and the credentials read for it.
async fn build(
    client: &kube::Client,
    selected: SelectedProvider<'_>,
    creds: Creds,
    vault_ca: Option<String>,
    options: &ProviderOptions,
    calls: CallRecorder,
) -> Result<Arc<dyn SecretProvider>, StoreError> {
    Ok(match selected {
        SelectedProvider::Fake(spec) => Arc::new(FakeProvider::new(spec, calls)),
        SelectedProvider::Aws(spec) => {
            let mut spec = spec.clone();
            let source = match creds {
                Creds::Aws(c) => AwsCredentialSource::Static(c),
                Creds::AwsWeb {
                    role_arn,
                    then_assume,
                    namespace,
                    service_account,
                    audiences,
                } => {
                    spec.role = then_assume;
                    AwsCredentialSource::WebIdentity {
                        role_arn,
                        token: service_account_token(
                            client.clone(),
                            namespace,
                            service_account,
                            audiences,
                            3600,
                        ),
                    }
                }
                _ => AwsCredentialSource::Default,
            };
            Arc::new(AwsProvider::with_source(&spec, source, &options.aws, calls).await?)
        }
        SelectedProvider::Vault(spec) => {
            let Creds::Vault(login) = creds else {
                return Err(StoreError::Invalid("vault.auth is required".into()));
            };
            let mut spec = spec.clone();
            if let Some(pem) = vault_ca {
                use base64::Engine as _;
                spec.ca_bundle = Some(base64::engine::general_purpose::STANDARD.encode(pem));
            }
            Arc::new(VaultProvider::new(&spec, login, &options.vault, calls)?)
        }
    })
}
