//! The shared cross-implementation vectors: values sealed by three other implementations must
//! open, the negative ones must not, and whole SealedSecrets unseal to the expected Secrets.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sealing::{OpenError, Scope, open_value};
use serde::Deserialize;
use test_kit::sealed_secrets::{private_key as key, read};

#[derive(Deserialize)]
struct Value {
    id: String,
    label_b64: String,
    plaintext_b64: String,
    sealed_b64: String,
    sealed_with: String,
    scope: String,
    namespace: String,
    name: String,
}

#[derive(Deserialize)]
struct Negative {
    id: String,
    label_b64: String,
    sealed_b64: String,
}

#[test]
fn every_positive_vector_opens_with_the_key_that_sealed_it() {
    let (key1, key2) = (key("key1"), key("key2"));
    let values: Vec<Value> = serde_json::from_str(&read("values.json")).unwrap();
    assert!(values.len() >= 100, "expected the full vector set");
    for v in &values {
        let label = B64.decode(&v.label_b64).unwrap();
        let scope: Scope = v.scope.parse().unwrap();
        assert_eq!(scope.label(&v.namespace, &v.name), label, "{}: label", v.id);
        let sealed = B64.decode(&v.sealed_b64).unwrap();
        let opened =
            open_value([&key1, &key2], &label, &sealed).unwrap_or_else(|e| panic!("{}: {e}", v.id));
        assert_eq!(B64.encode(&*opened.plaintext), v.plaintext_b64, "{}", v.id);
        let expected_index = if v.sealed_with == "key1" { 0 } else { 1 };
        assert_eq!(opened.key_index, expected_index, "{}: reported key", v.id);
        assert_eq!(opened.rsa_operations, expected_index + 1, "{}", v.id);
    }
}

#[test]
fn every_negative_vector_is_rejected() {
    let (key1, key2) = (key("key1"), key("key2"));
    let negatives: Vec<Negative> = serde_json::from_str(&read("negative.json")).unwrap();
    assert_eq!(negatives.len(), 17);
    for n in &negatives {
        let label = B64.decode(&n.label_b64).unwrap();
        let sealed = B64.decode(&n.sealed_b64).unwrap();
        let err = open_value([&key1, &key2], &label, &sealed).unwrap_err();
        let expected = match n.id.as_str() {
            "empty" | "truncated-1" | "truncated-in-rsa" => OpenError::TooShort,
            _ => OpenError::NoKeyCouldDecrypt,
        };
        assert_eq!(err, expected, "{}", n.id);
    }
}

#[test]
fn a_value_opens_with_its_key_in_either_order_and_reports_the_position() {
    let (key1, key2) = (key("key1"), key("key2"));
    let label = b"default/x";
    let sealed = sealing::seal_value(key2.public_key(), label, b"v").unwrap();
    let first = open_value([&key2, &key1], label, &sealed).unwrap();
    assert_eq!((first.key_index, first.rsa_operations), (0, 1));
    let second = open_value([&key1, &key2], label, &sealed).unwrap();
    assert_eq!((second.key_index, second.rsa_operations), (1, 2));
}
