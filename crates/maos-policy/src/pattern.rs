//! Resource patterns: `*` matches any run of characters except `/`, `**` any run including `/`,
//! every other character is literal. A pattern matches the whole `type:id` string,
//! case-sensitively.

use std::fmt;

/// The most wildcard runs one pattern may hold (the matcher keeps its states in a `u64`).
pub const MAX_WILDCARDS: usize = 31;

/// A compiled resource pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    shape: Shape,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Shape {
    /// No wildcard: the whole string.
    Exact,
    /// `prefix**`: anything starting with the prefix.
    PrefixDeep(String),
    /// `prefix*`: the prefix, then anything without `/`.
    PrefixShallow(String),
    /// Anything else, matched by a small automaton over the tokens.
    General {
        prefix: String,
        suffix: String,
        tokens: Vec<Token>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(String),
    /// `*`
    Star,
    /// `**` (or any longer run of `*`)
    DoubleStar,
}

/// Why a pattern was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("pattern `{0}` has more than {MAX_WILDCARDS} wildcards")]
    TooManyWildcards(String),
    #[error("pattern is empty")]
    Empty,
}

impl Pattern {
    pub fn new(source: &str) -> Result<Pattern, PatternError> {
        if source.is_empty() {
            return Err(PatternError::Empty);
        }
        let tokens = tokenize(source);
        let wildcards = tokens
            .iter()
            .filter(|t| !matches!(t, Token::Literal(_)))
            .count();
        if wildcards > MAX_WILDCARDS {
            return Err(PatternError::TooManyWildcards(source.to_string()));
        }

        let shape = match tokens.as_slice() {
            [] | [Token::Literal(_)] => Shape::Exact,
            [Token::DoubleStar] => Shape::PrefixDeep(String::new()),
            [Token::Star] => Shape::PrefixShallow(String::new()),
            [Token::Literal(p), Token::DoubleStar] => Shape::PrefixDeep(p.clone()),
            [Token::Literal(p), Token::Star] => Shape::PrefixShallow(p.clone()),
            _ => {
                let prefix = match tokens.first() {
                    Some(Token::Literal(p)) => p.clone(),
                    _ => String::new(),
                };
                let suffix = match tokens.last() {
                    Some(Token::Literal(s)) => s.clone(),
                    _ => String::new(),
                };
                Shape::General {
                    prefix,
                    suffix,
                    tokens,
                }
            }
        };
        Ok(Pattern {
            source: source.to_string(),
            shape,
        })
    }

