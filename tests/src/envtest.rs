//! End-to-end harness: one real Kubernetes API server per test process, a namespace per test,
//! and the real `secrets-controller` binary run against it as a child process.
//!
//! * The cluster comes from a `cluster.sh`-like starter named by [`CLUSTER_ENV`]
//!   (`STARTER start DIR` prints the admin kubeconfig path last; `STARTER stop DIR` stops it).
//!   Without the variable every test prints "skipped: no API server" and passes.
//! * The cluster starts on first use and is stopped by a reaper process that waits for this
//!   process's end on a pipe: it runs however the test process ends (failures, panics, kill -9).
//! * The controller binary is `$SECRETS_CONTROLLER_BIN`, else `secrets-controller` next to the
//!   test binary's directory (`target/debug/`): `cargo build -p controller` first
//!   (scripts/test-all.sh does). A binary older than the controller's sources is refused.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, PostParams};

/// Path of the cluster starter (e.g. `../shared/envtest/cluster.sh`).
pub const CLUSTER_ENV: &str = "E2E_CLUSTER_SH";
/// Path of the controller binary (default: `secrets-controller` in the test binary's target dir).
pub const CONTROLLER_ENV: &str = "SECRETS_CONTROLLER_BIN";
/// Path of the kubeseal binary (default: `kubeseal` in the test binary's target dir).
pub const KUBESEAL_ENV: &str = "KUBESEAL_BIN";
/// Set to keep the cluster's directory (logs of the API server and every controller).
pub const KEEP_ENV: &str = "E2E_KEEP_CLUSTER";

/// The shared cluster of this test process.
pub struct Cluster {
    /// State, logs and kubeconfigs of this run.
    pub dir: PathBuf,
    /// Admin kubeconfig.
    pub kubeconfig: PathBuf,
    pub controller_bin: PathBuf,
    /// The workspace root (crds/, deploy/).
    pub workspace: PathBuf,
    /// Whether the binary serves /metrics on its own `--listen-metrics-addr`.
    separate_metrics: bool,
    /// Held open for the life of the process: the reaper stops the cluster when it closes.
    _reaper: Mutex<ChildStdin>,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The shared cluster, started on first use; `None` (after saying so on stderr) when
/// [`CLUSTER_ENV`] is unset. Panics when the variable is set but the cluster cannot start.
pub fn cluster(test: &str) -> Option<&'static Cluster> {
    let Some(starter) = std::env::var_os(CLUSTER_ENV) else {
        // Straight to stderr, past the test harness's capture, so a skip is never silent;
        // one write, so that parallel tests' lines do not interleave.
        let line = format!(
            "{test}: skipped: no API server (set {CLUSTER_ENV}=path/to/cluster.sh, e.g. ../shared/envtest/cluster.sh)\n"
        );
        let _ = std::io::stderr().write_all(line.as_bytes());
        return None;
    };
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let start = || {
        let controller_bin = locate_controller(&workspace_root())?;
        Cluster::start(Path::new(&starter), controller_bin)
    };
    match CLUSTER.get_or_init(start) {
        Ok(cluster) => Some(cluster),
        Err(e) => panic!("cannot start the test cluster: {e}"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn locate_controller(workspace: &Path) -> Result<PathBuf, String> {
    locate_binary(
        workspace,
        CONTROLLER_ENV,
        "secrets-controller",
        "controller",
        &["controller", "sealing", "crds", "templating"],
    )
}

/// The `kubeseal` binary: `$KUBESEAL_BIN`, else `kubeseal` in the test binary's target dir
/// (`cargo build -p kubeseal-cli` first).
pub fn kubeseal_bin() -> Result<PathBuf, String> {
    locate_binary(
        &workspace_root(),
        KUBESEAL_ENV,
        "kubeseal",
        "kubeseal-cli",
        &["kubeseal-cli", "sealing", "crds"],
    )
}

/// `$env`, else `file` next to the test binary's profile directory, refused when older than
/// the sources of `crates` (a stale binary would test yesterday's code).
fn locate_binary(
    workspace: &Path,
    env: &str,
    file: &str,
    package: &str,
    crates: &[&str],
) -> Result<PathBuf, String> {
    let bin = match std::env::var_os(env) {
        Some(p) => PathBuf::from(p),
        None => {
            // target/<profile>/deps/e2e-HASH → target/<profile>/FILE
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            exe.parent()
                .and_then(Path::parent)
                .map(|d| d.join(file))
                .ok_or("cannot locate the target directory")?
        }
    };
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .map_err(|e| {
            format!(
                "{file} binary {}: {e}; run `cargo build -p {package}` first or set {env}",
                bin.display()
            )
        })?;
    if std::env::var_os(env).is_none() {
        let newest = crates
            .iter()
            .filter_map(|c| newest_source(&workspace.join(c)))
            .max();
        if let Some((when, path)) = newest
            && when > built
        {
            return Err(format!(
                "{file} binary {} is older than {}: run `cargo build -p {package}` first",
                bin.display(),
                path.display()
            ));
        }
    }
    Ok(bin)
}

/// The most recently modified `.rs`/`Cargo.toml` below `dir` (tests and benches excluded).
fn newest_source(dir: &Path) -> Option<(SystemTime, PathBuf)> {
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).ok()?.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if !matches!(name.to_str(), Some("tests" | "benches" | "target")) {
                    stack.push(path);
                }
                continue;
            }
            let relevant = path.extension().is_some_and(|e| e == "rs") || name == "Cargo.toml";
            if let (true, Ok(modified)) = (relevant, entry.metadata().and_then(|m| m.modified()))
                && newest.as_ref().is_none_or(|(t, _)| modified > *t)
            {
                newest = Some((modified, path));
            }
        }
    }
    newest
}

