//! Parsers for the log formats MAOS ingests. Every parser is total: any input yields a value,
//! `None` or a typed error, never a panic.

pub mod cef;
pub mod host;
pub mod sshd;
pub mod syslog;
pub mod web;
