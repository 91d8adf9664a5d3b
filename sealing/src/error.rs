use thiserror::Error;

/// Why a value could not be sealed.
#[derive(Debug, Error)]
pub enum SealError {
    #[error("RSA-OAEP encryption of the session key failed")]
    Rsa,
    #[error("AES-GCM encryption failed")]
    Aes,
    #[error("could not draw random bytes for the session key")]
    Random,
}

/// Why a sealed value could not be opened. Never carries plaintext.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum OpenError {
    /// Same words as Bitnami's controller, so users can search for them.
    #[error("SealedSecret data is too short")]
    TooShort,
    #[error("no key could decrypt secret")]
    NoKeyCouldDecrypt,
    /// A bug, not bad input: reported per value so that no value goes missing silently.
    #[error("internal error: the decryption thread panicked")]
    Panicked,
}

/// Why a sealed value is malformed, as far as the public key alone can tell.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ShapeError {
    #[error("the sealed value is empty")]
    Empty,
    /// Same words as Bitnami's controller.
    #[error("SealedSecret data is too short")]
    TooShort,
    #[error(
        "the RSA part is {found} bytes but the certificate's {bits}-bit key makes {expected} (sealed to another key, or a damaged length prefix)"
    )]
    RsaSize {
        found: usize,
        expected: usize,
        bits: usize,
    },
    #[error("the AES-GCM part is {found} bytes, shorter than its 16-byte tag (truncated)")]
    NoTag { found: usize },
}

/// Problems with key material: PEM, DER, certificates, key Secrets.
#[derive(Debug, Error)]
pub enum KeyError {
    #[error("no {0} found in the input")]
    NotFound(&'static str),
    #[error("invalid PEM: {0}")]
    Pem(String),
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    #[error("unsupported RSA key size {0} bits (supported: 2048, 3072, 4096, 8192)")]
    UnsupportedSize(usize),
    #[error("the certificate expired on {0}: fetch the controller's current certificate")]
    Expired(String),
    #[error("the certificate's key is not an RSA key")]
    NotRsa,
    #[error("key generation failed")]
    Generate,
    #[error("{0}")]
    Document(String),
}

/// Why a SealedSecret could not be turned into a Secret. Names keys, never values.
#[derive(Debug, Error)]
pub enum UnsealError {
    #[error("SealedSecret has no name")]
    MissingName,
    #[error("key {key:?}: value is not valid base64")]
    BadBase64 { key: String },
    #[error("key {key:?}: {source}")]
    Open { key: String, source: OpenError },
    #[error("deprecated spec.data (v1 format): {0}")]
    LegacyData(String),
    #[error("spec.data and spec.encryptedData are both set; use only encryptedData")]
    MixedFormats,
    #[error("spec.template.data key {key:?}: {detail}")]
    Template { key: String, detail: String },
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Several(Vec<UnsealError>),
}
