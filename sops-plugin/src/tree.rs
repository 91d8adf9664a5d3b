//! Walking documents: which leaves are encrypted, their key-path AAD, and the MAC.

use std::collections::HashMap;

use regex::Regex;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use crate::cipher::{self, CipherError};
use crate::error::{Error, Result};
use crate::metadata::Metadata;
use crate::value::{Key, Map, Value};

/// Fed first into the MAC when `mac_only_encrypted` is set (sops' fixed initialization).
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// Which leaves get encrypted (sops' `shouldBeEncrypted`), compiled from the metadata.
#[derive(Debug, Clone)]
pub struct Selectors {
    unencrypted_suffix: Option<String>,
    encrypted_suffix: Option<String>,
    unencrypted_regex: Option<Regex>,
    encrypted_regex: Option<Regex>,
    unencrypted_comment_regex: Option<Regex>,
    encrypted_comment_regex: Option<Regex>,
    pub mac_only_encrypted: bool,
}

fn compile(name: &str, r: &Option<String>) -> Result<Option<Regex>> {
    r.as_ref()
        .map(|r| Regex::new(r).map_err(|e| Error::Metadata(format!("invalid {name}: {e}"))))
        .transpose()
}

impl Selectors {
    /// Builds the selectors stored in a file's metadata.
    pub fn from_metadata(md: &Metadata) -> Result<Self> {
        Ok(Selectors {
            unencrypted_comment_regex: compile(
                "unencrypted_comment_regex",
                &md.unencrypted_comment_regex,
            )?,
            encrypted_comment_regex: compile(
                "encrypted_comment_regex",
                &md.encrypted_comment_regex,
            )?,
            unencrypted_suffix: md.unencrypted_suffix.clone(),
            encrypted_suffix: md.encrypted_suffix.clone(),
            unencrypted_regex: compile("unencrypted_regex", &md.unencrypted_regex)?,
            encrypted_regex: compile("encrypted_regex", &md.encrypted_regex)?,
            mac_only_encrypted: md.mac_only_encrypted,
        })
    }

    /// Whether a leaf at `path` (map keys from the root) is encrypted. `comments` holds, per
    /// nesting level, the comments directly preceding the current item; `is_comment` says the
    /// leaf is itself the last of them (a matching marker comment stays clear).
    pub fn should_encrypt_with(
        &self,
        path: &[String],
        comments: &[Vec<String>],
        is_comment: bool,
    ) -> bool {
        let mut enc = self.should_encrypt(path);
        if let Some(r) = &self.unencrypted_comment_regex
            && comments.iter().flatten().any(|c| r.is_match(c))
        {
            enc = false;
        }
        if let Some(r) = &self.encrypted_comment_regex {
            let last_level = comments.len().saturating_sub(1);
            let last_idx = comments.last().map(|l| l.len().saturating_sub(1));
            enc = comments.iter().enumerate().any(|(i, level)| {
                level.iter().enumerate().any(|(j, c)| {
                    let itself = is_comment && i == last_level && Some(j) == last_idx;
                    !itself && r.is_match(c)
                })
            });
        }
        enc
    }

    /// Whether a leaf at `path` (map keys from the root) is encrypted, by key selectors only.
    pub fn should_encrypt(&self, path: &[String]) -> bool {
        let mut enc = true;
        if let Some(s) = &self.unencrypted_suffix
            && path.iter().any(|p| p.ends_with(s.as_str()))
        {
            enc = false;
        }
        if let Some(s) = &self.encrypted_suffix {
            enc = path.iter().any(|p| p.ends_with(s.as_str()));
        }
        if let Some(r) = &self.unencrypted_regex
            && path.iter().any(|p| r.is_match(p))
        {
            enc = false;
        }
        if let Some(r) = &self.encrypted_regex {
            enc = path.iter().any(|p| r.is_match(p));
        }
        enc
    }
}

/// Remembered IVs of decrypted values, so re-encrypting an unchanged value reproduces the same
/// ciphertext (small Git diffs after `set`, as sops does).
type StashEntry = (Zeroizing<Vec<u8>>, Vec<u8>);

#[derive(Default)]
pub struct IvStash {
    /// AAD -> (plaintext, IV) pairs.
    entries: HashMap<String, Vec<StashEntry>>,
}

impl std::fmt::Debug for IvStash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IvStash(..)")
    }
}

