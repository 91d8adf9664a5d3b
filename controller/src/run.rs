//! `secrets-controller` in the cluster: flags (Bitnami's names, each also from
//! `SEALED_SECRETS_<FLAG>`), start-up and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use futures::future::join_all;
use time::OffsetDateTime;
use tokio::sync::{broadcast, watch};

use crate::chart_flags::ChartArgs;
use crate::duration::parse_go_duration;
use crate::events::{Recorder, Reporter};
use crate::external::{self, ExternalSecretsArgs};
use crate::lease::{self, Leadership, LeaseConfig};
use crate::sealed::http::{self, HttpState, RateLimiter, TrustedProxies};
use crate::sealed::keyring::{KeyOrder, KeyRing};
use crate::sealed::keys::{self, KeyConfig};
use crate::sealed::metrics::SealedMetrics;
use crate::sealed::owned::owned_secrets;
use crate::sealed::reconcile::{self, Context, Scope};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Prefix of the names of new key Secrets.
    #[arg(
        long,
        env = "SEALED_SECRETS_KEY_PREFIX",
        default_value = "sealed-secrets-key"
    )]
    pub key_prefix: String,
    /// RSA size of new keys, in bits.
    #[arg(long, env = "SEALED_SECRETS_KEY_SIZE", default_value_t = 4096)]
    pub key_size: usize,
    /// Validity of new certificates (Go duration).
    #[arg(long, env = "SEALED_SECRETS_KEY_TTL", default_value = "87600h")]
    pub key_ttl: String,
    /// Common name of new certificates.
    #[arg(long, env = "SEALED_SECRETS_MY_CN", default_value = "")]
    pub my_cn: String,
    /// Make a new sealing key this often (Go duration; 0 disables). Old keys are kept.
    #[arg(
        long,
        visible_alias = "rotate-period",
        env = "SEALED_SECRETS_KEY_RENEW_PERIOD",
        default_value = "720h"
    )]
    pub key_renew_period: String,
    /// Which key is the newest: by certificate notBefore or by Secret creation.
    #[arg(
        long,
        env = "SEALED_SECRETS_KEY_ORDER_PRIORITY",
        value_enum,
        default_value = "CertNotBefore"
    )]
    pub key_order_priority: KeyOrder,
    /// Make a new key at start when the newest is older than this (RFC 1123 with zone, as `date -R`).
    #[arg(long, env = "SEALED_SECRETS_KEY_CUTOFF_TIME")]
    pub key_cutoff_time: Option<String>,
    /// Extra labels for new key Secrets (k=v,k=v).
    #[arg(long, env = "SEALED_SECRETS_PRIVATEKEY_LABELS", default_value = "")]
    pub privatekey_labels: String,
    /// Extra annotations for new key Secrets (k=v,k=v).
    #[arg(
        long,
        env = "SEALED_SECRETS_PRIVATEKEY_ANNOTATIONS",
        default_value = ""
    )]
    pub privatekey_annotations: String,
    /// Watch SealedSecrets in every namespace (false: only the controller's and --additional-namespaces).
    #[arg(long, env = "SEALED_SECRETS_ALL_NAMESPACES", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub all_namespaces: bool,
    /// More namespaces to watch (comma-separated); watches the controller's namespace plus these.
    #[arg(long, env = "SEALED_SECRETS_ADDITIONAL_NAMESPACES", default_value = "")]
    pub additional_namespaces: String,
    /// Only SealedSecrets matching this label selector.
    #[arg(long, env = "SEALED_SECRETS_LABEL_SELECTOR")]
    pub label_selector: Option<String>,
    /// Write the SealedSecret status subresource.
    #[arg(long, env = "SEALED_SECRETS_UPDATE_STATUS", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub update_status: bool,
    /// Requests per second allowed to /v1/verify and /v1/rotate per client.
    #[arg(long, env = "SEALED_SECRETS_RATE_LIMIT", default_value_t = 2.0)]
    pub rate_limit: f64,
    /// Burst of the rate limit.
    #[arg(long, env = "SEALED_SECRETS_RATE_LIMIT_BURST", default_value_t = 2)]
    pub rate_limit_burst: u32,
    /// Addresses or CIDR ranges (comma-separated) of the proxies in front of the HTTP API, usually
    /// the API server or its konnectivity agents: only their `X-Forwarded-For` decides which client
    /// the rate limit charges. Any other peer is charged by its own address.
    #[arg(long, env = "SEALED_SECRETS_TRUSTED_PROXIES", default_value = "", value_parser = parse_trusted_proxies)]
    pub trusted_proxies: TrustedProxies,
    /// Address of the HTTP API kubeseal uses (/v1/cert.pem, /v1/verify, /v1/rotate) and
    /// /healthz; empty turns it off.
    #[arg(long, env = "SEALED_SECRETS_LISTEN_ADDR", default_value = ":8080")]
    pub listen_addr: String,
    /// Address of /metrics (and /healthz), kept off the API listener that every cluster user
    /// reaches through the service proxy; empty turns it off.
    #[arg(
        long,
        env = "SEALED_SECRETS_LISTEN_METRICS_ADDR",
        default_value = ":8081"
    )]
    pub listen_metrics_addr: String,
    /// Log format.
    #[arg(
        long,
        env = "SEALED_SECRETS_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, env = "SEALED_SECRETS_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Namespace of the controller and its keys (default: this pod's namespace, else kube-system).
    #[arg(long = "namespace", env = "POD_NAMESPACE")]
    pub pod_namespace: Option<String>,
    /// Elect one leader among replicas (only the leader reconciles and renews keys).
    #[arg(long, env = "SEALED_SECRETS_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: bool,
    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "SEALED_SECRETS_LEADER_ELECTION_ID",
        default_value = "secrets-controller"
    )]
    pub leader_election_id: String,
    /// Values of one SealedSecret decrypted at once (default: number of CPUs).
    #[arg(long, env = "SEALED_SECRETS_UNSEAL_THREADS")]
    pub unseal_threads: Option<usize>,
    /// Run the SealedSecret reconciler.
    #[arg(long, env = "ENABLE_SEALED_SECRETS", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub enable_sealed_secrets: bool,

    /// Print the settings this command line resolves to (after the chart conventions of
    /// docs/controller.md) and exit.
    #[arg(long)]
    pub print_config: bool,

    #[command(flatten)]
    pub external: ExternalSecretsArgs,

    #[command(flatten)]
    pub chart: ChartArgs,
}

