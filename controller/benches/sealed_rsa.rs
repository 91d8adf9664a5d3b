//! Prints, in one run: RSA private-key operations per value with 12 sealing keys (ours against
//! Bitnami's try-every-key-in-random-order), RSA operations when the controller restarts over
//! 1,000 unchanged SealedSecrets, and reconcile throughput, all against the in-memory API.
//! Run with `cargo bench -p controller --bench sealed_rsa`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use controller::sealed::keyring::{KeyOrder, KeyRing, SealingKey};
use controller::sealed::metrics::SealedMetrics;
use controller::sealed::reconcile::{Context, reconcile};
use crds::SealedSecret;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta};

const KEYS: usize = 12;
const VALUES: usize = 5;

/// A tiny deterministic generator, so runs compare (xorshift).
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn sealed_object(name: &str, key: &SealingKey) -> SealedSecret {
    let data = (0..VALUES)
        .map(|i| {
            (
                format!("k{i}"),
                ByteString(format!("value-{name}-{i}").into_bytes()),
            )
        })
        .collect();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    };
    let mut sealed =
        sealing::seal_secret(&secret, key.private.public_key(), &Default::default()).unwrap();
    sealed.metadata.uid = Some(format!("uid-{name}"));
    sealed.metadata.generation = Some(1);
    sealed
}

#[tokio::main]
async fn main() {
    eprintln!("generating {KEYS} RSA-4096 keys...");
    let ring = KeyRing::new(KeyOrder::SecretCreationTimestamp);
    let now = time::OffsetDateTime::now_utc();
    for i in 0..KEYS {
        let private = sealing::PrivateKey::generate(4096).unwrap();
        let cert = sealing::Certificate::self_signed(
            &private,
            "",
            std::time::Duration::from_secs(86_400 * 3650),
        )
        .unwrap();
        // Key i is i months old: key 0 is the newest.
        ring.insert(SealingKey::new(
            private,
            cert,
            format!("key{i}"),
            Some(now - time::Duration::days(30 * i as i64)),
        ));
    }
    let keys = ring.try_order(None);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);

    // 1. Values sealed over a year by whichever key was current.
    let object_count = 100;
    let sealed: Vec<SealedSecret> = (0..object_count)
        .map(|i| sealed_object(&format!("s{i}"), &keys[rng.below(KEYS)]))
        .collect();
    let values = (object_count * VALUES) as f64;
    let mut ours_first = 0;
    let mut ours_again = 0;
    let mut random_order = 0;
    for s in &sealed {
        let ordered = ring.try_order(None);
        let refs: Vec<&sealing::PrivateKey> = ordered.iter().map(|k| &k.private).collect();
        let first = sealing::unseal(s, &refs).unwrap();
        ours_first += first.rsa_operations;
        let opener = ordered[first.opened_with.unwrap()].id.clone();
        let preferred = ring.try_order(Some(&opener));
        let refs: Vec<&sealing::PrivateKey> = preferred.iter().map(|k| &k.private).collect();
        ours_again += sealing::unseal(s, &refs).unwrap().rsa_operations;
        // Bitnami: each value tries every key in a fresh random order.
        for encoded in s.spec.encrypted_data.values() {
            let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded)
                .unwrap();
            let mut shuffled: Vec<&sealing::PrivateKey> = keys.iter().map(|k| &k.private).collect();
            for i in (1..shuffled.len()).rev() {
                shuffled.swap(i, rng.below(i + 1));
            }
            let label = format!("default/{}", s.metadata.name.as_deref().unwrap());
            random_order += sealing::open_value(shuffled, label.as_bytes(), &bytes)
                .unwrap()
                .rsa_operations;
        }
    }

    // 2. A restart over 1,000 unchanged SealedSecrets, and reconcile throughput.
    let count = 1000;
    let key0 = &keys[0];
    let objects: Vec<SealedSecret> = (0..count)
        .map(|i| sealed_object(&format!("r{i}"), key0))
        .collect();
    let mut builder = test_kit::api::sealed_secrets();
    for o in &objects {
        builder = builder.with_object(o.clone());
    }
    let client = builder.build().await.unwrap();
    let context = |client: kube::Client| {
        Arc::new(Context {
            client,
            keys: ring.clone(),
            metrics: SealedMetrics::default(),
            recorder: None,
            update_status: true,
            unseal_threads: 2,
            rsa_slots: Context::rsa_slots(),
            owned: None,
            status_writes: Default::default(),
        })
    };
    let api: Api<SealedSecret> = Api::namespaced(client.clone(), "default");
    let first_run = context(client.clone());
    let start = Instant::now();
    for o in &objects {
        let current = api.get(o.metadata.name.as_deref().unwrap()).await.unwrap();
        reconcile(Arc::new(current), Arc::clone(&first_run))
            .await
            .unwrap();
    }
    let first_elapsed = start.elapsed();
    let restart = context(client.clone());
    let start = Instant::now();
    for o in &objects {
        let current = api.get(o.metadata.name.as_deref().unwrap()).await.unwrap();
        reconcile(Arc::new(current), Arc::clone(&restart))
            .await
            .unwrap();
    }
    let restart_elapsed = start.elapsed();
    let secrets: Api<Secret> = Api::namespaced(client, "default");
    assert!(secrets.get("r0").await.is_ok());

    println!("| measurement | ours | Bitnami's way | ours / theirs |");
    println!("|---|---|---|---|");
    println!(
        "| RSA ops per value, 12 keys, first unseal ({object_count} objects x {VALUES} values) | {:.2} | {:.2} (random order) | {:.2} |",
        ours_first as f64 / values,
        random_order as f64 / values,
        ours_first as f64 / random_order as f64
    );
    println!(
        "| RSA ops per value, 12 keys, later unseals (key remembered) | {:.2} | {:.2} (random order) | {:.2} |",
        ours_again as f64 / values,
        random_order as f64 / values,
        ours_again as f64 / random_order as f64
    );
    let restart_ops = restart.metrics.rsa_operations.get();
    // Bitnami unseals every value again on start, at the random-order cost measured above.
    let theirs = (count * VALUES) as f64 * random_order as f64 / values;
    println!(
        "| RSA ops on restart, {count} unchanged SealedSecrets x {VALUES} values | {restart_ops} | {theirs:.0} (all values again, random order) | {:.3} |",
        restart_ops as f64 / theirs
    );
    println!(
        "| reconciles/s, first sync (decrypt + write Secret + status) | {:.0} | - | - |",
        count as f64 / first_elapsed.as_secs_f64()
    );
    println!(
        "| reconciles/s, unchanged (digest + MAC check only) | {:.0} | - | - |",
        count as f64 / restart_elapsed.as_secs_f64()
    );
    println!(
        "| RSA ops, first sync of {count} objects sealed with the newest key | {} | - | - |",
        first_run.metrics.rsa_operations.get()
    );
}
