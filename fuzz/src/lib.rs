//! Fuzzing on stable Rust for every parser that reads tenant input. See `docs/fuzzing.md`.

pub mod engine;
pub mod mutate;
pub mod targets;
