//! The committed CRD YAML must be what `crdgen` generates from the Rust types today.

#[test]
fn committed_crd_yaml_matches_the_types() {
    let yaml_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("yaml");
    for (file_name, crd) in crds::all_crds() {
        let expected = crds::render_crd_yaml(&crd).expect("CRD renders as YAML");
        let committed = std::fs::read_to_string(yaml_dir.join(file_name)).unwrap_or_default();
        assert!(
            committed == expected,
            "crds/yaml/{file_name} is stale: run `cargo run -p crds --bin crdgen` and commit the result"
        );
    }
}
