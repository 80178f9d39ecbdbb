//! Loops MAOS decisions on the RBAC-large workload for a while, for a profiler to watch:
//! `perf record -g target/release/examples/profile-maos-large [SECONDS]`.

// Measurement code, not the product: see the crate root.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use maos_bench::engines::maos;
use maos_bench::workload;

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let large = workload::casbin_shape(10_000);
    let queries = large.queries(workload::casbin_shape_queries(100_000, 4096, 3));
    let loaded = maos::rbac(&large, &queries);
    eprintln!("loaded in {:?}", loaded.load);

    let engine = loaded.engine.as_ref();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut decisions = 0_u64;
    while Instant::now() < deadline {
        for index in 0..queries.len() {
            black_box(engine.decide(index));
        }
        decisions += queries.len() as u64;
    }
    eprintln!("{decisions} decisions in {seconds} s");
}
