//! ExternalSecret sync from Vault and AWS Secrets Manager (External Secrets Operator compatible).
//!
//! Decisions live in plain modules (`schedule`, `data`, `template`, `secret`); providers sit
//! behind one trait (`provider`); the coalescing cache (`cache`) shares provider calls between
//! ExternalSecrets; `reconciler` is the thin Kubernetes I/O around them.

pub mod cache;
pub mod data;
pub mod metrics;
pub mod provider;
pub mod schedule;
pub mod secret;
pub mod template;
