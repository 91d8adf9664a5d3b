//! The sealing crate's integration tests, one binary (one link instead of one per file).
//! Fixtures stay in tests/fixtures, the reference opener in tests/reference_open.py.

#![allow(clippy::unwrap_used)]

mod keys;
mod objects;
mod vectors;
