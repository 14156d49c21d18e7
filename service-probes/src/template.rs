//! Version templates: `p/product/ v/version/ i/info/ h/host/ o/os/
//! d/device/ cpe:/cpe/[a]`, each field delimited by any character that
//! follows its letter, and what they become once a pattern's groups are
//! put in (`$1`..`$9`, `$P(n)`, `$SUBST(n,"from","to")`, `$I(n,"<"|">")`).

use serde::Serialize;

/// The fields of a template, unsubstituted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    /// `p/`.
    pub product: Option<Vec<u8>>,
    /// `v/`.
    pub version: Option<Vec<u8>>,
    /// `i/`.
    pub info: Option<Vec<u8>>,
    /// `h/`.
    pub hostname: Option<Vec<u8>>,
    /// `o/`.
    pub os: Option<Vec<u8>>,
    /// `d/`.
    pub device: Option<Vec<u8>>,
    /// `cpe:/`, each.
    pub cpes: Vec<Vec<u8>>,
}

/// The fields filled in.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Version {
    /// Product.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// Version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Extra information.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
    /// Host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Operating system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// Device type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// CPEs (`cpe:/a:openbsd:openssh:9.2p1`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpes: Vec<String>,
}

impl Template {
    /// Reads the template part of a `match` line.
    ///
    /// # Errors
    /// A message for an unknown field or an unclosed delimiter.
    pub fn parse(mut s: &[u8]) -> Result<Self, String> {
        let mut template = Self::default();
        loop {
            while let [first, rest @ ..] = s {
                if first.is_ascii_whitespace() {
                    s = rest;
                } else {
                    break;
                }
            }
            if s.is_empty() {
                return Ok(template);
            }
            let (field, rest) = if let Some(rest) = s.strip_prefix(b"cpe:") {
                (b'c', rest)
            } else {
                (s[0], &s[1..])
            };
            let (&delimiter, rest) = rest
                .split_first()
                .ok_or_else(|| format!("field {:?} has no value", field as char))?;
            let end = rest
                .iter()
                .position(|&b| b == delimiter)
                .ok_or_else(|| format!("field {:?} is not closed", field as char))?;
            let value = rest[..end].to_vec();
            s = &rest[end + 1..];
            let slot = match field {
                b'p' => &mut template.product,
                b'v' => &mut template.version,
                b'i' => &mut template.info,
                b'h' => &mut template.hostname,
                b'o' => &mut template.os,
                b'd' => &mut template.device,
                b'c' => {
                    template.cpes.push(value);
                    // The `a` flag (an application CPE, to be completed).
                    if let Some(rest) = s.strip_prefix(b"a") {
                        s = rest;
                    }
                    continue;
                }
                other => return Err(format!("unknown template field {:?}", other as char)),
            };
            *slot = Some(value);
        }
    }

    /// The fields with `groups` put in (`groups[0]` is the whole match,
    /// `None` a group that did not take part).
    pub fn fill(&self, groups: &[Option<&[u8]>]) -> Version {
        let one = |field: &Option<Vec<u8>>| {
            field
                .as_deref()
                .map(|f| substitute(f, groups))
                .filter(|v| !v.is_empty())
        };
        Version {
            product: one(&self.product),
            version: one(&self.version),
            info: one(&self.info),
            hostname: one(&self.hostname),
            os: one(&self.os),
            device: one(&self.device),
            cpes: self
                .cpes
                .iter()
                .map(|c| format!("cpe:/{}", substitute(c, groups)))
                .collect(),
        }
    }
}

fn group<'a>(groups: &[Option<&'a [u8]>], n: usize) -> &'a [u8] {
    groups.get(n).copied().flatten().unwrap_or_default()
}

/// Reads `(n` or `(n,` at the start of `s`: the group number and what
/// follows it.
fn group_number(s: &[u8]) -> Option<(usize, &[u8])> {
    let s = s.strip_prefix(b"(")?;
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    let n = core::str::from_utf8(&s[..digits]).ok()?.parse().ok()?;
    Some((n, &s[digits..]))
}

