//! The controller crate's integration tests, one binary (one link instead of one per file).
//! `sealed_common` and `external_common` hold the fixtures and peers of the SealedSecret and
//! ExternalSecret halves, `log_capture` the one log subscriber of the binary.

#![allow(clippy::unwrap_used)]

mod external_common;
mod log_capture;
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
