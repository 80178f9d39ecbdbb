//! Runs every engine on every workload for a bounded number of decisions and prints, as Markdown,
//! decisions per second (of the thread's CPU time, and of wall-clock time), p50/p99 latency,
//! load time and the ratios MAOS/Cedar and MAOS/casbin, with the targets of issue 2 next to the
//! RBAC-large and growth results. Ratios use CPU-time throughput, which other processes on a
//! shared machine disturb far less than wall-clock throughput.
//!
//! `cargo run --release -p maos-bench --bin authz-report [-- --quick]`

// Measurement code, not the product: see the crate root.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use maos_bench::engines::cedar::RbacModeling;
use maos_bench::engines::{Loaded, casbin, cedar, maos};
use maos_bench::measure::{Budget, Measurement, check, measure, timer_overhead};
use maos_bench::workload::{self, RbacQuery};

/// One engine's results on one query range.
struct Row {
    label: String,
    load: Duration,
    checked: usize,
    measurement: Measurement,
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let budget = if quick {
        Budget {
            max_decisions: 20_000,
            max_time: Duration::from_millis(300),
        }
    } else {
        Budget {
            max_decisions: 1_000_000,
            max_time: Duration::from_secs(3),
        }
    };
    let check_time = if quick {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(1)
    };
    let started = Instant::now();

    println!("# authz-report");
    println!();
    println!("- load average at start: {}", load_average());
    println!(
        "- timer overhead (two `Instant::now()`, median): {:?}",
        timer_overhead()
    );
    println!(
        "- budget per engine and workload: {} decisions or {:?}, whichever first, once \
         untimed (throughput) and once timing every call (p50/p99)",
        budget.max_decisions, budget.max_time
    );
    println!();

    let runtime = casbin::runtime();

    // 1. Small RBAC.
    let (small, small_queries) = workload::small_rbac();
    let expect = expected(&small_queries);
    let engines = vec![
        maos::rbac(&small, &small_queries),
        cedar::rbac(&small, RbacModeling::PolicyPerRole, &small_queries),
        cedar::rbac(&small, RbacModeling::ResourceRoles, &small_queries),
        cedar::rbac(&small, RbacModeling::GrantGroups, &small_queries),
        casbin::rbac(&runtime, &small, &small_queries),
    ];
    let rows = run(&engines, 0, &expect, budget, check_time);
    section(
        "1. Small RBAC: 5 role permissions, 1 inheritance, 4 bindings",
        &rows,
        &expect,
    );

    // 2. ABAC.
    let abac = workload::abac(4096, 2);
    let expect: Vec<bool> = abac.queries.iter().map(|q| q.expect).collect();
    let engines = vec![
        maos::abac(&abac),
        cedar::abac(&abac),
        casbin::abac(&runtime, &abac),
    ];
    let rows = run(&engines, 0, &expect, budget, check_time);
    section(
        "2. ABAC: 100 policies, each an action and 3 conditions",
        &rows,
        &expect,
    );
    drop(engines);

    // 3. RBAC-large, casbin's shape; the same engines then answer the growth query mix.
    let large = workload::casbin_shape(10_000);
    let large_queries = large.queries(workload::casbin_shape_queries(100_000, 4096, 3));
    let growth_asked = workload::casbin_shape_queries(1_000, 4096, 4);
    let growth_large_queries = large.queries(growth_asked.clone());
    let unknown_queries = large.queries(workload::unknown_subject_queries(16));
    let all_queries: Vec<RbacQuery> = large_queries
        .iter()
        .chain(&growth_large_queries)
        .chain(&unknown_queries)
        .cloned()
        .collect();
    let large_engines = vec![
        maos::rbac(&large, &all_queries),
        cedar::rbac(&large, RbacModeling::PolicyPerRole, &all_queries),
        cedar::rbac(&large, RbacModeling::ResourceRoles, &all_queries),
        cedar::rbac(&large, RbacModeling::GrantGroups, &all_queries),
        casbin::rbac(&runtime, &large, &all_queries),
    ];
    let expect = expected(&large_queries);
    let large_rows = run(&large_engines, 0, &expect, budget, check_time);
    section(
        &format!(
            "3. RBAC-large (casbin's benchmark shape): 100,000 users, 10,000 roles, {} rules",
            large.rules()
        ),
        &large_rows,
        &expect,
    );

