//! Command lines rendered by the charts users already run: Bitnami's `helm/sealed-secrets` and
//! ESO's `deploy/charts/external-secrets`. Our image runs under either chart with only
//! `image.repository`/`image.tag` changed, so every argument they render is accepted: those that
//! mean something here are applied, the rest are accepted with a one-line warning naming them.
//!
//! Each chart also implies a role, because its RBAC covers only its own tool:
//! - Bitnami's chart runs `command: [controller]`: invoked as `controller`, the binary runs only
//!   SealedSecrets, without leader election (the chart runs one replica and grants no Lease).
//! - ESO's chart always passes `--metrics-addr`: with it, the binary runs only ExternalSecrets,
//!   elects a leader only with `--enable-leader-election` (on the Lease ESO's RBAC names), reads
//!   `--namespace` as ESO does (the one namespace to watch) and serves no SealedSecret API.
//!
//! Anything set explicitly (flag or environment variable) wins over these defaults.

use std::fmt::Write as _;

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command};

use crate::run::RunArgs;

/// The name Bitnami's chart runs the binary as.
pub const BITNAMI_PROGRAM_NAME: &str = "controller";

/// ESO's Lease name, the one its chart's leader-election Role allows.
pub const ESO_LEADER_ELECTION_ID: &str = "external-secrets-controller";

/// Arguments of the anchors' charts that have an effect here.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Chart compatibility (ESO's flag names)")]
pub struct ChartArgs {
    /// ESO's name for the metrics address; also selects the ExternalSecrets-only role.
    #[arg(id = "eso_metrics_addr", long = "metrics-addr", value_name = "ADDR")]
    pub metrics_addr: Option<String>,
    /// Extra listener answering /healthz only (ESO's liveness probe port).
    #[arg(id = "eso_live_addr", long = "live-addr", value_name = "ADDR")]
    pub live_addr: Option<String>,
    /// ESO's name for --log-level.
    #[arg(id = "eso_loglevel", long = "loglevel", value_name = "LEVEL")]
    pub loglevel: Option<String>,
    /// ESO's name for --leader-elect.
    #[arg(id = "eso_enable_leader_election", long = "enable-leader-election", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub enable_leader_election: Option<bool>,
    /// ESO's name for --external-secrets-concurrent.
    #[arg(id = "eso_concurrent", long = "concurrent", value_name = "N")]
    pub concurrent: Option<u16>,
    /// ESO's name for --external-secrets-controller-class.
    #[arg(
        id = "eso_controller_class",
        long = "controller-class",
        value_name = "CLASS"
    )]
    pub controller_class: Option<String>,
    /// ESO's name for --external-secrets-store-requeue-interval.
    #[arg(
        id = "eso_store_requeue_interval",
        long = "store-requeue-interval",
        value_name = "DURATION"
    )]
    pub store_requeue_interval: Option<String>,

    #[command(flatten)]
    pub ignored: IgnoredFlags,
}

