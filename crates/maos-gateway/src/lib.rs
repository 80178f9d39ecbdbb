//! The MAOS gateway's enforcement pipeline, as pure logic: the server feeds it requests and
//! acts on its verdicts (see docs/gateway.md).
//!
//! Each module is one step: [`path`] normalisation, [`route`] patterns, [`firewall`] CIDR
//! tables and the dynamic blocklist, the [`forwarded`] client address, [`ratelimit`], input [`validate`]ion, intrusion
//! [`detect`]ion, response [`headers`] and [`redact`]ion, and the verification [`context`].

pub mod context;
pub mod detect;
pub mod firewall;
pub mod forwarded;
pub mod headers;
pub mod path;
pub mod ratelimit;
pub mod redact;
pub mod route;
pub mod validate;
