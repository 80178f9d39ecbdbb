#!/usr/bin/env bash
# Builds every fuzz target on stable Rust and runs each one briefly over its seed corpus.
#
# Not fuzzing proper (docs/fuzzing.md says how): a check that every target builds, that the seed
# inputs still pass, and that a short mutation run finds nothing. The targets are instrumented
# for coverage the way cargo-fuzz does it (SanitizerCoverage through -Cpasses=sancov-module),
# which stable rustc accepts; only AddressSanitizer would need nightly, and safe Rust has no use
# for it here. The libFuzzer runtime comes from the libfuzzer-sys crate (built with cc).
#
# Environment: FUZZ_RUNS (default 20000) and FUZZ_SECONDS (default 20) bound each target;
# FUZZ_TARGETS (space-separated) picks targets; CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

runs="${FUZZ_RUNS:-20000}"
seconds="${FUZZ_SECONDS:-20}"
host="$(rustc -vV | sed -n 's/^host: //p')"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"

# The flags cargo-fuzz passes, minus -Zsanitizer. `--target` keeps them off build scripts and
# proc macros, which do not link the libFuzzer runtime.
export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR="$target_dir"

echo "== fuzz: build (release, $host)"
cargo build --release --locked --target "$host" --bins

targets="${FUZZ_TARGETS:-$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^maos-fuzz$')}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

failed=()
for t in $targets; do
    binary="$target_dir/$host/release/$t"
    seeds="corpus/$t"
    mkdir -p "$work/$t" "$work/artifacts"
    corpora=("$work/$t")
    if [ -d "$seeds" ]; then
        corpora+=("$seeds")
    else
        echo "warning: $t has no seed corpus under fuzz/$seeds"
    fi

    start=$SECONDS
    # New inputs go to the first (scratch) directory; the committed seeds stay as they are.
    if "$binary" -runs="$runs" -max_len=4096 -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/artifacts/$t-" \
        "${corpora[@]}" >"$work/$t.log" 2>&1; then
        stats="$(grep -E '^stat::number_of_executed_units' "$work/$t.log" | awk '{print $2}')"
        echo "ok   $t: ${stats:-?} runs in $((SECONDS - start)) s"
    else
        echo "FAIL $t (log below)"
        tail -n 40 "$work/$t.log"
        for artifact in "$work/artifacts/$t-"*; do
            [ -e "$artifact" ] || continue
            echo "-- crashing input $(basename "$artifact") (base64):"
            base64 "$artifact"
        done
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz smoke run failed: ${failed[*]}"
    exit 1
fi
echo "fuzz smoke run: all targets passed"
