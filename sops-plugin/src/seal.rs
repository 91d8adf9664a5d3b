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
        let v = Value::Map(doc.clone());
        v.get("kind").and_then(Value::as_str) == Some("Secret")
            && v.get("apiVersion").and_then(Value::as_str) == Some("v1")
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
