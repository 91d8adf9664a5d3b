//! `ENC[AES256_GCM,...]` values: AES-256-GCM with sops' 32-byte nonce and the key path as AAD.

use aes_gcm::AesGcm;
use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::gonum::{format_float_f, parse_go_float};
use crate::value::Value;

/// GCM with a 256-bit nonce: sops' non-standard nonce size (J0 is derived through GHASH).
type SopsGcm = AesGcm<Aes256, U32>;

/// Why a value could not be decrypted. Never carries plaintext.
#[derive(Debug, Clone, PartialEq)]
pub enum CipherError {
    /// Not an `ENC[AES256_GCM,...]` string.
    NotEncrypted,
    /// A field is not valid base64 or has a wrong length.
    Malformed(String),
    /// GCM authentication failed (wrong key, path or tampered data).
    Auth,
    /// `type:` names nothing sops knows.
    UnknownType(String),
    /// The plaintext does not parse as the declared type.
    BadTyped(String),
}

impl std::fmt::Display for CipherError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CipherError::NotEncrypted => f.write_str("value is not in sops' ENC[AES256_GCM,...] format"),
            CipherError::Malformed(m) => write!(f, "malformed encrypted value: {m}"),
            CipherError::Auth => f.write_str(
                "could not decrypt with AES_GCM: message authentication failed (tampered value, wrong data key or moved value)",
            ),
            CipherError::UnknownType(t) => write!(f, "unknown datatype: {t}"),
            CipherError::BadTyped(t) => write!(f, "decrypted value does not parse as type {t}"),
        }
    }
}

/// The fields of one encrypted value.
#[derive(Debug, Clone, PartialEq)]
pub struct EncValue {
    pub data: Vec<u8>,
    pub iv: Vec<u8>,
    pub tag: Vec<u8>,
    pub typ: String,
}

impl EncValue {
    /// Parses `ENC[AES256_GCM,data:..,iv:..,tag:..,type:..]` (anchored at the start, as sops).
    pub fn parse(s: &str) -> Result<Self, CipherError> {
        let rest = s
            .strip_prefix("ENC[AES256_GCM,data:")
            .ok_or(CipherError::NotEncrypted)?;
        let (data, rest) = rest.split_once(",iv:").ok_or(CipherError::NotEncrypted)?;
        let (iv, rest) = rest.split_once(",tag:").ok_or(CipherError::NotEncrypted)?;
        let (tag, rest) = rest.split_once(",type:").ok_or(CipherError::NotEncrypted)?;
        let end = rest.rfind(']').ok_or(CipherError::NotEncrypted)?;
        let typ = &rest[..end];
        let dec = |name: &str, v: &str| {
            B64.decode(v)
                .map_err(|_| CipherError::Malformed(format!("{name} is not base64")))
        };
        let iv = dec("iv", iv)?;
        let tag = dec("tag", tag)?;
        if iv.is_empty() {
            return Err(CipherError::Malformed("empty iv".into()));
        }
        if tag.len() != 16 {
            return Err(CipherError::Malformed("tag is not 16 bytes".into()));
        }
        Ok(EncValue {
            data: dec("data", data)?,
            iv,
            tag,
            typ: typ.to_string(),
        })
    }

    /// Renders the value as sops writes it.
    pub fn render(&self) -> String {
        format!(
            "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{}]",
            B64.encode(&self.data),
            B64.encode(&self.iv),
            B64.encode(&self.tag),
            self.typ
        )
    }
}

/// Whether a string looks like an encrypted sops value.
pub fn is_encrypted(s: &str) -> bool {
    s.starts_with("ENC[AES256_GCM,data:")
}

fn gcm_open(
    key: &[u8; 32],
    iv: &[u8],
    data: &[u8],
    tag: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CipherError> {
    if iv.len() != 32 {
        // sops writes 32-byte IVs; other lengths would need a differently typed GCM.
        return Err(CipherError::Malformed(format!(
            "iv is {} bytes, expected 32",
            iv.len()
        )));
    }
    let cipher = SopsGcm::new(key.into());
    let mut msg = Vec::with_capacity(data.len() + tag.len());
    msg.extend_from_slice(data);
    msg.extend_from_slice(tag);
    cipher
        .decrypt(
            aes_gcm::Nonce::<U32>::from_slice(iv),
            Payload { msg: &msg, aad },
        )
        .map(Zeroizing::new)
        .map_err(|_| CipherError::Auth)
}

/// Encrypts raw bytes with a fresh random IV, or the given one (IV stash for stable diffs).
pub fn encrypt_bytes(
    key: &[u8; 32],
    plaintext: &[u8],
    aad: &str,
    typ: &str,
    iv: Option<&[u8]>,
) -> EncValue {
    let mut nonce = [0u8; 32];
    match iv {
        Some(iv) if iv.len() == 32 => nonce.copy_from_slice(iv),
        _ => rand::rng().fill_bytes(&mut nonce),
    }
    let cipher = SopsGcm::new(key.into());
    // Encryption with a valid key and nonce cannot fail for in-memory sizes.
    let mut out = cipher
        .encrypt(
            aes_gcm::Nonce::<U32>::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: aad.as_bytes(),
            },
        )
        .unwrap_or_default();
    let tag = out.split_off(out.len().saturating_sub(16));
    EncValue {
        data: out,
        iv: nonce.to_vec(),
        tag,
        typ: typ.to_string(),
    }
}

