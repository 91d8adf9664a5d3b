//! deploy/external-secrets/ carries exact copies of the generated CRDs.

#[test]
fn deploy_crds_match_crdgen_output() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (file, crd) in crds::all_crds() {
        if !file.starts_with("external-secrets.io_") {
            continue;
        }
        let expected = crds::render_crd_yaml(&crd).unwrap();
        let copy = std::fs::read_to_string(root.join("deploy/external-secrets/crds").join(file))
            .unwrap_or_default();
        assert!(
            copy == expected,
            "deploy/external-secrets/crds/{file} is stale: run `cargo run -p crds --bin crdgen` and copy crds/yaml/external-secrets.io_*.yaml there"
        );
    }
}
