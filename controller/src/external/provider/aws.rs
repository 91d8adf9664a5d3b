//! AWS Secrets Manager (`spec.provider.aws`, service `SecretsManager`).
//!
//! Endpoint: the standard `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_SECRETS_MANAGER` are honoured
//! by the SDK's own configuration loading; ESO's `AWS_SECRETSMANAGER_ENDPOINT` arrives here as
//! `AwsOptions::endpoint_override`. Throttling and 5xx are retried by the SDK's standard
//! retry strategy (exponential backoff with jitter) and reported as `Throttled` /
//! `Unavailable`, never as "not found", so they can never delete a Secret.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{Credentials, Region};
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
use crds::external_secrets::AwsProvider as AwsSpec;
use zeroize::Zeroizing;

use super::{BoxFut, CallRecorder, FindQuery, GetResult, ProviderError, SecretProvider, ValueRef};
use crate::external::data::SecretMap;

/// BatchGetSecretValue takes at most 20 secret ids per call.
pub const BATCH_LIMIT: usize = 20;

#[derive(Clone, Debug)]
pub struct AwsOptions {
    /// ESO's `AWS_SECRETSMANAGER_ENDPOINT`.
    pub endpoint_override: Option<String>,
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub operation_timeout: Duration,
}

impl Default for AwsOptions {
    fn default() -> Self {
        AwsOptions {
            endpoint_override: None,
            max_attempts: 3,
            initial_backoff: Duration::from_secs(1),
            operation_timeout: Duration::from_secs(30),
        }
    }
}

/// Counts every HTTP attempt the SDK's retry loop makes that was throttled or failed with 5xx,
/// including the retried ones that end in success, so /metrics shows throttling even when
/// it is absorbed by retries.
#[derive(Debug)]
struct AttemptCounter {
    calls: CallRecorder,
}

impl aws_sdk_secretsmanager::config::Intercept for AttemptCounter {
    fn name(&self) -> &'static str {
        "ExternalSecretsAttemptCounter"
    }

    fn read_after_attempt(
        &self,
        context: &aws_sdk_secretsmanager::config::interceptors::FinalizerInterceptorContextRef<'_>,
        _components: &aws_sdk_secretsmanager::config::RuntimeComponents,
        _cfg: &mut aws_sdk_secretsmanager::config::ConfigBag,
    ) -> Result<(), aws_sdk_secretsmanager::error::BoxError> {
        let Some(response) = context.response() else {
            return Ok(());
        };
        let status = response.status().as_u16();
        if status < 400 {
            // Success bodies hold secret values: never looked at here.
            return Ok(());
        }
        let header_throttled = response
            .headers()
            .get("x-amzn-errortype")
            .is_some_and(|v| v.starts_with("Throttling"));
        let body_throttled = response
            .body()
            .bytes()
            .is_some_and(|b| b.windows(b"Throttling".len()).any(|w| w == b"Throttling"));
        if header_throttled || body_throttled || status == 429 {
            self.calls.record_status("Attempt", "throttled");
        } else if status >= 500 {
            self.calls.record_status("Attempt", "server_error");
        }
        Ok(())
    }
}

/// Static keys from `auth.secretRef`, resolved by the reconciler from Kubernetes Secrets.
pub struct StaticCredentials {
    pub access_key_id: Zeroizing<String>,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: Option<Zeroizing<String>>,
}

pub use super::TokenSource;

/// Where the store's AWS credentials come from.
pub enum AwsCredentialSource {
    /// The SDK default chain (env, IRSA of the controller, Pod Identity, instance role).
    Default,
    /// `auth.secretRef`.
    Static(StaticCredentials),
    /// `auth.jwt.serviceAccountRef`: AssumeRoleWithWebIdentity with a token of that service
    /// account, for `role_arn` (its `eks.amazonaws.com/role-arn` annotation).
    WebIdentity {
        role_arn: String,
        token: TokenSource,
    },
}

/// IRSA for a referenced service account: exchanges a fresh service-account token for
/// temporary credentials, cached until five minutes before they expire.
struct WebIdentityCredentials {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    token: TokenSource,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl std::fmt::Debug for WebIdentityCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebIdentityCredentials")
            .field("role_arn", &self.role_arn)
            .finish_non_exhaustive()
    }
}