    // 4. Growth: 1,100 rules against 110,000, the same questions (users below 1,000).
    let growth_small = workload::casbin_shape(100);
    let growth_small_queries = growth_small.queries(growth_asked);
    let expect = expected(&growth_small_queries);
    assert_eq!(
        expect,
        expected(&growth_large_queries),
        "the growth questions must have the same answers at both sizes"
    );
    let small_engines = vec![
        maos::rbac(&growth_small, &growth_small_queries),
        cedar::rbac(
            &growth_small,
            RbacModeling::PolicyPerRole,
            &growth_small_queries,
        ),
        cedar::rbac(
            &growth_small,
            RbacModeling::ResourceRoles,
            &growth_small_queries,
        ),
        cedar::rbac(
            &growth_small,
            RbacModeling::GrantGroups,
            &growth_small_queries,
        ),
        casbin::rbac(&runtime, &growth_small, &growth_small_queries),
    ];
    let growth_small_rows = run(&small_engines, 0, &expect, budget, check_time);
    let growth_large_rows = run(
        &large_engines,
        large_queries.len(),
        &expect,
        budget,
        check_time,
    );
    growth(&growth_small_rows, &growth_large_rows, &expect);

    targets(&large_rows, &growth_small_rows, &growth_large_rows);

    // 5. Subjects that no binding names, outside the mixes above because casbin's role manager
    // scans every role and user for each of them (seconds per decision at 110,000 rules).
    let expect = expected(&unknown_queries);
    let unknown_budget = Budget {
        max_decisions: budget.max_decisions,
        max_time: budget.max_time.min(Duration::from_secs(1)),
    };
    let start = large_queries.len() + growth_large_queries.len();
    let rows = run(
        &large_engines,
        start,
        &expect,
        unknown_budget,
        Duration::ZERO,
    );
    section(
        "5. RBAC-large, subjects that no binding names (all denied)",
        &rows,
        &expect,
    );

    println!();
    println!("- load average at end: {}", load_average());
    println!("- whole run: {:.0?}", started.elapsed());
}

fn expected(queries: &[RbacQuery]) -> Vec<bool> {
    queries.iter().map(|q| q.expect).collect()
}

/// Checks then measures every engine on the requests `start..start + expect.len()`.
fn run(
    engines: &[Loaded],
    start: usize,
    expect: &[bool],
    budget: Budget,
    check_time: Duration,
) -> Vec<Row> {
    engines
        .iter()
        .map(|loaded| {
            let engine = loaded.engine.as_ref();
            let checked = checked_within(engine, start, expect, check_time);
            eprintln!("measuring {} ({} requests agree)", engine.label(), checked);
            let measurement = measure(engine, start, expect.len(), budget);
            Row {
                label: engine.label().to_owned(),
                load: loaded.load,
                checked,
                measurement,
            }
        })
        .collect()
}

/// Checks decisions against the reference for up to `time`, and on at least one request, so the
/// engines taking milliseconds per decision are checked on a sample and the others on all.
fn checked_within(
    engine: &dyn maos_bench::engines::Engine,
    start: usize,
    expect: &[bool],
    time: Duration,
) -> usize {
    let began = Instant::now();
    let mut checked = 0;
    while checked < expect.len() {
        if let Err(message) = check(engine, start + checked, &expect[checked..=checked], 1) {
            panic!("decisions differ: {message} (offset {checked})");
        }
        checked += 1;
        if began.elapsed() >= time {
            break;
        }
    }
    checked
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn fmt_rate(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2} M", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1} k", rate / 1e3)
    } else if rate >= 10.0 {
        format!("{rate:.0}")
    } else {
        format!("{rate:.2}")
    }
}

fn fmt_duration(duration: Duration) -> String {
    let ns = duration.as_nanos();
    if ns < 10_000 {
        format!("{ns} ns")
    } else if ns < 10_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else if ns < 10_000_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.1} s", ns as f64 / 1e9)
    }
}

fn fmt_ratio(ratio: f64) -> String {
    if ratio >= 100.0 {
        format!("{ratio:.0}x")
    } else {
        format!("{ratio:.2}x")
    }
}

fn find<'a>(rows: &'a [Row], prefix: &str) -> Option<&'a Row> {
    rows.iter().find(|row| row.label.starts_with(prefix))
}

/// The Cedar row with the highest throughput.
fn cedar_best(rows: &[Row]) -> Option<&Row> {
    rows.iter()
        .filter(|row| row.label.starts_with("cedar"))
        .max_by(|a, b| {
            a.measurement
                .per_cpu_second()
                .total_cmp(&b.measurement.per_cpu_second())
        })
}

fn section(title: &str, rows: &[Row], expect: &[bool]) {
    let allowed = expect.iter().filter(|e| **e).count();
    println!("## {title}");
    println!();
    println!(
        "{} distinct requests, {} allowed ({:.0}%), cycled in order.",
        expect.len(),
        allowed,
        100.0 * allowed as f64 / expect.len().max(1) as f64
    );
    println!();
    println!(
        "| engine | load | decisions/CPU-s | decisions/s (wall) | p50 | p99 | decisions timed | checked |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let m = &row.measurement;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} + {} | {} |",
            row.label,
            fmt_duration(row.load),
            fmt_rate(m.per_cpu_second()),
            fmt_rate(m.per_second()),
            fmt_duration(m.p50),
            fmt_duration(m.p99),
            m.decisions,
            m.samples,
            row.checked
        );
    }
    println!();
    ratios(rows);
}

