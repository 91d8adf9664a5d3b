//! SealedSecret to Secret: the key ring and key manager, the reconciler, the HTTP endpoints.

pub mod desired;
pub mod http;
pub mod keyring;
pub mod keys;
pub mod metrics;
pub mod owned;
pub mod reconcile;
