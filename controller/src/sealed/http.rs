//! The controller's HTTP API, as Bitnami's (`/v1/cert.pem`, `/v1/verify`, `/v1/rotate`,
//! `/healthz`) plus `/metrics`. Meant to be reachable by every user of the cluster: it never
//! returns or logs secret material, and what one request can cost is bounded by the limits below
//! (docs/security.md states the worst case of each endpoint).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use base64::Engine as _;
use crds::SealedSecret;
use prometheus_client::registry::Registry;
use sealing::PrivateKey;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::keyring::{KeyRing, SealingKey};

/// Largest request body accepted by `/v1/verify` and `/v1/rotate`.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Largest request head (request line and headers) read; a larger one is answered 431.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header lines in one request; more are answered 431.
pub const MAX_HEADERS: usize = 64;
/// Connections served at once; further ones wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 1024;
/// Time a client has to send a request head, and then its body.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// `/v1/verify` and `/v1/rotate` requests worked on at once, all clients together; more are
/// answered 503 at once (each may keep a CPU busy, and the reconcilers need one too).
pub const MAX_IN_FLIGHT: usize = 2;
/// RSA private-key operations one request may spend (RSA-4096: up to 27 ms each measured,
/// see docs/controller.md); a SealedSecret that needs more is answered 413.
pub const MAX_RSA_OPERATIONS: usize = 128;
/// Deepest YAML/JSON nesting accepted in a body (a SealedSecret needs 5).
pub const MAX_YAML_DEPTH: usize = 32;
/// Most YAML aliases (`*name`) accepted in a body.
pub const MAX_YAML_ALIASES: usize = 64;
/// Most YAML nodes in a body once every alias is expanded.
pub const MAX_YAML_NODES: usize = 100_000;
/// Rate-limit buckets kept; past this the least recently seen client is forgotten.
pub const MAX_BUCKETS: usize = 4096;

/// The endpoints that cost CPU; each has its own bucket per client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Verify,
    Rotate,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets per (endpoint, client address). The address is one a client cannot choose
/// freely (see [`client_address`]), and the number of buckets is bounded.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<(Endpoint, IpAddr), Bucket>>,
}

