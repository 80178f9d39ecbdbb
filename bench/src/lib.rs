//! Benchmarks of MAOS against peer engines: the MAOS decision point, `cedar-policy` 4.x and
//! `casbin` 2.x on the same workloads, checked to decide alike before they are timed.
//!
//! `cargo run --release -p maos-bench --bin authz-report` prints the comparison;
//! `cargo bench -p maos-bench` runs the same workloads under criterion.

// Measurement code, not the product: a generated workload that fails to load or an engine that
// errors is a broken benchmark, and stopping loudly is the right response.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod engines;
pub mod measure;
pub mod workload;
