//! Name matchers for rules like `dns.fqdn matches "(^|\.)example\.com$"`.
//!
//! Three kinds, all matched against the normalized name (lowercase, no
//! trailing dot: what [`crate::FqdnStore::lookup`] returns; other input is
//! normalized first):
//! - **exact**: `api.example.com`, case-insensitive;
//! - **pattern**, with Cilium's `matchPattern` semantics: `*` alone matches
//!   every name; `*` inside a label matches zero or more of `[-a-z0-9_]`
//!   within that label only (`*.example.com` matches `a.example.com`, not
//!   `example.com` nor `a.b.example.com`); a leading `**.` matches one or
//!   more whole labels (`**.example.com` matches `a.example.com` and
//!   `a.b.example.com`, not `example.com`);
//! - **regex**: the `regex` crate's syntax, unanchored unless the
//!   expression anchors itself, compiled with a 1 MiB size limit.

use core::fmt;
use std::borrow::Cow;

use regex::{Regex, RegexBuilder};

use crate::MatcherError;

/// Longest name in text form without escapes (RFC 1035: 253 characters).
const MAX_TEXT_NAME: usize = 253;

/// A compiled name matcher.
#[derive(Debug, Clone)]
pub enum NameMatcher {
    /// One name, case-insensitive.
    Exact(Box<str>),
    /// A Cilium-style wildcard pattern.
    Pattern(Pattern),
    /// A regular expression.
    Regex(Regex),
}

impl NameMatcher {
    /// Matches exactly `name` (any case, trailing dot optional).
    ///
    /// # Errors
    /// [`MatcherError::InvalidName`] for an empty name, an empty label, a
    /// label over 63 characters or a name over 253.
    pub fn exact(name: &str) -> Result<Self, MatcherError> {
        let normalized = normalize(name);
        check_labels(&normalized).map_err(|reason| MatcherError::InvalidName {
            name: name.to_owned(),
            reason,
        })?;
        Ok(Self::Exact(normalized.into()))
    }

    /// A Cilium `matchPattern` (see the module docs).
    ///
    /// # Errors
    /// [`MatcherError::InvalidPattern`] for characters outside
    /// `[-a-zA-Z0-9_.*]`, `**` anywhere but as the whole first label, or an
    /// empty label.
    pub fn pattern(pattern: &str) -> Result<Self, MatcherError> {
        Pattern::new(pattern).map(Self::Pattern)
    }

    /// A regular expression over the normalized name.
    ///
    /// # Errors
    /// [`MatcherError::InvalidRegex`] when the `regex` crate rejects it.
    pub fn regex(expression: &str) -> Result<Self, MatcherError> {
        RegexBuilder::new(expression)
            .size_limit(1 << 20)
            .build()
            .map(Self::Regex)
            .map_err(|source| MatcherError::InvalidRegex {
                pattern: expression.to_owned(),
                source,
            })
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let name = normalize(name);
        match self {
            Self::Exact(exact) => **exact == *name,
            Self::Pattern(pattern) => pattern.matches(&name),
            Self::Regex(regex) => regex.is_match(&name),
        }
    }
}

impl fmt::Display for NameMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(name) => f.write_str(name),
            Self::Pattern(pattern) => f.write_str(&pattern.text),
            Self::Regex(regex) => f.write_str(regex.as_str()),
        }
    }
}

/// Lowercase without the trailing dot; borrowed when already so.
pub fn normalize(name: &str) -> Cow<'_, str> {
    let trimmed = match name.strip_suffix('.') {
        Some(stripped) if !stripped.is_empty() => stripped,
        _ => name,
    };
    if trimmed.bytes().any(|byte| byte.is_ascii_uppercase()) {
        Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        Cow::Borrowed(trimmed)
    }
}

fn check_labels(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name.len() > MAX_TEXT_NAME {
        return Err("longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label");
        }
        if label.len() > 63 {
            return Err("label longer than 63 characters");
        }
    }
    Ok(())
}

/// A compiled Cilium-style `matchPattern`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: Box<str>,
    /// `*` alone.
    everything: bool,
    /// Starts with `**.`.
    any_depth: bool,
    /// The labels after `**.` (all of them otherwise), lowercase.
    labels: Vec<Box<str>>,
}

