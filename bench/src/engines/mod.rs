//! The common face of the engines under test.

use std::time::Duration;

/// An engine loaded with one workload and holding its prepared requests, in its own request
/// form, so that the timed call is the decision and nothing else.
pub trait Engine {
    /// The engine and modeling, e.g. `cedar (policy per role)`.
    fn label(&self) -> &str;

    /// How many prepared requests there are.
    fn requests(&self) -> usize;

    /// Decides prepared request `index` (below `requests()`): true when allowed.
    fn decide(&self, index: usize) -> bool;
}

/// An engine with the time its workload took to load from source text.
pub struct Loaded {
    pub engine: Box<dyn Engine>,
    pub load: Duration,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("engine", &self.engine.label())
            .field("load", &self.load)
            .finish()
    }
}

pub mod casbin;
pub mod cedar;
pub mod maos;