fn key_values(text: &str, flag: &str) -> Result<Vec<(String, String)>> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| anyhow!("{flag}: expected key=value, got {pair:?}"))
        })
        .collect()
}

fn parse_trusted_proxies(list: &str) -> Result<TrustedProxies, String> {
    TrustedProxies::parse(list).map_err(|e| format!("--trusted-proxies: {e}"))
}

fn own_namespace(args: &RunArgs) -> String {
    args.pod_namespace.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "kube-system".to_string())
    })
}

pub fn key_config(args: &RunArgs) -> Result<KeyConfig> {
    if args.key_prefix.is_empty()
        || args.key_prefix.len() > 245
        || !args
            .key_prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(anyhow!(
            "--key-prefix must be 1 to 245 characters of a-z, 0-9 and -"
        ));
    }
    let cutoff = match &args.key_cutoff_time {
        Some(text) if !text.is_empty() => Some(
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc2822)
                .with_context(|| {
                    format!(
                        "--key-cutoff-time {text:?}: use RFC 1123 with zone, as `date -R` prints"
                    )
                })?,
        ),
        _ => None,
    };
    Ok(KeyConfig {
        namespace: own_namespace(args),
        prefix: args.key_prefix.clone(),
        key_size: args.key_size,
        key_ttl: parse_go_duration(&args.key_ttl).context("--key-ttl")?,
        my_cn: args.my_cn.clone(),
        renew_period: parse_go_duration(&args.key_renew_period).context("--key-renew-period")?,
        cutoff,
        extra_labels: key_values(&args.privatekey_labels, "--privatekey-labels")?,
        extra_annotations: key_values(&args.privatekey_annotations, "--privatekey-annotations")?,
    })
}

/// Parses a Go-style listen address (`:8080` means every interface); empty means off.
fn listen_address(text: &str, flag: &str) -> Result<Option<SocketAddr>> {
    if text.is_empty() {
        return Ok(None);
    }
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_string()
    };
    full.parse()
        .map(Some)
        .with_context(|| format!("{flag} {text:?}"))
}

