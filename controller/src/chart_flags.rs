//! The flags of the anchors' charts, as clap parses them: ESO's names for our settings
//! ([`ChartArgs`]) and the flags that change nothing here ([`IGNORED`]). What they mean for a run
//! (the chart's role, the defaults it implies) is decided in `chart_args`; this module only
//! defines them, so that `run`'s flags can include them without depending on those decisions.

use clap::{Arg, ArgMatches, Command};

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
