//! Benchmarks of MAOS against peer engines.
