//! maos-server
