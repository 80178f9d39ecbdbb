//! maos-crypto
