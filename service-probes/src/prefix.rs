//! The literals a pattern requires, so that a banner only meets the
//! patterns it could match: its literal prefix ([`literal_prefix`]), and
//! the longest run of literal bytes it needs somewhere
//! ([`required_literal`]).
//!
//! A pattern has a prefix when it starts with `^` and then literal bytes
//! (plain characters, `\r \n \t \f \e \a`, `\xHH`, an escaped
//! punctuation mark). The prefix stops before anything else: a group, a
//! class, `.`, an escape such as `\d`, and before a literal that a
//! quantifier makes optional (`a?`, `a*`, `a{0,}`); `a+` keeps one `a`. A
//! pattern with a `|` outside a class has no prefix (an alternation may
//! start anywhere). The prefix is at most [`MAX_PREFIX`] bytes.

/// The longest prefix kept.
pub const MAX_PREFIX: usize = 8;

/// The prefix `pattern` requires (possibly empty).
pub fn literal_prefix(pattern: &str) -> Vec<u8> {
    let p = pattern.as_bytes();
    if has_top_alternation(p) || inline_flags(pattern).contains('x') {
        return Vec::new();
    }
    let Some(mut rest) = p.strip_prefix(b"^") else {
        return Vec::new();
    };
    let mut prefix = Vec::new();
    while prefix.len() < MAX_PREFIX {
        let Some((byte, len)) = literal(rest) else {
            break;
        };
        let after = &rest[len..];
        match after.first() {
            Some(b'?' | b'*' | b'{') => break,
            Some(b'+') => {
                prefix.push(byte);
                break;
            }
            _ => {
                prefix.push(byte);
                rest = after;
            }
        }
    }
    prefix
}

/// The shortest required literal worth looking for.
pub const MIN_REQUIRED: usize = 3;

/// The longest run of literal bytes every match of `pattern` contains,
/// when one of at least [`MIN_REQUIRED`] bytes is found: runs are read
/// from the pattern's top level only (a group, a class, `.`, an escape
/// that is not one byte or an optional literal ends a run, and nothing
/// inside a group counts, since a group may be optional). `None` for a
/// pattern with a `|` outside a class, or with `\Q`.
pub fn required_literal(pattern: &str) -> Option<Vec<u8>> {
    let p = pattern.as_bytes();
    if has_top_alternation(p) || pattern.contains("\\Q") || inline_flags(pattern).contains('x') {
        return None;
    }
    let mut best: Vec<u8> = Vec::new();
    let mut run: Vec<u8> = Vec::new();
    let mut i = 0;
    let mut depth = 0usize;
    let keep = |run: &mut Vec<u8>, best: &mut Vec<u8>| {
        if run.len() > best.len() {
            best.clone_from(run);
        }
        run.clear();
    };
    while i < p.len() {
        if depth > 0 {
            match p[i] {
                b'\\' => i += 1,
                b'[' => i = skip_class(p, i),
                b'(' => depth += 1,
                b')' => depth -= 1,
                _ => {}
            }
            i += 1;
            continue;
        }
        match p[i] {
            b'(' => {
                keep(&mut run, &mut best);
                depth = 1;
                i += 1;
            }
            b'[' => {
                keep(&mut run, &mut best);
                i = skip_class(p, i) + 1;
            }
            b'^' | b'$' => {
                keep(&mut run, &mut best);
                i += 1;
            }
            b'?' | b'*' | b'+' => {
                // A quantifier after a group or class: nothing to undo.
                keep(&mut run, &mut best);
                i += 1;
            }
            b'{' => {
                // `{n}`, `{n,m}`: its digits are not literals.
                keep(&mut run, &mut best);
                i += p[i..]
                    .iter()
                    .position(|&b| b == b'}')
                    .map_or(p.len() - i, |end| end + 1);
            }
            _ => {
                if let Some((byte, len)) = literal(&p[i..]) {
                    match p.get(i + len) {
                        Some(b'?' | b'*' | b'{') => keep(&mut run, &mut best),
                        Some(b'+') => {
                            run.push(byte);
                            keep(&mut run, &mut best);
                        }
                        _ => run.push(byte),
                    }
                    i += len;
                } else {
                    keep(&mut run, &mut best);
                    i += if p[i] == b'\\' {
                        escape_len(&p[i..])
                    } else {
                        1
                    };
                }
            }
        }
    }
    keep(&mut run, &mut best);
    (best.len() >= MIN_REQUIRED).then_some(best)
}

/// The letters of every inline option group (`(?i)`, `(?s-i:...)`) in
/// `pattern`; `(?:` has none.
pub fn inline_flags(pattern: &str) -> String {
    let mut flags = String::new();
    for (i, _) in pattern.match_indices("(?") {
        if i > 0 && pattern.as_bytes()[i - 1] == b'\\' {
            continue;
        }
        flags.extend(
            pattern[i + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphabetic() || *c == '-'),
        );
    }
    flags
}

