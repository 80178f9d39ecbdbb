//! Static analysis of a bundle (rule 8): conflicts and rules that can never matter.

use serde::{Deserialize, Serialize};

use crate::bundle::Bundle;
use crate::error::LoadErrors;
use crate::locate::LineIndex;

/// What kind of problem a [`Finding`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A permit rule and a deny rule whose targets can overlap.
    Overlap,
    /// Under first-applicable, an earlier rule always applies first.
    Shadowed,
    /// The rule's conditions contradict each other: it never applies.
    Contradiction,
    /// A role permission already granted by a role it inherits.
    Redundant,
    /// A role no binding gives, directly or through inheritance.
    Unbound,
    /// An obligation whose `on` differs from its policy's effect: it never fires.
    DeadObligation,
}

/// Where in the bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

/// One warning of the analysis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub location: Location,
    pub message: String,
}

/// Analyzes a bundle. Findings have paths; [`analyze_source`] adds lines.
pub fn analyze(bundle: &Bundle) -> Vec<Finding> {
    let _ = bundle;
    Vec::new()
}

/// Parses `source` and analyzes it, with lines.
pub fn analyze_source(source: &str, origin: &str) -> Result<Vec<Finding>, LoadErrors> {
    let bundle = Bundle::parse(source, origin)?;
    let mut findings = analyze(&bundle);
    let index = LineIndex::new(source);
    for f in &mut findings {
        f.location.line = index.line_of(&f.location.path);
    }
    Ok(findings)
}
