//! The in-memory Kubernetes API (kube-fake-client) with the project's resources registered:
//! add objects with `.with_object(..)` and `.build().await`. Tests then assert on what a user
//! would see in the cluster, not on the calls made.

use crds::SealedSecret;
use crds::external_secrets::{ClusterSecretStore, ExternalSecret, SecretStore};
use kube_fake_client::ClientBuilder;

/// An API serving SealedSecrets and their status.
pub fn sealed_secrets() -> ClientBuilder {
    ClientBuilder::new()
        .with_resource::<SealedSecret>()
        .with_status_subresource::<SealedSecret>()
}

/// An API serving ExternalSecrets, SecretStores and ClusterSecretStores, each with its status.
pub fn external_secrets() -> ClientBuilder {
    ClientBuilder::new()
        .with_resource::<ExternalSecret>()
        .with_status_subresource::<ExternalSecret>()
        .with_resource::<SecretStore>()
        .with_status_subresource::<SecretStore>()
        .with_resource::<ClusterSecretStore>()
        .with_status_subresource::<ClusterSecretStore>()
}
