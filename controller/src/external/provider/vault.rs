//! HashiCorp Vault KV v1/v2 (`spec.provider.vault`) through `vaultrs`.
//!
//! One client and one login per store, reused across reconciles: the token is renewed when
//! two thirds of its lease have passed and the provider logs in again when Vault answers 403.
//! ESO logs in on every reconcile by default, and the piled-up token leases have taken Vault
//! down (external-secrets#376).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crds::external_secrets::{VaultKvVersion, VaultProvider as VaultSpec};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, RwLock};
use vaultrs::client::{Client as _, VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;
use zeroize::Zeroizing;

use super::{BoxFut, CallRecorder, FindQuery, GetResult, ProviderError, SecretProvider, ValueRef};
use crate::external::data::SecretMap;

/// Credentials resolved by the reconciler from the store's auth section.
pub enum VaultLogin {
    Token(Zeroizing<String>),
    AppRole {
        mount: String,
        role_id: Zeroizing<String>,
        secret_id: Zeroizing<String>,
    },
    Kubernetes {
        mount: String,
        role: String,
        jwt: JwtSource,
    },
}

/// The service-account JWT for Kubernetes auth.
pub enum JwtSource {
    /// From a Secret (`secretRef`).
    Static(Zeroizing<String>),
    /// Fetched at each login (TokenRequest for `serviceAccountRef`, or the pod's token file).
    Dynamic(super::TokenSource),
}

impl VaultLogin {
    fn method(&self) -> &'static str {
        match self {
            VaultLogin::Token(_) => "token",
            VaultLogin::AppRole { .. } => "approle",
            VaultLogin::Kubernetes { .. } => "kubernetes",
        }
    }
}

#[derive(Clone, Debug)]
pub struct VaultOptions {
    pub timeout: Duration,
}

impl Default for VaultOptions {
    fn default() -> Self {
        VaultOptions {
            timeout: Duration::from_secs(30),
        }
    }
}

struct Session {
    logged_in: bool,
    obtained: Instant,
    lease: Duration,
    renewable: bool,
}

pub struct VaultProvider {
    client: RwLock<VaultClient>,
    /// Login goes to `auth.namespace` when set, else to the store's namespace.
    login_client: Option<VaultClient>,
    session: Mutex<Session>,
    login: VaultLogin,
    mount: Option<String>,
    version: VaultKvVersion,
    calls: CallRecorder,
}

enum Op<'a> {
    Read {
        mount: &'a str,
        path: &'a str,
        version: Option<u64>,
    },
    Metadata {
        mount: &'a str,
        path: &'a str,
    },
    List {
        mount: &'a str,
        path: &'a str,
    },
}

impl Op<'_> {
    fn name(&self) -> &'static str {
        match self {
            Op::Read { .. } => "ReadSecret",
            Op::Metadata { .. } => "ReadMetadata",
            Op::List { .. } => "List",
        }
    }
}

fn build_client(
    spec: &VaultSpec,
    namespace: Option<&str>,
    options: &VaultOptions,
) -> Result<VaultClient, ProviderError> {
    // vaultrs' address setter panics on a malformed URL: check first.
    let url = reqwest::Url::parse(&spec.server)
        .map_err(|e| ProviderError::Config(format!("vault.server {:?}: {e}", spec.server)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ProviderError::Config(format!(
            "vault.server {:?}: scheme must be http or https",
            spec.server
        )));
    }
    let mut settings = VaultClientSettingsBuilder::default();
    settings
        .address(spec.server.as_str())
        .token("")
        .timeout(Some(options.timeout))
        .verify(true)
        .namespace(namespace.filter(|n| !n.is_empty()).map(str::to_string));
    if let Some(bundle) = spec.ca_bundle.as_deref().filter(|b| !b.is_empty()) {
        settings.ca_certs(vec![ca_bundle_file(bundle)?]);
    } else {
        settings.ca_certs(Vec::new());
    }
    let settings = settings
        .build()
        .map_err(|e| ProviderError::Config(format!("vault client settings: {e}")))?;
    VaultClient::new(settings).map_err(|e| ProviderError::Config(format!("vault client: {e}")))
}

/// vaultrs reads CA certificates from files: write the store's bundle to one, named by its
/// hash so stores sharing a bundle share the file.
fn ca_bundle_file(bundle_b64: &str) -> Result<String, ProviderError> {
    use base64::Engine as _;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(bundle_b64.trim())
        .map_err(|_| ProviderError::Config("vault.caBundle is not valid base64".into()))?;
    let name = format!(
        "secrets-controller-vault-ca-{}.pem",
        hex::encode(&Sha256::digest(&pem)[..8])
    );
    let path = std::env::temp_dir().join(name);
    std::fs::write(&path, &pem)
        .map_err(|e| ProviderError::Config(format!("writing vault.caBundle: {e}")))?;
    Ok(path.to_string_lossy().into_owned())
}