impl RateLimiter {
    /// `per_second` <= 0 disables the limit.
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self {
            per_second,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::default(),
        }
    }

    /// Takes one token from `client`'s bucket for `endpoint`; false when it is empty.
    pub fn allow(&self, endpoint: Endpoint, client: IpAddr, now: Instant) -> bool {
        if !(self.per_second > 0.0 && self.per_second.is_finite()) {
            return true;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let key = (endpoint, client);
        if !buckets.contains_key(&key) && buckets.len() >= MAX_BUCKETS {
            // A bucket idle for this long has refilled: forgetting it changes nothing.
            let refill =
                Duration::try_from_secs_f64(self.burst / self.per_second).unwrap_or(Duration::MAX);
            buckets.retain(|_, b| now.saturating_duration_since(b.last) < refill);
            if buckets.len() >= MAX_BUCKETS
                && let Some(oldest) = buckets.iter().min_by_key(|(_, b)| b.last).map(|(k, _)| *k)
            {
                buckets.remove(&oldest);
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Buckets held now.
    pub fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Peers whose `X-Forwarded-For` is believed: the API server (or the konnectivity agents) that
/// proxy kubeseal's requests. Everyone else is charged by its TCP address, whatever it sends.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDR ranges (`10.0.0.1`, `10.0.0.0/8`,
    /// `fd00::/8`); empty trusts nobody.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("{entry:?} is not an IP address or CIDR range"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|net| net.contains(&address))
    }
}

/// The address a request is charged to. A TCP peer that is not a trusted proxy is charged
/// itself: a client that reaches the pod directly can write anything in `X-Forwarded-For`.
/// Behind trusted proxies, the hops are read from the last one back, past every trusted
/// proxy, to the first address a trusted proxy vouched for; hops before it are text the caller
/// sent. A hop that is not an address ends the walk at the last proxy that appended one.
pub fn client_address(headers: &HeaderMap, peer: IpAddr, trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer;
    if !trusted.contains(client) {
        return client;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .rev()
        .flat_map(|value| value.to_str().unwrap_or("").rsplit(','));
    for hop in hops {
        match hop.trim().parse::<IpAddr>() {
            Ok(address) => client = address,
            Err(_) => break,
        }
        if !trusted.contains(client) {
            break;
        }
    }
    client
}

#[derive(Clone)]
pub struct HttpState {
    pub keys: KeyRing,
    pub registry: Arc<Registry>,
    pub limiter: Arc<RateLimiter>,
    pub trusted_proxies: Arc<TrustedProxies>,
    /// Permits for `/v1/verify` and `/v1/rotate` requests being worked on.
    pub in_flight: Arc<Semaphore>,
}

impl HttpState {
    pub fn new(keys: KeyRing, registry: Arc<Registry>, limiter: RateLimiter) -> Self {
        Self {
            keys,
            registry,
            limiter: Arc::new(limiter),
            trusted_proxies: Arc::default(),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    #[must_use]
    pub fn with_trusted_proxies(mut self, trusted: TrustedProxies) -> Self {
        self.trusted_proxies = Arc::new(trusted);
        self
    }
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/v1/cert.pem", get(cert))
        .route(
            "/v1/verify",
            post(|State(s), r| limited(s, Endpoint::Verify, r)),
        )
        .route(
            "/v1/rotate",
            post(|State(s), r| limited(s, Endpoint::Rotate, r)),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Serves `app` (usually [`router`]) on `listener` until `shutdown` completes, then lets open requests finish
/// (5 s at most). Unlike `axum::serve` it bounds request heads (431 beyond [`MAX_HEAD_BYTES`] or
/// [`MAX_HEADERS`]), connections and slow clients, and tells handlers the TCP peer.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(READ_TIMEOUT);
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: pass, do not spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = hyper_util::service::TowerToHyperService::new(
            app.clone().layer(Extension(ConnectInfo(peer))),
        );
        let connection =
            graceful.watch(http1.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
}

/// An answer other than success, with a message safe to show anyone.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn cannot_decrypt() -> Self {
        Self::new(StatusCode::CONFLICT, "cannot decrypt the SealedSecret")
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.status, format!("{}\n", self.message)).into_response()
    }
}

/// Rate limit, then a work permit, then the body, then the work on a blocking thread: a request
/// turned away costs neither a body read nor CPU, and parsing never stalls the async workers.
async fn limited(state: HttpState, endpoint: Endpoint, request: Request) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let client = client_address(request.headers(), peer, &state.trusted_proxies);
    if !state.limiter.allow(endpoint, client, Instant::now()) {
        return Refusal::new(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded").into_response();
    }
    let Ok(permit) = Arc::clone(&state.in_flight).try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "busy with other requests, retry in a second\n",
        )
            .into_response();
    };
    let body = match tokio::time::timeout(READ_TIMEOUT, Bytes::from_request(request, &())).await {
        Ok(Ok(body)) => body,
        Ok(Err(rejection)) => return rejection.into_response(),
        Err(_) => {
            return Refusal::new(StatusCode::REQUEST_TIMEOUT, "the body was not sent in time")
                .into_response();
        }
    };
    let keys = state.keys.try_order(None);
    if keys.is_empty() {
        return Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "no sealing key yet")
            .into_response();
    }
    let work = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        match endpoint {
            Endpoint::Verify => verify_body(&body, &keys).map(|()| "ok\n".into_response()),
            Endpoint::Rotate => rotate_body(&body, &keys)
                .map(|json| ([(header::CONTENT_TYPE, "application/json")], json).into_response()),
        }
    })
    .await;
    match work {
        Ok(Ok(response)) => response,
        Ok(Err(refusal)) => refusal.into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
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

/// Walks the YAML (or JSON) event stream once, before any tree is built, and refuses what would
/// make building one expensive: more than one document, nesting deeper than [`MAX_YAML_DEPTH`],
/// more than [`MAX_YAML_ALIASES`] aliases, or more than [`MAX_YAML_NODES`] nodes once aliases
/// are expanded (a "billion laughs"). Stops at the first limit crossed.
pub fn check_yaml_bounds(text: &str) -> Result<(), String> {
    use saphyr_parser::{Event, Parser};
    // Per open collection: its anchor id (0: none) and its node count so far.
    let mut open: Vec<(usize, usize)> = vec![(0, 0)];
    // Expanded node count of each anchored node, for the aliases that repeat it.
    let mut anchored: HashMap<usize, usize> = HashMap::new();
    let (mut aliases, mut documents) = (0usize, 0usize);
    let add = |open: &mut Vec<(usize, usize)>, nodes: usize| -> Result<(), String> {
        let parent = open.last_mut().ok_or("the body is not valid YAML")?;
        parent.1 = parent.1.saturating_add(nodes);
        if parent.1 > MAX_YAML_NODES {
            return Err(format!(
                "the body has more than {MAX_YAML_NODES} YAML nodes (aliases expanded)"
            ));
        }
        Ok(())
    };
    let too_deep = || format!("the body nests deeper than {MAX_YAML_DEPTH} levels");
    for event in Parser::new_from_str(text) {
        let (event, _) = event.map_err(|e| {
            // The scanner runs ahead of the events and stops flow nesting at 255 levels itself.
            if e.info().contains("recursion limit") {
                too_deep()
            } else {
                "the body is not valid YAML or JSON".to_string()
            }
        })?;
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err("send one SealedSecret per request".into());
                }
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if open.len() > MAX_YAML_DEPTH {
                    return Err(too_deep());
                }
                open.push((anchor, 1));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if open.len() < 2 {
                    return Err("the body is not valid YAML".into());
                }
                let (anchor, nodes) = open.pop().unwrap_or_default();
                if anchor != 0 {
                    anchored.insert(anchor, nodes);
                }
                add(&mut open, nodes)?;
            }
            Event::Scalar(_, _, anchor, _) => {
                if anchor != 0 {
                    anchored.insert(anchor, 1);
                }
                add(&mut open, 1)?;
            }
            Event::Alias(anchor) => {
                aliases += 1;
                if aliases > MAX_YAML_ALIASES {
                    return Err(format!(
                        "the body has more than {MAX_YAML_ALIASES} YAML aliases"
                    ));
                }
                add(&mut open, anchored.get(&anchor).copied().unwrap_or(1))?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// One SealedSecret from a request body, JSON or YAML, exactly one document, within the bounds
/// of [`check_yaml_bounds`]. Parses on the calling thread: call it off the async workers.
pub fn parse_one_sealed_secret(body: &[u8]) -> Result<SealedSecret, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8 text".to_string())?;
    check_yaml_bounds(text)?;
    let mut documents = serde_yaml::Deserializer::from_str(text);
    let first = documents.next().ok_or("the body is empty")?;
    let sealed: SealedSecret = serde::Deserialize::deserialize(first)
        .map_err(|_| "the body is not a SealedSecret".to_string())?;
    if documents.next().is_some() {
        return Err("send one SealedSecret per request".into());
    }
    named(sealed)
}

/// The SealedSecret, unless it has no name (it could not be opened: the name is in the label).
fn named(sealed: SealedSecret) -> Result<SealedSecret, String> {
    if sealed.metadata.name.as_deref().unwrap_or("").is_empty() {
        return Err("the SealedSecret has no name".into());
    }
    Ok(sealed)
}

/// RSA private-key operations one request may still spend.
#[derive(Debug)]
pub struct RsaBudget {
    pub limit: usize,
    pub spent: usize,
}

impl RsaBudget {
    pub fn new(limit: usize) -> Self {
        Self { limit, spent: 0 }
    }

    fn too_costly(&self) -> Refusal {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "opening this SealedSecret takes more than {} RSA operations; \
                 check it offline with `secrets-controller unseal`",
                self.limit
            ),
        )
    }
}

