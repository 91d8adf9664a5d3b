//! The SecretStore / ClusterSecretStore reconciler: a Ready condition on every store, from
//! building its provider client and asking the provider to validate it, re-checked every
//! `--external-secrets-store-requeue-interval`. Only stores of this instance's controller class.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crds::external_secrets::{ClusterSecretStore, SecretStore, SecretStoreStatus, StoreSpec};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use super::plan;
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

/// The status to write on a store, or `None` to write nothing. A store whose `spec.controller`
/// names another controller class is left alone, provider not even asked: the rule that decides
/// which ExternalSecrets this instance syncs (`plan::serves`, ESO's `--controller-class`), so two
/// controllers never fight over one store's Ready condition.
pub async fn next_status<V>(
    spec: &StoreSpec,
    prev: Option<&SecretStoreStatus>,
    our_class: &str,
    validate: impl FnOnce() -> V,
) -> Option<SecretStoreStatus>
where
    V: Future<Output = Validation>,
{
    if !plan::serves(spec, our_class) {
        return None;
    }
    let st = status(prev, &validate().await);
    (prev != Some(&st)).then_some(st)
}

/// Re-checks a store of ours every `every`; another class's store waits for a spec change (one
/// could hand it to us).
fn requeue(spec: &StoreSpec, our_class: &str, every: Duration) -> Action {
    if plan::serves(spec, our_class) {
        Action::requeue(every)
    } else {
        Action::await_change()
    }
}

pub async fn reconcile_secret_store(
    s: Arc<SecretStore>,
    ctx: Arc<Context>,
    every: Duration,
) -> Result<Action, Error> {
    let ns = s.namespace().unwrap_or_default();
    let spec = &s.spec.store;
    let store =
        ResolvedStore::standalone("SecretStore", Some(ns.clone()), s.name_any(), spec.clone());
    let class = &ctx.controller_class;
    if let Some(st) = next_status(spec, s.status.as_ref(), class, || validate(&ctx, &store)).await {
        let api: Api<SecretStore> = Api::namespaced(ctx.client.clone(), &ns);
        report::patch_status(&api, &s.name_any(), &st).await?;
    }
    Ok(requeue(spec, class, every))
}

pub async fn reconcile_cluster_store(
    s: Arc<ClusterSecretStore>,
    ctx: Arc<Context>,
    every: Duration,
) -> Result<Action, Error> {
    let spec = &s.spec.store;
    // Without an ExternalSecret, auth refs must name their namespace (see `ref_namespace`).
    let store = ResolvedStore::standalone("ClusterSecretStore", None, s.name_any(), spec.clone());
    let class = &ctx.controller_class;
    if let Some(st) = next_status(spec, s.status.as_ref(), class, || validate(&ctx, &store)).await {
        let api: Api<ClusterSecretStore> = Api::all(ctx.client.clone());
        report::patch_status(&api, &s.name_any(), &st).await?;
    }
    Ok(requeue(spec, class, every))
}

pub fn error_policy<K>(_s: Arc<K>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(error = %err, "store reconcile error");
    Action::requeue(Duration::from_secs(60))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn spec(controller: Option<&str>) -> StoreSpec {
        let mut s: StoreSpec = serde_yaml::from_str("provider: {fake: {data: []}}").unwrap();
        s.controller = controller.map(String::from);
        s
    }

    /// `next_status` for `spec`, and whether it asked the provider.
    async fn run(
        spec: &StoreSpec,
        prev: Option<&SecretStoreStatus>,
        v: Validation,
    ) -> (Option<SecretStoreStatus>, bool) {
        let asked = Cell::new(false);
        let st = next_status(spec, prev, "ours", || {
            asked.set(true);
            std::future::ready(v)
        })
        .await;
        (st, asked.get())
    }

    #[tokio::test]
    async fn another_controller_class_store_is_left_alone() {
        let theirs = spec(Some("theirs"));
        let (st, asked) = run(&theirs, None, Validation::Valid).await;
        assert_eq!((st, asked), (None, false));
        // Even a store whose status another controller wrote as failed.
        let failed = status(None, &Validation::ValidationFailed("denied".into()));
        let (st, asked) = run(&theirs, Some(&failed), Validation::Valid).await;
        assert_eq!((st, asked), (None, false));
        assert_eq!(
            requeue(&theirs, "ours", Duration::from_secs(5)),
            Action::await_change()
        );
    }

    #[tokio::test]
    async fn our_class_or_none_is_validated_and_written_when_changed() {
        for controller in [None, Some(""), Some("ours")] {
            let s = spec(controller);
            let (st, asked) = run(&s, None, Validation::Valid).await;
            assert!(asked, "{controller:?}");
            let st = st.unwrap();
            assert_eq!(st.conditions[0].status, "True");
            assert_eq!(st.conditions[0].reason.as_deref(), Some("Valid"));
            // The same outcome again writes nothing.
            let (again, asked) = run(&s, Some(&st), Validation::Valid).await;
            assert_eq!((again, asked), (None, true));
            // A failure is written.
            let (failed, _) =
                run(&s, Some(&st), Validation::ValidationFailed("denied".into())).await;
            assert_eq!(failed.unwrap().conditions[0].status, "False");
            assert_eq!(
                requeue(&s, "ours", Duration::from_secs(5)),
                Action::requeue(Duration::from_secs(5))
            );
        }
    }
}