impl IvStash {
    fn remember(&mut self, aad: &str, enc: &str, v: &Value) {
        if let (Ok(ev), Some((bytes, _))) =
            (cipher::EncValue::parse(enc), cipher::value_to_bytes(v))
        {
            self.entries
                .entry(aad.to_string())
                .or_default()
                .push((Zeroizing::new(bytes), ev.iv));
        }
    }

    /// Every decrypted string value with its key path (`a:b:c:`).
    pub fn values(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries
            .iter()
            .flat_map(|(aad, vs)| vs.iter().map(move |(b, _)| (aad.as_str(), b.as_slice())))
    }

    fn lookup(&self, aad: &str, v: &Value) -> Option<Vec<u8>> {
        let (bytes, _) = cipher::value_to_bytes(v)?;
        let bytes = Zeroizing::new(bytes);
        self.entries
            .get(aad)?
            .iter()
            .find(|(b, _)| b.as_slice() == bytes.as_slice())
            .map(|(_, iv)| iv.clone())
    }
}

struct Walk<'a> {
    key: &'a [u8; 32],
    sel: &'a Selectors,
    hash: Sha512,
    record: Option<&'a mut IvStash>,
    reuse: Option<&'a IvStash>,
    /// Comments preceding the current item, one list per nesting level (sops' comment stack).
    comments: Vec<Vec<String>>,
}

fn aad(path: &[String]) -> String {
    let mut s = path.join(":");
    s.push(':');
    s
}

fn cerr(path: &[String], e: CipherError) -> Error {
    Error::DecryptValue {
        path: path.join(":"),
        reason: e.to_string(),
    }
}

impl Walk<'_> {
    fn hash_leaf(&mut self, v: &Value, encrypted: bool) {
        if matches!(v, Value::Comment(_)) {
            return;
        }
        if (!self.sel.mac_only_encrypted || encrypted)
            && let Some((b, _)) = cipher::value_to_bytes(v)
        {
            let b = Zeroizing::new(b);
            self.hash.update(b.as_slice());
        }
    }

    fn decrypt_leaf(&mut self, v: &mut Value, path: &[String], comment: bool) -> Result<()> {
        if matches!(v, Value::Null) {
            return Ok(());
        }
        let encrypted = self.sel.should_encrypt_with(path, &self.comments, comment);
        if encrypted {
            let a = aad(path);
            let new = match &*v {
                Value::Str(s) if s.is_empty() => None,
                Value::Comment(c) | Value::Str(c) if comment => {
                    match cipher::decrypt_value(self.key, c, &a) {
                        Ok(Value::Comment(t)) | Ok(Value::Str(t)) => Some(Value::Comment(t)),
                        // A comment that does not decrypt was never encrypted (older sops).
                        _ => None,
                    }
                }
                Value::Str(s) => {
                    let d = cipher::decrypt_value(self.key, s, &a).map_err(|e| cerr(path, e))?;
                    if let Some(st) = self.record.as_deref_mut() {
                        st.remember(&a, s, &d);
                    }
                    Some(d)
                }
                _ => {
                    return Err(Error::DecryptValue {
                        path: path.join(":"),
                        reason: "value should be encrypted but is not an ENC[...] string".into(),
                    });
                }
            };
            if let Some(n) = new {
                *v = n;
            }
        }
        self.hash_leaf(v, encrypted);
        Ok(())
    }

    fn encrypt_leaf(&mut self, v: &mut Value, path: &[String]) -> Result<()> {
        if matches!(v, Value::Null) {
            return Ok(());
        }
        let is_comment = matches!(v, Value::Comment(_));
        let encrypted = self
            .sel
            .should_encrypt_with(path, &self.comments, is_comment);
        self.hash_leaf(v, encrypted);
        if encrypted {
            let a = aad(path);
            let iv = self.reuse.and_then(|s| s.lookup(&a, v));
            if let Some(enc) = cipher::encrypt_value(self.key, v, &a, iv.as_deref()) {
                let new = if matches!(v, Value::Comment(_)) {
                    Value::Comment(enc)
                } else {
                    Value::Str(enc)
                };
                // The plaintext this replaces is wiped, not just freed.
                let mut old = std::mem::replace(v, new);
                crate::value::wipe(&mut old);
            }
        }
        Ok(())
    }

    fn map(&mut self, m: &mut Map, path: &mut Vec<String>, decrypt: bool) -> Result<()> {
        self.comments.push(vec![]);
        let r = self.map_items(m, path, decrypt);
        self.comments.pop();
        r
    }

    fn note_comment(&mut self, c: &str) {
        if let Some(level) = self.comments.last_mut() {
            level.push(c.to_string());
        }
    }

    fn clear_comments(&mut self) {
        if let Some(level) = self.comments.last_mut() {
            level.clear();
        }
    }

    fn map_items(&mut self, m: &mut Map, path: &mut Vec<String>, decrypt: bool) -> Result<()> {
        for (k, v) in m.iter_mut() {
            match k {
                Key::Comment(c) => {
                    self.note_comment(c);
                    let mut cv = Value::Comment(std::mem::take(c));
                    let r = if decrypt {
                        self.decrypt_leaf(&mut cv, path, true)
                    } else {
                        self.encrypt_leaf(&mut cv, path)
                    };
                    if let Value::Comment(t) | Value::Str(t) = cv {
                        *c = t;
                    }
                    r?;
                }
                Key::Str(s) => {
                    path.push(s.clone());
                    let r = self.value(v, path, decrypt);
                    path.pop();
                    r?;
                    self.clear_comments();
                }
            }
        }
        Ok(())
    }

    fn value(&mut self, v: &mut Value, path: &mut Vec<String>, decrypt: bool) -> Result<()> {
        match v {
            Value::Map(m) => self.map(m, path, decrypt),
            Value::Seq(items) => {
                self.comments.push(vec![]);
                let r = self.seq_items(items, path, decrypt);
                self.comments.pop();
                r
            }
            _ if decrypt => self.decrypt_leaf(v, path, false),
            _ => self.encrypt_leaf(v, path),
        }
    }

    fn seq_items(
        &mut self,
        items: &mut [Value],
        path: &mut Vec<String>,
        decrypt: bool,
    ) -> Result<()> {
        {
            {
                for it in items.iter_mut() {
                    let is_comment = matches!(it, Value::Comment(_));
                    if let Value::Comment(c) = it {
                        let c = c.clone();
                        self.note_comment(&c);
                    }
                    match it {
                        Value::Map(_) | Value::Seq(_) => self.value(it, path, decrypt)?,
                        _ if decrypt => self.decrypt_leaf(it, path, is_comment)?,
                        _ => {
                            self.encrypt_leaf(it, path)?;
                            // sops stores an encrypted comment in a list as a plain list item.
                            if let Value::Comment(c) = it
                                && cipher::is_encrypted(c)
                            {
                                *it = Value::Str(std::mem::take(c));
                            }
                        }
                    }
                    if !is_comment {
                        self.clear_comments();
                    }
                }
                Ok(())
            }
        }
    }
}

