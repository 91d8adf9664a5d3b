//! Encrypted key backups: every sealing key in one [age](https://age-encryption.org) file, so
//! that a backup is never a plaintext private key on a laptop.
//!
//! The plaintext inside is a `v1` `List` of key Secrets, the same YAML as
//! `kubectl get secret -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml`: the Go `age`
//! CLI opens it (`age -d -i key.txt keys.age | kubectl apply -f -`), and so does every reader of
//! key files here ([`load_keys`]), given an age identity.
//!
//! The one place this crate reads files: key files and the identity files the user names.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use age::armor::{ArmoredReader, ArmoredWriter, Format as ArmorFormat};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::documents::MAX_INPUT_BYTES;
use crate::key_secret::{KeyPair, LABEL_SEALING_KEY, load_private_keys};

/// What goes wrong with backups, recipients and identities. Never quotes key material.
#[derive(Debug, Error)]
pub enum BackupError {
    #[error(
        "{origin}: not an age recipient (expected age1... or an ssh-ed25519/ssh-rsa public key)"
    )]
    Recipient { origin: String },
    #[error(
        "no recipient given: a backup must be readable by someone (--recipient or --recipients-file)"
    )]
    NoRecipients,
    #[error("{origin}: {detail}")]
    Identity { origin: String, detail: String },
    #[error(
        "it is an encrypted key backup, but no age identity was given (--recovery-identity, SOPS_AGE_KEY_FILE or SOPS_AGE_KEY)"
    )]
    NoIdentity,
    #[error("cannot decrypt it: none of the age identities from {0} is a recipient of this backup")]
    WrongIdentity(String),
    #[error("cannot decrypt it: {0}")]
    Decrypt(String),
    #[error("cannot encrypt the backup: {0}")]
    Encrypt(String),
    #[error("the decrypted backup is not UTF-8 text")]
    NotText,
    #[error("the decrypted backup is larger than {MAX_INPUT_BYTES} bytes")]
    TooLarge,
    #[error("{path}: {detail}")]
    File { path: String, detail: String },
    #[error(transparent)]
    Keys(#[from] crate::KeyError),
}

/// Whether `bytes` is an age file, binary or ASCII-armored.
pub fn is_encrypted(bytes: &[u8]) -> bool {
    let start = bytes.trim_ascii_start();
    start.starts_with(b"age-encryption.org/") || start.starts_with(b"-----BEGIN AGE ENCRYPTED FILE")
}

/// One recipient as `age -r` takes it: an `age1...` key or an SSH public key line.
pub fn parse_recipient(
    text: &str,
    origin: &str,
) -> Result<Box<dyn age::Recipient + Send>, BackupError> {
    let text = text.trim();
    let bad = || BackupError::Recipient {
        origin: origin.to_string(),
    };
    if text.starts_with("age1") {
        age::x25519::Recipient::from_str(text)
            .map(|r| Box::new(r) as Box<dyn age::Recipient + Send>)
            .map_err(|_| bad())
    } else if text.starts_with("ssh-") {
        age::ssh::Recipient::from_str(text)
            .map(|r| Box::new(r) as Box<dyn age::Recipient + Send>)
            .map_err(|_| bad())
    } else {
        Err(bad())
    }
}

/// A recipients file as `age -R` reads it: one recipient per line, `#` comments, blank lines.
pub fn parse_recipients_file(
    text: &str,
    origin: &str,
) -> Result<Vec<Box<dyn age::Recipient + Send>>, BackupError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|(index, line)| parse_recipient(line, &format!("{origin}, line {}", index + 1)))
        .collect()
}

/// Encrypts `plaintext` to every recipient, ASCII-armored (a text file that diffs and mails well).
pub fn encrypt(
    plaintext: &[u8],
    recipients: &[Box<dyn age::Recipient + Send>],
) -> Result<String, BackupError> {
    if recipients.is_empty() {
        return Err(BackupError::NoRecipients);
    }
    let encrypt_error = |e: &dyn std::fmt::Display| BackupError::Encrypt(e.to_string());
    let encryptor = age::Encryptor::with_recipients(
        recipients.iter().map(|r| r.as_ref() as &dyn age::Recipient),
    )
    .map_err(|e| encrypt_error(&e))?;
    let mut out = Vec::new();
    let armored = ArmoredWriter::wrap_output(&mut out, ArmorFormat::AsciiArmor)
        .map_err(|e| encrypt_error(&e))?;
    let mut writer = encryptor
        .wrap_output(armored)
        .map_err(|e| encrypt_error(&e))?;
    writer
        .write_all(plaintext)
        .and_then(|()| writer.finish())
        .and_then(|armored| armored.finish())
        .map_err(|e| encrypt_error(&e))?;
    String::from_utf8(out).map_err(|e| encrypt_error(&e))
}

