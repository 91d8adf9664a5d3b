//! Vault provider (vaultrs) against the in-repo Vault API stand-in (`test_kit::vault_standin`,
//! not a real Vault: none can be installed here).

use std::time::Duration;

use controller::external::data::{extract_map, select_property};
use controller::external::metrics::Metrics;
use controller::external::provider::vault::{JwtSource, VaultLogin, VaultOptions, VaultProvider};
use controller::external::provider::{
    CallRecorder, FindQuery, ProviderError, SecretProvider, ValueRef,
};
use crds::external_secrets::{VaultAuth, VaultKvVersion, VaultProvider as VaultSpec};
use serde_json::json;
use test_kit::vault_standin::VaultStandin;
use zeroize::Zeroizing;

fn spec(server: &str, version: VaultKvVersion, namespace: Option<&str>) -> VaultSpec {
    VaultSpec {
        server: server.to_string(),
        path: Some("secret".into()),
        version,
        namespace: namespace.map(str::to_string),
        ..Default::default()
    }
}

fn calls() -> CallRecorder {
    CallRecorder {
        metrics: Metrics::default(),
        store: "SecretStore/ns/vault".into(),
        provider: "vault",
    }
}

fn token(t: &str) -> VaultLogin {
    VaultLogin::Token(Zeroizing::new(t.to_string()))
}

fn text(v: &[u8]) -> String {
    String::from_utf8(v.to_vec()).unwrap()
}

fn at(key: &str, version: &str) -> ValueRef {
    ValueRef {
        version: Some(version.into()),
        ..ValueRef::new(key)
    }
}

#[tokio::test]
async fn kv2_token_versions_properties_metadata_and_errors() {
    let vault = VaultStandin::start(&[]).await.unwrap();
    vault.add_token("root", Duration::from_secs(3600), false);
    vault.put_kv2("", "secret", "foo", json!({"my-value": "v1"}));
    vault.put_kv2(
        "",
        "secret",
        "foo",
        json!({"my-value": "v2", "nested": {"db": {"port": 5432}}}),
    );
    vault.set_kv2_custom_metadata(
        "",
        "secret",
        "foo",
        [("dev".to_string(), "alice".to_string())].into(),
    );
    let p = VaultProvider::new(
        &spec(&vault.addr, VaultKvVersion::V2, None),
        token("root"),
        &VaultOptions::default(),
        calls(),
    )
    .unwrap();
    let v = p.get(&ValueRef::new("foo")).await.unwrap();
    assert_eq!(
        text(&select_property("foo", &v, Some("my-value")).unwrap()),
        "v2"
    );
    assert_eq!(
        text(&select_property("foo", &v, Some("nested.db.port")).unwrap()),
        "5432"
    );
    let v1 = p.get(&at("foo", "1")).await.unwrap();
    assert_eq!(
        text(&select_property("foo", &v1, Some("my-value")).unwrap()),
        "v1"
    );
    // The key may repeat the mount, as ESO accepts.
    assert_eq!(p.get(&ValueRef::new("secret/foo")).await.unwrap(), v);
    let all = extract_map("foo", &v, None).unwrap();
    assert_eq!(all.len(), 2);
    let meta = p
        .get(&ValueRef {
            metadata: true,
            ..ValueRef::new("foo")
        })
        .await
        .unwrap();
    assert_eq!(
        text(&select_property("foo", &meta, Some("dev")).unwrap()),
        "alice"
    );

    // 404: missing path, missing version, soft-deleted latest version.
    assert!(matches!(
        p.get(&ValueRef::new("nope")).await,
        Err(ProviderError::NotFound(_))
    ));
    assert!(matches!(
        p.get(&at("foo", "9")).await,
        Err(ProviderError::NotFound(_))
    ));
    vault.put_kv2("", "secret", "gone", json!({"a": "b"}));
    vault.soft_delete_kv2("", "secret", "gone");
    let err = p.get(&ValueRef::new("gone")).await.unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");
    assert!(matches!(
        p.get(&at("foo", "x")).await,
        Err(ProviderError::Config(_))
    ));
    assert!(p.validate().await.is_ok());

    // 403 with a bad token.
    let bad = VaultProvider::new(
        &spec(&vault.addr, VaultKvVersion::V2, None),
        token("wrong"),
        &VaultOptions::default(),
        calls(),
    )
    .unwrap();
    let err = bad.get(&ValueRef::new("foo")).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unauthorized(_)), "{err:?}");
    assert!(bad.validate().await.is_err());
}

