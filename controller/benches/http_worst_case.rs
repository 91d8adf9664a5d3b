//! Prints what one `/v1/verify` or `/v1/rotate` request can cost at worst on this machine: one
//! RSA-4096 private-key operation, the cap of them per request, and the pre-parse of a 2 MiB body.
//! Run with `cargo bench -p controller --bench http_worst_case` (add `--profile dev` for a quick
//! look: the crypto is optimised in dev builds too).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use controller::sealed::http::{
    MAX_BODY_BYTES, MAX_RSA_OPERATIONS, RsaBudget, check_yaml_bounds, open_values, rotate_body,
    verify_body,
};
use controller::sealed::keyring::SealingKey;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;

fn key() -> SealingKey {
    let private = sealing::PrivateKey::generate(4096).unwrap();
    let cert =
        sealing::Certificate::self_signed(&private, "", std::time::Duration::from_secs(3600))
            .unwrap();
    SealingKey::new(private, cert, "k".into(), None)
}

fn main() {
    let key = Arc::new(key());
    let values = MAX_RSA_OPERATIONS - 1;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("worst".into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        data: Some(
            (0..values)
                .map(|i| (format!("k{i:04}"), ByteString(vec![b'v'; 32])))
                .collect(),
        ),
        ..Default::default()
    };
    let sealed =
        sealing::seal_secret(&secret, key.private.public_key(), &Default::default()).unwrap();
    let body = serde_json::to_vec(&sealed).unwrap();

    let started = Instant::now();
    let mut budget = RsaBudget::new(MAX_RSA_OPERATIONS);
    open_values(&sealed, &[&key.private], &mut budget).unwrap();
    let per_op = started.elapsed() / u32::try_from(budget.spent).unwrap();

    let keys = [Arc::clone(&key)];
    let started = Instant::now();
    verify_body(&body, &keys).unwrap();
    let verify = started.elapsed();
    let started = Instant::now();
    rotate_body(&body, &keys).unwrap();
    let rotate = started.elapsed();

    // The largest body the pre-parse accepts shapes-wise: 2 MiB of short mapping entries.
    let mut flat = String::from("a:\n");
    while flat.len() < MAX_BODY_BYTES - 16 {
        flat.push_str("  k: v\n");
    }
    let started = Instant::now();
    let refused = check_yaml_bounds(&flat).is_err();
    let yaml = started.elapsed();

    println!("| what | time |");
    println!("|---|---|");
    println!("| one RSA-4096 private-key operation | {per_op:?} |");
    println!(
        "| /v1/verify, {values} values ({} RSA ops, the cap is {MAX_RSA_OPERATIONS}) | {verify:?} |",
        budget.spent
    );
    println!("| /v1/rotate, same body | {rotate:?} |");
    println!("| YAML pre-parse of a 2 MiB body (refused: {refused}) | {yaml:?} |");
}
