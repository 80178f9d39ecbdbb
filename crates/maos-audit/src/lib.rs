//! maos-audit
