//! The sops-plugin crate's integration tests, one binary (one link instead of one per file).
//! `common` holds the fixture paths and keyrings and runs the real sops and our binary.

#![allow(clippy::unwrap_used)]

mod common;

mod age_keys;
mod bench_smoke;
mod deploy;
mod generate;
mod hardening;
mod image_rootfs;
mod krm;
mod sops_roundtrip;
mod vectors;