/// Age identities to open backups with, and where they came from (for error messages).
#[derive(Default)]
pub struct Identities {
    identities: Vec<Box<dyn age::Identity + Send + Sync>>,
    origins: Vec<String>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identities")
            .field("count", &self.identities.len())
            .field("origins", &self.origins)
            .finish()
    }
}

impl Identities {
    /// Adds the identities of an age identity file (`AGE-SECRET-KEY-1...` lines, `#` comments),
    /// or of an unencrypted OpenSSH private key (ed25519 or RSA).
    pub fn add_text(&mut self, text: &str, origin: &str) -> Result<(), BackupError> {
        let bad = |detail: String| BackupError::Identity {
            origin: origin.to_string(),
            detail,
        };
        if text.trim_start().starts_with("-----BEGIN") {
            let identity =
                age::ssh::Identity::from_buffer(text.as_bytes(), Some(origin.to_string()))
                    .map_err(|_| bad("not a readable SSH private key".into()))?;
            match identity {
                age::ssh::Identity::Unencrypted(_) => self.identities.push(Box::new(identity)),
                age::ssh::Identity::Encrypted(_) => {
                    return Err(bad(
                        "passphrase-protected SSH keys are not supported; use an age identity"
                            .into(),
                    ));
                }
                age::ssh::Identity::Unsupported(_) => {
                    return Err(bad("unsupported SSH key type".into()));
                }
            }
        } else {
            // age's own parser: its errors give a line number, never the line.
            let file = age::IdentityFile::from_buffer(text.as_bytes())
                .map_err(|_| bad("not an age identity file (AGE-SECRET-KEY-1... lines)".into()))?;
            let found = file
                .into_identities()
                .map_err(|e| bad(format!("unusable identity: {e}")))?;
            if found.is_empty() {
                return Err(bad("no age identity in it".into()));
            }
            self.identities.extend(found);
        }
        self.origins.push(origin.to_string());
        Ok(())
    }

    /// Identities from `files` (a flag), else from `SOPS_AGE_KEY_FILE` and `SOPS_AGE_KEY`, the
    /// variables sops users already have set. `env` reads a variable.
    pub fn from_files_or_env(
        files: &[PathBuf],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, BackupError> {
        let mut identities = Self::default();
        let read = |path: &Path| {
            read_limited(path).and_then(|bytes| {
                String::from_utf8(bytes.to_vec())
                    .map(Zeroizing::new)
                    .map_err(|_| BackupError::File {
                        path: path.display().to_string(),
                        detail: "not a text file".into(),
                    })
            })
        };
        for file in files {
            identities.add_text(&read(file)?, &file.display().to_string())?;
        }
        if files.is_empty() {
            if let Some(file) = env("SOPS_AGE_KEY_FILE").filter(|f| !f.is_empty()) {
                let path = PathBuf::from(&file);
                identities.add_text(&read(&path)?, &format!("SOPS_AGE_KEY_FILE ({file})"))?;
            }
            if let Some(key) = env("SOPS_AGE_KEY").map(Zeroizing::new)
                && !key.trim().is_empty()
            {
                identities.add_text(&key, "SOPS_AGE_KEY")?;
            }
        }
        Ok(identities)
    }

    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }
}

