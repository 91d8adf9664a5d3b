//! The kubeseal-cli crate's integration tests, one binary (one link instead of one per file).
//! `common` runs the kubeseal binary and names the test kit's key fixtures; `tree` builds the
//! repository of SealedSecrets and the controller API that `reencrypt` and benches/re_encrypt.rs use.

#![allow(clippy::unwrap_used)]

mod common;
mod tree;

mod backup;
mod cli;
mod merge_into;
mod reencrypt;
mod remote;
