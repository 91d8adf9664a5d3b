//! The key manager: loads the sealing key Secrets (Bitnami's included) and keeps watching them,
//! makes the first key on an empty cluster and renews keys on schedule. Keys are never deleted.

use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::watcher;
use sealing::{Certificate, PrivateKey};
use time::OffsetDateTime;
use tokio::sync::watch;

use super::keyring::{KeyRing, SealingKey};

/// Label selector of the sealing keys in use (the key Secret format is `sealing::key_secret`'s).
pub const ACTIVE_SELECTOR: &str = sealing::key_secret::ACTIVE_SELECTOR;

/// Settings of the key manager (Bitnami's flag names).
#[derive(Clone, Debug)]
pub struct KeyConfig {
    pub namespace: String,
    pub prefix: String,
    pub key_size: usize,
    pub key_ttl: Duration,
    pub my_cn: String,
    /// Zero disables periodic renewal.
    pub renew_period: Duration,
    pub cutoff: Option<OffsetDateTime>,
    pub extra_labels: Vec<(String, String)>,
    pub extra_annotations: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyManagerError {
    #[error("{0}")]
    BadKeySecret(#[from] sealing::KeyError),
    #[error("cannot generate a sealing key: {0}")]
    Generate(String),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// Reads a key Secret through the one reader of the format; the controller also needs its
/// `tls.crt`, which it serves to `kubeseal`.
pub fn parse_key_secret(secret: &Secret) -> Result<SealingKey, KeyManagerError> {
    let pair = sealing::key_secret::parse_key_secret(secret)?;
    let certificate = pair.certificate.ok_or_else(|| {
        sealing::KeyError::Document(format!(
            "{}: has no data.\"tls.crt\" (the controller serves it to kubeseal)",
            pair.origin
        ))
    })?;
    let created = secret
        .metadata
        .creation_timestamp
        .as_ref()
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t.0.as_second()).ok());
    let name = secret.metadata.name.clone().unwrap_or_default();
    Ok(SealingKey::new(pair.private, certificate, name, created))
}

/// Whether a new key is due: none yet, the newest is older than the cutoff, or older than the
/// renewal period.
pub fn needs_new_key(newest: Option<&SealingKey>, now: OffsetDateTime, config: &KeyConfig) -> bool {
    let Some(newest) = newest else { return true };
    let born = newest.certificate.not_before().max(newest.created);
    if config.cutoff.is_some_and(|cutoff| born < cutoff) {
        return true;
    }
    !config.renew_period.is_zero() && now - born >= config.renew_period
}

/// How long until the next renewal is due (`None`: renewal disabled).
pub fn until_next_renewal(
    newest: Option<&SealingKey>,
    now: OffsetDateTime,
    config: &KeyConfig,
) -> Option<Duration> {
    if config.renew_period.is_zero() {
        return None;
    }
    let Some(newest) = newest else {
        return Some(Duration::ZERO);
    };
    let born = newest.certificate.not_before().max(newest.created);
    let due = born + config.renew_period;
    Some(Duration::try_from(due - now).unwrap_or(Duration::ZERO))
}

/// Generates a key pair and stores it as a new key Secret (`generateName: <prefix>`).
pub async fn create_key(
    client: &kube::Client,
    config: &KeyConfig,
) -> Result<SealingKey, KeyManagerError> {
    let (bits, cn, ttl) = (config.key_size, config.my_cn.clone(), config.key_ttl);
    // RSA-4096 generation takes a second or more: keep it off the async workers.
    let (private, certificate) = tokio::task::spawn_blocking(move || {
        let private =
            PrivateKey::generate(bits).map_err(|e| KeyManagerError::Generate(e.to_string()))?;
        let certificate = Certificate::self_signed(&private, &cn, ttl)
            .map_err(|e| KeyManagerError::Generate(e.to_string()))?;
        Ok::<_, KeyManagerError>((private, certificate))
    })
    .await
    .map_err(|e| KeyManagerError::Generate(e.to_string()))??;

    let metadata = ObjectMeta {
        // Named here rather than by `generateName`, as the API server would: same shape.
        name: Some(format!("{}{}", config.prefix, random_suffix())),
        namespace: Some(config.namespace.clone()),
        labels: Some(config.extra_labels.iter().cloned().collect()),
        annotations: (!config.extra_annotations.is_empty())
            .then(|| config.extra_annotations.iter().cloned().collect()),
        ..Default::default()
    };
    let secret = sealing::key_secret::key_secret(&private, &certificate, metadata)
        .map_err(|e| KeyManagerError::Generate(e.to_string()))?;
    let api: Api<Secret> = Api::namespaced(client.clone(), &config.namespace);
    let mut created = api.create(&PostParams::default(), &secret).await?;
    sealing::secret::wipe_secret(&mut created);
    let name = created.metadata.name.clone().unwrap_or_default();
    // The certificate is public; Bitnami logs it too, so that users can seal right away.
    tracing::info!(secret = %name, certificate = %certificate.to_pem(), "new sealing key created");
    Ok(SealingKey::new(
        private,
        certificate,
        name,
        Some(OffsetDateTime::now_utc()),
    ))
}

/// Five characters as Kubernetes' `generateName` appends (no vowels, no look-alike digits).
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut bytes = [0u8; 5];
    // Names need no secrecy, but AWS-LC's generator is already here and cannot fail in practice.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// Loads a key Secret into the ring, logging (never failing on) a bad one.
fn load_into(ring: &KeyRing, secret: &Secret) -> bool {
    match parse_key_secret(secret) {
        Ok(key) => {
            let name = key.secret_name.clone();
            let changed = ring.insert(key);
            if changed {
                tracing::info!(secret = %name, "sealing key loaded");
            }
            changed
        }
        Err(e) => {
            tracing::error!(error = %e, "ignoring a key Secret that cannot be read");
            false
        }
    }
}

/// Keeps `ring` equal to the active key Secrets: picks up keys restored from backup or added by
/// hand, and drops keys relabelled (e.g. `compromised`) or deleted. `loaded` turns true once the
/// first full listing is in; `changes` ticks after every change (to re-check failed objects).
pub async fn watch_keys(
    client: kube::Client,
    config: KeyConfig,
    ring: KeyRing,
    loaded: watch::Sender<bool>,
    changes: tokio::sync::broadcast::Sender<()>,
) {
    let api: Api<Secret> = Api::namespaced(client.clone(), &config.namespace);
    // Installs from before key labels (Bitnami < 0.9) keep their key in a Secret named the prefix.
    if let Ok(Some(legacy)) = api.get_opt(&config.prefix).await {
        load_into(&ring, &legacy);
    }
    let mut stream = watcher(api, watcher::Config::default().labels(ACTIVE_SELECTOR)).boxed();
    // The legacy Secret is not matched by the label selector: it stays once loaded.
    let mut initial_names = vec![config.prefix.clone()];
    while let Some(event) = stream.next().await {
        let changed = match event {
            Ok(watcher::Event::Init) => {
                initial_names.truncate(1);
                false
            }
            Ok(watcher::Event::InitApply(secret)) => {
                initial_names.push(secret.metadata.name.clone().unwrap_or_default());
                load_into(&ring, &secret)
            }
            Ok(watcher::Event::InitDone) => {
                // After a re-list (e.g. the watch broke), drop keys deleted or relabelled meanwhile.
                for gone in ring
                    .names()
                    .into_iter()
                    .filter(|n| !initial_names.contains(n))
                {
                    ring.remove(&gone);
                    tracing::warn!(secret = %gone, "sealing key no longer active: removed from the key ring");
                }
                let _ = loaded.send(true);
                true
            }
            Ok(watcher::Event::Apply(secret)) => load_into(&ring, &secret),
            Ok(watcher::Event::Delete(secret)) => {
                let name = secret.metadata.name.unwrap_or_default();
                let removed = ring.remove(&name);
                if removed {
                    tracing::warn!(secret = %name, "sealing key no longer active: removed from the key ring");
                }
                removed
            }
            Err(e) => {
                tracing::warn!(error = %e, "watching key Secrets failed; retrying");
                tokio::time::sleep(Duration::from_secs(5)).await;
                false
            }
        };
        if changed {
            let _ = changes.send(());
        }
    }
}

/// Makes the first key when there is none, then renews on schedule. Run on the leader only.
pub async fn renew_keys(
    client: kube::Client,
    config: KeyConfig,
    ring: KeyRing,
    changes: tokio::sync::broadcast::Sender<()>,
) {
    loop {
        let now = OffsetDateTime::now_utc();
        let newest = ring.newest();
        if needs_new_key(newest.as_deref(), now, &config) {
            match create_key(&client, &config).await {
                Ok(key) => {
                    ring.insert(key);
                    let _ = changes.send(());
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot create a sealing key; retrying in 30s");
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            }
            continue;
        }
        let wait = until_next_renewal(ring.newest().as_deref(), now, &config)
            .unwrap_or(Duration::from_secs(3600));
        // Wake at least hourly so keys added or removed meanwhile are taken into account.
        tokio::time::sleep(wait.clamp(Duration::from_secs(1), Duration::from_secs(3600))).await;
    }
}