impl WebIdentityCredentials {
    async fn load(&self) -> aws_credential_types::provider::Result {
        use aws_credential_types::provider::error::CredentialsError;
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            let fresh = c
                .expiry()
                .is_none_or(|e| e > std::time::SystemTime::now() + Duration::from_secs(300));
            if fresh {
                return Ok(c.clone());
            }
        }
        let token = (self.token)()
            .await
            .map_err(|e| CredentialsError::provider_error(e.to_string()))?;
        let out = self
            .sts
            .assume_role_with_web_identity()
            .role_arn(&self.role_arn)
            .role_session_name("external-secrets")
            .web_identity_token(token.as_str())
            .send()
            .await
            .map_err(|e| CredentialsError::provider_error(DisplayErrorContext(&e).to_string()))?;
        let c = out
            .credentials()
            .ok_or_else(|| CredentialsError::provider_error("STS returned no credentials"))?;
        let creds = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            std::time::SystemTime::try_from(*c.expiration()).ok(),
            "WebIdentity",
        );
        *cached = Some(creds.clone());
        Ok(creds)
    }
}

impl aws_credential_types::provider::ProvideCredentials for WebIdentityCredentials {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(self.load())
    }
}

pub struct AwsProvider {
    client: Client,
    prefix: String,
    calls: CallRecorder,
}

impl AwsProvider {
    pub async fn new(
        spec: &AwsSpec,
        credentials: Option<StaticCredentials>,
        options: &AwsOptions,
        calls: CallRecorder,
    ) -> Result<Self, ProviderError> {
        let source = match credentials {
            Some(c) => AwsCredentialSource::Static(c),
            None => AwsCredentialSource::Default,
        };
        Self::with_source(spec, source, options, calls).await
    }