/// What one listening address serves.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub api: bool,
    pub metrics: bool,
    pub health: bool,
}

/// Groups the API, metrics and liveness addresses into listeners: two roles given the same
/// address share one listener (port 0 always gets its own).
pub fn plan_listeners(
    api: Option<SocketAddr>,
    metrics: Option<SocketAddr>,
    live: Option<SocketAddr>,
) -> Vec<(SocketAddr, Roles)> {
    let mut plan: Vec<(SocketAddr, Roles)> = Vec::new();
    let mut add = |addr: Option<SocketAddr>, set: fn(&mut Roles)| {
        let Some(addr) = addr else { return };
        match plan
            .iter_mut()
            .find(|(a, _)| *a == addr && addr.port() != 0)
        {
            Some((_, roles)) => set(roles),
            None => {
                let mut roles = Roles::default();
                set(&mut roles);
                plan.push((addr, roles));
            }
        }
    };
    add(api, |r| r.api = true);
    add(metrics, |r| r.metrics = true);
    add(live, |r| r.health = true);
    plan
}

fn listener_router(roles: Roles, http_state: &HttpState) -> axum::Router {
    use axum::routing::get;
    // /metrics names every SealedSecret and ExternalSecret: only where --listen-metrics-addr is.
    let mut own = if roles.api {
        http::router(http_state.clone())
    } else {
        axum::Router::new().route("/healthz", get(|| async { "ok\n" }))
    };
    if roles.metrics {
        let registry = Arc::clone(&http_state.registry);
        own = own.route(
            "/metrics",
            get(move || {
                let registry = Arc::clone(&registry);
                async move { encode_metrics(&registry) }
            }),
        );
    }
    own
}

fn encode_metrics(registry: &prometheus_client::registry::Registry) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, registry) {
        Ok(()) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

pub fn init_logging(args: &RunArgs) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(args.log_level.to_lowercase()));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match args.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
    let terminate = async {
        #[cfg(unix)]
        if let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            sig.recv().await;
            return;
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

/// Runs until SIGTERM or Ctrl-C.
pub async fn run(args: RunArgs) -> Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("cannot reach the Kubernetes API (in-cluster service account or kubeconfig)")?;
    run_with(args, client, shutdown_signal()).await
}

/// Which namespaces the SealedSecret reconciler watches: all, or the controller's own plus
/// `--additional-namespaces` (Bitnami's rule: additional namespaces imply not all).
pub fn sealed_scope(all_namespaces: bool, additional: &str, own_namespace: &str) -> Scope {
    if all_namespaces && additional.trim().is_empty() {
        return Scope::All;
    }
    let mut namespaces = vec![own_namespace.to_string()];
    namespaces.extend(
        additional
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from),
    );
    Scope::Namespaces(namespaces)
}

/// Binds every planned listener and serves it until `stopped` completes.
async fn start_listeners<F, Fut>(
    plan: Vec<(SocketAddr, Roles)>,
    http_state: &HttpState,
    stopped: F,
) -> Result<Vec<tokio::task::JoinHandle<std::io::Result<()>>>>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut servers = Vec::new();
    for (bind, roles) in plan {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("cannot listen on {bind}"))?;
        tracing::info!(%bind, api = roles.api, metrics = roles.metrics, "HTTP listening");
        // Every listener gets the hardened server (bounded heads, connections and slow clients).
        servers.push(tokio::spawn(http::serve(
            listener,
            listener_router(roles, http_state),
            stopped(),
        )));
    }
    Ok(servers)
}

/// The SealedSecret reconciler's context: events as Bitnami's reporter, the owned-Secret cache.
fn sealed_context(
    args: &RunArgs,
    client: &kube::Client,
    ring: &KeyRing,
    metrics: SealedMetrics,
    identity: &str,
) -> Context {
    let reporter = Reporter {
        controller: "sealed-secrets".into(),
        instance: Some(identity.to_string()),
    };
    Context {
        client: client.clone(),
        keys: ring.clone(),
        metrics,
        recorder: Some(Recorder::new(client.clone(), reporter)),
        update_status: args.update_status,
        unseal_threads: args
            .unseal_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        rsa_slots: Context::rsa_slots(),
        owned: Some(owned_secrets(ring.clone())),
        status_writes: Default::default(),
    }
}

