//! Compares the login paths for an unknown user and for a known user with a wrong password.
//! Both run one Argon2id verification (the unknown user against the dummy hash), so their
//! medians should differ by well under 10%.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use maos_identity::SecretString;
use maos_identity::password::{PasswordHasher, PasswordParams, normalize_user_name};

fn login_paths(c: &mut Criterion) {
    let hasher = match PasswordHasher::new(PasswordParams::default()) {
        Ok(hasher) => hasher,
        Err(e) => {
            eprintln!("cannot build the hasher: {e}");
            return;
        }
    };
    let stored = match hasher.hash(&SecretString::new("the real password")) {
        Ok(stored) => stored,
        Err(e) => {
            eprintln!("cannot hash: {e}");
            return;
        }
    };
    let users = [("alice".to_owned(), stored)];
    let attempt = SecretString::new("a wrong password");

    // The same lookup-then-verify code for both; only whether the user exists differs.
    let login = |name: &str| {
        let name = normalize_user_name(name).unwrap_or_default();
        let stored = users
            .iter()
            .find(|(user, _)| *user == name)
            .map(|(_, hash)| hash.as_str());
        hasher.verify_or_dummy(&attempt, stored).matched
    };

    paired_medians(&login);

    let mut group = c.benchmark_group("login");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("unknown_user", |b| {
        b.iter(|| black_box(login(black_box("mallory"))))
    });
    group.bench_function("wrong_password", |b| {
        b.iter(|| black_box(login(black_box("alice"))))
    });
    group.finish();
}

/// Criterion measures one function after the other, so on a shared machine a change of load
/// between the two runs shows up as a difference. This pairs them instead: each round times
/// one login of each kind back to back, alternating which goes first, and compares medians.
fn paired_medians(login: &dyn Fn(&str) -> bool) {
    const ROUNDS: usize = 60;
    let mut unknown = Vec::with_capacity(ROUNDS);
    let mut wrong = Vec::with_capacity(ROUNDS);
    let time = |name: &str| {
        let start = Instant::now();
        black_box(login(black_box(name)));
        start.elapsed()
    };
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            unknown.push(time("mallory"));
            wrong.push(time("alice"));
        } else {
            wrong.push(time("alice"));
            unknown.push(time("mallory"));
        }
    }
    let median = |samples: &mut Vec<Duration>| {
        samples.sort();
        samples.get(samples.len() / 2).copied().unwrap_or_default()
    };
    let (u, w) = (median(&mut unknown), median(&mut wrong));
    let difference =
        (u.as_secs_f64() - w.as_secs_f64()).abs() / w.as_secs_f64().max(f64::MIN_POSITIVE);
    println!(
        "paired medians over {ROUNDS} rounds: unknown_user {u:?}, wrong_password {w:?}, difference {:.1}%",
        difference * 100.0
    );
}

criterion_group!(benches, login_paths);
criterion_main!(benches);
