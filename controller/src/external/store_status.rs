//! The SecretStore / ClusterSecretStore reconciler: a Ready condition on every store, from
//! building its provider client and asking the provider to validate it, re-checked every
//! `--external-secrets-store-requeue-interval`.

use std::sync::Arc;
use std::time::Duration;

use crds::external_secrets::{ClusterSecretStore, SecretStore, SecretStoreStatus};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use super::reconciler::{Context, Error};
use super::secret;
use super::stores::ResolvedStore;
use crate::report;

/// How a store's validation ended: decides the condition's status, reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validation {
    Valid,
    /// The spec or its credentials cannot make a client.
    InvalidProviderConfig(String),
    /// The client was made but the provider refused it.
    ValidationFailed(String),
}

impl Validation {
    pub fn ready(&self) -> bool {
        *self == Validation::Valid
    }

    /// ESO's condition reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Validation::Valid => "Valid",
            Validation::InvalidProviderConfig(_) => "InvalidProviderConfig",
            Validation::ValidationFailed(_) => "ValidationFailed",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Validation::Valid => "store validated",
            Validation::InvalidProviderConfig(m) | Validation::ValidationFailed(m) => m,
        }
    }
}

async fn validate(ctx: &Context, store: &ResolvedStore) -> Validation {
    if let Err(e) = store.spec.provider.kind() {
        return Validation::InvalidProviderConfig(e);
    }
    match ctx.store_client(store).await {
        Err(e) => Validation::InvalidProviderConfig(e.to_string()),
        Ok(sc) => match sc.provider.validate().await {
            Ok(()) => Validation::Valid,
            Err(e) => Validation::ValidationFailed(e.to_string()),
        },
    }
}

fn status(prev: Option<&SecretStoreStatus>, v: &Validation) -> SecretStoreStatus {
    let prev_conditions = prev.map(|p| p.conditions.clone()).unwrap_or_default();
    SecretStoreStatus {
        conditions: secret::set_ready(
            &prev_conditions,
            v.ready(),
            v.reason(),
            v.message(),
            &report::now_rfc3339(),
        ),
        capabilities: Some("ReadOnly".into()),
    }
}

pub async fn reconcile_secret_store(
    s: Arc<SecretStore>,
    ctx: Arc<Context>,
    every: Duration,
) -> Result<Action, Error> {
    let ns = s.namespace().unwrap_or_default();
    let store = ResolvedStore::standalone(
        "SecretStore",
        Some(ns.clone()),
        s.name_any(),
        s.spec.store.clone(),
    );
    let st = status(s.status.as_ref(), &validate(&ctx, &store).await);
    if s.status.as_ref() != Some(&st) {
        let api: Api<SecretStore> = Api::namespaced(ctx.client.clone(), &ns);
        report::patch_status(&api, &s.name_any(), &st).await?;
    }
    Ok(Action::requeue(every))
}

pub async fn reconcile_cluster_store(
    s: Arc<ClusterSecretStore>,
    ctx: Arc<Context>,
    every: Duration,
) -> Result<Action, Error> {
    // Without an ExternalSecret, auth refs must name their namespace (see `ref_namespace`).
    let store = ResolvedStore::standalone(
        "ClusterSecretStore",
        None,
        s.name_any(),
        s.spec.store.clone(),
    );
    let st = status(s.status.as_ref(), &validate(&ctx, &store).await);
    if s.status.as_ref() != Some(&st) {
        let api: Api<ClusterSecretStore> = Api::all(ctx.client.clone());
        report::patch_status(&api, &s.name_any(), &st).await?;
    }
    Ok(Action::requeue(every))
}

pub fn error_policy<K>(_s: Arc<K>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(error = %err, "store reconcile error");
    Action::requeue(Duration::from_secs(60))
}
