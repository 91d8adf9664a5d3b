//! The test canary. Every secret value a test suite creates contains [`CANARY`]; nothing a test
//! prints, no error or panic message, and no file a test run leaves behind may contain it, raw
//! or encoded. `scripts/canary-check.sh` runs the test suite and then `canary-scan` over its
//! output and the files left in its private temporary directory.
//!
//! Tests that assert on one output (an error, a log buffer, a child's stderr) call
//! [`assert_absent`] right there, which names the place of the leak.

use base64::Engine as _;

/// The planted value. Distinctive enough never to occur by chance; plain ASCII so that every
/// format (YAML, JSON, INI, dotenv, HTTP headers) can carry it unquoted.
pub const CANARY: &str = "CANARY-7c1e5a-never-print-me";

/// `CANARY` followed by `suffix`: a distinct secret value that the scan still recognises.
pub fn value(suffix: &str) -> String {
    format!("{CANARY}{suffix}")
}

/// Every form in which the canary can leak: raw, hex, and base64 (standard and URL-safe) at
/// the three alignments it can have inside a longer encoded value.
pub fn forms() -> Vec<(&'static str, String)> {
    let raw = CANARY.as_bytes();
    let mut forms = vec![
        ("raw", CANARY.to_string()),
        ("hex", hex::encode(raw)),
        ("HEX", hex::encode_upper(raw)),
    ];
    for skip in 0..3 {
        // Only whole 3-byte groups encode the same wherever the canary starts in the value.
        let aligned = &raw[skip..];
        let whole = &aligned[..aligned.len() / 3 * 3];
        let std = base64::engine::general_purpose::STANDARD_NO_PAD.encode(whole);
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(whole);
        forms.push(("base64", std.clone()));
        if url != std {
            forms.push(("base64url", url));
        }
    }
    forms
}

/// Where the canary occurs in `haystack`: the byte offset and the form found.
pub fn find(haystack: &[u8]) -> Option<(usize, &'static str)> {
    forms()
        .into_iter()
        .filter_map(|(name, form)| {
            haystack
                .windows(form.len())
                .position(|w| w == form.as_bytes())
                .map(|at| (at, name))
        })
        .min()
}

/// Panics when `text` contains the canary. `what` names the output (e.g. "kubeseal stderr");
/// the message says where, never the text itself, so that the panic does not leak it again.
#[track_caller]
pub fn assert_absent(what: &str, text: impl AsRef<[u8]>) {
    if let Some((at, form)) = find(text.as_ref()) {
        panic!("the secret canary leaked into {what} ({form} form at byte {at})");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_encoding_at_every_alignment() {
        for prefix in ["", "a", "ab", "abc"] {
            let value = format!("{prefix}{}-tail", value("x"));
            let std = base64::engine::general_purpose::STANDARD.encode(&value);
            let url = base64::engine::general_purpose::URL_SAFE.encode(&value);
            for encoded in [
                value.clone(),
                std,
                url,
                hex::encode(&value),
                hex::encode_upper(&value),
            ] {
                assert!(find(encoded.as_bytes()).is_some(), "{prefix:?}: {encoded}");
            }
        }
    }

    #[test]
    fn ignores_text_without_it() {
        assert_eq!(find(b"CANARY-7c1e5a-never-prin"), None);
        assert_eq!(find(b""), None);
        assert_absent("a clean log", "password: <redacted>");
    }

    #[test]
    #[should_panic(expected = "leaked into stderr (raw form at byte 7)")]
    fn assert_absent_names_the_place_not_the_value() {
        assert_absent("stderr", format!("error: {CANARY}"));
    }
}