/// Stops the cluster (and any controller left running) once stdin closes, i.e. when the test
/// process ends, however it ends.
const REAPER: &str = r#"cat >/dev/null
for f in "$2"/pids/*; do
  [ -f "$f" ] || continue
  p=${f##*/}
  # By executable, not command line: an image-root controller is invoked as `controller`.
  case $(readlink "/proc/$p/exe" 2>/dev/null) in */secrets-controller) kill -9 "$p" ;; esac
done
bash "$1" stop "$2" >/dev/null 2>&1
[ -n "$3" ] || rm -rf "$2""#;

impl Cluster {
    /// A cluster of its own (tests share [`cluster`]'s), running `controller_bin`: the
    /// scale benchmark starts one with the release binary. Stopped when this process ends.
    pub fn start(starter: &Path, controller_bin: PathBuf) -> Result<Cluster, String> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let workspace = workspace_root();
        let dir = std::env::temp_dir().join(format!("e2e-envtest-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("pids")).map_err(|e| e.to_string())?;
        let keep = std::env::var(KEEP_ENV).unwrap_or_default();
        let mut reaper = Command::new("sh")
            .arg("-c")
            .arg(REAPER)
            .arg("e2e-reaper")
            .arg(starter)
            .arg(&dir)
            .arg(&keep)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C of the test run must not kill it before it reaps.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the reaper: {e}"))?;
        let reaper_stdin = reaper.stdin.take().ok_or("reaper has no stdin")?;

        let started = Instant::now();
        let out = Command::new("bash")
            .arg(starter)
            .arg("start")
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{}: {e}", starter.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} start failed: {}",
                starter.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let kubeconfig = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .map(|l| PathBuf::from(l.trim()))
            .ok_or("the starter printed no kubeconfig path")?;
        let help = Command::new(&controller_bin)
            .arg("--help")
            .output()
            .map_err(|e| format!("{}: {e}", controller_bin.display()))?;
        let separate_metrics =
            String::from_utf8_lossy(&help.stdout).contains("--listen-metrics-addr");
        let cluster = Cluster {
            dir,
            kubeconfig,
            controller_bin,
            workspace,
            separate_metrics,
            _reaper: Mutex::new(reaper_stdin),
        };
        // The CRDs every controller needs. Client-side validation is what the deploy tests
        // check, file by file; here only the objects matter.
        let crds = cluster.workspace.join("crds/yaml");
        cluster.kubectl_ok(&["apply", "--validate=false", "-f", &crds.to_string_lossy()]);
        cluster.kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd",
            "--all",
        ]);
        let _ = writeln!(
            std::io::stderr(),
            "e2e: API server up in {:.1}s, state in {}",
            started.elapsed().as_secs_f64(),
            cluster.dir.display()
        );
        Ok(cluster)
    }

    /// An admin client (build one per test: a client is tied to the test's async runtime).
    pub async fn client(&self) -> kube::Client {
        client_from(&self.kubeconfig).await
    }

    /// Runs kubectl with the admin kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_with_input(args, None)
    }

    pub fn kubectl_with_input(&self, args: &[&str], input: Option<&str>) -> Output {
        let mut child = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .current_dir(&self.workspace)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("kubectl: {e} (scripts/install-peers.sh installs it)"));
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin
                .write_all(text.as_bytes())
                .unwrap_or_else(|e| panic!("kubectl stdin: {e}"));
        }
        child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("kubectl: {e}"))
    }

    /// Runs kubectl and panics with its stderr when it fails; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl apply -f -` of a YAML text (client-side validation on).
    pub fn apply(&self, yaml: &str) {
        let out = self.kubectl_with_input(&["apply", "-f", "-"], Some(yaml));
        assert!(
            out.status.success(),
            "kubectl apply failed: {}\n{yaml}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A fresh namespace `e2e-<prefix>-<n>` with these labels.
    pub async fn namespace(
        &self,
        client: &kube::Client,
        prefix: &str,
        labels: &[(&str, &str)],
    ) -> String {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("e2e-{prefix}-{n}");
        let ns = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
        name
    }

    /// A controller for `namespace` (its keys, Lease and watched objects live there).
    pub fn controller(&self, namespace: &str) -> ControllerBuilder<'_> {
        ControllerBuilder {
            cluster: self,
            namespace: namespace.to_string(),
            name: format!("ctl-{}", COUNTER.fetch_add(1, Ordering::Relaxed)),
            args: Vec::new(),
            envs: Vec::new(),
            kubeconfig: self.kubeconfig.clone(),
            scoped: true,
            image_root: None,
            chart: None,
            program: None,
            listen_host: std::net::Ipv4Addr::LOCALHOST.into(),
        }
    }
}

