//! `scale-bench`: the release `secrets-controller` against a real API server at scale.
//!
//! Starts an envtest-style API server (the starter named by `E2E_CLUSTER_SH`, as the e2e tests
//! do), creates N SealedSecrets (3 values each, one pre-made RSA-4096 sealing key), N
//! ExternalSecrets (fake provider, 100 remote keys, one property each) and M unrelated Secrets,
//! then starts the controller behind a counting proxy and reports: time until every target
//! Secret exists, RSS peak and steady, CPU seconds and API requests by verb and resource; then
//! the same after a controller restart. See docs/benchmarks.md.
//!
//! ```text
//! E2E_CLUSTER_SH=../shared/envtest/cluster.sh \
//!   cargo run --release -p e2e-tests --bin scale-bench -- --n 1000 --m 10000
//! ```

mod proxy;
mod soak;
mod writes;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use e2e_tests::envtest::{CLUSTER_ENV, Cluster, Controller};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, watcher};

use proxy::Proxy;

/// Labels the controller puts on the Secrets it writes (part of the wire format: Bitnami-style
/// ownership for SealedSecrets, ESO's managed label for ExternalSecrets).
const SEALED_LABEL: &str = "gitops-secrets.dev/sealed-secret=true";
const EXTERNAL_LABEL: &str = "reconcile.external-secrets.io/managed=true";
const SYSTEM_NS: &str = "bench-system";
pub(crate) const REMOTE_KEYS: usize = 100;
/// Concurrent creates while populating the cluster.
const CREATE_CONCURRENCY: usize = 48;
/// The controller counts as settled once no request but watches and Lease renewals came for this long.
const QUIET: Duration = Duration::from_secs(5);
/// Wait after settling before reading the steady RSS.
const STEADY_AFTER: Duration = Duration::from_secs(10);
const PHASE_LIMIT: Duration = Duration::from_secs(900);

#[derive(Debug, Clone)]
struct Options {
    n: usize,
    /// SealedSecrets to create: N unless `--sealed` says otherwise (0: ExternalSecrets alone).
    sealed: Option<usize>,
    m: usize,
    namespaces: usize,
    controller_bin: Option<PathBuf>,
    /// Minutes to keep the controller running after the first start (see `soak`).
    soak: Option<u64>,
    /// The ExternalSecrets' refreshInterval.
    refresh: Option<String>,
    extra_args: Vec<String>,
    /// The controller's environment as the Deployment sets it (see `deployment_env`).
    env: Vec<(String, String)>,
}

impl Options {
    fn sealed(&self) -> usize {
        self.sealed.unwrap_or(self.n)
    }

    fn refresh(&self) -> &str {
        match (&self.refresh, self.soak) {
            (Some(r), _) => r,
            (None, Some(_)) => "1m",
            (None, None) => "1h",
        }
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: scale-bench [--n N] [--m M] [--namespaces K] [--controller-bin PATH] [-- CONTROLLER FLAGS...]
  --n N               SealedSecrets and ExternalSecrets to create (default 1000)
  --m M               unrelated Secrets to create (default 10000)
  --sealed K          SealedSecrets to create instead of N (0: time ExternalSecrets alone)
  --namespaces K      spread every object over K namespaces (default 10)
  --controller-bin P  use this secrets-controller instead of building the release one
  --soak MINUTES      keep the first controller running this long (hand edits, a key renewal,
                      an API server restart) instead of the restart phase
  --refresh D         the ExternalSecrets' refreshInterval (default 1h; 1m with --soak)
Needs {CLUSTER_ENV}=path/to/cluster.sh (an envtest-style API server starter) and kubectl."
    );
    std::process::exit(2)
}

