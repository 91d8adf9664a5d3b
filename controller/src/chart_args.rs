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

use clap::ArgMatches;
use clap::parser::ValueSource;

use crate::chart_flags::IGNORED;
use crate::run::RunArgs;

/// The name Bitnami's chart runs the binary as.
pub const BITNAMI_PROGRAM_NAME: &str = "controller";

/// ESO's Lease name, the one its chart's leader-election Role allows.
pub const ESO_LEADER_ELECTION_ID: &str = "external-secrets-controller";

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
