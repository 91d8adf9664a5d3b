//! Last checks on what leaves the plugin: secret byte strings searched for in an output, raw and
//! base64-encoded at any alignment (a secret embedded in a larger file that kustomize then
//! base64-encodes shows up as one of three aligned encodings).

use aho_corasick::AhoCorasick;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

/// Shortest secret a check looks for: shorter values ("true", "1", port numbers) occur in
/// manifests by chance, and flagging them would fail honest renders.
pub const MIN_SECRET_LEN: usize = 8;

/// Shortest aligned base64 chunk searched for (8 characters); a shorter one matches by chance.
const MIN_CHUNK: usize = 6;

/// A set of secrets, each with a label that may be shown (it never contains the secret).
#[derive(Default)]
pub struct Needles {
    patterns: Vec<Zeroizing<Vec<u8>>>,
    /// Index into `labels` per pattern.
    owner: Vec<usize>,
    labels: Vec<String>,
}

impl std::fmt::Debug for Needles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Needles")
            .field("secrets", &self.labels.len())
            .finish_non_exhaustive()
    }
}

impl Needles {
    /// Whether nothing is searched for.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Adds a secret (ignored when shorter than [`MIN_SECRET_LEN`]): itself and its base64
    /// encodings (standard and URL-safe) at the three alignments.
    pub fn add(&mut self, secret: &[u8], label: impl Into<String>) {
        let secret = trim_ascii(secret);
        if secret.len() < MIN_SECRET_LEN {
            return;
        }
        let id = self.labels.len();
        self.labels.push(label.into());
        self.push(secret.to_vec(), id);
        for shift in 0..3 {
            let body = &secret[shift.min(secret.len())..];
            let body = &body[..body.len() / 3 * 3];
            if body.len() < MIN_CHUNK {
                continue;
            }
            for enc in [STANDARD_NO_PAD.encode(body), URL_SAFE_NO_PAD.encode(body)] {
                self.push(enc.into_bytes(), id);
            }
        }
    }

    fn push(&mut self, p: Vec<u8>, id: usize) {
        if !self
            .patterns
            .iter()
            .zip(&self.owner)
            .any(|(q, o)| *o == id && q.as_slice() == p.as_slice())
        {
            self.patterns.push(Zeroizing::new(p));
            self.owner.push(id);
        }
    }

    /// Compiles the set for searching.
    pub fn build(&self) -> Matcher<'_> {
        let ac = AhoCorasick::new(self.patterns.iter().map(|p| p.as_slice())).ok();
        Matcher { set: self, ac }
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// A compiled [`Needles`] set.
pub struct Matcher<'a> {
    set: &'a Needles,
    ac: Option<AhoCorasick>,
}

impl Matcher<'_> {
    /// The label of the first secret found in `hay` (raw or base64 at any alignment), also
    /// looking inside `hay` when it is itself base64 text.
    pub fn find(&self, hay: &[u8]) -> Option<&str> {
        let ac = self.ac.as_ref()?;
        if let Some(m) = ac.find(hay) {
            return Some(&self.set.labels[self.set.owner[m.pattern().as_usize()]]);
        }
        let decoded = Zeroizing::new(decode_base64(hay)?);
        let m = ac.find(decoded.as_slice())?;
        Some(&self.set.labels[self.set.owner[m.pattern().as_usize()]])
    }
}

/// Decodes text that is entirely base64 (standard or URL-safe, padding optional).
fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    let t = trim_ascii(text);
    if t.len() < 12 {
        return None;
    }
    let unpadded = t
        .strip_suffix(b"==")
        .or_else(|| t.strip_suffix(b"="))
        .unwrap_or(t);
    STANDARD_NO_PAD
        .decode(unpadded)
        .or_else(|_| URL_SAFE_NO_PAD.decode(unpadded))
        .ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn finds_raw_and_every_base64_alignment() {
        let mut n = Needles::default();
        n.add(b"AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQ", "key");
        n.add(b"true", "short");
        let m = n.build();
        assert_eq!(
            m.find(b"x AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQ y"),
            Some("key")
        );
        for prefix in ["", "a", "ab", "# comment\n"] {
            let text = format!("{prefix}AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQ\n");
            let b64 = base64::engine::general_purpose::STANDARD.encode(text);
            assert_eq!(
                m.find(format!("data: {b64}").as_bytes()),
                Some("key"),
                "{prefix:?}"
            );
        }
        assert_eq!(m.find(b"enabled: true"), None);
        assert_eq!(m.find(b"nothing here"), None);
    }
}
