//! The SealedSecret wire format and the key material it is sealed with.
//!
//! Byte-compatible with Bitnami Sealed Secrets: each value is sealed on its own with a fresh
//! AES-256-GCM session key, wrapped by RSA-OAEP (SHA-256) under a label that binds the value
//! to its namespace and name (see [`Scope`]). RSA and AES run on AWS-LC (`aws-lc-rs`), whose RSA
//! is constant-time and blinded; see `docs/kubeseal.md` for why it was chosen.
//!
//! No Kubernetes client and no async here: callers hand in bytes and objects.

pub mod documents;
mod error;
pub mod hybrid;
pub mod keys;
pub mod scope;
pub mod secret;

pub use error::{KeyError, OpenError, SealError, UnsealError};
pub use hybrid::{Opened, open_value, seal_value};
pub use keys::{Certificate, KeyPair, PrivateKey, PublicKey, load_private_keys, parse_sealing_key};
pub use scope::Scope;
pub use secret::{SealSecretOptions, UnsealedSecret, seal_secret, unseal};