fn classify(context: &str, err: ClientError) -> ProviderError {
    match err {
        ClientError::APIError { code: 404, .. } => ProviderError::NotFound(context.to_string()),
        ClientError::APIError { code: 403, errors } => {
            ProviderError::Unauthorized(format!("{context}: {}", errors.join("; ")))
        }
        ClientError::APIError { code: 400, errors } if context.starts_with("login") => {
            ProviderError::Unauthorized(format!("{context}: {}", errors.join("; ")))
        }
        ClientError::APIError { code: 429, errors } => {
            ProviderError::Throttled(format!("{context}: {}", errors.join("; ")))
        }
        ClientError::APIError { code, errors } if code >= 500 => {
            ProviderError::Unavailable(format!("{context}: HTTP {code}: {}", errors.join("; ")))
        }
        ClientError::APIError { code, errors } => {
            ProviderError::Other(format!("{context}: HTTP {code}: {}", errors.join("; ")))
        }
        // A non-JSON error body (e.g. a soft-deleted KV v2 version answers 404 with metadata):
        // classify by status, never echo the body.
        ClientError::RestClientError {
            source: rustify::errors::ClientError::ServerResponseError { code, .. },
        } => classify(
            context,
            ClientError::APIError {
                code,
                errors: Vec::new(),
            },
        ),
        ClientError::RestClientError { source } => {
            ProviderError::Unavailable(format!("{context}: {source}"))
        }
        other => ProviderError::Other(format!("{context}: {other}")),
    }
}

impl VaultProvider {
    pub fn new(
        spec: &VaultSpec,
        login: VaultLogin,
        options: &VaultOptions,
        calls: CallRecorder,
    ) -> Result<Self, ProviderError> {
        let client = build_client(spec, spec.namespace.as_deref(), options)?;
        let auth_ns = spec.auth.as_ref().and_then(|a| a.namespace.as_deref());
        let login_client = match auth_ns {
            Some(ns) if Some(ns) != spec.namespace.as_deref() => {
                Some(build_client(spec, Some(ns), options)?)
            }
            _ => None,
        };
        let mount = spec
            .path
            .as_deref()
            .map(|p| p.trim_matches('/'))
            .map(|p| p.strip_suffix("/data").unwrap_or(p).to_string())
            .filter(|p| !p.is_empty());
        Ok(VaultProvider {
            client: RwLock::new(client),
            login_client,
            session: Mutex::new(Session {
                logged_in: false,
                obtained: Instant::now(),
                lease: Duration::ZERO,
                renewable: false,
            }),
            login,
            mount,
            version: spec.version,
            calls,
        })
    }

