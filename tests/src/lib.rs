//! Test peers shared by the workspace: the Vault API stand-in.

pub mod vault_standin;