fn parse_options() -> Options {
    let mut options = Options {
        n: 1000,
        m: 10_000,
        namespaces: 10,
        controller_bin: None,
        soak: None,
        sealed: None,
        refresh: None,
        extra_args: Vec::new(),
        env: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |what: &str| -> usize {
            args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                eprintln!("{what} needs a number");
                usage()
            })
        };
        match arg.as_str() {
            "--n" => options.n = number("--n"),
            "--m" => options.m = number("--m"),
            "--sealed" => options.sealed = Some(number("--sealed")),
            "--namespaces" => options.namespaces = number("--namespaces").max(1),
            "--controller-bin" => {
                options.controller_bin =
                    Some(args.next().map(PathBuf::from).unwrap_or_else(|| usage()))
            }
            "--soak" => options.soak = Some(number("--soak") as u64),
            "--refresh" => options.refresh = Some(args.next().unwrap_or_else(|| usage())),
            "--" => options.extra_args.extend(args.by_ref()),
            _ => usage(),
        }
    }
    options
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `cargo build --release` of the controller; its path.
fn build_controller(workspace: &Path) -> Result<PathBuf> {
    eprintln!("building the release secrets-controller...");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "-p",
            "controller",
            "--bin",
            "secrets-controller",
        ])
        .current_dir(workspace)
        .status()
        .context("cargo")?;
    if !status.success() {
        bail!("cargo build --release -p controller failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    Ok(target.join("release").join("secrets-controller"))
}

fn namespace_of(i: usize, options: &Options) -> String {
    format!("bench-{}", i % options.namespaces)
}

/// Plaintext value `k` of SealedSecret `i` (checked after the sync).
fn sealed_value(i: usize, k: usize) -> String {
    format!("sealed-{i}-value-{k}-{}", "x".repeat(24))
}

/// The value remote key `r` holds under property `value`.
fn remote_value(r: usize) -> String {
    format!("remote-{r}-{}", "y".repeat(24))
}

async fn create_all<T>(what: &str, items: Vec<(Api<T>, T)>) -> Result<()>
where
    T: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let started = Instant::now();
    let total = items.len();
    futures::stream::iter(items)
        .map(|(api, object)| async move {
            api.create(&PostParams::default(), &object)
                .await
                .map(drop)
                .map_err(|e| anyhow!("create {what}: {e}"))
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    eprintln!(
        "created {total} {what} in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The RSA work the SealedSecrets need, measured on this machine: how long opening `values`
/// sealed values takes on every CPU (the lower bound of the SealedSecret first sync).
fn rsa_reference(
    key: &sealing::PrivateKey,
    sample: &[(Vec<u8>, Vec<u8>)],
    values: usize,
) -> Duration {
    if sample.is_empty() {
        return Duration::ZERO;
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for chunk in sample.chunks(sample.len().div_ceil(threads)) {
            scope.spawn(move || {
                for (label, sealed) in chunk {
                    let _ = sealing::open_value([key], label, sealed);
                }
            });
        }
    });
    started
        .elapsed()
        .mul_f64(values as f64 / sample.len() as f64)
}

/// The literal environment variables of the Deployment's controller container (those without
/// `valueFrom`, such as the allocator's settings), so that the bench runs the binary as a
/// cluster does.
fn deployment_env(workspace: &Path) -> Result<Vec<(String, String)>> {
    let path = workspace.join("deploy/controller/deployment.yaml");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let deployment: k8s_openapi::api::apps::v1::Deployment =
        serde_yaml::from_str(&text).with_context(|| path.display().to_string())?;
    let containers = deployment
        .spec
        .and_then(|s| s.template.spec)
        .map(|s| s.containers)
        .unwrap_or_default();
    Ok(containers
        .into_iter()
        .flat_map(|c| c.env.unwrap_or_default())
        .filter_map(|e| Some((e.name, e.value?)))
        .collect())
}

/// Everything the bench creates before the controller starts.
async fn populate(client: &kube::Client, options: &Options) -> Result<Duration> {
    let mut names = vec![SYSTEM_NS.to_string()];
    names.extend((0..options.namespaces).map(|i| format!("bench-{i}")));
    for name in &names {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("create namespace {name}"))?;
    }

    // One RSA-4096 sealing key, made here so that every value can be sealed offline.
    let (private, certificate) = tokio::task::spawn_blocking(|| {
        let private = sealing::PrivateKey::generate(4096)?;
        let certificate =
            sealing::Certificate::self_signed(&private, "", Duration::from_secs(3650 * 24 * 3600))?;
        Ok::<_, sealing::KeyError>((private, certificate))
    })
    .await??;
    let key_secret = sealing::key_secret::key_secret_manifest(
        &private,
        &certificate,
        "sealed-secrets-keybench",
        SYSTEM_NS,
    )?;
    Api::<Secret>::namespaced(client.clone(), SYSTEM_NS)
        .create(&PostParams::default(), &key_secret)
        .await
        .context("create the sealing key Secret")?;

    // Sealing (RSA public operations) is quick; keep it off the async workers all the same.
    let n = options.sealed();
    let opts = options.clone();
    let public = certificate.public_key().clone();
    let (sealed, sample) = tokio::task::spawn_blocking(move || {
        let mut sealed = Vec::with_capacity(n);
        let mut sample = Vec::new();
        for i in 0..n {
            let ns = namespace_of(i, &opts);
            let name = format!("sealed-{i}");
            let label = sealing::Scope::Strict.label(&ns, &name);
            let mut data = BTreeMap::new();
            for k in 0..3 {
                let value = sealing::seal_value(&public, &label, sealed_value(i, k).as_bytes())?;
                if sample.len() < 150 {
                    sample.push((label.clone(), value.clone()));
                }
                data.insert(
                    format!("key{k}"),
                    base64::engine::general_purpose::STANDARD.encode(value),
                );
            }
            let object: crds::SealedSecret = serde_json::from_value(serde_json::json!({
                "apiVersion": "bitnami.com/v1alpha1",
                "kind": "SealedSecret",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"encryptedData": data, "template": {"metadata": {"name": name, "namespace": ns}}},
            }))?;
            sealed.push(object);
        }
        Ok::<_, anyhow::Error>((sealed, sample))
    })
    .await??;
    let rsa = rsa_reference(&private, &sample, 3 * n);

    let store: crds::external_secrets::ClusterSecretStore =
        serde_json::from_value(serde_json::json!({
            "apiVersion": "external-secrets.io/v1",
            "kind": "ClusterSecretStore",
            "metadata": {"name": "bench-fake"},
            "spec": {"provider": {"fake": {"data": (0..REMOTE_KEYS).map(|r| serde_json::json!({
                "key": format!("remote-{r}"),
                "value": serde_json::json!({"value": remote_value(r)}).to_string(),
            })).collect::<Vec<_>>()}}},
        }))?;
    Api::<crds::external_secrets::ClusterSecretStore>::all(client.clone())
        .create(&PostParams::default(), &store)
        .await
        .context("create the ClusterSecretStore")?;

    let mut external = Vec::with_capacity(options.n);
    for i in 0..options.n {
        let ns = namespace_of(i, options);
        let object: crds::external_secrets::ExternalSecret = serde_json::from_value(
            serde_json::json!({
                "apiVersion": "external-secrets.io/v1",
                "kind": "ExternalSecret",
                "metadata": {"name": format!("external-{i}"), "namespace": ns},
                "spec": {
                    "refreshInterval": options.refresh(),
                    "secretStoreRef": {"kind": "ClusterSecretStore", "name": "bench-fake"},
                    "target": {"name": format!("external-{i}")},
                    "data": [{"secretKey": "value", "remoteRef": {"key": format!("remote-{}", i % REMOTE_KEYS), "property": "value"}}],
                },
            }),
        )?;
        external.push((Api::namespaced(client.clone(), &ns), object));
    }
    // Unrelated Secrets shaped like common ones: two values, about 1.5 KiB (a TLS pair's size).
    let unrelated: Vec<(Api<Secret>, Secret)> = (0..options.m)
        .map(|j| {
            let ns = namespace_of(j, options);
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(format!("unrelated-{j}")),
                    namespace: Some(ns.clone()),
                    labels: Some(BTreeMap::from([(
                        "app".to_string(),
                        format!("app-{}", j % 50),
                    )])),
                    ..Default::default()
                },
                data: Some(BTreeMap::from([
                    ("tls.crt".to_string(), ByteString(vec![b'c'; 1024])),
                    ("tls.key".to_string(), ByteString(vec![b'k'; 512])),
                ])),
                ..Default::default()
            };
            (Api::namespaced(client.clone(), &ns), secret)
        })
        .collect();
    let sealed: Vec<_> = sealed
        .into_iter()
        .map(|s| {
            let ns = s.metadata.namespace.clone().unwrap_or_default();
            (Api::namespaced(client.clone(), &ns), s)
        })
        .collect();
    create_all("unrelated Secrets", unrelated).await?;
    create_all("SealedSecrets", sealed).await?;
    create_all("ExternalSecrets", external).await?;
    Ok(rsa)
}

