//! `secrets-controller`: keeps Secrets in the cluster in step with SealedSecrets (unsealed with
//! the cluster's sealing keys) and with ExternalSecrets (fetched from Vault or AWS Secrets
//! Manager). Decisions live in plain functions; Kubernetes I/O stays thin around them.

pub mod chart_args;
pub mod duration;
pub mod external;
pub mod lease;
pub mod offline;
pub mod report;
pub mod run;
pub mod sealed;