    /// (mount, path) of a key: the store's `path` is the mount; without it the key's first
    /// segment is. A key that repeats the mount (`secret/foo` with path `secret`) is accepted.
    fn locate<'k>(&'k self, key: &'k str) -> Result<(&'k str, &'k str), ProviderError> {
        let key = key.trim_matches('/');
        match &self.mount {
            Some(m) => {
                let rest = key
                    .strip_prefix(m.as_str())
                    .and_then(|r| r.strip_prefix('/'))
                    .unwrap_or(key);
                let rest = if self.version == VaultKvVersion::V2 {
                    rest.strip_prefix("data/").unwrap_or(rest)
                } else {
                    rest
                };
                Ok((m.as_str(), rest))
            }
            None => key
                .split_once('/')
                .ok_or_else(|| {
                    ProviderError::Config(format!(
                        "key {key:?} has no mount: set spec.provider.vault.path or prefix the key with the mount"
                    ))
                }),
        }
    }

    /// Logs in, or renews a token past two thirds of its lease. Serialised by the session lock
    /// so concurrent reconciles share one login.
    async fn ensure_token(&self, force_login: bool) -> Result<(), ProviderError> {
        let mut session = self.session.lock().await;
        if session.logged_in && !force_login {
            let renew_at = session.lease.mul_f64(2.0 / 3.0);
            if !session.renewable
                || session.lease.is_zero()
                || session.obtained.elapsed() < renew_at
            {
                return Ok(());
            }
            let renewed = {
                let client = self.client.read().await;
                vaultrs::token::renew_self(&*client, None).await
            };
            self.calls.record_status(
                "RenewSelf",
                if renewed.is_ok() { "success" } else { "error" },
            );
            if let Ok(auth) = renewed {
                session.obtained = Instant::now();
                session.lease = Duration::from_secs(auth.lease_duration);
                session.renewable = auth.renewable;
                return Ok(());
            }
            // Renewal refused (max TTL reached, revoked): log in again below.
        }
        let (token, lease, renewable) = match &self.login {
            VaultLogin::Token(t) => {
                if session.logged_in && force_login {
                    return Err(ProviderError::Unauthorized(
                        "vault token was rejected (403)".into(),
                    ));
                }
                (Zeroizing::new(t.to_string()), Duration::ZERO, false)
            }
            login => {
                let result = {
                    let store_client = self.client.read().await;
                    let client: &VaultClient = self.login_client.as_ref().unwrap_or(&store_client);
                    match login {
                        VaultLogin::AppRole {
                            mount,
                            role_id,
                            secret_id,
                        } => vaultrs::auth::approle::login(client, mount, role_id, secret_id).await,
                        VaultLogin::Kubernetes { mount, role, jwt } => {
                            let jwt = match jwt {
                                JwtSource::Static(t) => t.clone(),
                                JwtSource::Dynamic(source) => source().await?,
                            };
                            vaultrs::auth::kubernetes::login(client, mount, role, &jwt).await
                        }
                        VaultLogin::Token(_) => unreachable_token(),
                    }
                };
                let result =
                    result.map_err(|e| classify(&format!("login ({})", login.method()), e));
                self.calls.record("Login", &result);
                let auth = result?;
                (
                    Zeroizing::new(auth.client_token.clone()),
                    Duration::from_secs(auth.lease_duration),
                    auth.renewable,
                )
            }
        };
        self.client.write().await.set_token(&token);
        *session = Session {
            logged_in: true,
            obtained: Instant::now(),
            lease,
            renewable,
        };
        Ok(())
    }

    async fn exec(&self, op: &Op<'_>) -> Result<serde_json::Value, ClientError> {
        let client = self.client.read().await;
        let c = &*client;
        match (op, self.version) {
            (
                Op::Read {
                    mount,
                    path,
                    version,
                },
                VaultKvVersion::V2,
            ) => match version {
                Some(v) => vaultrs::kv2::read_version(c, mount, path, *v).await,
                None => vaultrs::kv2::read(c, mount, path).await,
            },
            (Op::Read { mount, path, .. }, VaultKvVersion::V1) => {
                vaultrs::kv1::get(c, mount, path).await
            }
            (Op::Metadata { mount, path }, _) => {
                let m = vaultrs::kv2::read_metadata(c, mount, path).await?;
                Ok(serde_json::to_value(m.custom_metadata.unwrap_or_default()).unwrap_or_default())
            }
            (Op::List { mount, path }, VaultKvVersion::V2) => {
                Ok(serde_json::json!(vaultrs::kv2::list(c, mount, path).await?))
            }
            (Op::List { mount, path }, VaultKvVersion::V1) => Ok(serde_json::json!(
                vaultrs::kv1::list(c, mount, path).await?.data.keys
            )),
        }
    }

    /// Runs one operation with a valid token; a 403 triggers one re-login and retry.
    async fn call(&self, op: Op<'_>, context: &str) -> Result<serde_json::Value, ProviderError> {
        self.ensure_token(false).await?;
        let mut result = self.exec(&op).await;
        if matches!(result, Err(ClientError::APIError { code: 403, .. }))
            && !matches!(self.login, VaultLogin::Token(_))
        {
            self.calls.record_status(op.name(), "unauthorized");
            self.ensure_token(true).await?;
            result = self.exec(&op).await;
        }
        let result = result.map_err(|e| classify(context, e));
        self.calls.record(op.name(), &result);
        result
    }

    async fn read(&self, r: &ValueRef) -> GetResult {
        let (mount, path) = self.locate(&r.key)?;
        let context = format!("key {:?}", r.key);
        if r.metadata {
            if self.version != VaultKvVersion::V2 {
                return Err(ProviderError::Config(
                    "metadataPolicy Fetch needs KV v2".into(),
                ));
            }
            let v = self.call(Op::Metadata { mount, path }, &context).await?;
            return Ok(Zeroizing::new(v.to_string().into_bytes()));
        }
        let version = match r.version.as_deref().filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => Some(v.parse::<u64>().map_err(|_| {
                ProviderError::Config(format!("key {:?}: version {v:?} is not a number", r.key))
            })?),
        };
        let value = self
            .call(
                Op::Read {
                    mount,
                    path,
                    version,
                },
                &context,
            )
            .await?;
        let bytes = Zeroizing::new(serde_json::to_vec(&value).unwrap_or_default());
        wipe_json(value);
        Ok(bytes)
    }

    /// Recursive listing of leaf paths under `prefix` (relative to the mount).
    async fn list_recursive(
        &self,
        mount: &str,
        prefix: &str,
    ) -> Result<Vec<String>, ProviderError> {
        let mut out = Vec::new();
        let mut pending = vec![prefix.trim_matches('/').to_string()];
        while let Some(dir) = pending.pop() {
            let listed = self
                .call(Op::List { mount, path: &dir }, &format!("list {dir:?}"))
                .await;
            let keys: Vec<String> = match listed {
                Ok(v) => serde_json::from_value(v).unwrap_or_default(),
                Err(ProviderError::NotFound(_)) => Vec::new(),
                Err(e) => return Err(e),
            };
            for k in keys {
                let full = if dir.is_empty() {
                    k.clone()
                } else {
                    format!("{dir}/{k}")
                };
                match full.strip_suffix('/') {
                    Some(sub) => pending.push(sub.to_string()),
                    None => out.push(full),
                }
            }
            if out.len() > 10_000 {
                return Err(ProviderError::Config(
                    "find matched more than 10000 secrets".into(),
                ));
            }
        }
        out.sort();
        Ok(out)
    }
}

