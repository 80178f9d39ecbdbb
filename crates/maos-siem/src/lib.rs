//! Detection for MAOS Security: log parsing into [`maos_core::SecurityEvent`]s, Sigma rules and
//! correlations, and the per-event [`Detector`] the server calls.
//!
//! Pure: no network, no storage. Reading rule files and the offline scanner's input is the
//! only file access.

pub mod alert;
pub mod correlate;
pub mod detector;
pub mod parse;
pub mod rules;

pub use alert::{Alert, AlertStatus};
pub use correlate::{Correlator, correlation_id_for};
pub use detector::{Detector, DetectorConfig, HitKind, RuleHit};
pub use rules::{RuleDirError, RuleFiles, RuleLoadError};
pub mod ingest;