/// Target Secrets seen so far, by label; when the count first reached the goal.
#[derive(Default)]
struct Seen {
    names: HashSet<String>,
    complete_at: Option<Instant>,
}

type Tracker = Arc<Mutex<Seen>>;

/// Watches the Secrets with `label` (metadata only) and records when `goal` of them exist.
fn track(client: &kube::Client, label: &'static str, goal: usize) -> Tracker {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let api: Api<PartialObjectMeta<Secret>> = Api::all(client.clone());
    let state = Arc::clone(&seen);
    tokio::spawn(async move {
        let mut events =
            Box::pin(watcher(api, watcher::Config::default().labels(label)).default_backoff());
        while let Some(event) = events.next().await {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            match event {
                Ok(watcher::Event::Apply(m) | watcher::Event::InitApply(m)) => {
                    let key = format!(
                        "{}/{}",
                        m.metadata.namespace.unwrap_or_default(),
                        m.metadata.name.unwrap_or_default()
                    );
                    s.names.insert(key);
                }
                Ok(watcher::Event::Delete(m)) => {
                    let key = format!(
                        "{}/{}",
                        m.metadata.namespace.unwrap_or_default(),
                        m.metadata.name.unwrap_or_default()
                    );
                    s.names.remove(&key);
                }
                Ok(_) => {}
                Err(e) => eprintln!("watching {label}: {e}"),
            }
            if s.names.len() >= goal && s.complete_at.is_none() {
                s.complete_at = Some(Instant::now());
            }
        }
    });
    seen
}

