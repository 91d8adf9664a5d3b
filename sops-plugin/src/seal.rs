//! `generate --seal`: every rendered Kubernetes Secret is re-sealed as a SealedSecret for the
//! cluster's sealing certificate (our `sealing` crate, Bitnami-compatible), so plaintext never
//! reaches Argo CD's manifest cache, UI or API; the controller unseals it in the cluster.

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::stores::json;
use crate::value::{Map, Value};

/// Seals Secrets for one public key.
#[derive(Clone, Debug)]
pub struct Sealer {
    public: sealing::PublicKey,
    /// Namespace for Secrets that name none (Argo CD's `ARGOCD_APP_NAMESPACE`).
    default_namespace: Option<String>,
}

impl Sealer {
    /// From a PEM certificate (or public key), as `kubeseal --fetch-cert` prints it.
    pub fn from_pem(text: &str, default_namespace: Option<String>) -> Result<Self> {
        let (public, _cert) = sealing::parse_sealing_key(text)
            .map_err(|e| Error::Config(format!("sealing certificate: {e}")))?;
        Ok(Sealer {
            public,
            default_namespace: default_namespace.filter(|n| !n.is_empty()),
        })
    }

    /// Whether a document is a core/v1 Secret.
    pub fn is_secret(doc: &Map) -> bool {
        doc.get("kind").and_then(Value::as_str) == Some("Secret")
            && doc.get("apiVersion").and_then(Value::as_str) == Some("v1")
    }

    /// Seals a Secret document into a SealedSecret document.
    pub fn seal(&self, doc: &Map) -> Result<Map> {
        let text = Zeroizing::new(json::emit(doc));
        let mut secret: k8s_openapi::api::core::v1::Secret =
            serde_json::from_str(&text).map_err(|e| {
                Error::Unsupported(format!(
                    "not a valid Secret: {}",
                    strip_value(&e.to_string())
                ))
            })?;
        if secret
            .metadata
            .namespace
            .as_deref()
            .unwrap_or("")
            .is_empty()
        {
            secret.metadata.namespace = self.default_namespace.clone();
        }
        let name = secret.metadata.name.clone().unwrap_or_default();
        let sealed = sealing::seal_secret(
            &secret,
            &self.public,
            &sealing::SealSecretOptions {
                allow_empty_data: true,
            },
        );
        sealing::secret::wipe_secret(&mut secret);
        let sealed =
            sealed.map_err(|e| Error::Unsupported(format!("cannot seal Secret '{name}': {e}")))?;
        let out = serde_json::to_vec(&sealed).map_err(|e| {
            Error::Unsupported(format!("cannot serialize SealedSecret '{name}': {e}"))
        })?;
        json::parse(&out)
    }
}

/// serde errors can quote the offending input; keep only the part before any quote.
fn strip_value(msg: &str) -> String {
    msg.split(['"', '`'])
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Every value decrypted during one render, so that `--seal` can enforce on the output that none
/// leaves outside a SealedSecret, whatever path it took (a `configMapGenerator` reading a SOPS
/// dotenv file, a kustomize `replacements` copy, a `List` of Secrets, a file whose `kind` was
/// edited). Values shorter than [`crate::leak::MIN_SECRET_LEN`] bytes are not checked ("true",
/// "1", port numbers occur everywhere), nor Kubernetes object identity (`apiVersion`, `kind`,
/// a top-level `type`, anything under `metadata`), which other objects legitimately repeat.
#[derive(Debug, Default)]
pub struct Plaintexts {
    needles: crate::leak::Needles,
}

impl Plaintexts {
    /// Records the decrypted values of one opened file (`file` names it in errors).
    pub fn add_opened(&mut self, file: &str, opened: &crate::Opened) {
        use base64::Engine as _;
        for (path, value) in opened.decrypted_values() {
            let segs: Vec<&str> = path.trim_end_matches(':').split(':').collect();
            let identity = segs.contains(&"metadata")
                || matches!(segs.last(), Some(&"apiVersion") | Some(&"kind"))
                || segs == ["type"]
                || segs == ["items", "type"];
            if identity {
                continue;
            }
            let label = format!("{file}, key {}", segs.join("."));
            self.needles.add(value, label.clone());
            // `data` of a Secret is base64: its decoded bytes are the secret too.
            if segs.contains(&"data")
                && let Ok(decoded) = base64::engine::general_purpose::STANDARD
                    .decode(String::from_utf8_lossy(value).trim())
            {
                let decoded = Zeroizing::new(decoded);
                self.needles.add(&decoded, label);
            }
        }
    }

    /// Fails when a document of `output` other than a SealedSecret holds a recorded value (raw
    /// or base64, in any key or string). Errors name the document and the source file and key,
    /// never the value.
    pub fn check_output(&self, output: &[u8]) -> Result<()> {
        if self.needles.is_empty() {
            return Ok(());
        }
        let m = self.needles.build();
        let text = std::str::from_utf8(output)
            .map_err(|_| Error::Unsupported("--seal: the rendered output is not UTF-8".into()))?;
        for chunk in crate::stores::yaml::split_documents(text) {
            let docs = crate::stores::yaml::parse(chunk).map_err(|e| {
                Error::Unsupported(format!(
                    "--seal: cannot read the rendered output to check it: {e}"
                ))
            })?;
            for doc in docs {
                let v = Value::Map(doc);
                if v.get("kind").and_then(Value::as_str) == Some("SealedSecret") {
                    continue;
                }
                if let Some(source) = find_in(&v, &m) {
                    let kind = v
                        .get("kind")
                        .and_then(Value::scalar_text)
                        .unwrap_or_default();
                    let name = v
                        .get("metadata")
                        .and_then(|md| md.get("name"))
                        .and_then(Value::scalar_text)
                        .unwrap_or_default();
                    return Err(Error::Unsupported(format!(
                        "--seal: {kind} '{name}' would carry a decrypted value ({source}) outside a \
                         SealedSecret; refusing to render. Put secret values only into Secrets, \
                         or keep non-secret values unencrypted in the SOPS file"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The label of the first recorded value found in any key or string of `v`.
fn find_in<'a>(v: &Value, m: &'a crate::leak::Matcher<'_>) -> Option<&'a str> {
    match v {
        Value::Map(items) => items.iter().find_map(|(k, v)| {
            let key = match k {
                crate::value::Key::Str(s) | crate::value::Key::Comment(s) => s,
            };
            m.find(key.as_bytes()).or_else(|| find_in(v, m))
        }),
        Value::Seq(items) => items.iter().find_map(|i| find_in(i, m)),
        Value::Bytes(b) => m.find(b),
        other => other.scalar_text().and_then(|t| m.find(t.as_bytes())),
    }
}
