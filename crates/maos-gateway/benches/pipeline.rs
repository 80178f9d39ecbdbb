//! Cost of the gateway's pure steps on a 1 KiB request: `cargo bench -p maos-gateway`.
//! The end-to-end comparison with nginx is `scripts/bench-gateway.sh`.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use maos_gateway::detect::{Inspected, inspect};
use maos_gateway::firewall::{Block, Blocklist, StaticRules};
use maos_gateway::path::{encode, normalise};

const TARGET: &str = "/items/42?colour=green&size=large&q=garden+hose+with+brass+fittings&page=3";

fn headers() -> Vec<(&'static str, String)> {
    vec![
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0".into(),
        ),
        (
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8".into(),
        ),
        ("accept-language", "en-GB,en;q=0.5".into()),
        (
            "referer",
            "https://shop.example.com/catalogue/garden/tools?sort=price&page=3".into(),
        ),
        (
            "cookie",
            format!(
                "session={}; theme=dark; consent=analytics-no",
                "a".repeat(160)
            ),
        ),
        ("x-request-note", "n".repeat(300)),
    ]
}

fn benches(c: &mut Criterion) {
    let headers = headers();
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let size = TARGET.len()
        + pairs
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum::<usize>();
    c.bench_function(&format!("detect {size}-byte request"), |b| {
        b.iter(|| {
            inspect(black_box(&Inspected {
                target: TARGET,
                headers: pairs.clone(),
                body: None,
                media_type: None,
            }))
        })
    });
    let body =
        serde_json::json!({"item": "garden hose", "note": "n".repeat(900), "count": 2}).to_string();
    c.bench_function(&format!("detect {}-byte JSON body", body.len()), |b| {
        b.iter(|| {
            inspect(black_box(&Inspected {
                target: "/orders",
                headers: Vec::new(),
                body: Some(body.as_bytes()),
                media_type: Some("application/json"),
            }))
        })
    });
    c.bench_function("normalise and encode a path", |b| {
        b.iter(|| normalise(black_box(TARGET)).map(|p| encode(&p)))
    });
    let blocks = (0u32..10_000).map(|i| Block {
        net: ipnet::IpNet::new(IpAddr::from((0x0a00_0000 + (i << 8)).to_be_bytes()), 24)
            .unwrap_or_default(),
        until: u64::MAX,
        reason: String::new(),
    });
    let blocklist = Blocklist::new(blocks);
    let rules = StaticRules::new(&["0.0.0.0/0".parse().unwrap_or_default()], &[]);
    let client: IpAddr = [192, 0, 2, 1].into();
    c.bench_function("firewall check, 10,000 blocks", |b| {
        b.iter(|| maos_gateway::firewall::check(&rules, &blocklist, black_box(client), 1))
    });
}

criterion_group!(gateway, benches);
criterion_main!(gateway);