impl Pattern {
    /// Compiles a pattern.
    ///
    /// # Errors
    /// See [`NameMatcher::pattern`].
    pub fn new(pattern: &str) -> Result<Self, MatcherError> {
        let invalid = |reason| MatcherError::InvalidPattern {
            pattern: pattern.to_owned(),
            reason,
        };
        let normalized = normalize(pattern);
        if !normalized
            .bytes()
            .all(|byte| is_label_byte(byte) || byte == b'.' || byte == b'*')
        {
            return Err(invalid("only [-a-zA-Z0-9_.*] may appear"));
        }
        let (any_depth, rest) = match normalized.strip_prefix("**.") {
            Some(rest) => (true, rest),
            None => (false, &*normalized),
        };
        check_labels(rest).map_err(invalid)?;
        if rest.contains("**") {
            return Err(invalid("`**` may only be the whole first label"));
        }
        Ok(Self {
            text: pattern.into(),
            everything: !any_depth && rest == "*",
            any_depth,
            labels: rest.split('.').map(Into::into).collect(),
        })
    }

    /// Whether a normalized name matches.
    pub fn matches(&self, name: &str) -> bool {
        if self.everything {
            return true;
        }
        let mut name_labels = name.rsplit('.');
        for pattern_label in self.labels.iter().rev() {
            match name_labels.next() {
                Some(label) if glob(pattern_label.as_bytes(), label.as_bytes()) => {}
                _ => return false,
            }
        }
        let mut prefix = name_labels.peekable();
        if self.any_depth {
            prefix.peek().is_some()
                && prefix.all(|label| !label.is_empty() && label.bytes().all(is_label_byte))
        } else {
            prefix.next().is_none()
        }
    }
}

fn is_label_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

/// `*` matches zero or more label bytes; everything else matches itself.
///
/// Pattern labels hold only label bytes and `*`, so a text label with any
/// other byte cannot match, and with that settled the classic greedy
/// wildcard walk (back up to the last `*`) is exact and linear in practice.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    if !text.iter().copied().all(is_label_byte) {
        return false;
    }
    let (mut p, mut t) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                last_star = Some((p, t));
                p += 1;
            }
            Some(&byte) if byte == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match last_star {
                Some((star, from)) => {
                    last_star = Some((star, from + 1));
                    p = star + 1;
                    t = from + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&byte| byte == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> NameMatcher {
        NameMatcher::pattern(text).unwrap()
    }

    #[test]
    fn exact_names_ignore_case_and_the_trailing_dot() {
        let exact = NameMatcher::exact("API.Example.COM.").unwrap();
        assert!(exact.matches("api.example.com"));
        assert!(exact.matches("api.example.com."));
        assert!(!exact.matches("www.api.example.com"));
        for bad in ["", "a..b", &"x".repeat(64), &["abc"; 64].join(".")] {
            assert!(NameMatcher::exact(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn single_star_stays_within_one_label() {
        let star = pattern("*.example.com");
        assert!(star.matches("a.example.com"));
        assert!(star.matches("A-1_b.EXAMPLE.com"));
        assert!(!star.matches("example.com"));
        assert!(!star.matches("a.b.example.com"));
        let infix = pattern("api-*.example.com");
        assert!(infix.matches("api-.example.com"));
        assert!(infix.matches("api-eu1.example.com"));
        assert!(!infix.matches("app-eu1.example.com"));
        let middle = pattern("sub.*.example.com");
        assert!(middle.matches("sub.x.example.com"));
        assert!(!middle.matches("sub.x.y.example.com"));
        let stars = pattern("*a*a*a*a*a*a*a*a*a*a*b.com");
        assert!(!stars.matches(&format!("{}.com", "a".repeat(63))));
        assert!(stars.matches(&format!("{}b.com", "a".repeat(40))));
        assert!(!pattern("*.com").matches("a\\.b.com"));
    }

    #[test]
    fn double_star_matches_one_or_more_labels() {
        let any = pattern("**.example.com");
        assert!(any.matches("a.example.com"));
        assert!(any.matches("a.b.c.example.com"));
        assert!(!any.matches("example.com"));
        assert!(!any.matches("a.example.org"));
        assert!(!any.matches("notexample.com"));
    }

    #[test]
    fn star_alone_matches_everything() {
        let all = pattern("*");
        assert!(all.matches("example.com"));
        assert!(all.matches("."));
    }

    #[test]
    fn invalid_patterns_are_rejected() {
        for bad in [
            "",
            "a/b.com",
            "a.**.com",
            "***.com",
            "a..com",
            "**.",
            "ex ample.com",
        ] {
            assert!(
                matches!(
                    NameMatcher::pattern(bad),
                    Err(MatcherError::InvalidPattern { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn regexes_match_the_normalized_name() {
        let regex = NameMatcher::regex(r"(^|\.)example\.com$").unwrap();
        assert!(regex.matches("example.com"));
        assert!(regex.matches("API.Example.Com."));
        assert!(!regex.matches("notexample.com"));
        assert!(matches!(
            NameMatcher::regex("("),
            Err(MatcherError::InvalidRegex { .. })
        ));
        assert_eq!(regex.to_string(), r"(^|\.)example\.com$");
    }
}
