//! The `nmap-service-probes` format, line by line (see nmap's "Service
//! and Application Version Detection" chapter for the directives).

use core::fmt;
use core::fmt::Write as _;

use crate::template::Template;

/// A line that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based.
    pub line: usize,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

/// A `match` or `softmatch` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchLine {
    /// The service named.
    pub service: String,
    /// The pattern, as PCRE2 takes it (bytes outside ASCII written as
    /// `\xHH`).
    pub pattern: String,
    /// `i`.
    pub caseless: bool,
    /// `s`.
    pub dotall: bool,
    /// The version template (empty for a softmatch).
    pub template: Template,
    /// `softmatch`.
    pub soft: bool,
    /// Its line.
    pub line: usize,
}

/// A `Probe` line and the directives after it (its matches apart).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProbeDefinition {
    /// `UDP` (else `TCP`).
    pub udp: bool,
    /// Its name (`NULL`, `GetRequest`, ...).
    pub name: String,
    /// What it sends.
    pub payload: Vec<u8>,
    /// `ports`.
    pub ports: Vec<(u16, u16)>,
    /// `sslports`.
    pub ssl_ports: Vec<(u16, u16)>,
    /// `rarity` (1 to 9; 5 when not given).
    pub rarity: u8,
    /// `fallback` probe names.
    pub fallback: Vec<String>,
    /// `totalwaitms`.
    pub total_wait_ms: Option<u32>,
    /// `tcpwrappedms`.
    pub tcp_wrapped_ms: Option<u32>,
}

impl ProbeDefinition {
    /// Whether `port` is one of its ports.
    pub fn is_for_port(&self, port: u16) -> bool {
        self.ports.iter().any(|&(a, b)| (a..=b).contains(&port))
    }
}

/// A parsed file: probes in file order, and the lines skipped.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// The probes, each with its matches in file order.
    pub probes: Vec<(ProbeDefinition, Vec<MatchLine>)>,
    /// `Exclude` port ranges (TCP and UDP alike here).
    pub exclude: Vec<(u16, u16)>,
    /// Lines that could not be used.
    pub errors: Vec<LineError>,
}

/// Parses a whole file (bytes: the file is not all UTF-8).
pub fn parse(bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let trimmed = trim(raw);
        if trimmed.is_empty() || trimmed[0] == b'#' {
            continue;
        }
        if let Err(problem) = directive(&mut parsed, trimmed, line) {
            parsed.errors.push(LineError { line, problem });
        }
    }
    parsed
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

fn split_word(s: &[u8]) -> (&[u8], &[u8]) {
    let end = s
        .iter()
        .position(u8::is_ascii_whitespace)
        .unwrap_or(s.len());
    (&s[..end], trim(&s[end..]))
}

fn text(s: &[u8]) -> String {
    String::from_utf8_lossy(s).into_owned()
}

fn directive(parsed: &mut Parsed, line_bytes: &[u8], line: usize) -> Result<(), String> {
    let (word, rest) = split_word(line_bytes);
    if word == b"Probe" {
        parsed.probes.push((probe(rest)?, Vec::new()));
        return Ok(());
    }
    if word == b"Exclude" {
        parsed.exclude = ports(&strip_protocols(rest))?;
        return Ok(());
    }
    let (probe, matches) = parsed
        .probes
        .last_mut()
        .ok_or_else(|| format!("{} before any Probe", text(word)))?;
    match word {
        b"match" | b"softmatch" => {
            let soft = word == b"softmatch";
            matches.push(match_line(rest, soft, line)?);
        }
        b"ports" => probe.ports = ports(rest)?,
        b"sslports" => probe.ssl_ports = ports(rest)?,
        b"rarity" => {
            probe.rarity = text(rest)
                .parse()
                .ok()
                .filter(|r| (1..=9).contains(r))
                .ok_or_else(|| format!("rarity {:?} is not 1 to 9", text(rest)))?;
        }
        b"fallback" => {
            probe.fallback = text(rest)
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
        }
        b"totalwaitms" => probe.total_wait_ms = Some(number(rest)?),
        b"tcpwrappedms" => probe.tcp_wrapped_ms = Some(number(rest)?),
        _ => return Err(format!("unknown directive {:?}", text(word))),
    }
    Ok(())
}

fn number(s: &[u8]) -> Result<u32, String> {
    text(s)
        .parse()
        .map_err(|_| format!("{:?} is not a number", text(s)))
}