/// A client from a kubeconfig file.
pub async fn client_from(kubeconfig: &Path) -> kube::Client {
    let file = kube::config::Kubeconfig::read_from(kubeconfig)
        .unwrap_or_else(|e| panic!("{}: {e}", kubeconfig.display()));
    let config = kube::Config::from_custom_kubeconfig(file, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", kubeconfig.display()));
    kube::Client::try_from(config).unwrap_or_else(|e| panic!("kube client: {e}"))
}

/// Full path of `program` on this process's PATH (a child with its own PATH would look there).
fn on_path(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(program))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| panic!("{program} is not on PATH"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

pub struct ControllerBuilder<'c> {
    cluster: &'c Cluster,
    namespace: String,
    name: String,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    kubeconfig: PathBuf,
    scoped: bool,
    /// Run in this image root (deploy/images/build-rootfs.sh) as the image does.
    image_root: Option<PathBuf>,
    /// Run with a chart's argument list instead of the harness's: (argv[0], arguments).
    chart: Option<(Option<String>, Vec<String>)>,
    /// argv[0] when not the binary's own name.
    program: Option<String>,
    /// Address the harness's listeners bind (loopback unless the API server must reach them).
    listen_host: std::net::IpAddr,
}

/// The image's non-root user (deploy/images/build-rootfs.sh, the Deployment's runAsUser).
pub const IMAGE_USER: u32 = 65532;

impl ControllerBuilder<'_> {
    /// The replica's identity (`POD_NAME`, the Lease holder).
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_string());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    /// Run with this kubeconfig instead of the admin one.
    pub fn kubeconfig(mut self, path: &Path) -> Self {
        self.kubeconfig = path.to_path_buf();
        self
    }

    /// Run as the controller image does: under chroot in `root` (built by
    /// deploy/images/build-rootfs.sh) as its non-root user, invoked as `controller` (Bitnami's
    /// chart command). The kubeconfig must lie inside `root`. Needs root (CAP_SYS_CHROOT).
    pub fn image_root(mut self, root: &Path) -> Self {
        self.image_root = Some(root.to_path_buf());
        self
    }

    /// Don't confine the reconcilers to the controller's namespace (the caller passes scope flags).
    pub fn unscoped(mut self) -> Self {
        self.scoped = false;
        self
    }

    /// Listen on `host` instead of loopback: the API server's service proxy refuses loopback
    /// endpoints, so a controller it proxies to listens on a [`host_address`].
    pub fn listen_on(mut self, host: std::net::IpAddr) -> Self {
        self.listen_host = host;
        self
    }

    /// Run with exactly the arguments a Helm chart renders, invoked as `program` when given
    /// (Bitnami's chart runs `controller`). Only two things change, as a pod would see them:
    /// every `:PORT` listen address moves to a free loopback port, and the controller's own
    /// namespace comes from `POD_NAMESPACE`. Scope flags are the caller's business.
    pub fn chart_args(mut self, program: Option<&str>, args: &[String]) -> Self {
        self.chart = Some((program.map(str::to_string), args.to_vec()));
        self
    }

    /// Starts the binary; it is killed when the returned value drops.
    pub fn start(mut self) -> Controller {
        let (args, http_port, metrics_port) = match self.chart.take() {
            Some((program, chart_args)) => {
                if let Some(program) = program {
                    self.program = Some(program);
                }
                self.envs
                    .push(("POD_NAMESPACE".to_string(), self.namespace.clone()));
                on_free_ports(&chart_args)
            }
            None => self.harness_args(),
        };
        self.spawn(args, http_port, metrics_port)
    }

    /// The harness's own flags: scoped to the namespace, listening on free loopback ports.
    fn harness_args(&mut self) -> (Vec<String>, u16, u16) {
        let cluster = self.cluster;
        let http_port = free_port();
        let metrics_port = if cluster.separate_metrics {
            free_port()
        } else {
            http_port
        };
        let mut args: Vec<String> = vec![
            format!("--namespace={}", self.namespace),
            format!(
                "--listen-addr={}",
                SocketAddr::new(self.listen_host, http_port)
            ),
            // New keys in tests: 2048 bits keeps start-up fast on a 2-core machine.
            "--key-size=2048".into(),
        ];
        if cluster.separate_metrics {
            args.push(format!(
                "--listen-metrics-addr={}",
                SocketAddr::new(self.listen_host, metrics_port)
            ));
        }
        if self.scoped {
            args.push("--all-namespaces=false".into());
            args.push(format!("--external-secrets-namespace={}", self.namespace));
        }
        args.append(&mut self.args);
        (args, http_port, metrics_port)
    }

    fn spawn(self, args: Vec<String>, http_port: u16, metrics_port: u16) -> Controller {
        let cluster = self.cluster;
        let log = cluster.dir.join(format!("{}.log", self.name));
        let file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let err = file
            .try_clone()
            .unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let mut command = match &self.image_root {
            None => {
                let program = match &self.program {
                    Some(name) => {
                        // A directory per name: argv[0] is what the binary sees.
                        let dir = cluster.dir.join(format!("bin-{}", self.name));
                        let link = dir.join(name);
                        std::fs::create_dir_all(&dir)
                            .and_then(|()| {
                                std::os::unix::fs::symlink(&cluster.controller_bin, &link)
                            })
                            .unwrap_or_else(|e| panic!("{}: {e}", link.display()));
                        link
                    }
                    None => cluster.controller_bin.clone(),
                };
                let mut command = Command::new(program);
                command
                    // Nothing from the test's environment leaks into the controller's flags.
                    .env_clear()
                    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                    .env("HOME", &cluster.dir)
                    .env("KUBECONFIG", &self.kubeconfig);
                command
            }
            Some(root) => {
                let inside = self.kubeconfig.strip_prefix(root).unwrap_or_else(|_| {
                    panic!(
                        "kubeconfig {} lies outside the image root {}",
                        self.kubeconfig.display(),
                        root.display()
                    )
                });
                // chroot execs the program: the child's pid is the controller's.
                let mut command = Command::new(on_path("chroot"));
                command
                    .arg(format!("--userspec={IMAGE_USER}:{IMAGE_USER}"))
                    .arg(root)
                    .arg("controller")
                    .env_clear()
                    .env("PATH", "/usr/local/bin")
                    .env("HOME", "/home/nonroot")
                    .env("KUBECONFIG", Path::new("/").join(inside));
                command
            }
        };
        command
            .args(&args)
            .env("POD_NAME", &self.name)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .process_group(0);
        for (k, v) in &self.envs {
            command.env(k, v);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", cluster.controller_bin.display()));
        let pid_file = cluster.dir.join("pids").join(child.id().to_string());
        let _ = std::fs::write(&pid_file, &self.name);
        Controller {
            child,
            name: self.name,
            log,
            pid_file,
            http: format!("http://{}", SocketAddr::new(self.listen_host, http_port)),
            metrics: format!(
                "http://{}/metrics",
                SocketAddr::new(self.listen_host, metrics_port)
            ),
            http_client: reqwest::Client::new(),
        }
    }
}

