//! One value: `len(2, big-endian) || RSA-OAEP(session key) || AES-256-GCM(plaintext) || tag`.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::error::{OpenError, SealError, ShapeError};
use crate::keys::{PrivateKey, PublicKey};

const SESSION_KEY_LEN: usize = 32;
const LENGTH_PREFIX: usize = 2;
const GCM_TAG_LEN: usize = 16;

/// Each session key seals exactly one value, so a fixed all-zero nonce never repeats under a key.
fn zero_nonce() -> Nonce {
    Nonce::assume_unique_for_key([0u8; NONCE_LEN])
}

fn session_cipher(session_key: &[u8]) -> Option<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, session_key)
        .ok()
        .map(LessSafeKey::new)
}

fn oaep_label(label: &[u8]) -> Option<&[u8]> {
    // An empty OAEP label and no label hash the same; AWS-LC wants `None` for it.
    (!label.is_empty()).then_some(label)
}

/// Seals one value for `public` under the scope `label`.
pub fn seal_value(
    public: &PublicKey,
    label: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    let mut session_key = Zeroizing::new([0u8; SESSION_KEY_LEN]);
    SystemRandom::new()
        .fill(session_key.as_mut())
        .map_err(|_| SealError::Random)?;

    let rsa_len = public.ciphertext_size();
    let prefix = u16::try_from(rsa_len).map_err(|_| SealError::Rsa)?;
    let mut out = Vec::with_capacity(LENGTH_PREFIX + rsa_len + plaintext.len() + 16);
    out.extend_from_slice(&prefix.to_be_bytes());
    out.resize(LENGTH_PREFIX + rsa_len, 0);
    let written = public
        .oaep()
        .encrypt(
            &aws_lc_rs::rsa::OAEP_SHA256_MGF1SHA256,
            session_key.as_ref(),
            &mut out[LENGTH_PREFIX..],
            oaep_label(label),
        )
        .map_err(|_| SealError::Rsa)?
        .len();
    if written != rsa_len {
        return Err(SealError::Rsa);
    }

    let cipher = session_cipher(session_key.as_ref()).ok_or(SealError::Aes)?;
    let mut body = plaintext.to_vec();
    cipher
        .seal_in_place_append_tag(zero_nonce(), Aad::empty(), &mut body)
        .map_err(|_| SealError::Aes)?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// A value opened by [`open_value`].
#[derive(Debug)]
pub struct Opened {
    pub plaintext: Zeroizing<Vec<u8>>,
    /// Position, in the order given, of the key that opened the value: try it first next time.
    pub key_index: usize,
    /// RSA private-key operations spent, including the failed tries.
    pub rsa_operations: usize,
}

/// Opens a sealed value with the first of `keys` that can, in the order given.
pub fn open_value<'k>(
    keys: impl IntoIterator<Item = &'k PrivateKey>,
    label: &[u8],
    sealed: &[u8],
) -> Result<Opened, OpenError> {
    let (rsa_part, aes_part) = split_sealed(sealed)?;
    let mut rsa_operations = 0;
    for (key_index, key) in keys.into_iter().enumerate() {
        // A key of another size cannot have produced this RSA part: skip it without an RSA call.
        if key.size_bytes() != rsa_part.len() {
            continue;
        }
        rsa_operations += 1;
        let Some(session_key) = key.oaep_decrypt(rsa_part, oaep_label(label)) else {
            continue;
        };
        let Some(cipher) = session_cipher(&session_key) else {
            continue;
        };
        let mut body = Zeroizing::new(aes_part.to_vec());
        if let Ok(plain) = cipher.open_in_place(zero_nonce(), Aad::empty(), &mut body) {
            let plain_len = plain.len();
            body.truncate(plain_len);
            return Ok(Opened {
                plaintext: body,
                key_index,
                rsa_operations,
            });
        }
    }
    Err(OpenError::NoKeyCouldDecrypt)
}

/// Checks what can be checked of a sealed value with only the public key: its framing, and that
/// its RSA part has the size `public` makes. Whether it opens needs the private key.
pub fn check_shape(public: &PublicKey, sealed: &[u8]) -> Result<(), ShapeError> {
    if sealed.is_empty() {
        return Err(ShapeError::Empty);
    }
    let (rsa_part, aes_part) = split_sealed(sealed).map_err(|_| ShapeError::TooShort)?;
    if rsa_part.len() != public.ciphertext_size() {
        return Err(ShapeError::RsaSize {
            found: rsa_part.len(),
            expected: public.ciphertext_size(),
            bits: public.bits(),
        });
    }
    if aes_part.len() < GCM_TAG_LEN {
        return Err(ShapeError::NoTag {
            found: aes_part.len(),
        });
    }
    Ok(())
}

fn split_sealed(sealed: &[u8]) -> Result<(&[u8], &[u8]), OpenError> {
    let (prefix, rest) = sealed
        .split_first_chunk::<LENGTH_PREFIX>()
        .ok_or(OpenError::TooShort)?;
    let rsa_len = usize::from(u16::from_be_bytes(*prefix));
    if rest.len() < rsa_len {
        return Err(OpenError::TooShort);
    }
    Ok(rest.split_at(rsa_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_inputs_are_too_short() {
        assert_eq!(split_sealed(&[]), Err(OpenError::TooShort));
        assert_eq!(split_sealed(&[2]), Err(OpenError::TooShort));
        assert_eq!(split_sealed(&[2, 0, 1, 2]), Err(OpenError::TooShort));
        assert_eq!(split_sealed(&[0, 1, 9, 8]), Ok((&[9u8][..], &[8u8][..])));
    }
}
