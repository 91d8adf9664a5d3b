//! The sealing crate's integration tests, one binary (one link instead of one per file).
//! The Sealed Secrets fixtures are the test kit's (tests/kit/fixtures/sealed-secrets, shared with
//! the controller and kubeseal); the reference opener is tests/reference_open.py.

#![allow(clippy::unwrap_used)]

mod keys;
mod objects;
mod vectors;
