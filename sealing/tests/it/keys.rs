//! Key material: the formats users and the controller keep keys in, and new keys like Bitnami's.

use sealing::{Certificate, KeyError, PrivateKey, load_private_keys, parse_sealing_key};

/// A file of the fixture world's `keys/` directory, read as text: these tests parse it.
fn read(rel: &str) -> String {
    test_kit::sealed_secrets::read(&format!("keys/{rel}"))
}

fn keys_info() -> serde_json::Value {
    serde_json::from_str(&read("keys-info.json")).unwrap()
}

#[test]
fn pkcs1_and_pkcs8_files_hold_the_same_key_and_convert_both_ways() {
    for name in ["key1", "key2", "unrelated"] {
        let pkcs1 = PrivateKey::from_pem(&read(&format!("{name}.pem"))).unwrap();
        let pkcs8 = PrivateKey::from_pem(&read(&format!("{name}.pkcs8.pem"))).unwrap();
        assert_eq!(pkcs1.public_key(), pkcs8.public_key(), "{name}");
        assert_eq!(
            pkcs8.to_pkcs1_pem().unwrap().trim(),
            read(&format!("{name}.pem")).trim(),
            "{name}: PKCS#1 PEM written as the controller writes tls.key"
        );
        let reread = PrivateKey::from_pem(&pkcs1.to_pkcs8_pem()).unwrap();
        assert_eq!(reread.public_key(), pkcs1.public_key());
    }
}

#[test]
fn certificates_and_bare_public_keys_give_the_private_keys_public_half() {
    let info = keys_info();
    for name in ["key1", "key2", "unrelated"] {
        let private = PrivateKey::from_pem(&read(&format!("{name}.pem"))).unwrap();
        let cert = Certificate::from_pem(&read(&format!("{name}.crt"))).unwrap();
        assert_eq!(cert.public_key(), private.public_key(), "{name}");
        assert_eq!(
            cert.sha256_fingerprint(),
            info[name]["sha256_cert_der"].as_str().unwrap(),
            "{name}: fingerprint"
        );
        assert_eq!(cert.public_key().bits(), 4096);
        assert!(
            cert.not_before()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
                .starts_with(&info[name]["not_before"].as_str().unwrap()[..10])
        );
        let (bare, no_cert) = parse_sealing_key(&read(&format!("{name}.pub.pem"))).unwrap();
        assert!(no_cert.is_none());
        assert_eq!(&bare, private.public_key(), "{name}: bare public key");
    }
}

#[test]
fn the_upstream_kubeseal_test_certificate_parses() {
    let (key, cert) = parse_sealing_key(&read("upstream-kubeseal-test-cert.pem")).unwrap();
    assert_eq!(key.bits(), 4096);
    let cert = cert.unwrap();
    assert_eq!(cert.not_after().year(), 2027);
    let sealed = sealing::seal_value(&key, b"ns/name", b"value").unwrap();
    assert_eq!(sealed.len(), 2 + 512 + 5 + 16);
    assert_eq!(&sealed[..2], &[2, 0]);
}

#[test]
fn key_secrets_lists_and_pem_files_load_as_backups() {
    let key1 = PrivateKey::from_pem(&read("key1.pem")).unwrap();
    let key2 = PrivateKey::from_pem(&read("key2.pem")).unwrap();

    let single = load_private_keys(&read("key1-secret.yaml")).unwrap();
    assert_eq!(single.len(), 1);
    assert_eq!(single[0].private.public_key(), key1.public_key());
    assert_eq!(single[0].origin, "Secret sealed-secrets-keyabcde");
    assert!(single[0].certificate.is_some());

    let list = load_private_keys(&read("all-keys-list.json")).unwrap();
    let publics: Vec<_> = list
        .iter()
        .map(|k| k.private.public_key().clone())
        .collect();
    assert_eq!(
        publics,
        vec![key1.public_key().clone(), key2.public_key().clone()]
    );

    let pem_with_cert = format!("{}{}", read("key2.pem"), read("key2.crt"));
    let from_pem = load_private_keys(&pem_with_cert).unwrap();
    assert_eq!(from_pem.len(), 1);
    assert!(from_pem[0].certificate.is_some());

    let two_documents = format!("{}\n---\n{}", read("key1-secret.yaml"), "kind: ConfigMap\n");
    let err = load_private_keys(&two_documents).unwrap_err().to_string();
    assert!(
        err.contains("document 2") && err.contains("ConfigMap"),
        "{err}"
    );
}

#[test]
fn bad_key_material_is_refused_with_a_clear_error() {
    assert!(matches!(
        PrivateKey::from_pem(&read("key1.crt")),
        Err(KeyError::NotFound(_))
    ));
    assert!(
        load_private_keys("kind: Secret\nmetadata: {name: k}\ndata: {}\n")
            .unwrap_err()
            .to_string()
            .contains("Secret k: has no data.\"tls.key\"")
    );
    assert!(parse_sealing_key("hello").is_err());
    assert!(matches!(
        PrivateKey::generate(1024),
        Err(KeyError::UnsupportedSize(1024))
    ));
}

#[test]
fn a_generated_key_gets_a_certificate_shaped_like_the_controllers() {
    let key = PrivateKey::generate(2048).unwrap();
    let ten_years = std::time::Duration::from_secs(87_600 * 3600);
    let cert = Certificate::self_signed(&key, "sealed-secret", ten_years).unwrap();
    assert_eq!(cert.public_key(), key.public_key());
    let lifetime = cert.not_after() - cert.not_before();
    assert_eq!(lifetime.whole_hours(), 87_600);
    cert.check_not_expired(time::OffsetDateTime::now_utc())
        .unwrap();
    let expired = cert
        .check_not_expired(cert.not_after() + time::Duration::seconds(1))
        .unwrap_err();
    assert!(expired.to_string().contains("expired"));

    let (_, parsed) = x509_parser::parse_x509_certificate(cert.der()).unwrap();
    assert_eq!(parsed.subject().to_string(), "CN=sealed-secret");
    assert_eq!(parsed.issuer(), parsed.subject());
    assert!(parsed.is_ca());
    let usage = parsed.key_usage().unwrap().unwrap().value;
    assert!(usage.encipher_only() && !usage.digital_signature() && !usage.key_encipherment());
    assert!(parsed.serial.bits() <= 128);

    // The PEM round trip is what /v1/cert.pem serves and kubeseal --cert reads.
    let (public, reparsed) = parse_sealing_key(&cert.to_pem()).unwrap();
    assert_eq!(&public, key.public_key());
    assert_eq!(
        reparsed.unwrap().sha256_fingerprint(),
        cert.sha256_fingerprint()
    );
}
