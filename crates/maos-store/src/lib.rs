//! maos-store