/// What /proc/PID/status says of a process's memory, in KiB.
struct Memory {
    /// VmHWM: the peak resident set.
    peak: u64,
    /// VmRSS: resident now, of it `anon` (heap, stacks) and `file` (the binary's pages).
    rss: u64,
    anon: u64,
    file: u64,
}

fn memory(pid: u32) -> Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| anyhow!("/proc/{pid}/status has no {name}"))
    };
    Ok(Memory {
        peak: field("VmHWM:")?,
        rss: field("VmRSS:")?,
        anon: field("RssAnon:")?,
        file: field("RssFile:")?,
    })
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// User + system CPU seconds of a process.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow!("/proc/{pid}/stat unreadable"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok((ticks(11) + ticks(12)) / clock_ticks())
}

/// What one controller run measured.
struct Phase {
    title: String,
    sealed_synced: Option<Duration>,
    external_synced: Option<Duration>,
    settled: Duration,
    memory: Memory,
    cpu: f64,
    requests: BTreeMap<(String, String), u64>,
}

/// Starts the controller through the proxy, waits until every target Secret exists and the
/// controller is quiet, and reads its figures.
async fn run_phase(
    title: &str,
    cluster: &Cluster,
    proxy: &Proxy,
    proxy_kubeconfig: &Path,
    options: &Options,
    trackers: Option<(&Tracker, &Tracker)>,
) -> Result<(Phase, Controller)> {
    proxy.take();
    let mut builder = cluster
        .controller(SYSTEM_NS)
        .unscoped()
        .name("bench-controller")
        .kubeconfig(proxy_kubeconfig);
    for arg in &options.extra_args {
        builder = builder.arg(arg);
    }
    for (key, value) in &options.env {
        builder = builder.env(key, value);
    }
    let started = Instant::now();
    let mut controller = builder.start();
    let pid = controller.pid();
    let deadline = started + PHASE_LIMIT;
    let complete = |seen: &Tracker| {
        seen.lock()
            .unwrap_or_else(|e| e.into_inner())
            .complete_at
            .map(|at| at.saturating_duration_since(started))
    };
    let (sealed_synced, external_synced, settled) = loop {
        controller.assert_running();
        let synced = trackers.map(|(s, e)| (complete(s), complete(e)));
        let all_synced = synced.is_none_or(|(s, e)| s.is_some() && e.is_some());
        let quiet_since = proxy.last_work().unwrap_or(started);
        if all_synced && quiet_since.elapsed() >= QUIET && started.elapsed() >= QUIET * 2 {
            let (s, e) = synced.unwrap_or((None, None));
            break (s, e, quiet_since.saturating_duration_since(started));
        }
        if Instant::now() > deadline {
            let seen = trackers.map(|(s, e)| {
                (
                    s.lock().map(|s| s.names.len()).unwrap_or(0),
                    e.lock().map(|e| e.names.len()).unwrap_or(0),
                )
            });
            bail!(
                "{title}: not settled after {PHASE_LIMIT:?} (target Secrets seen: {seen:?}); log: {}",
                controller.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(STEADY_AFTER).await;
    let memory = memory(pid)?;
    let cpu = cpu_seconds(pid)?;
    let requests = proxy.take();
    Ok((
        Phase {
            title: title.to_string(),
            sealed_synced,
            external_synced,
            settled,
            memory,
            cpu,
            requests,
        },
        controller,
    ))
}

/// Checks every target Secret's data against what was sealed or stored.
async fn verify(client: &kube::Client, options: &Options) -> Result<()> {
    let api: Api<Secret> = Api::all(client.clone());
    let sealed = api
        .list(&ListParams::default().labels(SEALED_LABEL))
        .await?;
    let external = api
        .list(&ListParams::default().labels(EXTERNAL_LABEL))
        .await?;
    let value = |s: &Secret, key: &str| {
        s.data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
    };
    let mut wrong = Vec::new();
    for s in &sealed.items {
        let name = s.metadata.name.clone().unwrap_or_default();
        let i: usize = name
            .trim_start_matches("sealed-")
            .parse()
            .unwrap_or(usize::MAX);
        if (0..3).any(|k| value(s, &format!("key{k}")) != Some(sealed_value(i, k))) {
            wrong.push(name);
        }
    }
    for s in &external.items {
        let name = s.metadata.name.clone().unwrap_or_default();
        let i: usize = name
            .trim_start_matches("external-")
            .parse()
            .unwrap_or(usize::MAX);
        if value(s, "value") != Some(remote_value(i % REMOTE_KEYS)) {
            wrong.push(name);
        }
    }
    if sealed.items.len() != options.sealed()
        || external.items.len() != options.n
        || !wrong.is_empty()
    {
        bail!(
            "target Secrets wrong: {} sealed (want {}), {} external (want {}), wrong data in {:?}",
            sealed.items.len(),
            options.sealed(),
            external.items.len(),
            options.n,
            wrong.iter().take(5).collect::<Vec<_>>()
        );
    }
    Ok(())
}

/// A kubeconfig pointing at the proxy (no credentials: the proxy adds the admin's).
fn proxy_kubeconfig(dir: &Path, url: &str) -> Result<PathBuf> {
    let path = dir.join("bench-proxy.kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: proxy
  cluster:
    server: {url}
users:
- name: bench
  user: {{}}
contexts:
- name: proxy
  context: {{cluster: proxy, user: bench}}
current-context: proxy
"
        ),
    )?;
    Ok(path)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_string(), |d| format!("{:.1} s", d.as_secs_f64()))
}

/// The run's references: the RSA work of the SealedSecrets, and (after the restart phase) the
/// time the API server took the ExternalSecrets' sync writes from the bench alone.
fn print_report(options: &Options, rsa: Duration, writes: Option<Duration>, phases: &[Phase]) {
    let host = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\n{} SealedSecrets, {} ExternalSecrets, M={} unrelated Secrets, {} namespaces; {cpus} CPUs ({host})\n",
        options.sealed(),
        options.n,
        options.m,
        options.namespaces
    );
    print!("| measurement |");
    for p in phases {
        print!(" {} |", p.title);
    }
    println!();
    println!("|---|{}", "---|".repeat(phases.len()));
    let n = options.n as f64;
    let row = |name: &str, f: &dyn Fn(&Phase) -> String| {
        print!("| {name} |");
        for p in phases {
            print!(" {} |", f(p));
        }
        println!();
    };
    row("all SealedSecret targets exist after", &|p| {
        secs(p.sealed_synced)
    });
    row(
        &format!(
            "  RSA lower bound ({} opens on {cpus} CPUs, measured here)",
            3 * options.sealed()
        ),
        &|p| {
            p.sealed_synced
                .map_or_else(|| "-".into(), |_| format!("{:.1} s", rsa.as_secs_f64()))
        },
    );
    row("all ExternalSecret targets exist after", &|p| {
        secs(p.external_synced)
    });
    row("  ExternalSecrets per second", &|p| {
        p.external_synced.map_or_else(
            || "-".into(),
            |d| format!("{:.0}", n / d.as_secs_f64().max(0.001)),
        )
    });
    row(
        &format!(
            "  the API server's limit: {} syncs' writes from the bench alone, per second (measured here)",
            options.n
        ),
        &|p| match (p.external_synced, writes) {
            (Some(_), Some(w)) => format!("{:.0}", n / w.as_secs_f64().max(0.001)),
            _ => "-".into(),
        },
    );
    row("last request other than watch/Lease at", &|p| {
        secs(Some(p.settled))
    });
    row("RSS peak (VmHWM)", &|p| mib(p.memory.peak));
    row("RSS steady (VmRSS, 10 s after settling)", &|p| {
        mib(p.memory.rss)
    });
    row("  of it heap and stacks (RssAnon)", &|p| mib(p.memory.anon));
    row("  of it the binary's pages (RssFile)", &|p| {
        mib(p.memory.file)
    });
    row("CPU seconds (user+system)", &|p| format!("{:.1}", p.cpu));
    let kinds: BTreeSet<&(String, String)> =
        phases.iter().flat_map(|p| p.requests.keys()).collect();
    for kind in kinds {
        row(&format!("API {} {}", kind.0, kind.1), &|p| {
            p.requests.get(kind).copied().unwrap_or(0).to_string()
        });
    }
    row("API requests, total", &|p| {
        p.requests.values().sum::<u64>().to_string()
    });
}

