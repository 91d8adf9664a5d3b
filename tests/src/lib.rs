//! Test peers shared by the workspace: the Vault API stand-in, moto's server, and the harness of the
//! end-to-end tests against a real API server (`envtest`).

pub mod envtest;
pub mod moto;
pub mod vault_standin;
