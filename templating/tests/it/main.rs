//! The templating crate's integration tests, one binary (one link instead of one per file).
//! Corpora stay in tests/corpus and tests/corpus-sprig, the Go reference in tests/gotemplate-ref.

#![allow(clippy::unwrap_used)]

mod budget;
mod differential;
mod functions;
