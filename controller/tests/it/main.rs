//! The controller crate's integration tests, one binary (one link instead of one per file).
//! `sealed_common` and `external_common` hold what only the SealedSecret and ExternalSecret
//! halves share; fixtures, peers, the in-memory API and log capture come from the test kit.

#![allow(clippy::unwrap_used)]

mod external_common;
mod sealed_common;

mod chart_args;
mod deploy;
mod external_aws;
mod external_deploy;
mod external_docs_examples;
mod external_reconcile;
mod external_vault;
mod image_rootfs;
mod lease;
mod metrics_names;
mod offline;
mod run_mode;
mod sealed_decisions;
mod sealed_http;
mod sealed_reconcile;
