//! The database: probes with their matches, the prefix index, lazy
//! compilation, and nmap's matching order.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::ProbesError;
use crate::parse::{LineError, MatchLine, ProbeDefinition, parse};
use crate::prefix::{MAX_PREFIX, inline_flags, literal_prefix, required_literal};
use crate::template::{Template, Version};

/// A probe's transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// One `match` or `softmatch`, compiled when a banner first reaches it.
#[derive(Debug)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "a pattern's options, as the file writes them"
)]
pub struct ProbeMatch {
    /// The service it names.
    pub service: String,
    /// The pattern as PCRE2 takes it.
    pub pattern: String,
    /// `i`.
    pub caseless: bool,
    /// Its literals are compared without case (`i`, or an inline `(?i)`).
    pub folded: bool,
    /// `s`.
    pub dotall: bool,
    /// `softmatch`: the service is sure, its template (if any) a guess.
    pub soft: bool,
    /// Its line in the file.
    pub line: usize,
    /// The literal prefix it requires (see [`crate::prefix`]).
    pub prefix: Vec<u8>,
    /// The literal it requires somewhere, and whether case is ignored
    /// in it (the `i` option, or any inline option group).
    pub required: Option<(Vec<u8>, bool)>,
    /// That literal's place in the database's literal sets.
    required_id: Option<usize>,
    template: Template,
    regex: OnceLock<Option<pcre2::bytes::Regex>>,
}

impl ProbeMatch {
    fn new(m: MatchLine) -> Self {
        // An inline `(?i)` anywhere makes its part caseless: fold the
        // whole pattern's literals then.
        let caseless = m.caseless || inline_flags(&m.pattern).contains('i');
        let mut prefix = literal_prefix(&m.pattern);
        if caseless {
            prefix.make_ascii_lowercase();
        }
        let required = required_literal(&m.pattern).map(|literal| (literal, caseless));
        Self {
            required,
            required_id: None,
            service: m.service,
            pattern: m.pattern,
            caseless: m.caseless,
            folded: caseless,
            dotall: m.dotall,
            soft: m.soft,
            line: m.line,
            prefix,
            template: m.template,
            regex: OnceLock::new(),
        }
    }

    /// The compiled pattern, or `None` when PCRE2 refuses it (counted in
    /// `errors` the first time).
    fn regex(&self, errors: &AtomicUsize) -> Option<&pcre2::bytes::Regex> {
        self.regex
            .get_or_init(|| {
                let built = pcre2::bytes::RegexBuilder::new()
                    .caseless(self.caseless)
                    .dotall(self.dotall)
                    .jit_if_available(true)
                    .build(&self.pattern)
                    .ok();
                if built.is_none() {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                built
            })
            .as_ref()
    }

    /// Its groups on `response`, when it matches.
    fn captures<'r>(
        &self,
        response: &'r [u8],
        errors: &AtomicUsize,
    ) -> Option<Vec<Option<&'r [u8]>>> {
        let regex = self.regex(errors)?;
        // A match that fails (PCRE2's match limit) is no match. Most
        // patterns fail: ask first, without capture groups.
        if !regex.is_match(response).unwrap_or(false) {
            return None;
        }
        let captures = regex.captures(response).ok().flatten()?;
        Some(
            (0..captures.len())
                .map(|i| captures.get(i).map(|m| m.as_bytes()))
                .collect(),
        )
    }
}

/// Which matches of a probe a response may meet: those whose prefix it
/// starts with (looked up per prefix length), and those without one.
#[derive(Debug, Default)]
struct PrefixIndex {
    exact: HashMap<Vec<u8>, Vec<u32>>,
    caseless: HashMap<Vec<u8>, Vec<u32>>,
    always: Vec<u32>,
}