/// Decrypts raw bytes of an `ENC[...]` string; returns the plaintext bytes and the type.
pub fn decrypt_raw(
    key: &[u8; 32],
    enc: &str,
    aad: &str,
) -> Result<(Zeroizing<Vec<u8>>, String), CipherError> {
    let v = EncValue::parse(enc)?;
    let pt = gcm_open(key, &v.iv, &v.data, &v.tag, aad.as_bytes())?;
    Ok((pt, v.typ))
}

/// Decrypts one value into a typed tree value (sops' `Cipher.Decrypt`).
pub fn decrypt_value(key: &[u8; 32], enc: &str, aad: &str) -> Result<Value, CipherError> {
    let v = EncValue::parse(enc)?;
    // Check the type first, as sops does, so an unknown type is reported as such.
    if !matches!(
        v.typ.as_str(),
        "str" | "int" | "float" | "bool" | "time" | "comment" | "bytes"
    ) {
        return Err(CipherError::UnknownType(v.typ));
    }
    let pt = gcm_open(key, &v.iv, &v.data, &v.tag, aad.as_bytes())?;
    typed_from_bytes(&pt, &v.typ)
}

fn typed_from_bytes(pt: &[u8], typ: &str) -> Result<Value, CipherError> {
    let text = || std::str::from_utf8(pt).map_err(|_| CipherError::BadTyped(typ.to_string()));
    Ok(match typ {
        "time" => Value::Time(text()?.to_string()),
        "str" | "bytes" => match std::str::from_utf8(pt) {
            Ok(s) => Value::Str(s.to_string()),
            Err(_) => Value::Bytes(pt.to_vec()),
        },
        "comment" => Value::Comment(text()?.to_string()),
        "int" => Value::Int(
            text()?
                .parse()
                .map_err(|_| CipherError::BadTyped(typ.to_string()))?,
        ),
        "float" => Value::Float(
            parse_go_float(text()?).ok_or_else(|| CipherError::BadTyped(typ.to_string()))?,
        ),
        "bool" => Value::Bool(match text()? {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
            "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
            _ => return Err(CipherError::BadTyped(typ.to_string())),
        }),
        other => return Err(CipherError::UnknownType(other.to_string())),
    })
}

/// sops' `ToBytes`: the plaintext a value is encrypted as and hashed into the MAC.
/// Returns `None` for values that are never encrypted (null, containers).
pub fn value_to_bytes(v: &Value) -> Option<(Vec<u8>, &'static str)> {
    Some(match v {
        Value::Str(s) => (s.as_bytes().to_vec(), "str"),
        Value::Bytes(b) => (b.clone(), "str"),
        Value::Time(t) => (t.as_bytes().to_vec(), "time"),
        Value::Int(i) => (i.to_string().into_bytes(), "int"),
        Value::Float(f) => (format_float_f(*f).into_bytes(), "float"),
        Value::Bool(b) => (
            (if *b { "True" } else { "False" }).as_bytes().to_vec(),
            "bool",
        ),
        Value::Comment(c) => (c.as_bytes().to_vec(), "comment"),
        Value::Null | Value::Map(_) | Value::Seq(_) => return None,
    })
}

/// Encrypts a typed value; empty strings stay empty (sops leaves them clear).
pub fn encrypt_value(key: &[u8; 32], v: &Value, aad: &str, iv: Option<&[u8]>) -> Option<String> {
    let (bytes, typ) = value_to_bytes(v)?;
    let bytes = Zeroizing::new(bytes);
    if bytes.is_empty() {
        return None;
    }
    Some(encrypt_bytes(key, &bytes, aad, typ, iv).render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let key = [7u8; 32];
        let enc = encrypt_value(&key, &Value::Int(42), "a:b:", None).unwrap_or_default();
        assert!(enc.ends_with("type:int]"));
        assert_eq!(decrypt_value(&key, &enc, "a:b:"), Ok(Value::Int(42)));
        assert_eq!(decrypt_value(&key, &enc, "a:c:"), Err(CipherError::Auth));
    }
}
