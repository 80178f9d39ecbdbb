//! Route patterns: a method and path pattern such as `/documents/{id}` map a request to a
//! resource template such as `document:{id}`, with the captures as resource properties.

use maos_core::Resource;

/// One segment of a route's path pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}`: one whole segment.
    Capture(String),
    /// `{*name}`: the rest of the path, one or more segments.
    Rest(String),
}

/// A path pattern such as `/documents/{id}` or `/files/{*path}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathPattern {
    source: String,
    segments: Vec<Segment>,
}

impl PathPattern {
    pub fn parse(source: &str) -> Result<PathPattern, String> {
        let Some(rest) = source.strip_prefix('/') else {
            return Err(format!("path `{source}` must start with `/`"));
        };
        let mut segments = Vec::new();
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let count = parts.len();
        for (i, part) in parts.into_iter().enumerate() {
            let segment = if let Some(name) =
                part.strip_prefix("{*").and_then(|p| p.strip_suffix('}'))
            {
                if i + 1 != count {
                    return Err(format!(
                        "path `{source}`: `{{*{name}}}` must be the last segment"
                    ));
                }
                Segment::Rest(valid_name(source, name)?)
            } else if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Segment::Capture(valid_name(source, name)?)
            } else if part.contains(['{', '}']) {
                return Err(format!(
                    "path `{source}`: a segment is either literal or `{{name}}`"
                ));
            } else if part.is_empty() {
                return Err(format!("path `{source}` has an empty segment"));
            } else {
                Segment::Literal(part.to_owned())
            };
            segments.push(segment);
        }
        Ok(PathPattern {
            source: source.to_owned(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Names of the captures, in order.
    pub fn captures(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Capture(name) | Segment::Rest(name) => Some(name.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// The captures when `path` (without query) matches.
    pub fn matches<'p>(&self, path: &'p str) -> Option<Vec<(&str, &'p str)>> {
        let rest = path.strip_prefix('/')?;
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let mut captures = Vec::new();
        let mut offset = 1;
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Rest(name) => {
                    let tail = path.get(offset..)?;
                    if tail.is_empty() {
                        return None;
                    }
                    captures.push((name.as_str(), tail));
                    return Some(captures);
                }
                Segment::Literal(literal) => {
                    if parts.get(i) != Some(&literal.as_str()) {
                        return None;
                    }
                }
                Segment::Capture(name) => {
                    let value = parts.get(i).copied().filter(|v| !v.is_empty())?;
                    captures.push((name.as_str(), value));
                }
            }
            offset += parts.get(i).map_or(0, |p| p.len() + 1);
        }
        (parts.len() == self.segments.len()).then_some(captures)
    }
}

fn valid_name(source: &str, name: &str) -> Result<String, String> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(name.to_owned())
    } else {
        Err(format!("path `{source}`: invalid capture name `{name}`"))
    }
}

/// A resource template such as `document:{id}`: literal text and `{name}` placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceTemplate {
    source: String,
    parts: Vec<(bool, String)>,
}