impl PrefixIndex {
    fn new(matches: &[ProbeMatch]) -> Self {
        let mut index = Self::default();
        for (i, m) in matches.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            if m.prefix.is_empty() {
                index.always.push(i);
            } else if m.folded {
                index.caseless.entry(m.prefix.clone()).or_default().push(i);
            } else {
                index.exact.entry(m.prefix.clone()).or_default().push(i);
            }
        }
        index
    }

    /// The candidates for `response`, in file order.
    fn candidates(&self, response: &[u8]) -> Vec<u32> {
        let mut found: Vec<u32> = self.always.clone();
        let head = &response[..response.len().min(MAX_PREFIX)];
        let lower = head.to_ascii_lowercase();
        for len in 1..=head.len() {
            if let Some(list) = self.exact.get(&head[..len]) {
                found.extend(list);
            }
            if let Some(list) = self.caseless.get(&lower[..len]) {
                found.extend(list);
            }
        }
        found.sort_unstable();
        found
    }
}

/// Every required literal of the database, found in a response in one
/// pass per case mode (Aho-Corasick).
#[derive(Debug)]
struct Literals {
    exact: aho_corasick::AhoCorasick,
    exact_ids: Vec<usize>,
    caseless: aho_corasick::AhoCorasick,
    caseless_ids: Vec<usize>,
    count: usize,
}

impl Literals {
    /// Gives each match's literal an id and builds the automata.
    fn new(probes: &mut [Probe]) -> Self {
        let mut ids: HashMap<(Vec<u8>, bool), usize> = HashMap::new();
        for m in probes.iter_mut().flat_map(|p| &mut p.matches) {
            if let Some(key) = &m.required {
                let next = ids.len();
                m.required_id = Some(*ids.entry(key.clone()).or_insert(next));
            }
        }
        let mut exact: Vec<(&[u8], usize)> = Vec::new();
        let mut caseless: Vec<(&[u8], usize)> = Vec::new();
        for ((literal, folded), id) in &ids {
            if *folded {
                caseless.push((literal, *id));
            } else {
                exact.push((literal, *id));
            }
        }
        let build = |list: &[(&[u8], usize)], fold: bool| {
            aho_corasick::AhoCorasick::builder()
                .ascii_case_insensitive(fold)
                .build(list.iter().map(|(l, _)| *l))
                .expect("literals of bounded count build an automaton")
        };
        Self {
            exact: build(&exact, false),
            exact_ids: exact.iter().map(|(_, id)| *id).collect(),
            caseless: build(&caseless, true),
            caseless_ids: caseless.iter().map(|(_, id)| *id).collect(),
            count: ids.len(),
        }
    }

    /// Which literals occur in `response`.
    fn present(&self, response: &[u8]) -> Vec<bool> {
        let mut present = vec![false; self.count];
        for (automaton, ids) in [
            (&self.exact, &self.exact_ids),
            (&self.caseless, &self.caseless_ids),
        ] {
            for found in automaton.find_overlapping_iter(response) {
                present[ids[found.pattern().as_usize()]] = true;
            }
        }
        present
    }
}

/// A probe and its matches.
#[derive(Debug)]
pub struct Probe {
    /// What the file says of it.
    pub definition: ProbeDefinition,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// Its matches, in file order.
    pub matches: Vec<ProbeMatch>,
    index: PrefixIndex,
}

impl Probe {
    fn new(definition: ProbeDefinition, lines: Vec<MatchLine>) -> Self {
        let matches: Vec<ProbeMatch> = lines.into_iter().map(ProbeMatch::new).collect();
        Self {
            index: PrefixIndex::new(&matches),
            protocol: if definition.udp {
                Protocol::Udp
            } else {
                Protocol::Tcp
            },
            definition,
            matches,
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.definition.name
    }
}

/// What a response says of its server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identification {
    /// The service (`ssh`, `http`, `mysql`, ...).
    pub service: String,
    /// Product, version and the rest (for a softmatch, what its line's
    /// template gives, often nothing).
    #[serde(flatten)]
    pub version: Version,
    /// A softmatch: the service's name is sure, the rest may be refined by
    /// a later hard match of that service.
    pub soft: bool,
    /// The probe whose matches decided.
    pub probe: String,
    /// The deciding line of the file.
    pub line: usize,
}

/// How the server's bytes were read by [`Database::identify_exchange`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exchange {
    /// The server spoke first: a banner (the NULL probe).
    Banner,
    /// The server answered the client's request.
    Answer,
}

impl Exchange {
    /// `banner` or `answer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Exchange::Banner => "banner",
            Exchange::Answer => "answer",
        }
    }
}

