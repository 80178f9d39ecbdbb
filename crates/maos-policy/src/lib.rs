//! The MAOS policy decision point. Pure: no I/O, no async.
