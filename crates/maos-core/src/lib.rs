//! The vocabulary every part of MAOS Security shares.
//!
//! This crate holds the shapes that cross crate boundaries: the authorization request (the
//! OpenID AuthZEN 1.0 shape), and the time source. It does no I/O.

pub mod event;
pub mod request;
pub mod time;

pub use event::{SecurityEvent, SecurityEventType, Severity, Timestamp};
pub use request::{Action, Request, Resource, Subject};
pub use time::{Clock, SystemClock};