/// A loaded database.
#[derive(Debug)]
pub struct Database {
    probes: Vec<Probe>,
    literals: Literals,
    by_name: HashMap<String, usize>,
    line_errors: Vec<LineError>,
    exclude: Vec<(u16, u16)>,
    pattern_errors: AtomicUsize,
}

impl Database {
    /// Parses a file's bytes.
    ///
    /// # Errors
    /// [`ProbesError::NoProbe`] when no `Probe` line could be used.
    pub fn parse(bytes: &[u8]) -> Result<Self, ProbesError> {
        let parsed = parse(bytes);
        if parsed.probes.is_empty() {
            return Err(ProbesError::NoProbe {
                errors: parsed.errors,
            });
        }
        let mut probes: Vec<Probe> = parsed
            .probes
            .into_iter()
            .map(|(definition, matches)| Probe::new(definition, matches))
            .collect();
        let literals = Literals::new(&mut probes);
        let by_name = probes
            .iter()
            .enumerate()
            .map(|(i, p)| (p.definition.name.clone(), i))
            .collect();
        Ok(Self {
            probes,
            literals,
            by_name,
            line_errors: parsed.errors,
            exclude: parsed.exclude,
            pattern_errors: AtomicUsize::new(0),
        })
    }

    /// The lines skipped, with their numbers.
    pub fn line_errors(&self) -> &[LineError] {
        &self.line_errors
    }

    /// Patterns PCRE2 refused so far.
    pub fn pattern_errors(&self) -> usize {
        self.pattern_errors.load(Ordering::Relaxed)
    }

    /// The probes, in file order.
    pub fn probes(&self) -> &[Probe] {
        &self.probes
    }

    /// A probe by name.
    pub fn probe(&self, name: &str) -> Option<&Probe> {
        self.by_name.get(name).map(|&i| &self.probes[i])
    }

    /// Ports no probe should be sent to (`Exclude`).
    pub fn excluded(&self, port: u16) -> bool {
        self.exclude.iter().any(|&(a, b)| (a..=b).contains(&port))
    }

    /// The TCP probes an active session sends to `port`, in order, as
    /// nmap chooses them at version intensity `intensity` (0 to 9): `NULL`
    /// first (send nothing, read the banner), then the probes whose
    /// `ports` list the port, in file order, then the others whose
    /// `rarity` is at most `intensity`, rarest last (file order among
    /// equals). Empty for a port the file's `Exclude` covers.
    pub fn probe_plan(&self, port: u16, intensity: u8) -> Vec<&Probe> {
        if self.excluded(port) {
            return Vec::new();
        }
        let tcp = || self.probes.iter().filter(|p| p.protocol == Protocol::Tcp);
        let listed = |p: &Probe| {
            p.definition
                .ports
                .iter()
                .any(|&(a, b)| (a..=b).contains(&port))
        };
        let mut plan: Vec<&Probe> = tcp().filter(|p| p.name() == "NULL").collect();
        plan.extend(tcp().filter(|p| p.name() != "NULL" && listed(p)));
        let mut rest: Vec<&Probe> = tcp()
            .filter(|p| p.name() != "NULL" && !listed(p) && p.definition.rarity <= intensity)
            .collect();
        rest.sort_by_key(|p| p.definition.rarity);
        plan.extend(rest);
        plan
    }

    /// The number of `match` and `softmatch` lines.
    pub fn match_count(&self) -> usize {
        self.probes.iter().map(|p| p.matches.len()).sum()
    }

    /// Compiles every pattern now; returns those PCRE2 refuses, as line
    /// errors.
    pub fn compile_all(&self) -> Vec<LineError> {
        let mut refused = Vec::new();
        for m in self.probes.iter().flat_map(|p| &p.matches) {
            if m.regex(&self.pattern_errors).is_none() {
                refused.push(LineError {
                    line: m.line,
                    problem: format!("PCRE2 refuses the pattern {:?}", m.pattern),
                });
            }
        }
        refused
    }

