//! `secrets-controller`: keeps Secrets in the cluster in step with SealedSecrets (unsealed with
//! the cluster's sealing keys) and with ExternalSecrets (fetched from Vault or AWS Secrets
//! Manager). Decisions live in plain functions; Kubernetes I/O stays thin around them.
//!
//! Modules:
//! - `sealed`: SealedSecrets: key ring and key manager, reconciler, HTTP endpoints.
//! - `external`: ExternalSecrets: stores, providers (Vault, AWS), decisions, reconciler.
//! - `owned`: the Secrets a reconciler wrote, from the watch that also wakes their owners.
//! - `events`: Kubernetes Events with series, in bounded memory (kube's recorder keeps every Event).
//! - `report`: what both reconcilers share when they report (events, status patch, timestamps).
//! - `run`: flags, start-up and shutdown in the cluster; `lease`: leader election.
//! - `offline`: the subcommands that need no cluster (make a key, check SealedSecret files).
//! - `chart_args`: the arguments Bitnami's and ESO's charts render, accepted or named as ignored;
//!   `chart_flags` defines them for clap.
//! - `watched`: controllers whose caches drop what no reconcile reads (managedFields).
//! - `duration`: Go-style durations as the flags and fields spell them.

pub mod chart_args;
pub mod chart_flags;
pub mod duration;
pub mod events;
pub mod external;
pub mod lease;
pub mod offline;
pub mod owned;
pub mod report;
pub mod run;
pub mod sealed;
pub mod watched;