/// This machine's first global IPv4 address (`ip -4 addr show scope global`), if any: one the
/// API server's service proxy agrees to connect to, unlike loopback.
pub fn host_address() -> Option<std::net::IpAddr> {
    let out = Command::new("ip")
        .args(["-o", "-4", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next()?.split('/').next()?.parse().ok()
        })
}

/// `args` with every `:PORT` listen address (`--flag=:PORT` or a separate `:PORT`) on a free
/// loopback port, the same port for the same number; with the ports of the API (else the
/// metrics listener) and of /metrics.
fn on_free_ports(args: &[String]) -> (Vec<String>, u16, u16) {
    let mut moved: BTreeMap<String, u16> = BTreeMap::new();
    let mut listeners: BTreeMap<String, u16> = BTreeMap::new();
    let mut rewritten = Vec::new();
    let mut previous_flag = String::new();
    for arg in args {
        let (flag, value) = match arg.split_once('=') {
            Some((flag, value)) if arg.starts_with("--") => (flag.to_string(), value),
            _ if arg.starts_with("--") => {
                previous_flag = arg.clone();
                rewritten.push(arg.clone());
                continue;
            }
            _ => (std::mem::take(&mut previous_flag), arg.as_str()),
        };
        let is_port = value.len() > 1
            && value.starts_with(':')
            && value[1..].bytes().all(|b| b.is_ascii_digit());
        let value = if is_port {
            let port = *moved.entry(value.to_string()).or_insert_with(free_port);
            listeners.insert(flag.trim_start_matches('-').to_string(), port);
            format!("127.0.0.1:{port}")
        } else {
            value.to_string()
        };
        if arg.starts_with("--") {
            rewritten.push(format!("{flag}={value}"));
        } else {
            rewritten.push(value);
        }
    }
    let metrics = ["listen-metrics-addr", "metrics-addr"]
        .iter()
        .find_map(|flag| listeners.get(*flag).copied());
    let http = listeners.get("listen-addr").copied().or(metrics);
    let (Some(http), Some(metrics)) = (http, metrics.or(http)) else {
        panic!("{args:?}: no listen address to reach the controller on")
    };
    (rewritten, http, metrics)
}

