//! The SealedSecret wire format and the key material it is sealed with.
//!
//! Byte-compatible with Bitnami Sealed Secrets: each value is sealed on its own with a fresh
//! AES-256-GCM session key, wrapped by RSA-OAEP (SHA-256) under a label that binds the value
//! to its namespace and name (see [`Scope`]). RSA and AES run on AWS-LC (`aws-lc-rs`), whose RSA
//! is constant-time and blinded; see `docs/kubeseal.md` for why it was chosen.
//!
//! No Kubernetes client and no async here: callers hand in bytes and objects (only `backup`
//! reads the key and identity files a user names).
//!
//! Modules, from the bottom up:
//! - `keys`: RSA key pairs and certificates (generate, PEM in and out).
//! - `key_secret`: the sealing-key Secret format and key backups; the one reader and writer.
//! - `backup`: key backups encrypted with age, and loading key files (plain or encrypted).
//! - `scope`: the scope annotations and the label a value is sealed under.
//! - `hybrid`: one sealed value (the wire format).
//! - `open`: opening all the values of an object (key order, threads).
//! - `secret`: whole objects: seal a Secret, unseal a SealedSecret (what failures mean).
//! - `check`: what can be checked of a SealedSecret with only the public key.
//! - `documents`: splitting input text into YAML/JSON documents, with a size limit.

pub mod backup;
pub mod check;
pub mod documents;
mod error;
pub mod hybrid;
pub mod key_secret;
pub mod keys;
pub mod open;
pub mod scope;
pub mod secret;

pub use error::{KeyError, OpenError, SealError, ShapeError, UnsealError};
pub use hybrid::{Opened, open_value, seal_value};
pub use key_secret::{KeyPair, load_private_keys};
pub use keys::{Certificate, PrivateKey, PublicKey, parse_sealing_key};
pub use scope::Scope;
pub use secret::{SealSecretOptions, UnsealedSecret, seal_secret, unseal};
