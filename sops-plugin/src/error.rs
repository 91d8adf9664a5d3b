//! Library errors. Messages name what failed and where, never a decrypted value.

use thiserror::Error;

/// Everything the SOPS library can fail with.
#[derive(Debug, Error)]
pub enum Error {
    /// The input could not be parsed in the given format.
    #[error("cannot parse {format} input: {reason}")]
    Parse {
        format: &'static str,
        reason: String,
    },
    /// The file has no `sops` metadata block.
    #[error("sops metadata not found")]
    MetadataNotFound,
    /// The metadata block is malformed.
    #[error("invalid sops metadata: {0}")]
    Metadata(String),
    /// A value at `path` could not be decrypted.
    #[error("could not decrypt value at path '{path}': {reason}")]
    DecryptValue { path: String, reason: String },
    /// A value could not be encrypted.
    #[error("could not encrypt value at path '{path}': {reason}")]
    EncryptValue { path: String, reason: String },
    /// The stored MAC does not decrypt.
    #[error("cannot decrypt MAC: {0}")]
    MacDecrypt(String),
    /// The stored MAC does not match the computed one (digests are not secret).
    #[error("MAC mismatch. File has {file}, computed {computed}")]
    MacMismatch { file: String, computed: String },
    /// No identity could unwrap the data key.
    #[error("failed to get the data key required to decrypt the SOPS file.\n{0}")]
    DataKey(String),
    /// Encryption of the data key failed.
    #[error("cannot encrypt the data key: {0}")]
    KeyEncrypt(String),
    /// Bad configuration (.sops.yaml, selectors, recipients).
    #[error("{0}")]
    Config(String),
    /// The tree has a shape the format cannot express.
    #[error("{0}")]
    Unsupported(String),
    /// An error in one file of a rendered directory.
    #[error("{file}: {error}")]
    InFile { file: String, error: Box<Error> },
    /// The file is already encrypted.
    #[error("file is already encrypted (it has a sops metadata block)")]
    AlreadyEncrypted,
}

impl Error {
    /// sops-compatible exit code for this error (`cmd/sops/codes`).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Parse { .. } => 2,
            Error::MetadataNotFound => 1,
            Error::Metadata(_) => 1,
            Error::DecryptValue { .. } => 25,
            Error::EncryptValue { .. } => 23,
            Error::MacDecrypt(_) | Error::MacMismatch { .. } => 51,
            Error::DataKey(_) => 128,
            Error::KeyEncrypt(_) => 111,
            Error::Config(_) => 61,
            Error::Unsupported(_) => 1,
            Error::AlreadyEncrypted => 203,
            Error::InFile { error, .. } => error.exit_code(),
        }
    }

    pub(crate) fn parse(format: &'static str, reason: impl Into<String>) -> Self {
        Error::Parse {
            format,
            reason: reason.into(),
        }
    }
}

/// Result alias for the library.
pub type Result<T> = std::result::Result<T, Error>;