fn unreachable_token() -> Result<vaultrs::api::AuthInfo, ClientError> {
    Err(ClientError::APIError {
        code: 400,
        errors: vec!["token auth has no login".into()],
    })
}

fn wipe_json(mut v: serde_json::Value) {
    fn wipe(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => zeroize::Zeroize::zeroize(s),
            serde_json::Value::Array(a) => a.iter_mut().for_each(wipe),
            serde_json::Value::Object(o) => o.values_mut().for_each(wipe),
            _ => {}
        }
    }
    wipe(&mut v);
}

impl SecretProvider for VaultProvider {
    fn kind(&self) -> &'static str {
        "vault"
    }

    fn get<'a>(&'a self, r: &'a ValueRef) -> BoxFut<'a, GetResult> {
        Box::pin(self.read(r))
    }

    fn find<'a>(&'a self, q: &'a FindQuery) -> BoxFut<'a, Result<SecretMap, ProviderError>> {
        Box::pin(async move {
            let (mount, base) = match (&self.mount, q.path.as_deref()) {
                (Some(m), p) => (m.clone(), p.unwrap_or("").to_string()),
                (None, Some(p)) => {
                    let (m, rest) = self.locate(p)?;
                    (m.to_string(), rest.to_string())
                }
                (None, None) => {
                    return Err(ProviderError::Config(
                        "find needs spec.provider.vault.path or find.path".into(),
                    ));
                }
            };
            if !q.tags.is_empty() && self.version != VaultKvVersion::V2 {
                return Err(ProviderError::Config("find by tags needs KV v2".into()));
            }
            let re = q
                .name_regexp
                .as_deref()
                .map(regex::Regex::new)
                .transpose()
                .map_err(|e| ProviderError::Config(format!("find.name.regexp: {e}")))?;
            let mut out = SecretMap::new();
            for path in self.list_recursive(&mount, &base).await? {
                if re.as_ref().is_some_and(|re| !re.is_match(&path)) {
                    continue;
                }
                let key = format!("{mount}/{path}");
                if !q.tags.is_empty() {
                    let meta = self
                        .read(&ValueRef {
                            metadata: true,
                            ..ValueRef::new(key.clone())
                        })
                        .await?;
                    let meta: BTreeMap<String, String> =
                        serde_json::from_slice(&meta).unwrap_or_default();
                    if !q.tags.iter().all(|(k, v)| meta.get(k) == Some(v)) {
                        continue;
                    }
                }
                match self.read(&ValueRef::new(key)).await {
                    Ok(v) => {
                        // Keys are relative to `find.path`, as ESO names them.
                        let rel = path
                            .strip_prefix(base.trim_matches('/'))
                            .map(|r| r.trim_start_matches('/'))
                            .filter(|r| !r.is_empty())
                            .unwrap_or(&path)
                            .to_string();
                        out.insert(rel, v);
                    }
                    Err(ProviderError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        })
    }

    fn validate(&self) -> BoxFut<'_, Result<(), ProviderError>> {
        Box::pin(async move {
            self.ensure_token(false).await?;
            let result = {
                let client = self.client.read().await;
                vaultrs::token::lookup_self(&*client).await
            };
            let result = result
                .map(|_| ())
                .map_err(|e| classify("token lookup-self", e));
            self.calls.record("LookupSelf", &result);
            result
        })
    }
}
