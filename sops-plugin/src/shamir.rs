//! Shamir's secret sharing over GF(2^8) with the AES polynomial, share layout as sops (and the
//! HashiCorp Vault package it derives from) uses: `y bytes || x`, x in 1..=255, distinct.

use rand::RngCore;
use rand::seq::SliceRandom;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

fn add(a: u8, b: u8) -> u8 {
    a ^ b
}

/// Multiplication in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1, without data-dependent branches.
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut r = 0u8;
    for _ in 0..8 {
        r ^= a & (0u8.wrapping_sub(b & 1));
        let hi = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & hi);
        b >>= 1;
    }
    r
}

fn inv(a: u8) -> u8 {
    // a^254 = a^-1 in GF(2^8).
    let mut r = 1u8;
    let mut base = a;
    let mut e = 254u8;
    while e > 0 {
        if e & 1 == 1 {
            r = mul(r, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    r
}

fn div(a: u8, b: u8) -> u8 {
    mul(a, inv(b))
}

fn eval(coeffs: &[u8], x: u8) -> u8 {
    // Horner's rule from the highest coefficient.
    coeffs.iter().rev().fold(0u8, |acc, c| add(mul(acc, x), *c))
}

/// Splits `secret` into `parts` shares, any `threshold` of which recover it.
pub fn split(secret: &[u8], parts: usize, threshold: usize) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    if parts < threshold || threshold < 2 || parts > 255 || secret.is_empty() {
        return Err(Error::Config(format!(
            "invalid Shamir parameters: {parts} parts, threshold {threshold}"
        )));
    }
    let mut rng = rand::rng();
    let mut xs: Vec<u8> = (1..=255u8).collect();
    xs.shuffle(&mut rng);
    let mut shares: Vec<Zeroizing<Vec<u8>>> = (0..parts)
        .map(|i| {
            Zeroizing::new({
                let mut v = vec![0u8; secret.len() + 1];
                v[secret.len()] = xs[i];
                v
            })
        })
        .collect();
    let mut coeffs = Zeroizing::new(vec![0u8; threshold]);
    for (idx, byte) in secret.iter().enumerate() {
        coeffs[0] = *byte;
        rng.fill_bytes(&mut coeffs[1..]);
        for (i, share) in shares.iter_mut().enumerate() {
            share[idx] = eval(&coeffs, xs[i]);
        }
    }
    Ok(shares)
}

/// Recombines shares (each `y bytes || x`) into the secret.
pub fn combine(shares: &[Zeroizing<Vec<u8>>]) -> Result<Zeroizing<Vec<u8>>> {
    let first = shares
        .first()
        .ok_or_else(|| Error::DataKey("no Shamir shares".into()))?;
    let len = first.len();
    if len < 2 || shares.iter().any(|s| s.len() != len) {
        return Err(Error::DataKey(
            "Shamir shares have different or too short lengths".into(),
        ));
    }
    let xs: Vec<u8> = shares.iter().map(|s| s[len - 1]).collect();
    for (i, x) in xs.iter().enumerate() {
        if xs[..i].contains(x) {
            return Err(Error::DataKey("duplicate Shamir share".into()));
        }
    }
    let mut out = Zeroizing::new(vec![0u8; len - 1]);
    for (idx, o) in out.iter_mut().enumerate() {
        let mut acc = 0u8;
        for (i, s) in shares.iter().enumerate() {
            let mut basis = 1u8;
            for (j, xj) in xs.iter().enumerate() {
                if i != j {
                    basis = mul(basis, div(*xj, add(xs[i], *xj)));
                }
            }
            acc = add(acc, mul(s[idx], basis));
        }
        *o = acc;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_inverse() {
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1);
        }
        assert_eq!(mul(0x53, 0xca), 1); // the classic AES field example
    }

    #[test]
    fn split_combine() {
        let secret = [42u8; 32];
        let shares = split(&secret, 5, 3).unwrap_or_default();
        let sub: Vec<_> = vec![shares[4].clone(), shares[0].clone(), shares[2].clone()];
        assert_eq!(
            combine(&sub).map(|s| s.to_vec()).unwrap_or_default(),
            secret.to_vec()
        );
        let two: Vec<_> = vec![shares[1].clone(), shares[3].clone()];
        assert_ne!(
            combine(&two).map(|s| s.to_vec()).unwrap_or_default(),
            secret.to_vec()
        );
    }
}
