//! Where a command's keys come from: the sealing certificates of --cert (or the controller),
//! checked before anything is sealed, and the private keys of --recovery-private-key files.
//! Shared by the one-object commands and --re-encrypt.

use anyhow::{Context as _, Result};
use sealing::PublicKey;

use crate::cli::Args;
use crate::remote;

/// The key to seal with: --cert's certificate, else the controller's; an expired one is refused.
pub(crate) fn sealing_key(args: &Args) -> Result<PublicKey> {
    usable_key(&remote::sealing_cert_pem(args)?).context("cannot use the sealing certificate")
}

fn usable_key(pem: &str) -> Result<PublicKey> {
    let (public, certificate) = sealing::parse_sealing_key(pem)?;
    if let Some(certificate) = certificate {
        certificate.check_not_expired(time::OffsetDateTime::now_utc())?;
    }
    Ok(public)
}

/// The keys to seal with, one per `--cert` (or the controller's), each checked before any sealing.
pub(crate) fn sealing_keys(args: &Args) -> Result<Vec<PublicKey>> {
    if args.cert.len() <= 1 {
        return Ok(vec![sealing_key(args)?]);
    }
    args.cert
        .iter()
        .map(|source| {
            usable_key(&remote::read_cert_source(source)?)
                .with_context(|| format!("cannot use the sealing certificate {source}"))
        })
        .collect()
}

/// The private keys of every --recovery-private-key file, encrypted backups opened with
/// --recovery-identity (or the SOPS_AGE_* variables).
pub(crate) fn recovery_keys(args: &Args) -> Result<Vec<sealing::PrivateKey>> {
    Ok(recovery_key_pairs(args)?
        .into_iter()
        .map(|pair| pair.private)
        .collect())
}

/// The key pairs of every --recovery-private-key file.
pub(crate) fn recovery_key_pairs(args: &Args) -> Result<Vec<sealing::KeyPair>> {
    let identities = sealing::backup::IdentitySource {
        files: args.recovery_identity.clone(),
    };
    let mut keys = Vec::new();
    for path in &args.recovery_private_key {
        keys.extend(sealing::backup::load_keys(path, &identities)?);
    }
    Ok(keys)
}
