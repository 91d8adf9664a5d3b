//! The harness of the end-to-end tests against a real API server (`envtest`), shared by the
//! tests in tests/e2e/ and the scale benchmark. The peers and fixtures other crates' tests share
//! live in the test kit (tests/kit).

pub mod envtest;
