//! Commands that work without a cluster: make a sealing key, and show what the controller would
//! unseal from a set of SealedSecret files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use k8s_openapi::ByteString;
use sealing::{Certificate, KeyPair, PrivateKey};

/// Writes `tls.key`, `tls.crt` and the key Secret manifest (`<name>.yaml`) into `out_dir`.
/// Never replaces a file (nor follows a symlink planted in its place): overwriting a key file
/// could destroy the only copy of an older key, and an existing file's mode could leave the new
/// private key readable by others.
pub fn keygen(
    out_dir: &Path,
    bits: usize,
    common_name: &str,
    validity: std::time::Duration,
    name: &str,
    namespace: &str,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let key_path = out_dir.join("tls.key");
    let cert_path = out_dir.join("tls.crt");
    let manifest_path = out_dir.join(format!("{name}.yaml"));
    for path in [&key_path, &cert_path, &manifest_path] {
        if std::fs::symlink_metadata(path).is_ok() {
            bail!(
                "{} already exists: keygen never overwrites key files (choose another --out-dir or move the old files away)",
                path.display()
            );
        }
    }
    let key = PrivateKey::generate(bits)?;
    let cert = Certificate::self_signed(&key, common_name, validity)?;
    let manifest = sealing::key_secret::key_secret_manifest(&key, &cert, name, namespace)?;
    let manifest_yaml = zeroize::Zeroizing::new(serde_yaml::to_string(&manifest)?);

    write_new(&key_path, key.to_pkcs1_pem()?.as_bytes(), 0o600)?;
    write_new(&cert_path, cert.to_pem().as_bytes(), 0o644)?;
    write_new(&manifest_path, manifest_yaml.as_bytes(), 0o600)?;
    Ok(vec![key_path, cert_path, manifest_path])
}

/// Creates `path` with `mode` (before the umask); fails if anything, a symlink included, is there.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    options
        .open(path)
        .and_then(|mut f| f.write_all(contents).and_then(|()| f.sync_all()))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reads a file, or stdin when `path` is `None`, refusing more than
/// [`sealing::documents::MAX_INPUT_BYTES`].
pub fn read_input(path: Option<&Path>) -> Result<zeroize::Zeroizing<String>> {
    match path {
        Some(path) => std::fs::File::open(path)
            .and_then(sealing::documents::read_bounded)
            .with_context(|| format!("cannot read {}", path.display())),
        None => sealing::documents::read_bounded(std::io::stdin()).context("cannot read stdin"),
    }
}

/// Loads every private key found at `path`: a file, or every file of a directory; encrypted
/// key backups are opened with the age identities of `identities`.
pub fn load_keys(
    path: &Path,
    identities: &sealing::backup::IdentitySource,
) -> Result<Vec<KeyPair>> {
    Ok(sealing::backup::load_keys(path, identities)?)
}

/// What `unseal` prints for each value when values are hidden.
fn redacted(value: &[u8]) -> ByteString {
    ByteString(format!("<redacted: {} bytes>", value.len()).into_bytes())
}

/// Unseals every SealedSecret document of `text` and renders the Secrets as YAML. Failures are
/// reported per object; the result says how many failed.
pub fn unseal_documents(
    text: &str,
    source: &str,
    keys: &[&PrivateKey],
    show_values: bool,
) -> Result<(String, Vec<String>)> {
    let mut out = String::new();
    let mut failures = Vec::new();
    // The iterator ends after a syntax error: nothing after it can be read reliably.
    for document in sealing::documents::documents(text) {
        let (index, document) = match document {
            Ok(found) => found,
            Err(e) => {
                failures.push(format!("{source}: {e}"));
                continue;
            }
        };
        let what = format!("{source}: document {index}");
        let value = &document.0;
        if value.get("kind").and_then(|k| k.as_str()) != Some("SealedSecret") {
            continue;
        }
        let sealed: crds::SealedSecret = match serde::Deserialize::deserialize(value) {
            Ok(s) => s,
            Err(_) => {
                failures.push(format!("{what}: not a valid SealedSecret"));
                continue;
            }
        };
        let what = format!(
            "{what} ({}/{})",
            sealed.metadata.namespace.as_deref().unwrap_or(""),
            sealed.metadata.name.as_deref().unwrap_or("")
        );
        match sealing::unseal(&sealed, keys) {
            Ok(unsealed) => {
                let mut secret = unsealed.to_secret();
                if !show_values {
                    let hidden: BTreeMap<String, ByteString> = unsealed
                        .data
                        .iter()
                        .map(|(k, v)| (k.clone(), redacted(v)))
                        .collect();
                    sealing::secret::wipe_secret(&mut secret);
                    secret.data = Some(hidden);
                    secret.string_data = secret.data.take().map(|d| {
                        d.into_iter()
                            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                            .collect()
                    });
                }
                let rendered = serde_yaml::to_string(&secret);
                sealing::secret::wipe_secret(&mut secret);
                out.push_str("---\n");
                out.push_str(&rendered?);
            }
            Err(e) => failures.push(format!("{what}: {e}")),
        }
    }
    Ok((out, failures))
}
