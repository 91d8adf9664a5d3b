//! Fuzzing on stable Rust for every parser that reads tenant input. See `docs/fuzzing.md`.
//!
//! Modules:
//! - `targets`: one target per parser that reads tenant-controlled input, with its seeds.
//! - `mutate`: byte-level and structure-aware input mutations.
//! - `engine`: the loop: a supervisor restarting a worker that mutates inputs and runs a target.

pub mod engine;
pub mod mutate;
pub mod targets;