    /// The probe a client's request is the answer to: a probe whose
    /// payload it is, else `GetRequest` for any HTTP/1 request (nmap's
    /// matches for it read the response's status line and headers).
    pub fn probe_of_request(&self, request: &[u8]) -> Option<&Probe> {
        if let Some(probe) = self
            .probes
            .iter()
            .find(|p| !p.definition.payload.is_empty() && p.definition.payload == request)
        {
            return Some(probe);
        }
        let method_end = request.iter().position(|&b| b == b' ')?;
        let http = (1..=10).contains(&method_end)
            && request[..method_end].iter().all(u8::is_ascii_uppercase)
            && request
                .split(|&b| b == b'\n')
                .next()
                .is_some_and(|line| line.windows(7).any(|w| w == b"HTTP/1."));
        if http { self.probe("GetRequest") } else { None }
    }

    /// The probes a response to `probe` is matched against, in order:
    /// the probe, its fallbacks, and `NULL` for a TCP probe.
    fn chain<'a>(&'a self, probe: &'a Probe) -> Vec<&'a Probe> {
        let mut chain = vec![probe];
        for name in &probe.definition.fallback {
            if let Some(p) = self.probe(name)
                && !chain.iter().any(|c| c.name() == p.name())
            {
                chain.push(p);
            }
        }
        if probe.protocol == Protocol::Tcp
            && let Some(null) = self.probe("NULL")
            && !chain.iter().any(|c| c.name() == "NULL")
        {
            chain.push(null);
        }
        chain
    }

    /// What `response` (the answer to `probe`, or a banner for `NULL`)
    /// says of its server, as nmap decides it.
    pub fn identify(&self, probe: &str, response: &[u8]) -> Option<Identification> {
        self.identify_with(probe, response, true)
    }

    /// A banner a server sent first (the NULL probe).
    pub fn identify_banner(&self, banner: &[u8]) -> Option<Identification> {
        self.identify("NULL", banner)
    }

    /// One exchange seen passively: the server's first bytes, and the
    /// client's first request when the client spoke first. With a request,
    /// the response is the answer to the probe whose shape the request has
    /// ([`Database::probe_of_request`]), or read as a banner when no probe
    /// has that shape; without one, it is a banner.
    pub fn identify_exchange(
        &self,
        request: Option<&[u8]>,
        response: &[u8],
    ) -> Option<(Identification, Exchange)> {
        match request {
            Some(request) => {
                let probe = self.probe_of_request(request).map_or("NULL", Probe::name);
                self.identify(probe, response)
                    .map(|i| (i, Exchange::Answer))
            }
            None => self
                .identify_banner(response)
                .map(|i| (i, Exchange::Banner)),
        }
    }

    /// [`Database::identify`] trying every pattern in turn, without the
    /// prefix index: what the index must agree with, and the comparison
    /// of its benchmark.
    pub fn identify_unfiltered(&self, probe: &str, response: &[u8]) -> Option<Identification> {
        self.identify_with(probe, response, false)
    }

    fn identify_with(
        &self,
        probe: &str,
        response: &[u8],
        filtered: bool,
    ) -> Option<Identification> {
        if response.is_empty() {
            return None;
        }
        let probe = self.probe(probe)?;
        let present = if filtered {
            self.literals.present(response)
        } else {
            Vec::new()
        };
        let mut soft: Option<Identification> = None;
        for p in self.chain(probe) {
            let candidates: Vec<u32> = if filtered {
                p.index.candidates(response)
            } else {
                (0..u32::try_from(p.matches.len()).unwrap_or(u32::MAX)).collect()
            };
            for i in candidates {
                let m = &p.matches[i as usize];
                if filtered && m.required_id.is_some_and(|id| !present[id]) {
                    continue;
                }
                if let Some(held) = &soft
                    && (m.soft || m.service != held.service)
                {
                    continue;
                }
                let Some(groups) = m.captures(response, &self.pattern_errors) else {
                    continue;
                };
                let found = Identification {
                    service: m.service.clone(),
                    // A softmatch's template counts too, as nmap prints it
                    // (98 of Debian's softmatch lines have one).
                    version: m.template.fill(&groups),
                    soft: m.soft,
                    probe: p.name().to_owned(),
                    line: m.line,
                };
                if !m.soft {
                    return Some(found);
                }
                soft = Some(found);
            }
        }
        soft
    }
}