/// A running `secrets-controller`.
pub struct Controller {
    child: Child,
    pub name: String,
    pub log: PathBuf,
    pid_file: PathBuf,
    /// Base URL of the HTTP API (`/v1/cert.pem`, `/healthz`).
    pub http: String,
    /// URL of /metrics.
    pub metrics: String,
    http_client: reqwest::Client,
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pid_file);
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!(
                "--- last lines of controller {} ({}):",
                self.name,
                self.log.display()
            );
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

impl Controller {
    /// Process id (for /proc/PID/status and /proc/PID/stat).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics (with the log) when the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("controller {} exited: {status}", self.name);
        }
    }

    /// Waits until /healthz answers.
    pub async fn ready(&mut self) {
        let url = format!("{}/healthz", self.http);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            self.assert_running();
            if let Ok(r) = self.http_client.get(&url).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "controller {} never answered {url}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// GET of a path of the HTTP API; `None` unless 200.
    pub async fn get(&self, path: &str) -> Option<String> {
        let r = self
            .http_client
            .get(format!("{}{path}", self.http))
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.text().await.ok()
    }

    /// The sum of every sample of metric `name` whose labels contain all of `labels`
    /// (`k="v"` pairs); 0 when absent or unreachable.
    pub async fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        let Ok(r) = self.http_client.get(&self.metrics).send().await else {
            return 0.0;
        };
        let text = r.text().await.unwrap_or_default();
        metric_sum(&text, name, labels)
    }

    /// SIGKILL: no lease release, no cleanup, as a node loss.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits (30 s at most) for a graceful exit.
    pub async fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(self.child.try_wait(), Ok(Some(_))) {
            assert!(
                Instant::now() < deadline,
                "controller {} ignored SIGTERM",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Panics when the log contains `needle` (a planted secret value, a 403...).
    pub fn assert_log_lacks(&self, needle: &str) {
        let log = self.log_text();
        if let Some(line) = log.lines().find(|l| l.contains(needle)) {
            panic!("controller {} logged {needle:?}: {line}", self.name);
        }
    }
}

/// Sum of the samples of `name` (Prometheus text format) whose label text holds every `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((m, rest)) => (m, rest),
                None => (series, ""),
            };
            (metric == name && labels.iter().all(|want| label_text.contains(want)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// Polls `check` every 200 ms until it returns `Some`, for `timeout` at most.
pub async fn eventually<T, F, Fut>(what: impl Display, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The decoded data of Secret `namespace/name`, `None` when it does not exist.
pub async fn secret_data(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Option<BTreeMap<String, String>> {
    let secret: Secret = Api::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .unwrap_or_else(|e| panic!("get secret {namespace}/{name}: {e}"))?;
    Some(
        secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect(),
    )
}

/// `pairs` as a map, for comparing with [`secret_data`].
pub fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Waits until Secret `namespace/name` holds exactly `want`.
pub async fn wait_secret(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    want: &BTreeMap<String, String>,
    timeout: Duration,
) {
    eventually(
        format!(
            "Secret {namespace}/{name} to hold {:?}",
            want.keys().collect::<Vec<_>>()
        ),
        timeout,
        || async {
            (secret_data(client, namespace, name).await.as_ref() == Some(want)).then_some(())
        },
    )
    .await;
}