fn ratios(rows: &[Row]) {
    let Some(ours) = find(rows, "maos") else {
        return;
    };
    let mut peers: Vec<(&str, &Row)> = Vec::new();
    if let Some(best) = cedar_best(rows) {
        peers.push(("Cedar (best modeling)", best));
    }
    if let Some(casbin) = find(rows, "casbin") {
        peers.push(("casbin", casbin));
    }
    for (name, peer) in peers {
        println!(
            "- MAOS / {name}: {} decisions/CPU-s, p50 {} faster, load {} ({})",
            fmt_ratio(ours.measurement.per_cpu_second() / peer.measurement.per_cpu_second()),
            fmt_ratio(peer.measurement.p50.as_secs_f64() / ours.measurement.p50.as_secs_f64()),
            fmt_ratio(peer.load.as_secs_f64() / ours.load.as_secs_f64().max(1e-9)),
            peer.label
        );
    }
    println!();
}

fn growth(small: &[Row], large: &[Row], expect: &[bool]) {
    let allowed = expect.iter().filter(|e| **e).count();
    println!("## 4. Growth: 1,100 rules against 110,000, same questions");
    println!();
    println!(
        "{} distinct requests over users 0..1,000, {} allowed; the 110,000-rule engines are \
         those of workload 3.",
        expect.len(),
        allowed
    );
    println!();
    println!(
        "| engine | load 1.1k | load 110k | decisions/CPU-s 1.1k | decisions/CPU-s 110k | slowdown | \
         p50 1.1k | p50 110k | p99 1.1k | p99 110k |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (s, l) in small.iter().zip(large) {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.label,
            fmt_duration(s.load),
            fmt_duration(l.load),
            fmt_rate(s.measurement.per_cpu_second()),
            fmt_rate(l.measurement.per_cpu_second()),
            fmt_ratio(s.measurement.per_cpu_second() / l.measurement.per_cpu_second()),
            fmt_duration(s.measurement.p50),
            fmt_duration(l.measurement.p50),
            fmt_duration(s.measurement.p99),
            fmt_duration(l.measurement.p99),
        );
    }
    println!();
}

fn targets(large: &[Row], growth_small: &[Row], growth_large: &[Row]) {
    let (Some(ours), Some(best), Some(casbin)) = (
        find(large, "maos"),
        cedar_best(large),
        find(large, "casbin"),
    ) else {
        return;
    };
    let verdict = |met: bool| if met { "met" } else { "**missed**" };
    println!("## Targets of issue 2 (RBAC-large)");
    println!();
    println!("| target | result | |");
    println!("|---|---:|---|");

    let vs_cedar = ours.measurement.per_cpu_second() / best.measurement.per_cpu_second();
    println!(
        "| ≥ 5x Cedar's faster modeling ({}) | {} | {} |",
        best.label,
        fmt_ratio(vs_cedar),
        verdict(vs_cedar >= 5.0)
    );
    let vs_casbin = ours.measurement.per_cpu_second() / casbin.measurement.per_cpu_second();
    println!(
        "| ≥ 1,000x casbin | {} | {} |",
        fmt_ratio(vs_casbin),
        verdict(vs_casbin >= 1000.0)
    );
    let p50 = ours.measurement.p50;
    println!(
        "| p50 < 500 ns | {} | {} |",
        fmt_duration(p50),
        verdict(p50 < Duration::from_nanos(500))
    );
    if let (Some(s), Some(l)) = (find(growth_small, "maos"), find(growth_large, "maos")) {
        let slowdown = s.measurement.per_cpu_second() / l.measurement.per_cpu_second();
        let p50_slowdown = l.measurement.p50.as_secs_f64() / s.measurement.p50.as_secs_f64();
        println!(
            "| < 2x slowdown from 1.1k to 110k rules | {} (throughput), {} (p50) | {} |",
            fmt_ratio(slowdown),
            fmt_ratio(p50_slowdown),
            verdict(slowdown < 2.0 && p50_slowdown < 2.0)
        );
    }
    let fastest_cedar_load = large
        .iter()
        .filter(|row| row.label.starts_with("cedar"))
        .map(|row| row.load)
        .min()
        .unwrap_or_default();
    println!(
        "| bundle load under Cedar's (Cedar's faster load here: {}) | {} | {} |",
        fmt_duration(fastest_cedar_load),
        fmt_duration(ours.load),
        verdict(ours.load < fastest_cedar_load)
    );
}