/// Flags of the anchors that change nothing here: (name, takes a boolean, why it is ignored).
pub const IGNORED: &[(&str, bool, &str)] = &[
    // Bitnami's controller (cmd/controller/main.go).
    (
        "skip-recreate",
        true,
        "the Secret watch stays on; a deleted Secret is recreated",
    ),
    ("watch-for-secrets", true, "key Secrets are always watched"),
    (
        "max-unseal-retries",
        false,
        "failed SealedSecrets are retried with backoff until they succeed",
    ),
    ("kubeclient-qps", false, "no client-side rate limit"),
    ("kubeclient-burst", false, "no client-side rate limit"),
    ("log-info-stdout", true, "every log line goes to stdout"),
    (
        "old-gc-behavior",
        true,
        "Secrets are garbage-collected through owner references",
    ),
    ("read-timeout", false, "HTTP timeouts are fixed"),
    ("write-timeout", false, "HTTP timeouts are fixed"),
    (
        "accept-deprecated-v1-data",
        true,
        "spec.data is handled as the reconciler always does",
    ),
    // ESO's controller (cmd/controller/root.go) and its chart's extraArgs.
    (
        "zap-time-encoding",
        false,
        "log timestamps are always RFC 3339",
    ),
    (
        "enable-extended-metric-labels",
        true,
        "metric labels are fixed",
    ),
    (
        "enable-cluster-store-reconciler",
        true,
        "ClusterSecretStores are always served",
    ),
    (
        "enable-secret-store-reconciler",
        true,
        "SecretStores are always served",
    ),
    (
        "enable-cluster-external-secret-reconciler",
        true,
        "ClusterExternalSecret is not implemented",
    ),
    (
        "enable-push-secret-reconciler",
        true,
        "PushSecret is not implemented",
    ),
    (
        "enable-cluster-push-secret-reconciler",
        true,
        "ClusterPushSecret is not implemented",
    ),
    (
        "enable-http2",
        true,
        "the metrics listener is plain HTTP/1.1",
    ),
    ("client-qps", false, "no client-side rate limit"),
    ("client-burst", false, "no client-side rate limit"),
    (
        "enable-secrets-caching",
        true,
        "only Secrets this controller manages are cached",
    ),
    ("enable-configmaps-caching", true, "ConfigMaps are not read"),
    (
        "enable-managed-secrets-caching",
        true,
        "managed Secrets are always cached",
    ),
    (
        "enable-secret-api-read-on-cache-mismatch",
        true,
        "Secrets are read from the API",
    ),
    (
        "enable-flood-gate",
        true,
        "stores are always checked before use",
    ),
    (
        "enable-generator-state",
        true,
        "generators are not implemented",
    ),
    (
        "generator-gc-grace-period",
        false,
        "generators are not implemented",
    ),
    ("lease-duration", false, "the Lease lasts 15 s"),
    ("renew-deadline", false, "the Lease is renewed every 5 s"),
    ("retry-period", false, "the Lease is retried every 5 s"),
    (
        "metrics-secure",
        true,
        "metrics are plain HTTP on their own listener",
    ),
    ("metrics-cert-dir", false, "metrics are plain HTTP"),
    ("metrics-cert-name", false, "metrics are plain HTTP"),
    ("metrics-cert-key", false, "metrics are plain HTTP"),
    (
        "experimental-enable-vault-token-cache",
        true,
        "Vault tokens live as long as their store client",
    ),
    (
        "experimental-vault-token-cache-size",
        false,
        "Vault tokens live as long as their store client",
    ),
];

/// Ignored flags given on the command line, with their values.
#[derive(Debug, Clone, Default)]
pub struct IgnoredFlags(pub Vec<(String, String)>);

fn go_bool(text: &str) -> Result<String, String> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" | "0" | "f" | "F" | "false" | "FALSE"
        | "False" => Ok(text.to_string()),
        _ => Err(format!("{text:?} is not a boolean")),
    }
}