/// How many pattern bytes the escape at the start of `s` takes, so that
/// what follows it is not read as a literal: `\xH`, `\x{..}`, octal and
/// back-references with all their digits, `\cX`, `\p{..}`, `\g{..}`,
/// `\k<..>`.
fn escape_len(s: &[u8]) -> usize {
    let Some(&kind) = s.get(1) else {
        return 1;
    };
    let braced = |from: usize, close: u8| {
        if s.get(from).is_some_and(|&b| b == b'{' || b == b'<') {
            s[from..]
                .iter()
                .position(|&b| b == close)
                .map_or(s.len(), |end| from + end + 1)
        } else {
            from
        }
    };
    match kind {
        b'x' => {
            let end = braced(2, b'}');
            if end > 2 {
                end
            } else {
                2 + s[2..]
                    .iter()
                    .take(2)
                    .take_while(|b| b.is_ascii_hexdigit())
                    .count()
            }
        }
        b'0'..=b'9' => 2 + s[2..].iter().take_while(|b| b.is_ascii_digit()).count(),
        b'c' => 3.min(s.len()),
        b'p' | b'P' | b'g' => {
            let end = braced(2, b'}');
            if end > 2 { end } else { 3.min(s.len()) }
        }
        b'k' => braced(2, b'>').max(braced(2, b'}')),
        _ => 2,
    }
}

/// The index of the `]` that closes the class opening at `start`.
fn skip_class(p: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    if p.get(i) == Some(&b'^') {
        i += 1;
    }
    if p.get(i) == Some(&b']') {
        i += 1;
    }
    while i < p.len() {
        match p[i] {
            b'\\' => i += 1,
            b']' => return i,
            _ => {}
        }
        i += 1;
    }
    p.len()
}

/// The literal byte at the start of `s` and how many pattern bytes it
/// took.
fn literal(s: &[u8]) -> Option<(u8, usize)> {
    let first = *s.first()?;
    match first {
        b'\\' => {
            let next = *s.get(1)?;
            match next {
                b'r' => Some((b'\r', 2)),
                b'n' => Some((b'\n', 2)),
                b't' => Some((b'\t', 2)),
                b'f' => Some((12, 2)),
                b'e' => Some((27, 2)),
                b'a' => Some((7, 2)),
                b'x' => {
                    let hex = s.get(2..4)?;
                    let hex = core::str::from_utf8(hex).ok()?;
                    // `\x{...}` and one-digit forms are left alone.
                    u8::from_str_radix(hex, 16).ok().map(|b| (b, 4))
                }
                b'0' if !s.get(2).is_some_and(u8::is_ascii_digit) => Some((0, 2)),
                c if c.is_ascii_punctuation() => Some((c, 2)),
                _ => None,
            }
        }
        b'.' | b'[' | b'(' | b')' | b'*' | b'+' | b'?' | b'{' | b'|' | b'^' | b'$' => None,
        c => Some((c, 1)),
    }
}

/// Whether `|` occurs outside a character class (escapes skipped).
fn has_top_alternation(p: &[u8]) -> bool {
    let mut i = 0;
    let mut in_class = false;
    while i < p.len() {
        match p[i] {
            b'\\' => i += 1,
            b'[' if !in_class => {
                in_class = true;
                // `[]...]` and `[^]...]` take `]` as a member.
                if p.get(i + 1) == Some(&b'^') {
                    i += 1;
                }
                if p.get(i + 1) == Some(&b']') {
                    i += 1;
                }
            }
            b']' if in_class => in_class = false,
            b'|' if !in_class => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_stop_where_the_literal_does() {
        for (pattern, prefix) in [
            (r"^SSH-([\d.]+)-OpenSSH", &b"SSH-"[..]),
            (r"^220 ", b"220 "),
            (r"^\x00\x00\x00\x0a\x0a5\.", b"\x00\x00\x00\x0a\x0a5."),
            (r"^HTTP/1\.[01] \d", b"HTTP/1."),
            (r"^abc?d", b"ab"),
            (r"^ab+c", b"ab"),
            (r"^\r\n\0x", b"\r\n\0x"),
            (r"^\012", b""),
            (r"SSH-", b""),
            (r"^a|^b", b""),
            (r"^[|]x", b""),
            (r"^x[|]", b"x"),
            (r"^(?i)ssh", b""),
            (r"^\d+", b""),
            (r"^0123456789abc", b"01234567"),
        ] {
            assert_eq!(literal_prefix(pattern), prefix, "{pattern}");
        }
    }

    #[test]
    fn inline_option_letters_are_found() {
        assert_eq!(inline_flags(r"^a(?:b)(?i)c(?s-i:d)\(?x"), "is-i");
        assert_eq!(required_literal(r"(?x)^abc def"), None);
    }

    #[test]
    fn required_literals_are_the_longest_run_outside_groups() {
        for (pattern, literal) in [
            (
                r"^HTTP/1\.[01] \d\d\d .*\r\nServer: nginx/([\d.]+)\r\n",
                Some(&b"\r\nServer: nginx/"[..]),
            ),
            (
                r"^SSH-([\d.]+)-OpenSSH_([\w._-]+) Debian-(\S+)\r?\n",
                Some(b"-OpenSSH_"),
            ),
            (r"^220 .* ESMTP Postfix", Some(b" ESMTP Postfix")),
            (r"^a(Postfix)?b", None),
            (r"^abcd?e", Some(b"abc")),
            (r"^x[Postfix]yz", None),
            (r"^ab|cdef", None),
            (r"^a\Qbcdef\E", None),
            (r"^(?:x)abcd(y)", Some(b"abcd")),
            (r"^abc+de", Some(b"abc")),
            (r"^\x4Gxyz", Some(b"Gxyz")),
            (r"^\0123xyz", Some(b"xyz")),
            (r"^\1234wxyz", Some(b"wxyz")),
            (r"^\x{41}xyz", Some(b"xyz")),
            (r"^ab[ -]{1,2}Debian[ -_]", Some(b"Debian")),
            (r"^abcd{2,3}xy", Some(b"abc")),
        ] {
            assert_eq!(required_literal(pattern).as_deref(), literal, "{pattern}");
        }
    }
}