/// Runs against `client` until `shutdown` completes.
pub async fn run_with(
    args: RunArgs,
    client: kube::Client,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let key_config = key_config(&args)?;
    let plan = listener_plan(&args)?;

    let mut registry = prometheus_client::registry::Registry::default();
    let sealed_metrics = SealedMetrics::register(&mut registry);
    let external_metrics = external::register_metrics(&mut registry);
    let ring = KeyRing::new(args.key_order_priority);
    let (changes, _) = broadcast::channel::<()>(64);
    let (stop_tx, stop) = watch::channel(false);
    let stopped = || stop_signal(&stop);

    let mut loaded = start_key_watch(&args, &client, &key_config, &ring, &changes);
    let http_state = HttpState::new(
        ring.clone(),
        Arc::new(registry),
        RateLimiter::new(args.rate_limit, args.rate_limit_burst),
    )
    .with_trusted_proxies(args.trusted_proxies.clone());
    let servers = start_listeners(plan, &http_state, stopped).await?;

    let identity = replica_identity();
    // Without election this replica leads from the start. The sender lives as long as this
    // function: dropping it would read as "leadership channel closed".
    let (leader_tx, mut leader) = watch::channel(!args.leader_elect);
    // The election stops after the reconcilers, so that the lease is handed over only once
    // they finished what they started.
    let (release_tx, release) = watch::channel(false);
    let election = start_election(&args, &client, &key_config, &identity, &leader_tx, &release);

    let _ = loaded.wait_for(|l| *l).await;
    if args.enable_sealed_secrets {
        tracing::info!(keys = ring.len(), "key Secrets loaded");
    }
    let ctx = sealed_context(&args, &client, &ring, sealed_metrics, &identity);
    let leadership = Leadership::following(leader.clone());
    let sealed = args.enable_sealed_secrets.then(|| SealedWork {
        ctx: Arc::new(ctx),
        scope: sealed_scope(
            args.all_namespaces,
            &args.additional_namespaces,
            &key_config.namespace,
        ),
        label_selector: args.label_selector.clone(),
        key_config: key_config.clone(),
        ring: ring.clone(),
        changes: changes.clone(),
    });
    let reconcilers = start_reconcilers(
        sealed.as_ref(),
        &args.external,
        external_metrics,
        &client,
        &leadership,
        &stop,
    );
    let mut renewal = KeyRenewal::new(sealed, &client);
    renewal.follow(&mut leader, shutdown).await;

    let _ = stop_tx.send(true);
    renewal.stop();
    // Let reconcilers finish what they started, then hand the lease over.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, join_all(reconcilers)).await;
    let _ = release_tx.send(true);
    let last = futures::future::join(join_all(election), join_all(servers));
    let _ = tokio::time::timeout(Duration::from_secs(5), last).await;
    drop(leader_tx);
    Ok(())
}

/// How long reconciles in progress may take to finish on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// With `--leader-elect`, takes part in the election on the Lease until `release` turns true,
/// sending on `leader` whether this replica leads.
fn start_election(
    args: &RunArgs,
    client: &kube::Client,
    key_config: &KeyConfig,
    identity: &str,
    leader: &watch::Sender<bool>,
    release: &watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let config = LeaseConfig::new(
        args.leader_election_id.clone(),
        key_config.namespace.clone(),
        identity.to_string(),
    );
    args.leader_elect.then(|| {
        tokio::spawn(lease::run(
            client.clone(),
            config,
            leader.clone(),
            stop_signal(release),
        ))
    })
}

/// This replica's name in the Lease and in events: the pod's, else the host's.
fn replica_identity() -> String {
    std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| format!("secrets-controller-{}", std::process::id()))
}

/// The listeners `--listen-addr`, `--listen-metrics-addr` and `--live-addr` ask for.
fn listener_plan(args: &RunArgs) -> Result<Vec<(SocketAddr, Roles)>> {
    Ok(plan_listeners(
        listen_address(&args.listen_addr, "--listen-addr")?,
        listen_address(&args.listen_metrics_addr, "--listen-metrics-addr")?,
        args.chart
            .live_addr
            .as_deref()
            .map(|addr| listen_address(addr, "--live-addr"))
            .transpose()?
            .flatten(),
    ))
}