    /// A pattern that matches only the empty string, which no `type:id` is.
    pub(crate) fn placeholder() -> Pattern {
        Pattern {
            source: String::new(),
            shape: Shape::Exact,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the pattern has no wildcard.
    pub fn is_exact(&self) -> bool {
        matches!(self.shape, Shape::Exact)
    }

    /// The literal text every matching string starts with.
    pub fn literal_prefix(&self) -> &str {
        match &self.shape {
            Shape::Exact => &self.source,
            Shape::PrefixDeep(p) | Shape::PrefixShallow(p) => p,
            Shape::General { prefix, .. } => prefix,
        }
    }

    /// The literal text every matching string ends with.
    pub fn literal_suffix(&self) -> &str {
        match &self.shape {
            Shape::Exact => &self.source,
            Shape::PrefixDeep(_) | Shape::PrefixShallow(_) => "",
            Shape::General { suffix, .. } => suffix,
        }
    }

    /// Whether the pattern matches the whole of `text`.
    pub fn matches(&self, text: &str) -> bool {
        match &self.shape {
            Shape::Exact => self.source == text,
            Shape::PrefixDeep(p) => text.starts_with(p.as_str()),
            Shape::PrefixShallow(p) => text
                .strip_prefix(p.as_str())
                .is_some_and(|rest| !rest.contains('/')),
            Shape::General {
                prefix,
                suffix,
                tokens,
            } => {
                text.len() >= prefix.len() + suffix.len()
                    && text.starts_with(prefix.as_str())
                    && text.ends_with(suffix.as_str())
                    && run_tokens(tokens, text.as_bytes())
            }
        }
    }

    /// True when every string `other` matches is matched by `self` too. Conservative: `false`
    /// means "not shown", not "no".
    pub fn covers(&self, other: &Pattern) -> bool {
        if self.source == other.source {
            return true;
        }
        if other.is_exact() {
            return self.matches(&other.source);
        }
        match &self.shape {
            Shape::PrefixDeep(p) => other.literal_prefix().starts_with(p.as_str()),
            Shape::PrefixShallow(p) => match &other.shape {
                Shape::PrefixShallow(q) => q
                    .strip_prefix(p.as_str())
                    .is_some_and(|rest| !rest.contains('/')),
                _ => false,
            },
            Shape::Exact | Shape::General { .. } => false,
        }
    }

    /// True unless the two patterns provably match no common string.
    pub fn may_overlap(&self, other: &Pattern) -> bool {
        if self.is_exact() {
            return other.matches(&self.source);
        }
        if other.is_exact() {
            return self.matches(&other.source);
        }
        let (a, b) = (self.literal_prefix(), other.literal_prefix());
        if !(a.starts_with(b) || b.starts_with(a)) {
            return false;
        }
        let (a, b) = (self.literal_suffix(), other.literal_suffix());
        if !(a.ends_with(b) || b.ends_with(a)) {
            return false;
        }
        // `p*` cannot reach a literal `/` that the other pattern requires after `p`.
        let slash_after = |shallow: &str, longer: &str| {
            longer
                .get(shallow.len()..)
                .is_some_and(|rest| rest.contains('/'))
        };
        match (&self.shape, &other.shape) {
            (Shape::PrefixShallow(p), _) => !slash_after(p, other.literal_prefix()),
            (_, Shape::PrefixShallow(q)) => !slash_after(q, self.literal_prefix()),
            _ => true,
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn tokenize(source: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut literal = String::new();
    let mut stars = 0usize;
    let flush_stars = |stars: &mut usize, tokens: &mut Vec<Token>| {
        match *stars {
            0 => {}
            1 => tokens.push(Token::Star),
            _ => tokens.push(Token::DoubleStar),
        }
        *stars = 0;
    };
    for c in source.chars() {
        if c == '*' {
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            }
            stars += 1;
        } else {
            flush_stars(&mut stars, &mut tokens);
            literal.push(c);
        }
    }
    flush_stars(&mut stars, &mut tokens);
    if !literal.is_empty() {
        tokens.push(Token::Literal(literal));
    }
    tokens
}

/// Runs the token automaton over `text`: `reach[p]` holds, as bits, the tokens that can start
/// at byte `p`. Time O(len × tokens), no backtracking. Wildcards step one byte at a time; a
/// literal can never start inside a multi-byte character, so positions stay meaningful.
fn run_tokens(tokens: &[Token], text: &[u8]) -> bool {
    const STACK: usize = 256;
    let mut on_stack = [0u64; STACK + 1];
    let mut on_heap = Vec::new();
    let reach: &mut [u64] = if text.len() <= STACK {
        &mut on_stack
    } else {
        on_heap.resize(text.len() + 1, 0u64);
        &mut on_heap
    };
    let accept = 1u64 << tokens.len();
    let wildcard = |i: usize| matches!(tokens.get(i), Some(Token::Star | Token::DoubleStar));

    if let Some(first) = reach.first_mut() {
        *first = 1;
    }
    for p in 0..=text.len() {
        let mut set = reach.get(p).copied().unwrap_or(0);
        if set == 0 {
            continue;
        }
        // A wildcard may match nothing: whoever stands before it also stands after it.
        for i in 0..tokens.len() {
            if set & (1 << i) != 0 && wildcard(i) {
                set |= 1 << (i + 1);
            }
        }
        if p == text.len() {
            return set & accept != 0;
        }
        let rest = text.get(p..).unwrap_or_default();
        for (i, token) in tokens.iter().enumerate() {
            if set & (1 << i) == 0 {
                continue;
            }
            let (to, bit) = match token {
                Token::Literal(lit) if rest.starts_with(lit.as_bytes()) => {
                    (p + lit.len(), 1 << (i + 1))
                }
                Token::Literal(_) => continue,
                Token::Star if rest.first() == Some(&b'/') => continue,
                Token::Star | Token::DoubleStar => (p + 1, 1 << i),
            };
            if let Some(slot) = reach.get_mut(to) {
                *slot |= bit;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(pattern: &str, text: &str) -> bool {
        Pattern::new(pattern).unwrap().matches(text)
    }

    #[test]
    fn pattern_does_not_match_longer_path() {
        assert!(m("project:1", "project:1"));
        assert!(!m("project:1", "project:1/member"));
        assert!(!m("project:1", "project:10"));
    }

    #[test]
    fn middle_star_does_not_cross_slash() {
        assert!(m("project:*/member", "project:1/member"));
        assert!(!m("project:*/member", "project:1/2/member"));
        assert!(m("project:**/member", "project:1/2/member"));
        assert!(!m("document:*", "document:a/b"));
        assert!(m("document:**", "document:a/b"));
    }

    #[test]
    fn literal_dots_braces_and_colons_are_literal() {
        assert!(m("file:report.pdf", "file:report.pdf"));
        assert!(!m("file:report.pdf", "file:reportXpdf"));
        assert!(m("api:/users/{id}", "api:/users/{id}"));
        assert!(!m("api:/users/{id}", "api:/users/42"));
        assert!(!m("api:/users/:id", "api:/users/42"));
        assert!(m("a:(x)+[y]$", "a:(x)+[y]$"));
    }

    #[test]
    fn matching_is_case_sensitive() {
        assert!(!m("document:Readme", "document:readme"));
    }

    #[test]
    fn star_runs_and_edges() {
        assert!(m("*", "abc"));
        assert!(!m("*", "a/b"));
        assert!(m("**", ""));
        assert!(m("*", ""));
        assert!(m("***", "a/b"));
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*c", "aXbYc"));
        assert!(!m("a*b*c", "aXbY/c"));
        assert!(m("**/x/*", "a/b/x/c"));
        assert!(!m("**/x/*", "a/b/x/c/d"));
        assert!(m("é*ü", "éaü"));
        assert!(m("*ü", "ßü"));
    }

    #[test]
    fn long_inputs_use_the_heap_path() {
        let long = format!("doc:{}/end", "a".repeat(1000));
        assert!(m("doc:*/end", &long));
        assert!(!m("doc:*/x", &long));
    }

    #[test]
    fn too_many_wildcards_is_an_error() {
        let pattern = "a*".repeat(MAX_WILDCARDS + 1);
        assert!(matches!(
            Pattern::new(&pattern),
            Err(PatternError::TooManyWildcards(_))
        ));
        assert!(Pattern::new(&"a*".repeat(MAX_WILDCARDS)).is_ok());
        assert_eq!(Pattern::new(""), Err(PatternError::Empty));
    }

    #[test]
    fn coverage_and_overlap() {
        let p = |s: &str| Pattern::new(s).unwrap();
        assert!(p("document:**").covers(&p("document:a/*")));
        assert!(p("document:*").covers(&p("document:a*")));
        assert!(!p("document:*").covers(&p("document:**")));
        assert!(p("**").covers(&p("x:*/y")));
        assert!(p("document:a").covers(&p("document:a")));
        assert!(!p("document:a").covers(&p("document:*")));
        assert!(p("document:*").may_overlap(&p("document:**")));
        assert!(!p("document:*").may_overlap(&p("secret:*")));
        assert!(!p("document:*").may_overlap(&p("document:a/**")));
        assert!(!p("document:x").may_overlap(&p("document:y")));
        assert!(p("document:x").may_overlap(&p("document:*")));
    }

    /// The reference: the pattern as an anchored regular expression.
    fn reference(pattern: &str, text: &str) -> bool {
        let mut re = String::from("^");
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '*' {
                let mut double = false;
                while chars.peek() == Some(&'*') {
                    chars.next();
                    double = true;
                }
                re.push_str(if double { "(?s:.*)" } else { "[^/]*" });
            } else {
                re.push_str(&regex::escape(&c.to_string()));
            }
        }
        re.push('$');
        regex::Regex::new(&re).unwrap().is_match(text)
    }

    fn alphabet() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just('a'),
                Just('b'),
                Just('/'),
                Just(':'),
                Just('.'),
                Just('é')
            ],
            0..12,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    fn patterns() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just('a'),
                Just('b'),
                Just('/'),
                Just(':'),
                Just('.'),
                Just('é'),
                Just('*'),
                Just('*')
            ],
            1..10,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn matcher_agrees_with_anchored_regex(pattern in patterns(), text in alphabet()) {
            prop_assert_eq!(m(&pattern, &text), reference(&pattern, &text),
                "pattern {:?} text {:?}", pattern, text);
        }

        #[test]
        fn covers_is_sound(a in patterns(), b in patterns(), text in alphabet()) {
            let (pa, pb) = (Pattern::new(&a).unwrap(), Pattern::new(&b).unwrap());
            if pa.covers(&pb) && pb.matches(&text) {
                prop_assert!(pa.matches(&text), "{a:?} covers {b:?} but not {text:?}");
            }
            if pa.matches(&text) && pb.matches(&text) {
                prop_assert!(pa.may_overlap(&pb), "{a:?} and {b:?} both match {text:?}");
            }
        }
    }
}
