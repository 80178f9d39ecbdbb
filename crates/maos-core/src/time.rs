//! A time source that tests can control.

use std::time::SystemTime;

/// Where the current time comes from. Lifecycles with deadlines (key deletion windows, SLA
/// timers, ban expiry) read the time through this trait so that tests can move it.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> SystemTime;
}

/// The operating system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}
