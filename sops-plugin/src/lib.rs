//! The SOPS file format (as written by sops 3.x), decrypted and encrypted with age keys.
//!
//! The format layer (`stores`, `tree`, `cipher`, `metadata`) works on bytes the caller hands
//! in; only [`keys::Keyring::discover`] reads key files or runs a key command, on request.
//!
//! Modules:
//! - `stores`: the five file formats (YAML, JSON, dotenv, INI, binary) into `value` trees and back.
//! - `value`: the format-neutral tree; `tree`: encrypted leaves, key-path AAD and the MAC.
//! - `cipher`: one `ENC[AES256_GCM,...]` value; `metadata`: the `sops` block.
//! - `keys`: age master keys and identity discovery; `shamir`: key groups.
//! - `config`: `.sops.yaml` creation rules; `gonum`: Go's number formatting (a leaf).
//! - `generate`: the Argo CD plugin's render of an application; `krm`: the KSOPS-style KRM
//!   function; `seal`: re-sealing rendered Secrets as SealedSecrets.
//! - `scratch`: the private directory a render decrypts into; `leak`: last checks on output.
//! - `error`: the library's errors.

pub mod cipher;
pub mod config;
pub mod error;
pub mod generate;
mod gonum;
pub mod keys;
pub mod krm;
pub mod leak;
pub mod metadata;
pub mod scratch;
pub mod seal;
pub mod shamir;
pub mod stores;
pub mod tree;
pub mod value;

use rand::RngCore;
use zeroize::Zeroizing;

pub use error::{Error, Result};
pub use keys::Keyring;
pub use metadata::Metadata;
pub use stores::Format;
pub use value::{Key, Map, Value};

use tree::{IvStash, Selectors};

/// A decrypted file, kept with what is needed to write it back encrypted.
pub struct Opened {
    pub docs: Vec<Map>,
    pub metadata: Metadata,
    data_key: Zeroizing<[u8; 32]>,
    stash: IvStash,
}

impl Drop for Opened {
    fn drop(&mut self) {
        // The documents hold decrypted values: wipe them.
        for d in self.docs.iter_mut() {
            value::wipe_map(d);
        }
    }
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("documents", &self.docs.len())
            .finish_non_exhaustive()
    }
}

/// Verifies the stored MAC against the computed one (sops' `DecryptTree` check).
fn check_mac(md: &Metadata, key: &[u8; 32], computed: &str) -> Result<()> {
    if md.mac.is_empty() {
        return Err(Error::MacMismatch {
            file: "no MAC".into(),
            computed: computed.to_string(),
        });
    }
    let ad = metadata::normalize_rfc3339(&md.lastmodified);
    let v =
        cipher::decrypt_value(key, &md.mac, &ad).map_err(|e| Error::MacDecrypt(e.to_string()))?;
    let file = match v {
        Value::Str(s) => s,
        _ => {
            return Err(Error::MacDecrypt(
                "the MAC is not stored with type str".into(),
            ));
        }
    };
    if file != computed {
        return Err(Error::MacMismatch {
            file,
            computed: computed.to_string(),
        });
    }
    Ok(())
}

/// Parses and decrypts an encrypted file; the MAC is verified unless `ignore_mac`.
pub fn open(format: Format, src: &[u8], keyring: &Keyring, ignore_mac: bool) -> Result<Opened> {
    let (mut docs, meta) = stores::load_encrypted(format, src)?;
    let metadata = Metadata::from_value(&meta)?;
    let sel = Selectors::from_metadata(&metadata)?;
    let data_key = keyring.data_key(&metadata)?;
    let mut stash = IvStash::default();
    let computed = tree::decrypt_docs(&mut docs, &data_key, &sel, Some(&mut stash))?;
    if !ignore_mac {
        check_mac(&metadata, &data_key, &computed)?;
    }
    Ok(Opened {
        docs,
        metadata,
        data_key,
        stash,
    })
}

/// Decrypts a file to plaintext bytes in `out_format`.
pub fn decrypt(
    in_format: Format,
    out_format: Format,
    src: &[u8],
    keyring: &Keyring,
    ignore_mac: bool,
) -> Result<Zeroizing<Vec<u8>>> {
    let o = open(in_format, src, keyring, ignore_mac)?;
    stores::emit_plain(out_format, &o.docs).map(Zeroizing::new)
}

/// `decrypt --extract`: one value of the first document, printed as sops prints it (strings
/// raw, other values in the output format).
pub fn extract(
    out_format: Format,
    docs: &[Map],
    path: &[value::PathSeg],
) -> Result<Zeroizing<Vec<u8>>> {
    let mut cur = Value::Map(docs.first().cloned().unwrap_or_default());
    for (i, seg) in path.iter().enumerate() {
        let shown = || format!("component {} of the path", i + 1);
        cur = match (seg, cur) {
            (value::PathSeg::Key(k), v @ Value::Map(_)) => v
                .get(k)
                .cloned()
                .ok_or_else(|| Error::Unsupported(format!("{}: key '{k}' not found", shown())))?,
            // Like sops, list positions count comments stored in the list.
            (value::PathSeg::Index(n), Value::Seq(items)) => {
                items.get(*n).cloned().ok_or_else(|| {
                    Error::Unsupported(format!("{}: index {n} out of range", shown()))
                })?
            }
            _ => {
                return Err(Error::Unsupported(format!(
                    "{}: does not match the document",
                    shown()
                )));
            }
        };
    }
    let out = match (&cur, out_format) {
        (Value::Str(s), _) => s.clone().into_bytes(),
        (Value::Bytes(b), _) => b.clone(),
        (_, Format::Yaml) => stores::yaml::emit_value(&cur).into_bytes(),
        (_, Format::Json) | (_, Format::Binary) => stores::json::emit_value(&cur).into_bytes(),
        (other, _) => other
            .scalar_text()
            .ok_or_else(|| {
                Error::Unsupported("this output format cannot print a nested value".into())
            })?
            .into_bytes(),
    };
    // Wipe the extracted copy before it is dropped.
    if let Value::Map(m) = &mut cur {
        value::wipe_map(m);
    }
    Ok(Zeroizing::new(out))
}