/// Opens the values of `spec.encryptedData` (or of the legacy `spec.data`) with `keys`, in the
/// order given, the key that opened a value going first for the next. Stops at the first value
/// that no key opens (409) and before spending more than `budget` allows (413). Templates are
/// never evaluated, so that these endpoints can never be a decryption oracle (Bitnami's #2049).
pub fn open_values(
    sealed: &SealedSecret,
    keys: &[&PrivateKey],
    budget: &mut RsaBudget,
) -> Result<BTreeMap<String, Zeroizing<Vec<u8>>>, Refusal> {
    if sealed.spec.data.is_some() {
        return open_legacy(sealed, keys, budget);
    }
    let values = &sealed.spec.encrypted_data;
    if values.len() > budget.limit.saturating_sub(budget.spent) {
        return Err(budget.too_costly());
    }
    let namespace = sealed.metadata.namespace.clone().unwrap_or_default();
    let name = sealed.metadata.name.clone().unwrap_or_default();
    let label = sealing::secret::sealed_scope(sealed).label(&namespace, &name);
    let mut order: Vec<usize> = (0..keys.len()).collect();
    let mut opened = BTreeMap::new();
    for (key_name, encoded) in values {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| Refusal::cannot_decrypt())?;
        let allowed = budget.limit.saturating_sub(budget.spent).min(order.len());
        if allowed == 0 {
            return Err(budget.too_costly());
        }
        let tried = &order[..allowed];
        match sealing::open_value(tried.iter().map(|&i| keys[i]), &label, &bytes) {
            Ok(value) => {
                budget.spent += value.rsa_operations;
                let position = tried[value.key_index];
                order.retain(|&i| i != position);
                order.insert(0, position);
                opened.insert(key_name.clone(), value.plaintext);
            }
            Err(_) => {
                // At most one RSA operation per key tried (keys of another size cost none).
                budget.spent += allowed;
                return Err(if allowed < order.len() {
                    budget.too_costly()
                } else {
                    Refusal::cannot_decrypt()
                });
            }
        }
    }
    Ok(opened)
}

