//! Loading Sigma rules from a directory, one file at a time, so that a broken file is
//! reported with its reason and does not stop the others.

use std::path::{Path, PathBuf};

use rsigma_parser::SigmaCollection;

/// A rule file that could not be loaded, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RuleLoadError {
    pub path: PathBuf,
    pub reason: String,
}

impl std::fmt::Display for RuleLoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// The rules directory itself could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuleDirError {
    #[error("rules directory `{path}` does not exist")]
    Missing { path: PathBuf },
    #[error("cannot read rules directory `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One parsed rule file.
#[derive(Debug, Clone)]
pub struct RuleFile {
    pub path: PathBuf,
    pub collection: SigmaCollection,
}

/// Rule files parsed from a directory tree, plus the files that failed to parse.
#[derive(Debug, Default)]
pub struct RuleFiles {
    pub files: Vec<RuleFile>,
    pub errors: Vec<RuleLoadError>,
}

impl RuleFiles {
    /// Parse every `*.yml`/`*.yaml` file under `dir`, recursively, in path order.
    pub fn load_dir(dir: &Path) -> Result<Self, RuleDirError> {
        if !dir.exists() {
            return Err(RuleDirError::Missing {
                path: dir.to_owned(),
            });
        }
        let mut paths = Vec::new();
        collect_yaml(dir, &mut paths)?;
        paths.sort();

        let mut out = Self::default();
        for path in paths {
            match std::fs::read_to_string(&path) {
                Ok(text) => out.add_yaml(path, &text),
                Err(e) => out.errors.push(RuleLoadError {
                    path,
                    reason: e.to_string(),
                }),
            }
        }
        Ok(out)
    }

    /// Parse one YAML text (possibly several documents) as if read from `path`.
    pub fn add_yaml(&mut self, path: PathBuf, text: &str) {
        match rsigma_parser::parse_sigma_yaml(text) {
            Ok(mut collection) if collection.errors.is_empty() => {
                complete_temporal_conditions(text, &mut collection);
                self.files.push(RuleFile { path, collection });
            }
            Ok(collection) => {
                let reason = collection.errors.join("; ");
                self.errors.push(RuleLoadError { path, reason });
            }
            Err(e) => self.errors.push(RuleLoadError {
                path,
                reason: e.to_string(),
            }),
        }
    }

    /// Number of detection, correlation and filter documents parsed.
    pub fn document_count(&self) -> usize {
        self.files
            .iter()
            .map(|f| {
                f.collection.rules.len()
                    + f.collection.correlations.len()
                    + f.collection.filters.len()
            })
            .sum()
    }
}

/// The specification makes a temporal correlation without `condition` require every rule
/// it lists; rsigma 0.23 reads the missing condition as `gte: 1`. Restore the specified
/// meaning for correlations whose YAML has no condition.
fn complete_temporal_conditions(text: &str, collection: &mut SigmaCollection) {
    use rsigma_parser::{ConditionOperator, CorrelationCondition, CorrelationType};
    use serde::Deserialize;

    let mut without_condition = Vec::new();
    for doc in yaml_serde::Deserializer::from_str(text) {
        let Ok(value) = yaml_serde::Value::deserialize(doc) else {
            break;
        };
        if let Some(corr) = value.get("correlation") {
            without_condition.push(corr.get("condition").is_none());
        }
    }
    if without_condition.len() != collection.correlations.len() {
        return;
    }
    for (corr, missing) in collection.correlations.iter_mut().zip(without_condition) {
        let temporal = matches!(
            corr.correlation_type,
            CorrelationType::Temporal | CorrelationType::TemporalOrdered
        );
        if temporal && missing {
            corr.condition = CorrelationCondition::Threshold {
                predicates: vec![(ConditionOperator::Gte, corr.rules.len() as u64)],
                field: None,
                percentile: None,
            };
        }
    }
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), RuleDirError> {
    let read_err = |source| RuleDirError::Read {
        path: dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(read_err)?;
        if file_type.is_dir() {
            collect_yaml(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        ) {
            out.push(path);
        }
    }
    Ok(())
}
