//! AWS Secrets Manager provider against moto's server (a real AWS API emulator) and a tiny
//! local stub for throttling / 5xx answers, which moto cannot produce.

use crate::external_common;

use std::time::Duration;

use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::Tag;
use controller::external::cache::Coalescer;
use controller::external::data::select_property;
use controller::external::metrics::Metrics;
use controller::external::provider::aws::{AwsOptions, AwsProvider, StaticCredentials};
use controller::external::provider::{
    CallRecorder, FindQuery, ProviderError, SecretProvider, ValueRef,
};
use crds::external_secrets::AwsProvider as AwsSpec;
use external_common::{Moto, Stub, sdk_client};
use zeroize::Zeroizing;

fn spec() -> AwsSpec {
    AwsSpec {
        service: "SecretsManager".into(),
        region: "us-east-1".into(),
        ..Default::default()
    }
}

fn creds() -> Option<StaticCredentials> {
    Some(StaticCredentials {
        access_key_id: Zeroizing::new("test".into()),
        secret_access_key: Zeroizing::new("test".into()),
        session_token: None,
    })
}

async fn provider(endpoint: &str, metrics: &Metrics, max_attempts: u32) -> AwsProvider {
    let options = AwsOptions {
        endpoint_override: Some(endpoint.to_string()),
        max_attempts,
        initial_backoff: Duration::from_millis(10),
        operation_timeout: Duration::from_secs(10),
    };
    let calls = CallRecorder {
        metrics: metrics.clone(),
        store: "SecretStore/ns/aws".into(),
        provider: "aws",
    };
    AwsProvider::new(&spec(), creds(), &options, calls)
        .await
        .unwrap()
}