/// `T:9100-9107,U:30000-40000` -> the ranges without their protocol.
fn strip_protocols(s: &[u8]) -> Vec<u8> {
    text(s)
        .split(',')
        .map(|p| {
            p.trim()
                .trim_start_matches("T:")
                .trim_start_matches("U:")
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join(",")
        .into_bytes()
}

fn ports(s: &[u8]) -> Result<Vec<(u16, u16)>, String> {
    text(s)
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (a, b) = p.split_once('-').unwrap_or((p, p));
            match (a.parse::<u16>(), b.parse::<u16>()) {
                (Ok(a), Ok(b)) if a <= b => Ok((a, b)),
                _ => Err(format!("{p:?} is not a port or range")),
            }
        })
        .collect()
}

fn probe(rest: &[u8]) -> Result<ProbeDefinition, String> {
    let (protocol, rest) = split_word(rest);
    let udp = match protocol {
        b"TCP" => false,
        b"UDP" => true,
        _ => return Err(format!("protocol {:?} is not TCP or UDP", text(protocol))),
    };
    let (name, rest) = split_word(rest);
    if name.is_empty() {
        return Err("the probe has no name".to_owned());
    }
    let (payload, _) = delimited(rest, b'q', "the probe string")?;
    Ok(ProbeDefinition {
        udp,
        name: text(name),
        payload: unescape(payload)?,
        rarity: 5,
        ..ProbeDefinition::default()
    })
}

/// C-style escapes of a probe string: `\\ \0 \a \b \f \n \r \t \v \xHH`.
///
/// # Errors
/// A message for a trailing backslash or a `\x` without two hex digits.
pub fn unescape(s: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' {
            out.push(s[i]);
            i += 1;
            continue;
        }
        let next = *s.get(i + 1).ok_or("a trailing backslash")?;
        i += 2;
        out.push(match next {
            b'\\' => b'\\',
            b'0' => 0,
            b'a' => 7,
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 11,
            b'x' => {
                let hex = s.get(i..i + 2).ok_or("\\x needs two hex digits")?;
                i += 2;
                u8::from_str_radix(&text(hex), 16).map_err(|_| "\\x needs two hex digits")?
            }
            other => other,
        });
    }
    Ok(out)
}

/// `<letter><d>text<d>` at the start of `s` (any delimiter `d`): the
/// text and what follows; `what` names it in errors.
fn delimited<'a>(s: &'a [u8], letter: u8, what: &str) -> Result<(&'a [u8], &'a [u8]), String> {
    let rest = s
        .strip_prefix(&[letter])
        .ok_or_else(|| format!("{what} must start with {}", letter as char))?;
    let (&delimiter, rest) = rest
        .split_first()
        .ok_or_else(|| format!("{what} is missing"))?;
    let end = rest
        .iter()
        .position(|&b| b == delimiter)
        .ok_or_else(|| format!("{what} is not closed"))?;
    Ok((&rest[..end], &rest[end + 1..]))
}

fn match_line(rest: &[u8], soft: bool, line: usize) -> Result<MatchLine, String> {
    let (service, rest) = split_word(rest);
    if service.is_empty() {
        return Err("the match names no service".to_owned());
    }
    let (pattern, rest) = delimited(rest, b'm', "the pattern")?;
    let flags_end = rest
        .iter()
        .position(u8::is_ascii_whitespace)
        .unwrap_or(rest.len());
    let (flags, rest) = (&rest[..flags_end], trim(&rest[flags_end..]));
    let mut caseless = false;
    let mut dotall = false;
    for &flag in flags {
        match flag {
            b'i' => caseless = true,
            b's' => dotall = true,
            other => return Err(format!("unknown pattern option {:?}", other as char)),
        }
    }
    let template = if rest.is_empty() {
        Template::default()
    } else {
        Template::parse(rest)?
    };
    Ok(MatchLine {
        service: text(service),
        pattern: pcre_pattern(pattern),
        caseless,
        dotall,
        template,
        soft,
        line,
    })
}

/// The pattern as a string PCRE2 takes, bytes outside ASCII as `\xHH`
/// (PCRE2 runs in byte mode, where both mean the same byte).
fn pcre_pattern(pattern: &[u8]) -> String {
    let mut out = String::with_capacity(pattern.len());
    for &b in pattern {
        if b.is_ascii() {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}
