//! Every generated CRD is one the API server accepts (a structural schema) and one kubectl's
//! client-side validation accepts (no enum value contradicting its type, such as `null`).

#[test]
fn every_generated_crd_has_structural_schemas() {
    for (file, crd) in crds::all_crds() {
        assert!(!crd.spec.versions.is_empty(), "{file}: no versions");
        for version in &crd.spec.versions {
            let schema = version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .unwrap_or_else(|| panic!("{file} {}: no openAPIV3Schema", version.name));
            let value = serde_json::to_value(schema).expect("schema serializes");
            let problems = crds::structural::problems(&value);
            assert!(
                problems.is_empty(),
                "{file} {}:\n{}",
                version.name,
                problems.join("\n")
            );
        }
    }
}

#[test]
fn the_committed_yaml_has_no_null_enum_value() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("yaml");
    for (file, _) in crds::all_crds() {
        let text = std::fs::read_to_string(dir.join(file)).expect("committed CRD");
        let crd: serde_json::Value = serde_yaml::from_str(&text).expect("CRD YAML parses");
        for version in crd["spec"]["versions"].as_array().into_iter().flatten() {
            let problems = crds::structural::problems(&version["schema"]["openAPIV3Schema"]);
            assert!(problems.is_empty(), "{file}:\n{}", problems.join("\n"));
        }
    }
}
