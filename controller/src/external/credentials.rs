//! Reading the credentials a store's `auth` section points at: Secrets, service accounts
//! (IRSA, Vault Kubernetes auth) and Vault's `caProvider`, one function per auth method as ESO
//! keeps them. Every namespace comes from [`ResolvedStore::ref_namespace`], the tenant
//! boundary. Providers never see the Kubernetes client: credentials go to them as values or
//! token sources.

use std::sync::Arc;

use crds::external_secrets::{
    AwsProvider as AwsSpec, SecretKeySelector, VaultKubernetesAuth, VaultProvider as VaultSpec,
};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::provider::aws::StaticCredentials;
use super::provider::vault::{JwtSource, VaultLogin};
use super::provider::{ProviderError, TokenSource};
use super::stores::{ResolvedStore, SelectedProvider, StoreError};

/// Credentials read from Kubernetes, kept only as long as the provider is built.
pub enum Creds {
    None,
    Aws(StaticCredentials),
    /// IRSA through a referenced service account.
    AwsWeb {
        role_arn: String,
        /// The store's own `role` when it is assumed after the web identity.
        then_assume: Option<String>,
        namespace: String,
        service_account: String,
        audiences: Vec<String>,
    },
    Vault(VaultLogin),
}

impl Creds {
    /// Feeds what identifies these credentials into the store's configuration fingerprint.
    pub fn fingerprint(&self, h: &mut Sha256) {
        match self {
            Creds::None => h.update(b"none"),
            Creds::Aws(c) => {
                h.update(c.access_key_id.as_bytes());
                h.update(c.secret_access_key.as_bytes());
                if let Some(t) = &c.session_token {
                    h.update(t.as_bytes());
                }
            }
            Creds::AwsWeb {
                role_arn,
                then_assume,
                namespace,
                service_account,
                audiences,
            } => {
                h.update(role_arn.as_bytes());
                h.update(then_assume.as_deref().unwrap_or_default().as_bytes());
                h.update(namespace.as_bytes());
                h.update(service_account.as_bytes());
                h.update(audiences.join(",").as_bytes());
            }
            Creds::Vault(VaultLogin::Token(t)) => h.update(t.as_bytes()),
            Creds::Vault(VaultLogin::AppRole {
                mount,
                role_id,
                secret_id,
            }) => {
                h.update(mount.as_bytes());
                h.update(role_id.as_bytes());
                h.update(secret_id.as_bytes());
            }
            // The JWT rotates on every TokenRequest: fingerprint the role, not the token.
            Creds::Vault(VaultLogin::Kubernetes { mount, role, .. }) => {
                h.update(mount.as_bytes());
                h.update(role.as_bytes());
            }
        }
    }
}

/// What reading credentials needs besides the store.
pub struct Reader<'a> {
    pub client: &'a kube::Client,
    pub store: &'a ResolvedStore,
    /// The controller's own service-account token file (Vault Kubernetes auth without refs).
    pub own_token_path: &'a std::path::Path,
}