/// Opens an age file (binary or armored) with `identities`; at most [`MAX_INPUT_BYTES`] out.
pub fn decrypt(bytes: &[u8], identities: &Identities) -> Result<Zeroizing<Vec<u8>>, BackupError> {
    if identities.is_empty() {
        return Err(BackupError::NoIdentity);
    }
    let decrypt_error = |e: &dyn std::fmt::Display| BackupError::Decrypt(e.to_string());
    let decryptor =
        age::Decryptor::new_buffered(ArmoredReader::new(bytes)).map_err(|e| decrypt_error(&e))?;
    let reader = decryptor
        .decrypt(
            identities
                .identities
                .iter()
                .map(|i| i.as_ref() as &dyn age::Identity),
        )
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => {
                BackupError::WrongIdentity(identities.origins.join(", "))
            }
            other => decrypt_error(&other),
        })?;
    let mut plaintext = Zeroizing::new(Vec::new());
    reader
        .take(MAX_INPUT_BYTES as u64 + 1)
        .read_to_end(&mut plaintext)
        .map_err(|e| decrypt_error(&e))?;
    if plaintext.len() > MAX_INPUT_BYTES {
        return Err(BackupError::TooLarge);
    }
    Ok(plaintext)
}

/// The backup's plaintext: a `v1` `List` of the key Secrets, as YAML.
pub fn backup_document(secrets: &[Secret]) -> Result<Zeroizing<String>, BackupError> {
    let list = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": secrets,
    });
    let text = serde_yaml::to_string(&list).map(Zeroizing::new);
    let mut list = list;
    wipe_json(&mut list);
    text.map_err(|e| BackupError::Encrypt(e.to_string()))
}

fn wipe_json(value: &mut serde_json::Value) {
    use zeroize::Zeroize as _;
    match value {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(wipe_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(wipe_json),
        _ => {}
    }
}

/// A key Secret as read from the cluster, fit to be applied again: name, namespace, labels and
/// annotations (not `kubectl`'s last-applied copy, which holds the key again), type and data.
pub fn restorable_key_secret(secret: &Secret) -> Secret {
    let meta = &secret.metadata;
    let mut annotations = meta.annotations.clone().unwrap_or_default();
    annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    Secret {
        metadata: ObjectMeta {
            name: meta.name.clone(),
            namespace: meta.namespace.clone(),
            labels: meta.labels.clone(),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..Default::default()
        },
        type_: secret.type_.clone(),
        data: secret.data.clone(),
        ..Default::default()
    }
}

/// Whether a Secret carries the sealing-key label (any value: `compromised` keys are kept too).
pub fn is_key_secret(secret: &Secret) -> bool {
    secret
        .metadata
        .labels
        .as_ref()
        .is_some_and(|labels| labels.contains_key(LABEL_SEALING_KEY))
}

/// Where to find age identities, resolved only when an encrypted file is met.
#[derive(Debug, Default, Clone)]
pub struct IdentitySource {
    /// Identity files given on the command line; without them, `SOPS_AGE_KEY_FILE`/`SOPS_AGE_KEY`.
    pub files: Vec<PathBuf>,
}

impl IdentitySource {
    fn resolve(&self) -> Result<Identities, BackupError> {
        Identities::from_files_or_env(&self.files, |name| std::env::var(name).ok())
    }
}

fn read_limited(path: &Path) -> Result<Zeroizing<Vec<u8>>, BackupError> {
    let file_error = |detail: String| BackupError::File {
        path: path.display().to_string(),
        detail,
    };
    let file = std::fs::File::open(path).map_err(|e| file_error(format!("cannot read: {e}")))?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_INPUT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| file_error(format!("cannot read: {e}")))?;
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(file_error(format!("larger than {MAX_INPUT_BYTES} bytes")));
    }
    Ok(bytes)
}

/// The key pairs in one file's bytes: plaintext (PEM, key Secret, List) or an encrypted backup
/// of those, opened with the identities of `source` (resolved once, when first needed).
fn keys_in(
    bytes: &[u8],
    source: &IdentitySource,
    resolved: &mut Option<Identities>,
) -> Result<Vec<KeyPair>, BackupError> {
    let plaintext;
    let bytes = if is_encrypted(bytes) {
        let identities = match resolved {
            Some(found) => found,
            None => resolved.insert(source.resolve()?),
        };
        plaintext = decrypt(bytes, identities)?;
        &plaintext[..]
    } else {
        bytes
    };
    let text = std::str::from_utf8(bytes).map_err(|_| BackupError::NotText)?;
    Ok(load_private_keys(text)?)
}

