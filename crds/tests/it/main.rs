//! The crds crate's integration tests, one binary (one link instead of one per file).

mod crd_yaml_is_fresh;
mod crds_are_structural;