/// `,"text"` at the start of `s`: the text and what follows.
fn quoted_argument(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let s = s.strip_prefix(b",")?.strip_prefix(b"\"")?;
    let end = s.iter().position(|&b| b == b'"')?;
    Some((&s[..end], &s[end + 1..]))
}

/// One field with the groups put in; unknown or broken helpers stay as
/// written.
fn substitute(field: &[u8], groups: &[Option<&[u8]>]) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(field.len());
    let mut s = field;
    while let Some((&b, rest)) = s.split_first() {
        if b != b'$' {
            out.push(b);
            s = rest;
            continue;
        }
        if let Some((&d, after)) = rest.split_first()
            && d.is_ascii_digit()
        {
            out.extend_from_slice(group(groups, usize::from(d - b'0')));
            s = after;
            continue;
        }
        if let Some(after) = rest.strip_prefix(b"P")
            && let Some((n, after)) = group_number(after)
            && let Some(after) = after.strip_prefix(b")")
        {
            // Printable characters only.
            out.extend(
                group(groups, n)
                    .iter()
                    .filter(|c| (0x20..0x7f).contains(*c)),
            );
            s = after;
            continue;
        }
        if let Some(after) = rest.strip_prefix(b"SUBST")
            && let Some((n, after)) = group_number(after)
            && let Some((from, after)) = quoted_argument(after)
            && let Some((to, after)) = quoted_argument(after)
            && let Some(after) = after.strip_prefix(b")")
        {
            out.extend(replace(group(groups, n), from, to));
            s = after;
            continue;
        }
        if let Some(after) = rest.strip_prefix(b"I")
            && let Some((n, after)) = group_number(after)
            && let Some((order, after)) = quoted_argument(after)
            && let Some(after) = after.strip_prefix(b")")
        {
            let bytes = group(groups, n);
            if bytes.len() <= 8 {
                let mut value: u64 = 0;
                let mut push = |byte: &u8| value = (value << 8) | u64::from(*byte);
                if order == b"<" {
                    bytes.iter().rev().for_each(&mut push);
                } else {
                    bytes.iter().for_each(&mut push);
                }
                out.extend_from_slice(value.to_string().as_bytes());
            }
            s = after;
            continue;
        }
        out.push(b);
        s = rest;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_take_any_delimiter_and_cpes_their_flag() {
        let t = Template::parse(b"p/OpenSSH/ v|$2| i/protocol $1/ o/Linux/ cpe:/a:openbsd:openssh:$2/a cpe:|o:linux:linux_kernel|a")
            .unwrap();
        let groups: [Option<&[u8]>; 3] = [Some(b"all"), Some(b"2.0"), Some(b"9.2p1")];
        let v = t.fill(&groups);
        assert_eq!(v.product.as_deref(), Some("OpenSSH"));
        assert_eq!(v.version.as_deref(), Some("9.2p1"));
        assert_eq!(v.info.as_deref(), Some("protocol 2.0"));
        assert_eq!(
            v.cpes,
            ["cpe:/a:openbsd:openssh:9.2p1", "cpe:/o:linux:linux_kernel"]
        );
        assert!(
            Template::parse(b"q/x/")
                .unwrap_err()
                .contains("unknown template field")
        );
        assert!(Template::parse(b"p/x").unwrap_err().contains("not closed"));
    }

    #[test]
    fn helpers_print_substitute_and_unpack() {
        let groups: [Option<&[u8]>; 3] = [None, Some(b"a\x01b_c\x7f"), Some(b"\x01\x02")];
        assert_eq!(substitute(b"$P(1)", &groups), "ab_c");
        assert_eq!(
            substitute(b"$SUBST(1,\"_\",\".\")", &groups),
            "a\u{1}b.c\u{7f}"
        );
        assert_eq!(substitute(b"$I(2,\">\")", &groups), "258");
        assert_eq!(substitute(b"$I(2,\"<\")", &groups), "513");
        assert_eq!(substitute(b"v$9 and $Q", &groups), "v and $Q");
    }
}