impl Reader<'_> {
    /// The credentials of the store's provider.
    pub async fn read(&self, provider: SelectedProvider<'_>) -> Result<Creds, StoreError> {
        match provider {
            SelectedProvider::Aws(aws) => self.aws(aws).await,
            SelectedProvider::Vault(vault) => self.vault(vault).await,
            SelectedProvider::Fake(_) => Ok(Creds::None),
        }
    }

    /// One key of an auth Secret, as text without a trailing newline.
    async fn secret_value(
        &self,
        sel: &SecretKeySelector,
        default_key: &str,
    ) -> Result<Zeroizing<String>, StoreError> {
        let what = format!("auth Secret {:?}", sel.name);
        let ns = self.store.ref_namespace(sel.namespace.as_deref(), &what)?;
        let key = sel.key.clone().unwrap_or_else(|| default_key.to_string());
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
        let secret = api.get_opt(&sel.name).await?.ok_or_else(|| {
            StoreError::Invalid(format!("auth Secret {ns}/{} not found", sel.name))
        })?;
        let bytes = secret
            .data
            .as_ref()
            .and_then(|d| d.get(&key))
            .map(|b| b.0.clone())
            .ok_or_else(|| {
                StoreError::Invalid(format!("auth Secret {ns}/{} has no key {key:?}", sel.name))
            })?;
        String::from_utf8(bytes)
            .map(|s| Zeroizing::new(s.trim_end_matches(['\n', '\r']).to_string()))
            .map_err(|_| {
                StoreError::Invalid(format!(
                    "auth Secret {ns}/{} key {key:?} is not text",
                    sel.name
                ))
            })
    }

    async fn aws(&self, aws: &AwsSpec) -> Result<Creds, StoreError> {
        let auth = aws.auth.as_ref();
        if let Some(sa) = auth
            .and_then(|a| a.jwt.as_ref())
            .and_then(|j| j.service_account_ref.as_ref())
        {
            return self.aws_irsa(aws, sa).await;
        }
        let Some(sr) = auth.and_then(|a| a.secret_ref.as_ref()) else {
            return Ok(Creds::None);
        };
        Ok(Creds::Aws(StaticCredentials {
            access_key_id: self.secret_value(&sr.access_key_id_secret_ref, "").await?,
            secret_access_key: self
                .secret_value(&sr.secret_access_key_secret_ref, "")
                .await?,
            session_token: match &sr.session_token_secret_ref {
                Some(s) => Some(self.secret_value(s, "").await?),
                None => None,
            },
        }))
    }

    /// IRSA: the role from the service account's annotation (then the store's `role`), or the
    /// store's `role` alone.
    async fn aws_irsa(
        &self,
        aws: &AwsSpec,
        sa: &crds::external_secrets::ServiceAccountSelector,
    ) -> Result<Creds, StoreError> {
        let what = format!("service account {:?}", sa.name);
        let ns = self.store.ref_namespace(sa.namespace.as_deref(), &what)?;
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &ns);
        let account = api.get_opt(&sa.name).await?.ok_or_else(|| {
            StoreError::Invalid(format!("service account {ns}/{} not found", sa.name))
        })?;
        let annotated = account
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("eks.amazonaws.com/role-arn"))
            .cloned();
        let (role_arn, then_assume) = match (annotated, aws.role.clone()) {
            (Some(a), role) => (a, role.filter(|r| !r.is_empty())),
            (None, Some(role)) if !role.is_empty() => (role, None),
            _ => {
                return Err(StoreError::Invalid(format!(
                    "service account {ns}/{} has no eks.amazonaws.com/role-arn annotation and the store no role",
                    sa.name
                )));
            }
        };
        Ok(Creds::AwsWeb {
            role_arn,
            then_assume,
            namespace: ns,
            service_account: sa.name.clone(),
            audiences: if sa.audiences.is_empty() {
                vec!["sts.amazonaws.com".to_string()]
            } else {
                sa.audiences.clone()
            },
        })
    }

    async fn vault(&self, vault: &VaultSpec) -> Result<Creds, StoreError> {
        let Some(auth) = &vault.auth else {
            return Err(StoreError::Invalid("vault.auth is required".into()));
        };
        if let Some(t) = &auth.token_secret_ref {
            return Ok(Creds::Vault(VaultLogin::Token(
                self.secret_value(t, "token").await?,
            )));
        }
        if let Some(ar) = &auth.app_role {
            let role_id = match (&ar.role_id, &ar.role_ref) {
                (Some(id), _) if !id.is_empty() => Zeroizing::new(id.clone()),
                (_, Some(r)) => self.secret_value(r, "roleId").await?,
                _ => {
                    return Err(StoreError::Invalid(
                        "vault.auth.appRole needs roleId or roleRef".into(),
                    ));
                }
            };
            return Ok(Creds::Vault(VaultLogin::AppRole {
                mount: ar.path.clone(),
                role_id,
                secret_id: self.secret_value(&ar.secret_ref, "secretId").await?,
            }));
        }
        if let Some(k) = &auth.kubernetes {
            return Ok(Creds::Vault(VaultLogin::Kubernetes {
                mount: k.mount_path.clone(),
                role: k.role.clone(),
                jwt: self.vault_kubernetes_jwt(k).await?,
            }));
        }
        let others: Vec<String> = auth.other.keys().cloned().collect();
        Err(StoreError::Invalid(if others.is_empty() {
            "vault.auth needs tokenSecretRef, appRole or kubernetes".into()
        } else {
            format!(
                "vault auth method {} is not supported (tokenSecretRef, appRole, kubernetes are)",
                others.join(", ")
            )
        }))
    }

    /// Vault Kubernetes auth: a token Secret, a service account's TokenRequest, or the
    /// controller's own token file, re-read at each login (the kubelet rotates it).
    async fn vault_kubernetes_jwt(&self, k: &VaultKubernetesAuth) -> Result<JwtSource, StoreError> {
        if let Some(sr) = &k.secret_ref {
            return Ok(JwtSource::Static(self.secret_value(sr, "token").await?));
        }
        if let Some(sa) = &k.service_account_ref {
            let what = format!("service account {:?}", sa.name);
            let ns = self.store.ref_namespace(sa.namespace.as_deref(), &what)?;
            let audiences = if sa.audiences.is_empty() {
                vec!["vault".to_string()]
            } else {
                sa.audiences.clone()
            };
            return Ok(JwtSource::Dynamic(service_account_token(
                self.client.clone(),
                ns,
                sa.name.clone(),
                audiences,
                600,
            )));
        }
        let path = self.own_token_path.to_path_buf();
        Ok(JwtSource::Dynamic(Arc::new(move || {
            let path = path.clone();
            Box::pin(async move {
                tokio::fs::read_to_string(&path)
                    .await
                    .map(|t| Zeroizing::new(t.trim().to_string()))
                    .map_err(|e| {
                        ProviderError::Config(format!(
                            "vault kubernetes auth: reading {}: {e}",
                            path.display()
                        ))
                    })
            })
        })))
    }

    /// `vault.caProvider`: the PEM bundle from a Secret or ConfigMap key.
    pub async fn vault_ca(&self, vault: &VaultSpec) -> Result<Option<String>, StoreError> {
        let Some(cp) = vault.ca_provider.as_ref() else {
            return Ok(None);
        };
        let what = format!("caProvider {} {:?}", cp.type_, cp.name);
        let ns = self.store.ref_namespace(cp.namespace.as_deref(), &what)?;
        let key = cp.key.clone().unwrap_or_else(|| "ca.crt".to_string());
        let missing = || {
            StoreError::Invalid(format!(
                "caProvider {} {ns}/{} has no key {key:?}",
                cp.type_, cp.name
            ))
        };
        let pem = match cp.type_.as_str() {
            "Secret" => {
                let api: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
                let s = api.get_opt(&cp.name).await?.ok_or_else(missing)?;
                let bytes = s
                    .data
                    .and_then(|d| d.get(&key).map(|b| b.0.clone()))
                    .ok_or_else(missing)?;
                String::from_utf8(bytes).map_err(|_| missing())?
            }
            "ConfigMap" => {
                let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &ns);
                let c = api.get_opt(&cp.name).await?.ok_or_else(missing)?;
                c.data
                    .and_then(|d| d.get(&key).cloned())
                    .ok_or_else(missing)?
            }
            other => {
                return Err(StoreError::Invalid(format!(
                    "caProvider.type {other:?} must be Secret or ConfigMap"
                )));
            }
        };
        Ok(Some(pem))
    }
}

/// Requests a short-lived token of a service account (TokenRequest) each time it is called.
pub fn service_account_token(
    client: kube::Client,
    namespace: String,
    name: String,
    audiences: Vec<String>,
    expiration_seconds: i64,
) -> TokenSource {
    Arc::new(move || {
        let client = client.clone();
        let namespace = namespace.clone();
        let name = name.clone();
        let audiences = audiences.clone();
        Box::pin(async move {
            let api: Api<ServiceAccount> = Api::namespaced(client, &namespace);
            let req = TokenRequest {
                spec: Some(TokenRequestSpec {
                    audiences: Some(audiences),
                    expiration_seconds: Some(expiration_seconds),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let tr = api
                .create_token_request(&name, &PostParams::default(), &req)
                .await
                .map_err(|e| {
                    ProviderError::Unauthorized(format!("TokenRequest {namespace}/{name}: {e}"))
                })?;
            tr.status
                .and_then(|s| s.token)
                .map(Zeroizing::new)
                .ok_or_else(|| {
                    ProviderError::Unauthorized(format!(
                        "TokenRequest {namespace}/{name} returned no token"
                    ))
                })
        })
    })
}