    pub async fn with_source(
        spec: &AwsSpec,
        source: AwsCredentialSource,
        options: &AwsOptions,
        calls: CallRecorder,
    ) -> Result<Self, ProviderError> {
        if spec.service != "SecretsManager" {
            return Err(ProviderError::Config(format!(
                "aws service {:?} is not supported (only SecretsManager)",
                spec.service
            )));
        }
        if spec.region.is_empty() {
            return Err(ProviderError::Config("aws.region is required".into()));
        }
        let retry = RetryConfig::standard()
            .with_max_attempts(options.max_attempts.max(1))
            .with_initial_backoff(options.initial_backoff)
            .with_max_backoff(options.initial_backoff.saturating_mul(20));
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(spec.region.clone()))
            .retry_config(retry)
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(options.operation_timeout)
                    .build(),
            );
        if let AwsCredentialSource::Static(c) = &source {
            loader = loader.credentials_provider(Credentials::new(
                c.access_key_id.as_str(),
                c.secret_access_key.as_str(),
                c.session_token.as_ref().map(|t| t.to_string()),
                None,
                "SecretStore",
            ));
        }
        if let Some(endpoint) = &options.endpoint_override {
            loader = loader.endpoint_url(endpoint.clone());
        }
        let mut sdk_config = loader.load().await;
        if let AwsCredentialSource::WebIdentity { role_arn, token } = source {
            let web = WebIdentityCredentials {
                sts: aws_sdk_sts::Client::new(&sdk_config),
                role_arn,
                token,
                cached: tokio::sync::Mutex::new(None),
            };
            sdk_config = sdk_config
                .into_builder()
                .credentials_provider(
                    aws_credential_types::provider::SharedCredentialsProvider::new(web),
                )
                .build();
        }
        let mut builder = aws_sdk_secretsmanager::config::Builder::from(&sdk_config).interceptor(
            AttemptCounter {
                calls: calls.clone(),
            },
        );
        if let Some(role) = spec.role.as_deref().filter(|r| !r.is_empty()) {
            let mut assume = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name("external-secrets")
                .configure(&sdk_config);
            if let Some(external_id) = &spec.external_id {
                assume = assume.external_id(external_id.clone());
            }
            builder = builder.credentials_provider(assume.build().await);
        }
        Ok(AwsProvider {
            client: Client::from_conf(builder.build()),
            prefix: spec.prefix.clone().unwrap_or_default(),
            calls,
        })
    }

    /// A client for tests and tools that already hold an SDK client.
    pub fn from_client(client: Client, prefix: String, calls: CallRecorder) -> Self {
        AwsProvider {
            client,
            prefix,
            calls,
        }
    }

    fn id(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    async fn get_value(&self, r: &ValueRef) -> GetResult {
        if r.metadata {
            return self.get_tags(r).await;
        }
        let mut req = self.client.get_secret_value().secret_id(self.id(&r.key));
        if let Some(v) = r.version.as_deref().filter(|v| !v.is_empty()) {
            req = match v.strip_prefix("uuid/") {
                Some(id) => req.version_id(id),
                None => req.version_stage(v),
            };
        }
        let result = match req.send().await {
            Ok(out) => value_of(&r.key, out.secret_string(), out.secret_binary()),
            Err(e) => Err(classify(&r.key, e)),
        };
        self.calls.record("GetSecretValue", &result);
        result
    }

    async fn get_tags(&self, r: &ValueRef) -> GetResult {
        let result = match self
            .client
            .describe_secret()
            .secret_id(self.id(&r.key))
            .send()
            .await
        {
            Ok(out) => {
                let tags: BTreeMap<&str, &str> = out
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default())))
                    .collect();
                serde_json::to_vec(&tags)
                    .map(Zeroizing::new)
                    .map_err(|e| ProviderError::Other(e.to_string()))
            }
            Err(e) => Err(classify(&r.key, e)),
        };
        self.calls.record("DescribeSecret", &result);
        result
    }

    /// One BatchGetSecretValue call for up to 20 current values.
    async fn batch(&self, keys: &[&str]) -> Vec<GetResult> {
        let ids: Vec<String> = keys.iter().map(|k| self.id(k)).collect();
        let sent = self
            .client
            .batch_get_secret_value()
            .set_secret_id_list(Some(ids.clone()))
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            Err(e) => {
                let err = classify("batch", e);
                self.calls
                    .record_status("BatchGetSecretValue", err.status_label());
                return keys.iter().map(|_| Err(err.clone())).collect();
            }
        };
        self.calls.record_status("BatchGetSecretValue", "success");
        ids.iter()
            .zip(keys)
            .map(|(id, key)| {
                if let Some(v) = out
                    .secret_values()
                    .iter()
                    .find(|v| v.name() == Some(id.as_str()) || v.arn() == Some(id.as_str()))
                {
                    return value_of(key, v.secret_string(), v.secret_binary());
                }
                match out
                    .errors()
                    .iter()
                    .find(|e| e.secret_id() == Some(id.as_str()))
                {
                    Some(e) => Err(classify_code(
                        key,
                        e.error_code(),
                        e.message().unwrap_or_default(),
                    )),
                    // Partial ARNs and similar ids may not echo back: ask for it alone.
                    None => Err(ProviderError::NotFound(format!("key {key:?}"))),
                }
            })
            .collect()
    }

    async fn list_names(&self, q: &FindQuery) -> Result<Vec<String>, ProviderError> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        let mut filters = Vec::new();
        for (k, v) in &q.tags {
            filters.push(
                Filter::builder()
                    .key(FilterNameStringType::TagKey)
                    .values(k)
                    .build(),
            );
            filters.push(
                Filter::builder()
                    .key(FilterNameStringType::TagValue)
                    .values(v)
                    .build(),
            );
        }
        if let Some(path) = q.path.as_deref().filter(|p| !p.is_empty()) {
            filters.push(
                Filter::builder()
                    .key(FilterNameStringType::Name)
                    .values(self.id(path))
                    .build(),
            );
        }
        let re = q
            .name_regexp
            .as_deref()
            .map(regex::Regex::new)
            .transpose()
            .map_err(|e| ProviderError::Config(format!("find.name.regexp: {e}")))?;
        loop {
            let mut req = self
                .client
                .list_secrets()
                .max_results(100)
                .set_filters(Some(filters.clone()));
            if let Some(t) = &token {
                req = req.next_token(t);
            }
            let res = req.send().await;
            let page = match res {
                Ok(p) => {
                    self.calls.record_status("ListSecrets", "success");
                    p
                }
                Err(e) => {
                    let err = classify("find", e);
                    self.calls.record_status("ListSecrets", err.status_label());
                    return Err(err);
                }
            };
            for s in page.secret_list() {
                // ListSecrets' tag filters match key and value independently: check pairs.
                let tags_ok = q.tags.iter().all(|(k, v)| {
                    s.tags()
                        .iter()
                        .any(|t| t.key() == Some(k.as_str()) && t.value() == Some(v.as_str()))
                });
                let Some(name) = s.name() else { continue };
                let Some(name) = name.strip_prefix(self.prefix.as_str()) else {
                    continue;
                };
                let name_ok = re.as_ref().is_none_or(|re| re.is_match(name));
                if tags_ok && name_ok {
                    names.push(name.to_string());
                }
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(names);
            }
        }
    }
}

