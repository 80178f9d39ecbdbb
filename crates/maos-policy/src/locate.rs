//! Finds the line of a path in the bundle (`roles[1].inherits[0]`) in its YAML or JSON source.
//!
//! The source is read a second time with an event parser that reports positions; the result
//! is only used for messages, so a source it cannot read simply has no lines.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

/// Nodes nested deeper than this get no line of their own (their parents' line is used).
const MAX_DEPTH: usize = 64;

/// The line of every node of the first document, by path.
#[derive(Debug, Default)]
pub(crate) struct LineIndex {
    lines: HashMap<String, usize>,
}

enum Frame {
    Map {
        path: String,
        key: Option<String>,
        expecting_key: bool,
    },
    Seq {
        path: String,
        next: usize,
    },
}

impl LineIndex {
    pub(crate) fn new(source: &str) -> LineIndex {
        let mut lines = HashMap::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut parser = Parser::new_from_str(source);

        while let Some(Ok((event, span))) = parser.next_event() {
            let line = span.start.line();
            match event {
                Event::Scalar(value, ..) => {
                    if let Some(path) = node_started(&mut stack, Some(&value)) {
                        lines.entry(path).or_insert(line);
                    }
                    node_finished(&mut stack);
                }
                Event::Alias(_) => {
                    if let Some(path) = node_started(&mut stack, None) {
                        lines.entry(path).or_insert(line);
                    }
                    node_finished(&mut stack);
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    let path = node_started(&mut stack, None);
                    let path = match path {
                        Some(path) if stack.len() < MAX_DEPTH => {
                            lines.entry(path.clone()).or_insert(line);
                            path
                        }
                        // Keys that are collections, and very deep nodes, are not indexed.
                        _ => "\u{0}".to_string(),
                    };
                    if matches!(event, Event::MappingStart(..)) {
                        stack.push(Frame::Map {
                            path,
                            key: None,
                            expecting_key: true,
                        });
                    } else {
                        stack.push(Frame::Seq { path, next: 0 });
                    }
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                    node_finished(&mut stack);
                }
                Event::DocumentEnd | Event::StreamEnd => break,
                _ => {}
            }
        }
        LineIndex { lines }
    }

    /// The line of `path`, or of its nearest ancestor that has one.
    pub(crate) fn line_of(&self, path: &str) -> Option<usize> {
        let mut path = path;
        loop {
            if let Some(line) = self.lines.get(path) {
                return Some(*line);
            }
            let cut = path.rfind(['.', '['])?;
            path = path.get(..cut)?;
        }
    }
}

/// Called when a node starts; returns the node's path, or `None` when the node is a key
/// (a scalar key's own path is returned for scalars, so a key points at its line).
fn node_started(stack: &mut [Frame], scalar: Option<&str>) -> Option<String> {
    match stack.last_mut() {
        None => Some(String::new()),
        Some(Frame::Seq { path, next }) => Some(format!("{path}[{next}]")),
        Some(Frame::Map {
            path,
            key,
            expecting_key,
        }) => {
            if *expecting_key {
                // A key: remember it; its line is the line of the entry.
                let name = scalar.map(str::to_string);
                let full = name.as_ref().map(|k| join(path, k));
                *key = name;
                full
            } else {
                key.as_ref().map(|k| join(path, k))
            }
        }
    }
}

fn node_finished(stack: &mut [Frame]) {
    match stack.last_mut() {
        None => {}
        Some(Frame::Seq { next, .. }) => *next += 1,
        Some(Frame::Map { expecting_key, .. }) => *expecting_key = !*expecting_key,
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() || parent == "\u{0}" {
        if parent.is_empty() {
            key.to_string()
        } else {
            format!("\u{0}.{key}")
        }
    } else {
        format!("{parent}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_and_flow_nodes_have_lines() {
        let source = "version: 1\nroles:\n  - name: a\n    inherits: [b, c]\n  - name: b\n    \
                      permissions:\n      - { resource: x,\n          actions: [read] }\n";
        let index = LineIndex::new(source);
        assert_eq!(index.line_of("version"), Some(1));
        assert_eq!(index.line_of("roles"), Some(2));
        assert_eq!(index.line_of("roles[0]"), Some(3));
        assert_eq!(index.line_of("roles[0].inherits[1]"), Some(4));
        assert_eq!(index.line_of("roles[1].name"), Some(5));
        assert_eq!(index.line_of("roles[1].permissions[0].actions"), Some(8));
        assert_eq!(index.line_of("roles[1].permissions[0].resource"), Some(7));
        // A path that does not exist falls back to its nearest ancestor.
        assert_eq!(
            index.line_of("roles[1].permissions[0].conditions[3]"),
            Some(7)
        );
    }

    #[test]
    fn json_sources_have_lines_too() {
        let source = "{\n  \"version\": 1,\n  \"bindings\": [\n    {\"subject\": \"user:a\",\n     \
                      \"roles\": [\"x\"]}\n  ]\n}";
        let index = LineIndex::new(source);
        assert_eq!(index.line_of("bindings[0].roles[0]"), Some(5));
        assert_eq!(index.line_of("bindings[0].subject"), Some(4));
    }

    #[test]
    fn broken_or_deep_sources_do_not_panic() {
        let deep = "[".repeat(10_000);
        let index = LineIndex::new(&deep);
        assert!(index.line_of("a").is_none());
        let _ = LineIndex::new("a: [b, {c: d\n");
    }
}
