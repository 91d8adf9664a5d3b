//! Cheap check that every fuzz target still builds, finds its seeds and survives them plus a
//! few hundred mutations. The real campaigns run with `cargo run -p fuzz --release`.

use fuzz::engine::smoke;
use fuzz::targets::{TARGETS, find};

const MUTATIONS: usize = 300;

fn smoke_target(name: &str) {
    let target = find(name).expect("known target");
    let runs = smoke(target, MUTATIONS, 0x5eed).unwrap_or_else(|e| panic!("{e}"));
    assert!(runs > MUTATIONS, "{name}: no seeds were run");
}

#[test]
fn every_target_has_seeds_and_a_smoke_test() {
    let tested = [
        "sealed-value",
        "sealed-secret",
        "v1-body",
        "template",
        "duration",
        "sops-yaml",
        "sops-json",
        "sops-ini",
        "sops-dotenv",
    ];
    for t in TARGETS {
        assert!(tested.contains(&t.name), "{} has no smoke test", t.name);
        assert!(!(t.seeds)().is_empty(), "{} has no seeds", t.name);
    }
}

#[test]
fn sealed_value() {
    smoke_target("sealed-value");
}

#[test]
fn sealed_secret() {
    smoke_target("sealed-secret");
}

#[test]
fn v1_body() {
    smoke_target("v1-body");
}

#[test]
fn template() {
    smoke_target("template");
}

#[test]
fn duration() {
    smoke_target("duration");
}

#[test]
fn sops_yaml() {
    smoke_target("sops-yaml");
}

#[test]
fn sops_json() {
    smoke_target("sops-json");
}

#[test]
fn sops_ini() {
    smoke_target("sops-ini");
}

#[test]
fn sops_dotenv() {
    smoke_target("sops-dotenv");
}