/// How to encrypt a new file: recipients per key group and the value selectors.
#[derive(Clone, Debug, Default)]
pub struct EncryptOptions {
    /// age recipients, one list per key group (one group unless Shamir is wanted).
    pub key_groups: Vec<Vec<String>>,
    pub shamir_threshold: Option<usize>,
    pub unencrypted_suffix: Option<String>,
    pub encrypted_suffix: Option<String>,
    pub unencrypted_regex: Option<String>,
    pub encrypted_regex: Option<String>,
    pub unencrypted_comment_regex: Option<String>,
    pub encrypted_comment_regex: Option<String>,
    pub mac_only_encrypted: bool,
}

impl EncryptOptions {
    fn selector_count(&self) -> usize {
        [
            &self.unencrypted_suffix,
            &self.encrypted_suffix,
            &self.unencrypted_regex,
            &self.encrypted_regex,
            &self.unencrypted_comment_regex,
            &self.encrypted_comment_regex,
        ]
        .iter()
        .filter(|v| v.is_some())
        .count()
    }
}

impl Opened {
    /// Every value that was decrypted (strings only; comments are not values), with its key path
    /// as `a:b:c:` (list positions add nothing).
    pub fn decrypted_values(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.stash.values()
    }

    /// Encrypts the (possibly edited) documents again with the same data key; unchanged values
    /// keep their ciphertext. Sets a new `lastmodified` and MAC.
    pub fn seal(&self, out_format: Format) -> Result<Vec<u8>> {
        let mut docs = self.docs.clone();
        let mut md = self.metadata.clone();
        let sel = Selectors::from_metadata(&md)?;
        let mac = tree::encrypt_docs(&mut docs, &self.data_key, &sel, Some(&self.stash))?;
        md.lastmodified = metadata::now_rfc3339();
        md.mac = cipher::encrypt_bytes(
            &self.data_key,
            mac.as_bytes(),
            &md.lastmodified,
            "str",
            None,
        )
        .render();
        md.version = metadata::WRITER_VERSION.to_string();
        stores::emit_encrypted(out_format, &docs, &md.to_value())
    }

    /// Re-wraps the current data key for new recipients (`updatekeys`), values untouched.
    pub fn set_recipients(
        &mut self,
        groups: &[Vec<String>],
        threshold: Option<usize>,
    ) -> Result<()> {
        let others: Vec<_> = self
            .metadata
            .key_groups
            .iter()
            .map(|g| g.other.clone())
            .collect();
        let (g, t) = keys::make_groups(&self.data_key, groups, &others, threshold)?;
        self.metadata.key_groups = g;
        self.metadata.shamir_threshold = t;
        Ok(())
    }

    /// Replaces the data key with a fresh one (`rotate`); values are re-encrypted on `seal`.
    pub fn rotate(&mut self) -> Result<()> {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(k.as_mut());
        let groups: Vec<Vec<String>> = self
            .metadata
            .key_groups
            .iter()
            .map(|g| g.age.iter().map(|a| a.recipient.clone()).collect())
            .collect();
        self.data_key = k;
        self.stash = IvStash::default();
        let t = self.metadata.shamir_threshold;
        self.set_recipients(&groups, t)
    }
}

/// Encrypts a plaintext file with a fresh data key.
pub fn encrypt(
    in_format: Format,
    out_format: Format,
    src: &[u8],
    opts: &EncryptOptions,
) -> Result<Vec<u8>> {
    if stores::has_metadata(in_format, src) {
        return Err(Error::AlreadyEncrypted);
    }
    if opts.selector_count() > 1 {
        return Err(Error::Config(
            "use only one of unencrypted_suffix, encrypted_suffix, unencrypted_regex, encrypted_regex, unencrypted_comment_regex, encrypted_comment_regex".into(),
        ));
    }
    let docs = stores::load_plain(in_format, src)?;
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(key.as_mut());
    let (groups, threshold) =
        keys::make_groups(&key, &opts.key_groups, &[], opts.shamir_threshold)?;
    let metadata = Metadata {
        key_groups: groups,
        shamir_threshold: threshold,
        unencrypted_suffix: if opts.selector_count() == 0 {
            Some("_unencrypted".into())
        } else {
            opts.unencrypted_suffix.clone()
        },
        encrypted_suffix: opts.encrypted_suffix.clone(),
        unencrypted_regex: opts.unencrypted_regex.clone(),
        encrypted_regex: opts.encrypted_regex.clone(),
        unencrypted_comment_regex: opts.unencrypted_comment_regex.clone(),
        encrypted_comment_regex: opts.encrypted_comment_regex.clone(),
        mac_only_encrypted: opts.mac_only_encrypted,
        ..Default::default()
    };
    let opened = Opened {
        docs,
        metadata,
        data_key: key,
        stash: IvStash::default(),
    };
    opened.seal(out_format)
}
