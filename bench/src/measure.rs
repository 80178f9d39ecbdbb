//! Timing: decisions per second over an untimed loop, and per-decision latency percentiles from
//! a second loop that times every call.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::engines::Engine;

/// How much work one measurement may do: whichever limit comes first.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub max_decisions: u64,
    pub max_time: Duration,
}

/// The result of measuring one engine on one query range.
#[derive(Clone, Copy, Debug)]
pub struct Measurement {
    /// Decisions made in the throughput loop, how long they took, and how much of that the
    /// thread was on a CPU (the rest it waited for other processes).
    pub decisions: u64,
    pub elapsed: Duration,
    pub cpu: Duration,
    /// Per-call latencies, from `samples` individually timed calls.
    pub samples: u64,
    pub p50: Duration,
    pub p99: Duration,
    /// Share of allowed decisions in the throughput loop.
    pub allowed: f64,
}

impl Measurement {
    /// Decisions per second of wall-clock time.
    pub fn per_second(&self) -> f64 {
        self.decisions as f64 / self.elapsed.as_secs_f64().max(1e-12)
    }

    /// Decisions per second of the thread's CPU time: what one otherwise idle core would do.
    pub fn per_cpu_second(&self) -> f64 {
        self.decisions as f64 / self.cpu.as_secs_f64().max(1e-12)
    }
}

/// CPU time consumed by the calling thread so far.
pub fn thread_cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        now.tv_sec.max(0) as u64,
        now.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Checks the engine's decisions on requests `start..` against `expect` (at most `limit` of
/// them): how many agreed, or the first disagreement.
pub fn check(
    engine: &dyn Engine,
    start: usize,
    expect: &[bool],
    limit: usize,
) -> Result<usize, String> {
    let mut checked = 0;
    for (offset, expected) in expect.iter().enumerate().take(limit) {
        let got = engine.decide(start + offset);
        if got != *expected {
            return Err(format!(
                "{}: request {offset} decided {got}, expected {expected}",
                engine.label()
            ));
        }
        checked += 1;
    }
    Ok(checked)
}

/// Measures `engine` on the prepared requests `start..start + len`, cycling through them.
pub fn measure(engine: &dyn Engine, start: usize, len: usize, budget: Budget) -> Measurement {
    assert!(len > 0, "no requests to measure");

    // Warm up caches and branch predictors on every request of the range once (bounded).
    let warm_until = Instant::now() + budget.max_time / 10;
    for offset in 0..len {
        black_box(engine.decide(start + offset));
        if Instant::now() > warm_until {
            break;
        }
    }

    // Throughput: the clock is read once per chunk of decisions; chunks grow from one decision
    // while a chunk takes under a millisecond, so fast engines pay nothing measurable for the
    // clock and slow ones stop close to the time limit.
    let mut decisions = 0_u64;
    let mut allowed = 0_u64;
    let mut offset = 0;
    let mut chunk = 1_u64;
    let cpu_started = thread_cpu_time();
    let started = Instant::now();
    let mut chunk_started = started;
    let elapsed = loop {
        for _ in 0..chunk {
            if black_box(engine.decide(start + offset)) {
                allowed += 1;
            }
            offset += 1;
            if offset == len {
                offset = 0;
            }
        }
        decisions += chunk;
        let now = Instant::now();
        let elapsed = now.duration_since(started);
        if decisions >= budget.max_decisions || elapsed >= budget.max_time {
            break elapsed;
        }
        if now.duration_since(chunk_started) < Duration::from_millis(1) && chunk < 1024 {
            chunk *= 2;
        }
        chunk_started = now;
    };
    let cpu = thread_cpu_time().saturating_sub(cpu_started);

    // Latency: every call timed on its own (the two clock reads are included, see
    // `timer_overhead`).
    let mut latencies: Vec<u64> = Vec::new();
    let mut offset = 0;
    let deadline = Instant::now() + budget.max_time;
    loop {
        let before = Instant::now();
        black_box(engine.decide(start + offset));
        let after = Instant::now();
        latencies.push(after.duration_since(before).as_nanos() as u64);
        offset += 1;
        if offset == len {
            offset = 0;
        }
        if latencies.len() as u64 >= budget.max_decisions || after >= deadline {
            break;
        }
    }
    latencies.sort_unstable();
    let percentile = |p: usize| {
        let index = (latencies.len() * p / 100).min(latencies.len() - 1);
        Duration::from_nanos(latencies[index])
    };

    Measurement {
        decisions,
        elapsed,
        cpu,
        samples: latencies.len() as u64,
        p50: percentile(50),
        p99: percentile(99),
        allowed: allowed as f64 / decisions.max(1) as f64,
    }
}

/// The median cost of the two clock reads around a timed call, which every latency includes.
pub fn timer_overhead() -> Duration {
    let mut costs: Vec<u64> = (0..100_001)
        .map(|_| {
            let before = Instant::now();
            let after = black_box(Instant::now());
            after.duration_since(before).as_nanos() as u64
        })
        .collect();
    costs.sort_unstable();
    Duration::from_nanos(costs[costs.len() / 2])
}