/// Every private key at `path`: a key file or encrypted backup, or every such file of a
/// directory (other files there, certificates say, are skipped). Errors name the file.
pub fn load_keys(path: &Path, source: &IdentitySource) -> Result<Vec<KeyPair>, BackupError> {
    let is_dir = path.is_dir();
    let files: Vec<PathBuf> = if is_dir {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| BackupError::File {
                path: path.display().to_string(),
                detail: format!("cannot read the directory: {e}"),
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut resolved = None;
    let mut keys: Vec<KeyPair> = Vec::new();
    // keygen writes tls.key and tls.crt side by side: a key file's certificate may be next to it.
    let mut certificates: Vec<crate::Certificate> = Vec::new();
    for file in &files {
        let bytes = read_limited(file)?;
        let looks_like_key = || {
            let text = String::from_utf8_lossy(&bytes);
            text.contains("PRIVATE KEY") || text.contains("tls.key")
        };
        match keys_in(&bytes, source, &mut resolved) {
            // The same key often sits in tls.key and in the Secret manifest next to it.
            Ok(found) => {
                for pair in found {
                    if !keys
                        .iter()
                        .any(|k| k.private.public_key() == pair.private.public_key())
                    {
                        keys.push(pair);
                    }
                }
            }
            // In a directory, certificates and unrelated files sit next to the keys.
            Err(BackupError::Keys(crate::KeyError::NotFound(_))) if is_dir => {
                if let Ok(certificate) = std::str::from_utf8(&bytes)
                    .map_err(|_| ())
                    .and_then(|text| crate::Certificate::from_pem(text).map_err(|_| ()))
                {
                    certificates.push(certificate);
                }
            }
            Err(BackupError::NotText) if is_dir => {}
            Err(BackupError::Keys(_)) if is_dir && !looks_like_key() => {}
            Err(e @ BackupError::File { .. }) => return Err(e),
            Err(e) => {
                return Err(BackupError::File {
                    path: file.display().to_string(),
                    detail: e.to_string(),
                });
            }
        }
    }
    if keys.is_empty() {
        return Err(BackupError::File {
            path: path.display().to_string(),
            detail: "no private key found".into(),
        });
    }
    for pair in keys.iter_mut().filter(|k| k.certificate.is_none()) {
        pair.certificate = certificates
            .iter()
            .find(|c| c.public_key() == pair.private.public_key())
            .cloned();
    }
    Ok(keys)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn identity() -> age::x25519::Identity {
        age::x25519::Identity::generate()
    }

    #[test]
    fn a_backup_opens_with_a_recipient_identity_only() {
        let (ours, theirs) = (identity(), identity());
        let recipient = parse_recipient(&ours.to_public().to_string(), "flag").unwrap();
        let armored = encrypt(b"kind: List\n", &[recipient]).unwrap();
        assert!(is_encrypted(armored.as_bytes()));
        assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));

        let mut good = Identities::default();
        use age::secrecy::ExposeSecret as _;
        good.add_text(ours.to_string().expose_secret(), "ours.txt")
            .unwrap();
        assert_eq!(
            &decrypt(armored.as_bytes(), &good).unwrap()[..],
            b"kind: List\n"
        );

        let mut wrong = Identities::default();
        wrong
            .add_text(theirs.to_string().expose_secret(), "theirs.txt")
            .unwrap();
        let error = decrypt(armored.as_bytes(), &wrong).unwrap_err().to_string();
        assert!(error.contains("theirs.txt"), "{error}");
        assert!(
            error.contains("not a recipient") || error.contains("none of"),
            "{error}"
        );
    }

    #[test]
    fn recipients_files_skip_comments_and_name_bad_lines() {
        let key = identity().to_public().to_string();
        let text = format!("# team\n\n{key}\nnot-a-key\n");
        let error = parse_recipients_file(&text, "team.txt")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("team.txt, line 4:"), "{error}");
        assert_eq!(
            parse_recipients_file(&format!("# x\n{key}\n"), "f")
                .unwrap()
                .len(),
            1
        );
        assert!(matches!(encrypt(b"x", &[]), Err(BackupError::NoRecipients)));
    }

    #[test]
    fn identity_errors_never_quote_the_file() {
        let mut identities = Identities::default();
        let error = identities
            .add_text("AGE-SECRET-KEY-1CANARYNOTAKEY\n", "keys.txt")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("keys.txt:"), "{error}");
        assert!(!error.contains("CANARY"), "{error}");
    }
}