/// Completes once `true` was sent on `stop`'s channel (or the sender is gone).
fn stop_signal(stop: &watch::Receiver<bool>) -> impl std::future::Future<Output = ()> + use<> {
    let mut stop = stop.clone();
    async move {
        let _ = stop.wait_for(|s| *s).await;
    }
}

/// Starts watching the key Secrets; the answer turns `true` once they are loaded. Sealing keys
/// belong to SealedSecrets: without them, no key is read or ever made.
fn start_key_watch(
    args: &RunArgs,
    client: &kube::Client,
    key_config: &KeyConfig,
    ring: &KeyRing,
    changes: &broadcast::Sender<()>,
) -> watch::Receiver<bool> {
    let (loaded_tx, loaded) = watch::channel(false);
    if args.enable_sealed_secrets {
        tokio::spawn(keys::watch_keys(
            client.clone(),
            key_config.clone(),
            ring.clone(),
            loaded_tx,
            changes.clone(),
        ));
    } else {
        let _ = loaded_tx.send(true);
    }
    loaded
}

/// What the SealedSecret half runs: its reconciler, and key renewal while this replica leads.
struct SealedWork {
    ctx: Arc<Context>,
    scope: Scope,
    label_selector: Option<String>,
    key_config: KeyConfig,
    ring: KeyRing,
    changes: broadcast::Sender<()>,
}

/// Starts both reconcilers with their watches, on every replica: they act only while this one
/// leads (see `Leadership`), and a new term starts from their warm caches.
fn start_reconcilers(
    sealed: Option<&SealedWork>,
    external: &ExternalSecretsArgs,
    external_metrics: external::Metrics,
    client: &kube::Client,
    leadership: &Leadership,
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut reconcilers = Vec::new();
    if let Some(sealed) = sealed {
        reconcilers.push(tokio::spawn(reconcile::run(
            Arc::clone(&sealed.ctx),
            sealed.scope.clone(),
            sealed.label_selector.clone(),
            reconcile::ticks(sealed.changes.subscribe()),
            leadership.clone(),
            stop_signal(stop),
        )));
    }
    let external = external::run(
        client.clone(),
        external.clone(),
        external_metrics,
        leadership.clone(),
        stop_signal(stop),
    );
    reconcilers.push(tokio::spawn(async move {
        if let Err(e) = external.await {
            tracing::error!(error = %e, "ExternalSecret reconciler stopped");
        }
    }));
    reconcilers
}

/// Key renewal, which only the leader runs: started when this replica gains the lease, aborted
/// when it loses it (another replica takes over at once). It only sleeps between checks, so
/// stopping it needs no grace.
struct KeyRenewal {
    /// `None` with `--enable-sealed-secrets=false`.
    sealed: Option<SealedWork>,
    client: kube::Client,
    leading: bool,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl KeyRenewal {
    fn new(sealed: Option<SealedWork>, client: &kube::Client) -> KeyRenewal {
        KeyRenewal {
            sealed,
            client: client.clone(),
            leading: false,
            task: None,
        }
    }

    /// Renews keys whenever `leader` says this replica leads, until `shutdown` completes.
    async fn follow(
        &mut self,
        leader: &mut watch::Receiver<bool>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let leading = *leader.borrow_and_update();
            if leading != self.leading {
                self.leading = leading;
                if leading {
                    tracing::info!("leading: reconciling");
                    self.start();
                } else {
                    tracing::warn!("lost leadership: reconcilers stand by");
                    self.stop();
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                // Cannot fail while the caller holds the sender.
                _ = leader.changed() => {}
            }
        }
    }

    fn start(&mut self) {
        self.task = self.sealed.as_ref().map(|sealed| {
            tokio::spawn(keys::renew_keys(
                self.client.clone(),
                sealed.key_config.clone(),
                sealed.ring.clone(),
                sealed.changes.clone(),
            ))
        });
    }

    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn additional_namespaces_narrow_the_sealed_secret_watch_to_ours_plus_them() {
        assert_eq!(sealed_scope(true, "", "kube-system"), Scope::All);
        assert_eq!(
            sealed_scope(true, "team-a, team-b", "kube-system"),
            Scope::Namespaces(vec!["kube-system".into(), "team-a".into(), "team-b".into()])
        );
        assert_eq!(
            sealed_scope(false, "", "sealed"),
            Scope::Namespaces(vec!["sealed".into()])
        );
    }
}
