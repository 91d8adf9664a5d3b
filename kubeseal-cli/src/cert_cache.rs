//! The last certificate fetched from each controller, kept so that a changed sealing key is noticed.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

/// `$XDG_CACHE_HOME/kubeseal/certs/CONTEXT_NAMESPACE_NAME.pem` (`~/.cache` without XDG_CACHE_HOME).
pub fn path(context: &str, namespace: &str, name: &str) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))?;
    let file = [context, namespace, name]
        .iter()
        .map(|part| file_safe(part))
        .collect::<Vec<_>>()
        .join("_");
    Some(base.join("kubeseal/certs").join(format!("{file}.pem")))
}

/// Keeps letters, digits, `-` and `.`; every other byte becomes `%XX`, so distinct keys stay
/// distinct and none escapes the cache directory.
fn file_safe(part: &str) -> String {
    let mut out = String::new();
    for byte in part.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' => out.push(byte as char),
            b'.' if !out.is_empty() => out.push('.'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// SHA-256 of the certificate (or of the public key when the PEM has no certificate).
pub fn fingerprint(pem: &str) -> Option<String> {
    let (public, certificate) = sealing::parse_sealing_key(pem).ok()?;
    Some(match certificate {
        Some(certificate) => certificate.sha256_fingerprint(),
        None => public.fingerprint(),
    })
}

/// The warning to print when `fetched` differs from the certificate cached before it.
pub fn change_warning(cached: Option<&str>, fetched: &str, controller: &str) -> Option<String> {
    let old = fingerprint(cached?)?;
    let new = fingerprint(fetched)?;
    (old != new).then(|| {
        format!(
            "warning: the sealing certificate of {controller} changed since the last fetch: \
             was SHA256 {old}, now SHA256 {new}. If the controller did not renew its key, \
             check that you are talking to the right cluster before sealing with it."
        )
    })
}

/// Compares `fetched` with the cached certificate, warns on stderr when it changed, and caches it.
/// The cache is a convenience: failing to use it is a warning, never an error.
pub fn remember(path: &Path, fetched: &str, controller: &str) {
    let cached = std::fs::read_to_string(path).ok();
    if let Some(warning) = change_warning(cached.as_deref(), fetched, controller) {
        eprintln!("{warning}");
    }
    if cached.as_deref() == Some(fetched) {
        return;
    }
    if let Err(e) = store(path, fetched) {
        eprintln!("warning: {e:#}");
    }
}

fn store(path: &Path, pem: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the cache directory {}", dir.display()))?;
    }
    crate::output::write_atomically(path, pem.as_bytes())
        .with_context(|| format!("cannot cache the certificate in {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_names_stay_inside_the_directory_and_distinct() {
        assert_eq!(file_safe("../x"), "%2E.%2Fx");
        assert_ne!(file_safe("a_b"), file_safe("a%5Fb"));
        assert_eq!(file_safe("kind-local"), "kind-local");
    }
}