fn text(v: &[u8]) -> &str {
    std::str::from_utf8(v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_manager_against_moto() {
    let moto = Moto::start();
    let seed = sdk_client(&moto).await;
    let metrics = Metrics::default();
    let p = provider(&moto.endpoint, &metrics, 1).await;

    // String and JSON property.
    seed.create_secret()
        .name("app/db")
        .secret_string(r#"{"user":"admin","password":"pw1","nested":{"port":5432}}"#)
        .tags(Tag::builder().key("team").value("payments").build())
        .send()
        .await
        .unwrap();
    let v = p.get(&ValueRef::new("app/db")).await.unwrap();
    assert_eq!(
        text(&select_property("app/db", &v, Some("password")).unwrap()),
        "pw1"
    );
    assert_eq!(
        text(&select_property("app/db", &v, Some("nested.port")).unwrap()),
        "5432"
    );

    // Binary.
    seed.create_secret()
        .name("app/bin")
        .secret_binary(Blob::new(vec![0u8, 1, 2, 255]))
        .send()
        .await
        .unwrap();
    let v = p.get(&ValueRef::new("app/bin")).await.unwrap();
    assert_eq!(v.to_vec(), vec![0u8, 1, 2, 255]);

    // AWSPREVIOUS after PutSecretValue, and a version id as `uuid/<id>`.
    let first = seed
        .create_secret()
        .name("rotating")
        .secret_string("v1")
        .send()
        .await
        .unwrap();
    seed.put_secret_value()
        .secret_id("rotating")
        .secret_string("v2")
        .send()
        .await
        .unwrap();
    let at = |version: &str| ValueRef {
        version: Some(version.to_string()),
        ..ValueRef::new("rotating")
    };
    assert_eq!(
        text(&p.get(&ValueRef::new("rotating")).await.unwrap()),
        "v2"
    );
    assert_eq!(text(&p.get(&at("AWSCURRENT")).await.unwrap()), "v2");
    assert_eq!(text(&p.get(&at("AWSPREVIOUS")).await.unwrap()), "v1");
    let uuid = format!("uuid/{}", first.version_id().unwrap());
    assert_eq!(text(&p.get(&at(&uuid)).await.unwrap()), "v1");

    // Metadata (tags) with metadataPolicy: Fetch.
    let meta = p
        .get(&ValueRef {
            metadata: true,
            ..ValueRef::new("app/db")
        })
        .await
        .unwrap();
    assert_eq!(
        text(&select_property("app/db", &meta, Some("team")).unwrap()),
        "payments"
    );

    // find by tags and by name regexp.
    seed.create_secret()
        .name("app/cache")
        .secret_string("c")
        .tags(Tag::builder().key("team").value("payments").build())
        .send()
        .await
        .unwrap();
    seed.create_secret()
        .name("other/x")
        .secret_string("x")
        .tags(Tag::builder().key("team").value("search").build())
        .send()
        .await
        .unwrap();
    let found = p
        .find(&FindQuery {
            tags: [("team".to_string(), "payments".to_string())].into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        vec!["app/cache", "app/db"]
    );
    let found = p
        .find(&FindQuery {
            name_regexp: Some("^app/(bin|cache)$".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        vec!["app/bin", "app/cache"]
    );

    // Several current keys: one BatchGetSecretValue call for all of them.
    let before = metrics.provider_calls_for("SecretStore/ns/aws");
    let refs: Vec<_> = ["app/db", "app/bin", "rotating", "app/cache", "missing"]
        .iter()
        .map(|k| ValueRef::new(*k))
        .collect();
    let results = p.get_many(&refs).await;
    assert_eq!(metrics.provider_calls_for("SecretStore/ns/aws") - before, 1);
    assert_eq!(text(results[2].as_ref().unwrap()), "v2");
    assert_eq!(results[1].as_ref().unwrap().to_vec(), vec![0u8, 1, 2, 255]);
    assert!(matches!(results[4], Err(ProviderError::NotFound(_))));

    // Coalescing: 50 ExternalSecrets reading 5 keys cost one batch call per window.
    let cache = Coalescer::default();
    let before = metrics.provider_calls_for("SecretStore/ns/aws");
    for _ in 0..50 {
        let r = cache
            .get_many(
                "aws-store",
                &p,
                &refs[..4],
                Duration::from_secs(3600),
                false,
            )
            .await;
        assert!(r.iter().all(|(v, _)| v.is_ok()));
    }
    assert_eq!(metrics.provider_calls_for("SecretStore/ns/aws") - before, 1);

    // A deleted secret is "not found" (feeds deletionPolicy), both scheduled and forced.
    seed.delete_secret()
        .secret_id("app/cache")
        .send()
        .await
        .unwrap();
    let err = p.get(&ValueRef::new("app/cache")).await.unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");
    seed.delete_secret()
        .secret_id("other/x")
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    let err = p.get(&ValueRef::new("other/x")).await.unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");
    assert!(p.validate().await.is_ok());
}

#[tokio::test]
async fn throttling_is_retried_counted_and_never_not_found() {
    let stub = Stub::start(
        400,
        r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
    )
    .await;
    let metrics = Metrics::default();
    let p = provider(&stub.endpoint, &metrics, 3).await;
    let err = p.get(&ValueRef::new("k")).await.unwrap_err();
    assert!(matches!(err, ProviderError::Throttled(_)), "{err:?}");
    assert_eq!(stub.hits.load(std::sync::atomic::Ordering::SeqCst), 3);
    // One failed call plus three throttled attempts, all counted.
    assert_eq!(metrics.provider_calls_for("SecretStore/ns/aws"), 1 + 3);

    let stub = Stub::start(500, r#"{"__type":"InternalServiceError","message":"boom"}"#).await;
    let p = provider(&stub.endpoint, &metrics, 2).await;
    let err = p.get(&ValueRef::new("k")).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert_eq!(stub.hits.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// Runs in a child process (see below) with only the environment naming the endpoint.
#[tokio::test]
#[ignore = "run by endpoint_from_standard_environment in a child process"]
async fn child_reads_through_env_endpoint() {
    let metrics = Metrics::default();
    let calls = CallRecorder {
        metrics: metrics.clone(),
        store: "s".into(),
        provider: "aws",
    };
    let p = AwsProvider::new(&spec(), creds(), &AwsOptions::default(), calls)
        .await
        .unwrap();
    assert_eq!(
        text(&p.get(&ValueRef::new("env/secret")).await.unwrap()),
        "via-env"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_from_standard_environment() {
    let moto = Moto::start();
    sdk_client(&moto)
        .await
        .create_secret()
        .name("env/secret")
        .secret_string("via-env")
        .send()
        .await
        .unwrap();
    // Setting variables in this process is `unsafe` in edition 2024 (and racy across tests):
    // re-run this test binary with the variable set instead.
    for var in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "external_aws::child_reads_through_env_endpoint",
            ])
            .env(var, &moto.endpoint)
            .env_remove("AWS_ENDPOINT_URL")
            .env(var, &moto.endpoint)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{var}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irsa_web_identity_credentials_through_sts() {
    use controller::external::provider::aws::{AwsCredentialSource, TokenSource};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let moto = Moto::start();
    sdk_client(&moto)
        .await
        .create_secret()
        .name("irsa/secret")
        .secret_string("via-irsa")
        .send()
        .await
        .unwrap();
    let tokens = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = tokens.clone();
    let token: TokenSource = std::sync::Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(Zeroizing::new("header.payload.signature".to_string())) })
    });
    let options = AwsOptions {
        endpoint_override: Some(moto.endpoint.clone()),
        max_attempts: 1,
        ..Default::default()
    };
    let calls = CallRecorder {
        metrics: Metrics::default(),
        store: "s".into(),
        provider: "aws",
    };
    let p = AwsProvider::with_source(
        &spec(),
        AwsCredentialSource::WebIdentity {
            role_arn: "arn:aws:iam::123456789012:role/irsa".into(),
            token,
        },
        &options,
        calls,
    )
    .await
    .unwrap();
    for _ in 0..3 {
        assert_eq!(
            text(&p.get(&ValueRef::new("irsa/secret")).await.unwrap()),
            "via-irsa"
        );
    }
    // One service-account token and one STS exchange, reused until near expiry.
    assert_eq!(tokens.load(Ordering::SeqCst), 1);
}
