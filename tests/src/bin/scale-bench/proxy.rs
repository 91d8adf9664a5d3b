//! A counting HTTP proxy in front of the API server: the controller under test talks plain HTTP
//! to it, it forwards every request with the admin identity (TLS, client certificate) and counts
//! requests by verb and resource, as the API server's audit log would name them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse as _, Response};
use http::StatusCode;

/// Requests seen, keyed by (verb, resource[/subresource]).
#[derive(Default)]
struct Counts {
    by_kind: BTreeMap<(String, String), u64>,
    /// When the last request that is not a watch or a Lease renewal arrived.
    last_work: Option<Instant>,
}

pub struct Proxy {
    upstream: kube::Client,
    counts: Mutex<Counts>,
}

impl Proxy {
    /// Starts serving on 127.0.0.1 (a free port); returns the proxy and its base URL.
    pub async fn start(upstream: kube::Client) -> std::io::Result<(Arc<Proxy>, String)> {
        let proxy = Arc::new(Proxy {
            upstream,
            counts: Mutex::new(Counts::default()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let router = axum::Router::new()
            .fallback(forward)
            .with_state(Arc::clone(&proxy));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok((proxy, url))
    }

    /// The counts so far, and forgets them.
    pub fn take(&self) -> BTreeMap<(String, String), u64> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.last_work = None;
        std::mem::take(&mut counts.by_kind)
    }

    /// When the last request other than a watch or a Lease call arrived.
    pub fn last_work(&self) -> Option<Instant> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_work
    }

    fn count(&self, verb: &str, resource: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts
            .by_kind
            .entry((verb.to_string(), resource.to_string()))
            .or_default() += 1;
        if verb != "watch" && resource != "leases" {
            counts.last_work = Some(Instant::now());
        }
    }
}

/// (verb, resource) of a request, as the API server's audit log names them.
pub fn classify(method: &http::Method, path: &str, query: &str) -> (String, String) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    // /api/v1/... or /apis/GROUP/VERSION/...
    let rest: &[&str] = match parts.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => return (method.as_str().to_lowercase(), format!("(other) {path}")),
    };
    let rest = match rest {
        ["namespaces", _ns, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    };
    let (resource, named, sub) = match rest {
        [] => ("(discovery)".to_string(), false, None),
        [resource] => (resource.to_string(), false, None),
        [resource, _name] => (resource.to_string(), true, None),
        [resource, _name, sub, ..] => (resource.to_string(), true, Some(*sub)),
    };
    let watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let verb = match *method {
        http::Method::GET if watch => "watch",
        http::Method::GET if named => "get",
        http::Method::GET => "list",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE if named => "delete",
        http::Method::DELETE => "deletecollection",
        _ => method.as_str(),
    };
    let resource = match sub {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource,
    };
    (verb.to_string(), resource)
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or_default().to_string();
    let (verb, resource) = classify(&parts.method, &path, &query);
    proxy.count(&verb, &resource);
    // Request bodies are single objects or patches: read them whole.
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let target = match parts.uri.path_and_query() {
        Some(pq) => pq.as_str().to_string(),
        None => path,
    };
    let mut upstream = http::Request::builder()
        .method(parts.method.clone())
        .uri(target);
    for (name, value) in &parts.headers {
        // The upstream client sets its own host, length and credentials.
        if !matches!(
            name.as_str(),
            "host" | "content-length" | "authorization" | "connection" | "transfer-encoding"
        ) {
            upstream = upstream.header(name, value);
        }
    }
    let Ok(upstream) = upstream.body(kube::client::Body::from(bytes.to_vec())) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    match proxy.upstream.send(upstream).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            let mut out = Response::builder().status(parts.status);
            for (name, value) in &parts.headers {
                if !matches!(
                    name.as_str(),
                    "content-length" | "transfer-encoding" | "connection"
                ) {
                    out = out.header(name, value);
                }
            }
            out.body(Body::new(body))
                .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("proxy: {e}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(method: http::Method, path: &str, query: &str) -> (String, String) {
        classify(&method, path, query)
    }

    #[test]
    fn requests_are_named_as_the_audit_log_names_them() {
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            c(http::Method::GET, "/api/v1/secrets", "labelSelector=x"),
            s("list", "secrets")
        );
        assert_eq!(
            c(http::Method::GET, "/api/v1/secrets", "watch=true&x=y"),
            s("watch", "secrets")
        );
        assert_eq!(
            c(http::Method::GET, "/api/v1/namespaces/a/secrets/b", ""),
            s("get", "secrets")
        );
        assert_eq!(
            c(
                http::Method::PATCH,
                "/apis/bitnami.com/v1alpha1/namespaces/a/sealedsecrets/b/status",
                ""
            ),
            s("patch", "sealedsecrets/status")
        );
        assert_eq!(
            c(http::Method::POST, "/api/v1/namespaces/a/events", ""),
            s("create", "events")
        );
        assert_eq!(
            c(
                http::Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/a/leases/l",
                ""
            ),
            s("update", "leases")
        );
        assert_eq!(
            c(http::Method::GET, "/api/v1/namespaces/a", ""),
            s("get", "namespaces")
        );
    }
}