#[tokio::test]
async fn kv1_read_and_find() {
    let vault = VaultStandin::start(&["kv"]).await.unwrap();
    vault.add_token("root", Duration::from_secs(3600), false);
    vault.put_kv1("", "kv", "app/db", json!({"user": "u", "password": "p"}));
    vault.put_kv1("", "kv", "app/cache", json!({"url": "redis://x"}));
    vault.put_kv1("", "kv", "other", json!({"x": "y"}));
    let mut s = spec(&vault.addr, VaultKvVersion::V1, None);
    s.path = Some("kv".into());
    let p = VaultProvider::new(&s, token("root"), &VaultOptions::default(), calls()).unwrap();
    let v = p.get(&ValueRef::new("app/db")).await.unwrap();
    assert_eq!(
        text(&select_property("app/db", &v, Some("user")).unwrap()),
        "u"
    );
    let found = p
        .find(&FindQuery {
            path: Some("app".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    // Relative to find.path, as ESO names them.
    assert_eq!(found.keys().collect::<Vec<_>>(), vec!["cache", "db"]);
    let found = p
        .find(&FindQuery {
            name_regexp: Some("^oth".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.keys().collect::<Vec<_>>(), vec!["other"]);
}

#[tokio::test]
async fn kv2_find_by_tags() {
    let vault = VaultStandin::start(&[]).await.unwrap();
    vault.add_token("root", Duration::from_secs(3600), false);
    for (path, team) in [("a/one", "x"), ("a/two", "y"), ("b/three", "x")] {
        vault.put_kv2("", "secret", path, json!({"k": path}));
        vault.set_kv2_custom_metadata("", "secret", path, [("team".into(), team.into())].into());
    }
    let p = VaultProvider::new(
        &spec(&vault.addr, VaultKvVersion::V2, None),
        token("root"),
        &VaultOptions::default(),
        calls(),
    )
    .unwrap();
    let found = p
        .find(&FindQuery {
            tags: [("team".to_string(), "x".to_string())].into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.keys().collect::<Vec<_>>(), vec!["a/one", "b/three"]);
}

#[tokio::test]
async fn approle_logs_in_once_renews_and_relogs_on_403() {
    let vault = VaultStandin::start(&[]).await.unwrap();
    vault.add_approle("approle", "role-1", "secret-1");
    vault.put_kv2("", "secret", "foo", json!({"a": "1"}));
    vault.set_login_ttl(Duration::from_secs(4));
    let mut s = spec(&vault.addr, VaultKvVersion::V2, None);
    s.auth = Some(VaultAuth::default());
    let p = VaultProvider::new(
        &s,
        VaultLogin::AppRole {
            mount: "approle".into(),
            role_id: Zeroizing::new("role-1".into()),
            secret_id: Zeroizing::new("secret-1".into()),
        },
        &VaultOptions::default(),
        calls(),
    )
    .unwrap();
    // Many reads, concurrent and sequential: one login (ESO: one per reconcile).
    let foo = ValueRef::new("foo");
    let reads = (0..20).map(|_| p.get(&foo));
    for r in futures::future::join_all(reads).await {
        r.unwrap();
    }
    assert_eq!(vault.counters().logins, 1);
    assert_eq!(vault.live_tokens(), 1);
    // Past two thirds of the lease the token is renewed, not replaced.
    tokio::time::sleep(Duration::from_millis(2800)).await;
    p.get(&ValueRef::new("foo")).await.unwrap();
    assert_eq!(vault.counters().renewals, 1);
    assert_eq!(vault.counters().logins, 1);
    // Token revoked behind our back: 403, one re-login, the read still succeeds.
    vault.revoke_all_tokens();
    p.get(&ValueRef::new("foo")).await.unwrap();
    assert_eq!(vault.counters().logins, 2);

    // Wrong secret id: a clear authorization error.
    let bad = VaultProvider::new(
        &s,
        VaultLogin::AppRole {
            mount: "approle".into(),
            role_id: Zeroizing::new("role-1".into()),
            secret_id: Zeroizing::new("CANARY-wrong".into()),
        },
        &VaultOptions::default(),
        calls(),
    )
    .unwrap();
    let err = bad.get(&ValueRef::new("foo")).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unauthorized(_)), "{err:?}");
    assert!(!err.to_string().contains("CANARY"));
}

#[tokio::test]
async fn kubernetes_auth_and_namespaces() {
    let vault = VaultStandin::start(&[]).await.unwrap();
    vault.add_kubernetes_role("kubernetes", "eso", "jwt-of-sa");
    vault.put_kv2("team-a", "secret", "foo", json!({"who": "team-a"}));
    vault.put_kv2("", "secret", "foo", json!({"who": "root"}));
    let login = || VaultLogin::Kubernetes {
        mount: "kubernetes".into(),
        role: "eso".into(),
        jwt: JwtSource::Static(Zeroizing::new("jwt-of-sa".into())),
    };
    let p = VaultProvider::new(
        &spec(&vault.addr, VaultKvVersion::V2, Some("team-a")),
        login(),
        &VaultOptions::default(),
        calls(),
    )
    .unwrap();
    let v = p.get(&ValueRef::new("foo")).await.unwrap();
    assert_eq!(
        text(&select_property("foo", &v, Some("who")).unwrap()),
        "team-a"
    );
    assert_eq!(vault.namespaces_seen(), vec!["team-a".to_string()]);
    let p = VaultProvider::new(
        &spec(&vault.addr, VaultKvVersion::V2, None),
        login(),
        &VaultOptions::default(),
        calls(),
    )
    .unwrap();
    let v = p.get(&ValueRef::new("foo")).await.unwrap();
    assert_eq!(
        text(&select_property("foo", &v, Some("who")).unwrap()),
        "root"
    );
    assert_eq!(vault.counters().logins, 2);
}

#[tokio::test]
async fn malformed_server_is_a_config_error_not_a_panic() {
    let s = spec("not a url", VaultKvVersion::V2, None);
    let err = VaultProvider::new(&s, token("t"), &VaultOptions::default(), calls())
        .err()
        .unwrap();
    assert!(matches!(err, ProviderError::Config(_)), "{err:?}");
}
