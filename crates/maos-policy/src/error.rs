//! Errors of loading a bundle: each names the file, the path in the bundle and, where known,
//! the line.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One problem found while reading, checking or compiling a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadError {
    /// The file (or other source) the bundle came from.
    pub origin: String,
    /// Where in the bundle, e.g. `roles[1].inherits[0]`; empty for the whole bundle.
    pub path: String,
    /// The 1-based line in the source, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub message: String,
}

/// Paths longer than this are shortened in messages (deeply nested conditions).
const MAX_PATH: usize = 120;

impl LoadError {
    /// An error with the path shortened if very long and the message on one line.
    pub fn new(origin: &str, path: &str, line: Option<usize>, message: &str) -> LoadError {
        LoadError {
            origin: origin.to_string(),
            path: shorten(path),
            line,
            message: message.split_whitespace().collect::<Vec<_>>().join(" "),
        }
    }

    /// The compiler-style form used by the CLI: `origin:line: path: message`.
    pub fn to_compiler_style(&self) -> String {
        let mut out = self.origin.clone();
        if let Some(line) = self.line {
            out.push_str(&format!(":{line}"));
        }
        out.push_str(": ");
        if !self.path.is_empty() {
            out.push_str(&self.path);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        out
    }
}

fn shorten(path: &str) -> String {
    if path.len() <= MAX_PATH {
        return path.to_string();
    }
    let head: String = path.chars().take(60).collect();
    let tail: Vec<char> = path.chars().rev().take(40).collect();
    let tail: String = tail.into_iter().rev().collect();
    format!("{head}...{tail}")
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a bundle; never empty when returned as an error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadErrors {
    pub errors: Vec<LoadError>,
}

impl From<LoadError> for LoadErrors {
    fn from(error: LoadError) -> Self {
        LoadErrors {
            errors: vec![error],
        }
    }
}

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_per_error() {
        let errors = LoadErrors {
            errors: vec![
                LoadError {
                    origin: "b.yaml".into(),
                    path: "roles[0].inherits[0]".into(),
                    line: Some(7),
                    message: "unknown role `x`".into(),
                },
                LoadError {
                    origin: "b.yaml".into(),
                    path: String::new(),
                    line: None,
                    message: "empty".into(),
                },
            ],
        };
        assert_eq!(
            errors.to_string(),
            "b.yaml: roles[0].inherits[0] (line 7): unknown role `x`\nb.yaml: empty"
        );
        assert_eq!(
            errors.errors[0].to_compiler_style(),
            "b.yaml:7: roles[0].inherits[0]: unknown role `x`"
        );
    }
}