/// The legacy format is one sealed blob: at most one RSA operation per key.
fn open_legacy(
    sealed: &SealedSecret,
    keys: &[&PrivateKey],
    budget: &mut RsaBudget,
) -> Result<BTreeMap<String, Zeroizing<Vec<u8>>>, Refusal> {
    if !sealed.spec.encrypted_data.is_empty() {
        return Err(Refusal::cannot_decrypt());
    }
    if keys.len() > budget.limit.saturating_sub(budget.spent) {
        return Err(budget.too_costly());
    }
    let mut bare = sealed.clone();
    bare.spec.template.data = None;
    match sealing::unseal(&bare, keys) {
        Ok(unsealed) => {
            budget.spent += unsealed.rsa_operations;
            Ok(unsealed.data)
        }
        Err(_) => {
            budget.spent += keys.len();
            Err(Refusal::cannot_decrypt())
        }
    }
}

fn parse_body(body: &[u8]) -> Result<SealedSecret, Refusal> {
    parse_one_sealed_secret(body).map_err(|message| Refusal::new(StatusCode::BAD_REQUEST, message))
}

fn private_keys(keys: &[Arc<SealingKey>]) -> Vec<&PrivateKey> {
    keys.iter().map(|k| &k.private).collect()
}

/// `/v1/verify`: Ok when every sealed value opens with one of `keys`.
pub fn verify_body(body: &[u8], keys: &[Arc<SealingKey>]) -> Result<(), Refusal> {
    let sealed = parse_body(body)?;
    open_values(
        &sealed,
        &private_keys(keys),
        &mut RsaBudget::new(MAX_RSA_OPERATIONS),
    )
    .map(drop)
}

/// What `/v1/rotate` is sent: one SealedSecret (Bitnami's API) or, our extension for
/// `kubeseal --re-encrypt` over many files, a `v1` `List` of them answered with a `List`.
enum RotateRequest {
    One(Box<SealedSecret>),
    Batch(Vec<SealedSecret>),
}

/// Parses a `/v1/rotate` body within the bounds of [`check_yaml_bounds`]; a `List` holds at
/// most [`MAX_RSA_OPERATIONS`] items (each costs at least one).
fn parse_rotate_request(body: &[u8]) -> Result<RotateRequest, Refusal> {
    let bad = |message: &str| Refusal::new(StatusCode::BAD_REQUEST, message);
    let text = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8 text"))?;
    check_yaml_bounds(text).map_err(|message| bad(&message))?;
    // Parsed once: the kind decides how the same tree is read.
    let mut document: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|_| bad("the body is not a SealedSecret"))?;
    if document.get("kind").and_then(serde_yaml::Value::as_str) != Some("List") {
        let sealed = serde_yaml::from_value(document)
            .map_err(|_| bad("the body is not a SealedSecret"))
            .and_then(|sealed| named(sealed).map_err(|message| bad(&message)))?;
        return Ok(RotateRequest::One(Box::new(sealed)));
    }
    let items = match document.get_mut("items").map(std::mem::take) {
        Some(serde_yaml::Value::Sequence(items))
            if !items.is_empty() && items.len() <= MAX_RSA_OPERATIONS =>
        {
            items
        }
        _ => {
            return Err(bad(&format!(
                "a List holds 1 to {MAX_RSA_OPERATIONS} SealedSecrets"
            )));
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            serde_yaml::from_value(item)
                .map_err(|_| format!("item {i} is not a SealedSecret"))
                .and_then(|sealed| named(sealed).map_err(|message| format!("item {i}: {message}")))
                .map_err(|message| bad(&message))
        })
        .collect::<Result<_, _>>()
        .map(RotateRequest::Batch)
}