async fn bench(options: Options) -> Result<()> {
    let starter = std::env::var_os(CLUSTER_ENV)
        .map(PathBuf::from)
        .ok_or_else(|| {
            anyhow!("set {CLUSTER_ENV}=path/to/cluster.sh (e.g. ../shared/envtest/cluster.sh)")
        })?;
    let workspace = workspace_root();
    let controller_bin = match &options.controller_bin {
        Some(bin) => bin.clone(),
        None => build_controller(&workspace)?,
    };
    let mut options = options;
    options.env = deployment_env(&workspace)?;
    let cluster = Cluster::start(&starter, controller_bin).map_err(|e| anyhow!(e))?;
    let client = cluster.client().await;
    let rsa = populate(&client, &options).await?;

    let (proxy, url) = Proxy::start(cluster.client().await).await?;
    let kubeconfig = proxy_kubeconfig(&cluster.dir, &url)?;
    let sealed = track(&client, SEALED_LABEL, options.sealed());
    let external = track(&client, EXTERNAL_LABEL, options.n);

    if let Some(minutes) = options.soak {
        options.extra_args.push(soak::key_renew_flag(minutes));
    }
    eprintln!("first start...");
    let (first, mut controller) = run_phase(
        "first start",
        &cluster,
        &proxy,
        &kubeconfig,
        &options,
        Some((&sealed, &external)),
    )
    .await?;
    verify(&client, &options).await?;
    if let Some(minutes) = options.soak {
        eprintln!("soak for {minutes} min...");
        let samples = soak::soak(
            minutes,
            &cluster,
            &client,
            &mut controller,
            &proxy,
            &options,
        )
        .await?;
        // SIGTERM, as a rollout would: a heap profile (`--features dhat`) is written on exit.
        controller.terminate().await;
        drop(controller);
        print_report(&options, rsa, None, &[first]);
        soak::print_soak(&samples, minutes);
        return Ok(());
    }
    controller.terminate().await;
    drop(controller);

    eprintln!("restart...");
    let (restart, mut controller) =
        run_phase("restart", &cluster, &proxy, &kubeconfig, &options, None).await?;
    verify(&client, &options).await?;
    controller.terminate().await;
    drop(controller);
    eprintln!("write reference...");
    let writes = writes::reference(&client, &options).await?;
    print_report(&options, rsa, Some(writes), &[first, restart]);
    Ok(())
}

fn main() -> Result<()> {
    let options = parse_options();
    // Two workers: the bench should not take the controller's CPUs more than it must.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(bench(options))
}