impl ResourceTemplate {
    pub fn parse(source: &str) -> Result<ResourceTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find('{') {
            let (literal, after) = rest.split_at(open);
            let close = after
                .find('}')
                .ok_or_else(|| format!("resource `{source}`: unclosed `{{`"))?;
            let name = after.get(1..close).unwrap_or_default();
            if !literal.is_empty() {
                parts.push((false, literal.to_owned()));
            }
            parts.push((true, valid_name(source, name)?));
            rest = after.get(close + 1..).unwrap_or_default();
        }
        if !rest.is_empty() {
            parts.push((false, rest.to_owned()));
        }
        let type_part = parts.first().filter(|(placeholder, _)| !placeholder);
        if type_part.is_none_or(|(_, text)| text.find(':').is_none_or(|colon| colon == 0)) {
            return Err(format!(
                "resource `{source}` must start with a literal `type:`"
            ));
        }
        Ok(ResourceTemplate {
            source: source.to_owned(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn placeholders(&self) -> impl Iterator<Item = &str> {
        self.parts
            .iter()
            .filter(|(p, _)| *p)
            .map(|(_, name)| name.as_str())
    }

    /// The resource for a request's captures; every capture is also a resource property, so
    /// policies can test path parameters (`resource.properties.id`).
    pub fn render(&self, captures: &[(&str, &str)]) -> Resource {
        let mut text = String::new();
        for (placeholder, part) in &self.parts {
            if *placeholder {
                let value = captures
                    .iter()
                    .find(|(name, _)| name == part)
                    .map_or("", |(_, v)| v);
                text.push_str(value);
            } else {
                text.push_str(part);
            }
        }
        let mut resource = match text.split_once(':') {
            Some((kind, id)) => Resource::new(kind, id),
            None => Resource::new(text, ""),
        };
        for (name, value) in captures {
            resource.properties.insert(
                (*name).to_owned(),
                serde_json::Value::String((*value).to_owned()),
            );
        }
        resource
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn patterns_match_whole_segments() {
        let pattern = PathPattern::parse("/docs/{id}/raw").unwrap();
        assert_eq!(pattern.matches("/docs/a/raw"), Some(vec![("id", "a")]));
        assert_eq!(pattern.matches("/docs/a/raw/x"), None);
        assert_eq!(pattern.matches("/docs//raw"), None);
        assert_eq!(pattern.matches("/docs/a"), None);
        let rest = PathPattern::parse("/files/{*path}").unwrap();
        assert_eq!(
            rest.matches("/files/a/b.txt"),
            Some(vec![("path", "a/b.txt")])
        );
        assert_eq!(rest.matches("/files/"), None);
        assert_eq!(rest.matches("/files"), None);
        let root = PathPattern::parse("/").unwrap();
        assert_eq!(root.matches("/"), Some(vec![]));
        assert_eq!(root.matches("/a"), None);
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["docs", "/a//b", "/{*rest}/x", "/a{id}", "/{}", "/{a-b}"] {
            assert!(PathPattern::parse(bad).is_err(), "{bad}");
        }
        assert!(ResourceTemplate::parse("{id}").is_err());
        assert!(ResourceTemplate::parse(":x").is_err());
        assert!(ResourceTemplate::parse("doc:{id").is_err());
    }

    #[test]
    fn captures_become_resource_properties() {
        let template = ResourceTemplate::parse("doc:{team}/{id}").unwrap();
        let resource = template.render(&[("team", "red"), ("id", "7")]);
        assert_eq!(resource.qualified(), "doc:red/7");
        assert_eq!(resource.properties["team"], "red");
        assert_eq!(resource.properties["id"], "7");
    }

    fn segment() -> impl Strategy<Value = String> {
        "[a-z0-9._~-]{1,6}".prop_filter("no dot segments", |s| s != "." && s != "..")
    }

    proptest! {
        /// A literal pattern matches exactly its own path; a capture pattern hands back the
        /// segments it stood for, so the resource is built from what was really requested.
        #[test]
        fn captures_are_the_requested_segments(
            literals in proptest::collection::vec(segment(), 1..4),
            values in proptest::collection::vec(segment(), 1..4),
        ) {
            let n = literals.len().min(values.len());
            let mut pattern = String::new();
            let mut path = String::new();
            for i in 0..n {
                pattern.push_str(&format!("/{}/{{c{i}}}", literals[i]));
                path.push_str(&format!("/{}/{}", literals[i], values[i]));
            }
            let parsed = PathPattern::parse(&pattern).unwrap();
            let captures = parsed.matches(&path).unwrap();
            prop_assert_eq!(captures.len(), n);
            for (i, (name, value)) in captures.iter().enumerate() {
                prop_assert_eq!(name.to_string(), format!("c{i}"));
                prop_assert_eq!(*value, values[i].as_str());
            }
            // One more segment, or one fewer, does not match.
            let longer = format!("{path}/x");
            prop_assert!(parsed.matches(&longer).is_none());
            let shorter = path.rsplit_once('/').map(|(p, _)| p.to_owned()).unwrap();
            prop_assert!(parsed.matches(&shorter).is_none());
        }

        /// A rest capture is the exact remainder of the path.
        #[test]
        fn rest_capture_is_the_remainder(
            prefix in segment(),
            rest in proptest::collection::vec(segment(), 1..5),
        ) {
            let parsed = PathPattern::parse(&format!("/{prefix}/{{*rest}}")).unwrap();
            let tail = rest.join("/");
            let path = format!("/{prefix}/{tail}");
            prop_assert_eq!(parsed.matches(&path), Some(vec![("rest", tail.as_str())]));
        }
    }
}
