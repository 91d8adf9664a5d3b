//! The controller's HTTP API, as Bitnami's (`/v1/cert.pem`, `/v1/verify`, `/v1/rotate`,
//! `/healthz`) plus `/metrics`. Meant to be reachable by every user of the cluster: it never
//! returns or logs secret material.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use crds::SealedSecret;
use prometheus_client::registry::Registry;

use super::keyring::KeyRing;

/// Largest request body accepted by `/v1/verify` and `/v1/rotate`.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Token buckets per (path, client), as Bitnami keys its limiter by path and X-Forwarded-For.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self {
            per_second,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::default(),
        }
    }

    /// Takes one token for `key`; false when the bucket is empty.
    pub fn allow(&self, key: &str, now: Instant) -> bool {
        if self.per_second <= 0.0 {
            return true;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 10_000 {
            // Bound memory under many distinct clients: forget idle buckets (they refill anyway).
            let horizon = self.burst / self.per_second;
            buckets.retain(|_, (_, last)| now.duration_since(*last).as_secs_f64() < horizon);
        }
        let (tokens, last) = buckets.entry(key.to_string()).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * self.per_second).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Clone)]
pub struct HttpState {
    pub keys: KeyRing,
    pub registry: Arc<Registry>,
    pub limiter: Arc<RateLimiter>,
}

pub fn router(state: HttpState) -> Router {
    let limited = Router::new()
        .route("/v1/verify", post(verify))
        .route("/v1/rotate", post(rotate))
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/v1/cert.pem", get(cert))
        .route("/metrics", get(metrics))
        .merge(limited)
        .with_state(state)
}

async fn rate_limit(State(state): State<HttpState>, request: Request, next: Next) -> Response {
    let client = request
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .unwrap_or("")
        .trim()
        .to_string();
    let key = format!("{} {client}", request.uri().path());
    if state.limiter.allow(&key, Instant::now()) {
        next.run(request).await
    } else {
        (StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded\n").into_response()
    }
}

async fn cert(State(state): State<HttpState>) -> Response {
    match state.keys.newest() {
        Some(key) => (
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            key.certificate.to_pem(),
        )
            .into_response(),
        None => (StatusCode::INTERNAL_SERVER_ERROR, "no sealing key yet\n").into_response(),
    }
}

async fn metrics(State(state): State<HttpState>) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// One SealedSecret from a request body, JSON or YAML, exactly one document.
pub fn parse_one_sealed_secret(body: &[u8]) -> Result<SealedSecret, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8 text".to_string())?;
    let mut documents = serde_yaml::Deserializer::from_str(text);
    let first = documents.next().ok_or("the body is empty")?;
    let sealed: SealedSecret = serde::Deserialize::deserialize(first)
        .map_err(|_| "the body is not a SealedSecret".to_string())?;
    if documents.next().is_some() {
        return Err("send one SealedSecret per request".into());
    }
    if sealed.metadata.name.as_deref().unwrap_or("").is_empty() {
        return Err("the SealedSecret has no name".into());
    }
    Ok(sealed)
}

/// Only `spec.encryptedData` is authenticated: templates are left out so that they can never
/// turn these endpoints into a decryption oracle (Bitnami's #2049).
fn without_template_data(mut sealed: SealedSecret) -> SealedSecret {
    sealed.spec.template.data = None;
    sealed
}

async fn open(
    state: &HttpState,
    sealed: SealedSecret,
) -> Result<sealing::UnsealedSecret, Response> {
    let keys = state.keys.try_order(None);
    if keys.is_empty() {
        return Err((StatusCode::INTERNAL_SERVER_ERROR, "no sealing key yet\n").into_response());
    }
    let result = tokio::task::spawn_blocking(move || {
        let refs: Vec<&sealing::PrivateKey> = keys.iter().map(|k| &k.private).collect();
        sealing::unseal(&without_template_data(sealed), &refs)
    })
    .await;
    match result {
        Ok(Ok(unsealed)) => Ok(unsealed),
        Ok(Err(_)) => {
            Err((StatusCode::CONFLICT, "cannot decrypt the SealedSecret\n").into_response())
        }
        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR.into_response()),
    }
}

async fn verify(State(state): State<HttpState>, body: Bytes) -> Response {
    let sealed = match parse_one_sealed_secret(&body) {
        Ok(s) => s,
        Err(message) => return (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response(),
    };
    match open(&state, sealed).await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(response) => response,
    }
}

async fn rotate(State(state): State<HttpState>, body: Bytes) -> Response {
    let mut sealed = match parse_one_sealed_secret(&body) {
        Ok(s) => s,
        Err(message) => return (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response(),
    };
    // As Bitnami's: the object's own name and namespace win over a stale template copy.
    if let Some(template_meta) = sealed.spec.template.metadata.as_mut() {
        template_meta.name = sealed.metadata.name.clone();
        template_meta.namespace = sealed.metadata.namespace.clone();
    }
    let Some(newest) = state.keys.newest() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "no sealing key yet\n").into_response();
    };
    let unsealed = match open(&state, sealed.clone()).await {
        Ok(u) => u,
        Err(response) => return response,
    };
    let label_source = sealed.clone();
    let result = tokio::task::spawn_blocking(move || {
        let scope = sealing::secret::sealed_scope(&label_source);
        let namespace = label_source.metadata.namespace.clone().unwrap_or_default();
        let name = label_source.metadata.name.clone().unwrap_or_default();
        let label = scope.label(&namespace, &name);
        unsealed
            .data
            .iter()
            .map(|(k, v)| {
                sealing::seal_value(newest.private.public_key(), &label, v).map(|bytes| {
                    (
                        k.clone(),
                        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes),
                    )
                })
            })
            .collect::<Result<std::collections::BTreeMap<_, _>, _>>()
    })
    .await;
    match result {
        Ok(Ok(encrypted)) => {
            // Plain template entries are not sealed: keep only the sealed keys re-encrypted.
            sealed.spec.encrypted_data = encrypted
                .into_iter()
                .filter(|(k, _)| sealed.spec.encrypted_data.contains_key(k))
                .collect();
            sealed.status = None;
            match serde_json::to_string(&sealed) {
                Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
                Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            }
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "cannot re-encrypt\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket_allows_the_burst_then_the_rate() {
        let limiter = RateLimiter::new(2.0, 2);
        let t0 = Instant::now();
        assert!(limiter.allow("a", t0));
        assert!(limiter.allow("a", t0));
        assert!(!limiter.allow("a", t0));
        assert!(limiter.allow("b", t0), "buckets are per client");
        assert!(limiter.allow("a", t0 + std::time::Duration::from_millis(500)));
        assert!(!limiter.allow("a", t0 + std::time::Duration::from_millis(600)));
    }

    #[test]
    fn bodies_must_hold_exactly_one_named_sealed_secret() {
        assert!(parse_one_sealed_secret(b"").is_err());
        assert!(parse_one_sealed_secret(b"kind: SealedSecret\nmetadata: {name: a}\n---\nkind: SealedSecret\nmetadata: {name: b}\n").is_err());
        assert!(parse_one_sealed_secret(b"{\"kind\":\"SealedSecret\",\"metadata\":{}}").is_err());
        assert!(
            parse_one_sealed_secret(
                b"{\"kind\":\"SealedSecret\",\"metadata\":{\"name\":\"a\"},\"spec\":{}}"
            )
            .is_ok()
        );
    }
}