impl clap::FromArgMatches for IgnoredFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(IgnoredFlags(
            IGNORED
                .iter()
                .filter_map(|(name, _, _)| {
                    let value = matches.get_one::<String>(name)?;
                    Some((name.to_string(), value.clone()))
                })
                .collect(),
        ))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for IgnoredFlags {
    fn augment_args(cmd: Command) -> Command {
        IGNORED.iter().fold(cmd, |cmd, (name, boolean, _)| {
            // Hidden from --help: they do nothing; docs/controller.md lists them.
            let arg = Arg::new(*name).long(*name).hide(true);
            let arg = if *boolean {
                arg.num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true")
                    .value_parser(go_bool)
            } else {
                arg.num_args(1)
            };
            cmd.arg(arg)
        })
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

/// Which chart's conventions apply to this command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Neither chart: both reconcilers, our defaults.
    Both,
    /// Bitnami's chart (invoked as `controller`).
    SealedSecretsChart,
    /// ESO's chart (`--metrics-addr` given).
    ExternalSecretsChart,
}

pub fn role(args: &RunArgs, program: &str) -> Role {
    if args.chart.metrics_addr.is_some() {
        Role::ExternalSecretsChart
    } else if program_name(program) == BITNAMI_PROGRAM_NAME {
        Role::SealedSecretsChart
    } else {
        Role::Both
    }
}

fn program_name(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

/// Applies the chart conventions and ESO's flag names to `args`. Returns one warning per
/// ignored flag, to be logged once logging is up.
pub fn resolve(args: &mut RunArgs, matches: &ArgMatches, program: &str) -> Vec<String> {
    let defaulted = |id: &str| {
        matches!(
            matches.value_source(id),
            None | Some(ValueSource::DefaultValue)
        )
    };
    let chart = args.chart.clone();
    match role(args, program) {
        Role::Both => {}
        Role::SealedSecretsChart => {
            if defaulted("enabled") {
                args.external.enabled = false;
            }
            if defaulted("leader_elect") {
                args.leader_elect = false;
            }
        }
        Role::ExternalSecretsChart => {
            if defaulted("enable_sealed_secrets") {
                args.enable_sealed_secrets = false;
            }
            if defaulted("leader_elect") {
                args.leader_elect = false;
            }
            if defaulted("leader_election_id") {
                args.leader_election_id = ESO_LEADER_ELECTION_ID.to_string();
            }
            // ESO's --namespace is the one namespace to watch, not the controller's own.
            if matches.value_source("pod_namespace") == Some(ValueSource::CommandLine)
                && args.external.namespace.is_none()
            {
                args.external.namespace = args.pod_namespace.take();
                // Our own namespace (keys, Lease) is still the pod's, as ESO's Lease is.
                args.pod_namespace = std::env::var("POD_NAMESPACE")
                    .ok()
                    .filter(|ns| !ns.is_empty());
            }
            // ESO's metrics port is our API's default port; the API is SealedSecrets' anyway.
            if defaulted("listen_addr") && !args.enable_sealed_secrets {
                args.listen_addr.clear();
            }
        }
    }
    if let Some(addr) = chart.metrics_addr {
        args.listen_metrics_addr = addr;
    }
    if let Some(elect) = chart.enable_leader_election {
        args.leader_elect = elect;
    }
    if let Some(level) = chart.loglevel {
        args.log_level = level;
    }
    if let Some(concurrent) = chart.concurrent {
        args.external.concurrency = concurrent;
    }
    if let Some(class) = chart.controller_class {
        args.external.controller_class = class;
    }
    if let Some(interval) = chart.store_requeue_interval {
        args.external.store_requeue_interval = interval;
    }
    chart
        .ignored
        .0
        .iter()
        .map(|(flag, value)| {
            let why = IGNORED
                .iter()
                .find(|(name, _, _)| name == flag)
                .map_or("", |(_, _, why)| why);
            format!("--{flag}={value} accepted for chart compatibility and ignored: {why}")
        })
        .collect()
}

/// The settings that decide what runs where, one `name: value` per line (`--print-config`).
pub fn describe(args: &RunArgs) -> String {
    let or_off = |s: &str| {
        if s.is_empty() {
            "off".to_string()
        } else {
            s.to_string()
        }
    };
    [
        ("sealed-secrets", args.enable_sealed_secrets.to_string()),
        ("external-secrets", args.external.enabled.to_string()),
        ("listen-addr", or_off(&args.listen_addr)),
        ("listen-metrics-addr", or_off(&args.listen_metrics_addr)),
        (
            "live-addr",
            or_off(args.chart.live_addr.as_deref().unwrap_or("")),
        ),
        ("leader-elect", args.leader_elect.to_string()),
        ("leader-election-id", args.leader_election_id.clone()),
        ("log-level", args.log_level.clone()),
        (
            "namespace",
            args.pod_namespace
                .clone()
                .unwrap_or_else(|| "(this pod's)".into()),
        ),
        (
            "external-secrets-namespace",
            args.external
                .namespace
                .clone()
                .unwrap_or_else(|| "(all)".into()),
        ),
        (
            "external-secrets-concurrent",
            args.external.concurrency.to_string(),
        ),
        (
            "external-secrets-controller-class",
            args.external.controller_class.clone(),
        ),
        ("key-prefix", args.key_prefix.clone()),
        ("key-renew-period", args.key_renew_period.clone()),
        ("update-status", args.update_status.to_string()),
    ]
    .iter()
    .fold(String::new(), |mut out, (k, v)| {
        let _ = writeln!(out, "{k}: {v}");
        out
    })
}