/// Current values without metadata can go through BatchGetSecretValue.
fn batchable(r: &ValueRef) -> bool {
    !r.metadata && matches!(r.version.as_deref(), None | Some("") | Some("AWSCURRENT"))
}

fn value_of(key: &str, string: Option<&str>, binary: Option<&aws_smithy_types::Blob>) -> GetResult {
    match (string, binary) {
        (Some(s), _) => Ok(Zeroizing::new(s.as_bytes().to_vec())),
        (None, Some(b)) => Ok(Zeroizing::new(b.as_ref().to_vec())),
        (None, None) => Err(ProviderError::NotFound(format!(
            "key {key:?} has neither SecretString nor SecretBinary"
        ))),
    }
}

fn classify<E, R>(key: &str, err: aws_sdk_secretsmanager::error::SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err.code() {
        Some(code) => classify_code(key, Some(code), err.message().unwrap_or_default()),
        None => ProviderError::Unavailable(format!("key {key:?}: {}", DisplayErrorContext(&err))),
    }
}

fn classify_code(key: &str, code: Option<&str>, message: &str) -> ProviderError {
    let text = format!("key {key:?}: {}: {message}", code.unwrap_or("error"));
    match code.unwrap_or_default() {
        "ResourceNotFoundException" => ProviderError::NotFound(text),
        // A secret scheduled for deletion answers InvalidRequestException; ESO treats it as gone.
        // AWS says "marked for deletion", moto "marked deleted".
        "InvalidRequestException"
            if message.contains("marked for deletion") || message.contains("marked deleted") =>
        {
            ProviderError::NotFound(text)
        }
        "ThrottlingException" | "TooManyRequestsException" | "RequestLimitExceeded" => {
            ProviderError::Throttled(text)
        }
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "ExpiredTokenException"
        | "DecryptionFailure" => ProviderError::Unauthorized(text),
        "InternalServiceError" | "InternalFailure" | "ServiceUnavailable" => {
            ProviderError::Unavailable(text)
        }
        _ => ProviderError::Other(text),
    }
}

impl SecretProvider for AwsProvider {
    fn kind(&self) -> &'static str {
        "aws"
    }

    fn get<'a>(&'a self, r: &'a ValueRef) -> BoxFut<'a, GetResult> {
        Box::pin(self.get_value(r))
    }

    fn batch_limit(&self) -> usize {
        BATCH_LIMIT
    }

    fn batchable(&self, r: &ValueRef) -> bool {
        batchable(r)
    }

    /// Current values without metadata go through BatchGetSecretValue (20 per call); pinned
    /// versions and metadata reads use one call each.
    fn get_many<'a>(&'a self, refs: &'a [ValueRef]) -> BoxFut<'a, Vec<GetResult>> {
        Box::pin(async move {
            let batch_idx: Vec<usize> = (0..refs.len()).filter(|&i| batchable(&refs[i])).collect();
            let mut out: Vec<Option<GetResult>> = (0..refs.len()).map(|_| None).collect();
            if batch_idx.len() > 1 {
                for chunk in batch_idx.chunks(BATCH_LIMIT) {
                    let keys: Vec<&str> = chunk.iter().map(|&i| refs[i].key.as_str()).collect();
                    for (&i, r) in chunk.iter().zip(self.batch(&keys).await) {
                        out[i] = Some(r);
                    }
                }
            }
            let mut results = Vec::with_capacity(refs.len());
            for (i, slot) in out.into_iter().enumerate() {
                match slot {
                    Some(r) => results.push(r),
                    None => results.push(self.get_value(&refs[i]).await),
                }
            }
            results
        })
    }

    fn find<'a>(&'a self, q: &'a FindQuery) -> BoxFut<'a, Result<SecretMap, ProviderError>> {
        Box::pin(async move {
            let names = self.list_names(q).await?;
            let mut out = SecretMap::new();
            for chunk in names.chunks(BATCH_LIMIT) {
                let keys: Vec<&str> = chunk.iter().map(String::as_str).collect();
                for (name, value) in chunk.iter().zip(self.batch(&keys).await) {
                    match value {
                        Ok(v) => {
                            out.insert(name.clone(), v);
                        }
                        // Deleted between list and read: not part of the result.
                        Err(ProviderError::NotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Ok(out)
        })
    }

    fn validate(&self) -> BoxFut<'_, Result<(), ProviderError>> {
        Box::pin(async move {
            let res = self.client.list_secrets().max_results(1).send().await;
            let result = res.map(|_| ()).map_err(|e| classify("validate", e));
            self.calls.record("ListSecrets", &result);
            result
        })
    }
}