/// `/v1/rotate`: the SealedSecret (or each of a `List`) re-encrypted with the first of `keys`
/// (the newest), as JSON. A `List` shares one request's RSA budget, and fails as a whole,
/// naming the first item that could not be re-encrypted.
pub fn rotate_body(body: &[u8], keys: &[Arc<SealingKey>]) -> Result<String, Refusal> {
    let newest = keys
        .first()
        .ok_or_else(|| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "no sealing key yet"))?;
    let mut budget = RsaBudget::new(MAX_RSA_OPERATIONS);
    let cannot_encode = || Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "cannot re-encrypt");
    match parse_rotate_request(body)? {
        RotateRequest::One(sealed) => {
            let rotated = rotate_one(*sealed, keys, newest, &mut budget)?;
            serde_json::to_string(&rotated).map_err(|_| cannot_encode())
        }
        RotateRequest::Batch(items) => {
            let rotated = items
                .into_iter()
                .enumerate()
                .map(|(i, sealed)| {
                    let what = format!(
                        "item {i} ({}/{})",
                        sealed.metadata.namespace.as_deref().unwrap_or(""),
                        sealed.metadata.name.as_deref().unwrap_or("")
                    );
                    rotate_one(sealed, keys, newest, &mut budget).map_err(|refusal| Refusal {
                        message: format!("{what}: {}", refusal.message),
                        ..refusal
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            serde_json::to_string(&serde_json::json!({
                "apiVersion": "v1",
                "kind": "List",
                "items": rotated,
            }))
            .map_err(|_| cannot_encode())
        }
    }
}

fn rotate_one(
    mut sealed: SealedSecret,
    keys: &[Arc<SealingKey>],
    newest: &SealingKey,
    budget: &mut RsaBudget,
) -> Result<SealedSecret, Refusal> {
    // As Bitnami's: the object's own name and namespace win over a stale template copy.
    if let Some(template_meta) = sealed.spec.template.metadata.as_mut() {
        template_meta.name = sealed.metadata.name.clone();
        template_meta.namespace = sealed.metadata.namespace.clone();
    }
    let values = open_values(&sealed, &private_keys(keys), budget)?;
    let scope = sealing::secret::sealed_scope(&sealed);
    let namespace = sealed.metadata.namespace.clone().unwrap_or_default();
    let name = sealed.metadata.name.clone().unwrap_or_default();
    let label = scope.label(&namespace, &name);
    let cannot_seal = || Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "cannot re-encrypt");
    sealed.spec.encrypted_data = values
        .iter()
        .map(|(k, v)| {
            sealing::seal_value(newest.private.public_key(), &label, v)
                .map(|bytes| {
                    (
                        k.clone(),
                        base64::engine::general_purpose::STANDARD.encode(bytes),
                    )
                })
                .map_err(|_| cannot_seal())
        })
        .collect::<Result<_, _>>()?;
    sealed.spec.data = None;
    sealed.status = None;
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket_allows_the_burst_then_the_rate() {
        let limiter = RateLimiter::new(2.0, 2);
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let t0 = Instant::now();
        assert!(limiter.allow(Endpoint::Verify, a, t0));
        assert!(limiter.allow(Endpoint::Verify, a, t0));
        assert!(!limiter.allow(Endpoint::Verify, a, t0));
        assert!(
            limiter.allow(Endpoint::Verify, b, t0),
            "buckets are per client"
        );
        assert!(limiter.allow(Endpoint::Rotate, a, t0), "and per endpoint");
        assert!(limiter.allow(Endpoint::Verify, a, t0 + Duration::from_millis(500)));
        assert!(!limiter.allow(Endpoint::Verify, a, t0 + Duration::from_millis(600)));
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
