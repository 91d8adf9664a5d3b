//! What the workspace's tests share, so that each helper exists once. A dev-dependency only.
//!
//! - [`sealed_secrets`]: the Sealed Secrets fixture world (keys, certificates, SealedSecrets
//!   and the Secrets they open to), owned here because sealing, the controller, kubeseal, the
//!   end-to-end tests, the benches and the fuzzer all read it.
//! - [`logs`]: one captured log subscriber per test binary and the check that the secret
//!   canary ([`canary`]) never reached it.
//! - `api` (feature `api`): the in-memory Kubernetes API with SealedSecrets or ExternalSecrets
//!   and their stores registered.
//! - `vault_standin` and `moto` (feature `peers`): the peer servers of the ExternalSecret
//!   tests, started on 127.0.0.1 and stopped on drop.
//!
//! Fixtures that only one crate reads stay with that crate (sops-plugin's SOPS files, the
//! controller's chart arguments, the end-to-end tests' third-party values).

pub use canary;

#[cfg(feature = "api")]
pub mod api;
pub mod logs;
#[cfg(feature = "peers")]
pub mod moto;
pub mod sealed_secrets;
#[cfg(feature = "peers")]
pub mod vault_standin;