fn finish(h: Sha512) -> String {
    hex::encode_upper(h.finalize())
}

fn new_hash(sel: &Selectors) -> Sha512 {
    let mut h = Sha512::new();
    if sel.mac_only_encrypted {
        h.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    h
}

/// Decrypts all documents in place; returns the MAC computed over the plaintext.
pub fn decrypt_docs(
    docs: &mut [Map],
    key: &[u8; 32],
    sel: &Selectors,
    stash: Option<&mut IvStash>,
) -> Result<String> {
    let mut w = Walk {
        key,
        sel,
        hash: new_hash(sel),
        record: stash,
        reuse: None,
        comments: vec![],
    };
    for d in docs.iter_mut() {
        w.map(d, &mut vec![], true)?;
    }
    Ok(finish(w.hash))
}

/// Encrypts all documents in place; returns the MAC computed over the plaintext.
pub fn encrypt_docs(
    docs: &mut [Map],
    key: &[u8; 32],
    sel: &Selectors,
    stash: Option<&IvStash>,
) -> Result<String> {
    let mut w = Walk {
        key,
        sel,
        hash: new_hash(sel),
        record: None,
        reuse: stash,
        comments: vec![],
    };
    for d in docs.iter_mut() {
        w.map(d, &mut vec![], false)?;
    }
    Ok(finish(w.hash))
}

/// Computes the MAC of plaintext documents without changing them.
pub fn compute_mac(docs: &[Map], sel: &Selectors) -> String {
    let mut copy = docs.to_vec();
    let key = [0u8; 32];
    let mut w = Walk {
        key: &key,
        sel,
        hash: new_hash(sel),
        record: None,
        reuse: None,
        comments: vec![],
    };
    // Hashing happens before encryption, so encrypting a throwaway copy yields the same digest.
    for d in copy.iter_mut() {
        let _ = w.map(d, &mut vec![], false);
    }
    finish(w.hash)
}
