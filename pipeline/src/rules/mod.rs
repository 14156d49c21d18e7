//! Rules: what to do about an edge or a secret read, written in CEL (the
//! Common Expression Language Kubernetes uses for admission policies).
//!
//! A rules file is TOML, one `[[rule]]` table per rule:
//!
//! ```toml
//! [[rule]]
//! name = "no-undeclared-db-access"          # unique; named in audit records
//! when = 'edge.policy_violation && dst_port == 5432'
//! action = "drop"                           # drop | log | allow
//! ttl_seconds = 600                         # drop only (default 300)
//!
//! [[rule]]
//! name = "db password outside the api"
//! on = "secret_read"                        # edge (the default) | secret_read
//! when = 'secret.name == "postgres-password" && identity.k8s.src_workload != "api"'
//! action = "log"                            # log | allow (a read cannot be dropped)
//! ```
//!
//! Every rule compiles when the file is loaded and is checked against the
//! variable tree below ([`check`]): a syntax error, an unknown variable or
//! member, an operator or function on the wrong types, an unknown function,
//! a `matches()` pattern that is not RE2, an expression over the size
//! limits, a duplicate name, a misplaced TTL or a `drop` on secret reads
//! is a [`RulesError`] naming
//! the rule and the column; an unknown action or key names the file's line.
//! Rules are evaluated when an edge is new and again whenever one of its
//! facts changes, never per packet. An expression that fails at run time
//! (such as a label lookup of a key that is not there: write
//! `"k" in src_label` first) does not match and is counted for its rule.
//!
//! Actions: `drop` bans the edge in the kernel for its TTL, `log` only
//! records, and `allow` is an explicit exception: when an `allow` rule
//! matches, no `drop` rule is enforced for that edge (their matches are
//! recorded as overridden).
//!
//! Variables (a string is `""` when unknown, a map is empty):
//!
//! | variable | type | what |
//! | --- | --- | --- |
//! | `identity.k8s.src_namespace`, `.dst_namespace` | string | the pod's, service's namespace |
//! | `identity.k8s.src_workload`, `.dst_workload` | string | the workload's name (a Deployment's, not its ReplicaSet's) |
//! | `identity.k8s.src_kind`, `.dst_kind` | string | `Pod`, `Service`, `Node` |
//! | `identity.k8s.src_name`, `.dst_name` | string | the object's name |
//! | `identity.k8s.src_service_account`, `.dst_service_account` | string | a pod's service account |
//! | `src_label`, `dst_label` | map | the object's labels: `dst_label["app"]` (also `identity.k8s.src_label`, `.dst_label`) |
//! | `src_ip`, `dst_ip` | string | addresses |
//! | `dst_port` | int | the server's port |
//! | `proto` | string | `tcp`, `udp` |
//! | `dns.fqdn` | string | the name this client resolved the server from (`""` when only other clients did) |
//! | `edge.declared` | bool | a NetworkPolicy allows it (on each side that is governed) |
//! | `edge.policy_violation` | bool | a NetworkPolicy denies it |
//! | `edge.verdict` | string | `declared`, `violation`, `not_governed` |
//! | `ja4t`, `ja4ts` | string | the client's JA4T, the server's JA4TS |
//! | `ja4`, `ja4s` | string | the client's JA4 (its ClientHello to this server), the server's JA4S |
//! | `tls.sni`, `tls.alpn` | string | what the client's ClientHello asked for: the server name (SNI, no DNS needed), the first ALPN protocol offered |
//! | `service` | string | what the first payload showed (`http`, `ssh`, `tls`, ...; with nmap's database, its service name) |
//! | `service_product`, `service_version` | string | the server's product and version, when nmap's database named them (`OpenSSH`, `9.6p1`) |
//! | `flow.unique_dst_ports` | int | distinct server ports the client address used over the last minute |
//! | `flow.flows_per_min` | int | new flows the client address started over the last minute |
//! | `flow.dst_port_entropy` | double | Shannon entropy (bits) of those flows' server ports |
//! | `net.src_pod`, `net.dst_pod` | bool | the address is inside the pod CIDRs |
//! | `net.dst_home`, `net.dst_external` | bool | the server is inside (outside) the home networks |
//!
//! A `secret_read` rule sees other variables: `secret.name`,
//! `secret.namespace`, `secret.source` (`mounted`, `api`), `secret.kind`
//! (`secret`, `service_account_token`, or `volume` when only the volume's
//! name is known), `secret.verb` (`open` for a mounted read; `get`,
//! `list`, `watch` from the API), `secret.file` (the file inside the
//! volume); the reader as `identity.k8s.src_namespace`, `.src_workload`,
//! `.src_kind`, `.src_name`, `.src_service_account`, `.src_label` (also
//! `src_label`), and `reader.command`, `reader.in_pod` (a mounted read by
//! a process outside any pod, such as one on the host, has `false`). An
//! API read is attributed to every workload running as its service
//! account: a rule matches it when it matches for any of them (`src_kind`
//! and `src_name` are then empty). `log` records the match in the
//! `secret_read` record; `allow` marks the read as expected
//! (`"allowed": true`).
//!
//! Functions: the operators, `size`, `contains`, `startsWith`, `endsWith`,
//! `matches` (RE2 syntax), `int`, `uint`, `double`, `string`, `bool`,
//! `dyn`, `max`, `min`, `inCidr` (`dst_ip.inCidr("203.0.113.0/24")`: the
//! address is in the block; false for a string that is not an address or
//! a block that is not a CIDR), and the macros `has`, `all`, `exists`,
//! `exists_one`, `map`, `filter` (their bound variables are in scope).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cel::extractors::This;
use cel::{Context, Program, Value};
use serde::{Deserialize, Serialize};

pub mod check;
mod input;

pub use check::CheckError;
pub use input::{
    DnsInput, EdgeInput, FlowInput, IdentityInput, K8sInput, NetInput, RuleInput, TlsInput,
    VARIABLES,
};
pub use secret_input::{Candidate, ReaderInput, SecretInput, SecretReadInput};

mod secret_input;

/// What a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// An edge (the default).
    #[default]
    Edge,
    /// A read of a secret, mounted or through the API.
    SecretRead,
}

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Ban the edge in the kernel while the rule matches, and for its TTL
    /// after the last blocked attempt.
    Drop,
    /// Record only.
    Log,
    /// An exception that wins over drops.
    Allow,
}

impl Action {
    /// `drop`, `log` or `allow`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drop => "drop",
            Self::Log => "log",
            Self::Allow => "allow",
        }
    }
}

/// Why a rules file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// Not TOML of the expected shape.
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// The TOML error, with its line.
        message: String,
    },
    /// One rule is wrong.
    #[error("{}: rule {name:?}: {problem}", path.display())]
    Rule {
        /// The file.
        path: PathBuf,
        /// The rule.
        name: String,
        /// What is wrong.
        problem: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<RuleText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleText {
    name: String,
    #[serde(default)]
    on: Subject,
    when: String,
    action: Action,
    ttl_seconds: Option<u64>,
}

/// One compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// Its name.
    pub name: String,
    /// What it judges.
    pub on: Subject,
    /// Its expression, as written.
    pub when: String,
    /// What it does.
    pub action: Action,
    /// How long a `drop` keeps the edge banned after the last blocked
    /// attempt.
    pub ttl: Duration,
    program: Program,
}

/// The default ban of a `drop` rule.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);

/// The longest TTL a rule may ask for (a day).
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// The most rules a file may hold.
pub const MAX_RULES: usize = 1_000;

/// The rules, compiled.
#[derive(Default)]
pub struct Rules {
    rules: Vec<Rule>,
    /// The standard functions, registered once: each evaluation adds the
    /// edge's variables in a scope of its own on top.
    root: Context<'static, 'static>,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// What evaluating the rules on one edge gave: one entry per rule, in
/// file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Per rule: `Some(true)` matched, `Some(false)` did not, `None` the
    /// expression failed or did not give a boolean.
    pub results: Vec<Option<bool>>,
    /// Whether an `allow` rule matched (no `drop` is then enforced).
    pub allowed: bool,
}

impl Outcome {
    /// Whether rule `index` matched.
    pub fn matched(&self, index: usize) -> bool {
        self.results.get(index).copied().flatten() == Some(true)
    }

    /// The rules that failed.
    pub fn errors(&self) -> impl Iterator<Item = usize> + '_ {
        self.results
            .iter()
            .enumerate()
            .filter_map(|(index, r)| r.is_none().then_some(index))
    }

    /// The longest ban a `drop` that was not overridden asks for, and its
    /// rule.
    pub fn ban(&self, rules: &Rules) -> Option<(usize, Duration)> {
        if self.allowed {
            return None;
        }
        rules
            .rules
            .iter()
            .enumerate()
            .filter(|(index, rule)| rule.action == Action::Drop && self.matched(*index))
            .map(|(index, rule)| (index, rule.ttl))
            .max_by_key(|(_, ttl)| *ttl)
    }
}

impl Rules {
    /// Compiles rules from TOML text (`path` names it in errors; reading
    /// the file is the caller's).
    ///
    /// # Errors
    /// [`RulesError`] naming the file and, for a wrong rule, the rule and
    /// the column.
    pub fn parse(path: &Path, text: &str) -> Result<Self, RulesError> {
        let file: RulesFile = toml::from_str(text).map_err(|e| RulesError::Format {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if file.rule.len() > MAX_RULES {
            return Err(RulesError::Format {
                path: path.to_owned(),
                message: format!(
                    "{} rules, more than the {MAX_RULES} allowed",
                    file.rule.len()
                ),
            });
        }
        Self::compile(path, file)
    }

    fn compile(path: &Path, file: RulesFile) -> Result<Self, RulesError> {
        let mut names = HashSet::new();
        let mut rules = Vec::with_capacity(file.rule.len());
        for text in file.rule {
            let fail = |problem: String| RulesError::Rule {
                path: path.to_owned(),
                name: text.name.clone(),
                problem,
            };
            if text.name.trim().is_empty() {
                return Err(fail("the name is empty".to_owned()));
            }
            if text.name.len() > 253 {
                return Err(fail("the name is longer than 253 bytes".to_owned()));
            }
            if !names.insert(text.name.clone()) {
                return Err(fail("a rule of that name came before".to_owned()));
            }
            if text.ttl_seconds.is_some() && text.action != Action::Drop {
                return Err(fail("ttl_seconds is for drop rules only".to_owned()));
            }
            if text.on == Subject::SecretRead && text.action == Action::Drop {
                return Err(fail(
                    "drop cannot act on a secret read (nothing can be dropped): use log or allow"
                        .to_owned(),
                ));
            }
            if text.ttl_seconds == Some(0) {
                return Err(fail("ttl_seconds must be at least 1".to_owned()));
            }
            let ttl = text.ttl_seconds.map_or(DEFAULT_TTL, Duration::from_secs);
            if ttl > MAX_TTL {
                return Err(fail(format!(
                    "ttl_seconds must be at most {}",
                    MAX_TTL.as_secs()
                )));
            }
            check::check_text(&text.when).map_err(|e| fail(e.to_string()))?;
            let program = Program::compile(&text.when)
                .map_err(|e| fail(format!("the expression does not compile: {e}")))?;
            let info = program.source_info();
            let root = match text.on {
                Subject::Edge => input::root,
                Subject::SecretRead => secret_input::root,
            };
            let ty = check::check(program.expression(), root, &|id| {
                info.offset_for(id).map(|(start, _)| start)
            })
            .map_err(|e| fail(e.to_string()))?;
            if !matches!(ty, check::Ty::Bool | check::Ty::Dyn) {
                return Err(fail(format!(
                    "the expression gives {}, not a bool",
                    ty.name()
                )));
            }
            rules.push(Rule {
                ttl,
                on: text.on,
                name: text.name,
                when: text.when,
                action: text.action,
                program,
            });
        }
        Ok(Self {
            rules,
            root: root_context(),
        })
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether any rule judges `subject`.
    pub fn judges(&self, subject: Subject) -> bool {
        self.rules.iter().any(|rule| rule.on == subject)
    }

    /// Evaluates every edge rule on one edge (secret-read rules give
    /// `Some(false)`).
    pub fn evaluate(&self, input: &RuleInput) -> Outcome {
        self.evaluate_in(Subject::Edge, || input::scope_of(&self.root, input))
    }

    /// Evaluates every secret-read rule on one read (edge rules give
    /// `Some(false)`): a rule matches when it matches for any of the
    /// read's candidate readers.
    pub fn evaluate_secret_read(&self, input: &SecretReadInput) -> Outcome {
        let mut outcome = Outcome {
            results: vec![Some(false); self.rules.len()],
            allowed: false,
        };
        for reader in input.readers() {
            let one = self.evaluate_in(Subject::SecretRead, || {
                secret_input::scope_of(&self.root, input, &reader)
            });
            for (sum, result) in outcome.results.iter_mut().zip(one.results) {
                *sum = match (*sum, result) {
                    (Some(true), _) | (_, Some(true)) => Some(true),
                    (None, _) | (_, None) => None,
                    _ => Some(false),
                };
            }
        }
        outcome.allowed = self.allowed(&outcome);
        outcome
    }

    fn evaluate_in<'p>(
        &'p self,
        subject: Subject,
        scope: impl FnOnce() -> Option<Context<'p, 'static>>,
    ) -> Outcome {
        let mut outcome = Outcome {
            results: Vec::with_capacity(self.rules.len()),
            allowed: false,
        };
        if !self.judges(subject) {
            outcome.results.resize(self.rules.len(), Some(false));
            return outcome;
        }
        let Some(context) = scope() else {
            for rule in &self.rules {
                outcome.results.push((rule.on != subject).then_some(false));
            }
            return outcome;
        };
        for rule in &self.rules {
            outcome.results.push(if rule.on == subject {
                match rule.program.execute(&context) {
                    Ok(Value::Bool(matched)) => Some(matched),
                    _ => None,
                }
            } else {
                Some(false)
            });
        }
        outcome.allowed = self.allowed(&outcome);
        outcome
    }

    fn allowed(&self, outcome: &Outcome) -> bool {
        self.rules
            .iter()
            .enumerate()
            .any(|(index, rule)| rule.action == Action::Allow && outcome.matched(index))
    }
}

/// The functions every rule may call beyond CEL's own.
fn root_context() -> Context<'static, 'static> {
    let mut context = Context::default();
    // The name is not one of CEL's, so it cannot clash.
    let _ = context.add_function("inCidr", in_cidr);
    context
}

/// `ip.inCidr(block)`.
#[expect(
    clippy::needless_pass_by_value,
    reason = "CEL hands functions their arguments by value"
)]
fn in_cidr(This(ip): This<std::sync::Arc<String>>, block: std::sync::Arc<String>) -> bool {
    match (
        ip.parse::<core::net::IpAddr>(),
        block.parse::<ipnet::IpNet>(),
    ) {
        (Ok(ip), Ok(block)) => block.contains(&ip.to_canonical()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Rules, RulesError> {
        Rules::parse(Path::new("rules.toml"), text)
    }

    fn one(when: &str) -> Result<Rules, RulesError> {
        parse(&format!(
            "[[rule]]\nname = \"r\"\nwhen = '''{when}'''\naction = \"log\"\n"
        ))
    }

    fn input() -> RuleInput {
        let mut input = RuleInput {
            dst_port: 5432,
            proto: "tcp".to_owned(),
            ..RuleInput::default()
        };
        input.identity.k8s.src_namespace = "shop".to_owned();
        input.identity.k8s.dst_workload = "postgres".to_owned();
        input
            .dst_label
            .insert("app".to_owned(), "postgres".to_owned());
        input.identity.k8s.dst_label = input.dst_label.clone();
        input.dns.fqdn = "db.shop.svc.cluster.local".to_owned();
        input.edge.policy_violation = true;
        input
    }

    #[test]
    fn rules_match_on_every_kind_of_field() {
        let rules = parse(
            r#"
[[rule]]
name = "violations to databases"
when = 'edge.policy_violation && dst_port == 5432 && dst_label["app"] == "postgres"'
action = "drop"
ttl_seconds = 60

[[rule]]
name = "shop to cluster names"
when = 'identity.k8s.src_namespace == "shop" && dns.fqdn.endsWith(".cluster.local")'
action = "log"

[[rule]]
name = "never matches"
when = 'proto == "udp"'
action = "log"

[[rule]]
name = "regex and the seed label spelling"
when = 'dns.fqdn.matches("^db[.]") && identity.k8s.dst_label["app"] == "postgres"'
action = "log"
"#,
        )
        .unwrap();
        let outcome = rules.evaluate(&input());
        assert_eq!(
            outcome.results,
            [Some(true), Some(true), Some(false), Some(true)]
        );
        assert_eq!(outcome.errors().count(), 0);
        assert_eq!(outcome.ban(&rules), Some((0, Duration::from_secs(60))));
    }

    #[test]
    fn an_allow_overrides_every_drop() {
        let rules = parse(
            r#"
[[rule]]
name = "drop violations"
when = "edge.policy_violation"
action = "drop"

[[rule]]
name = "postgres is fine"
when = 'identity.k8s.dst_workload == "postgres"'
action = "allow"
"#,
        )
        .unwrap();
        let outcome = rules.evaluate(&input());
        assert!(outcome.matched(0) && outcome.allowed);
        assert_eq!(outcome.ban(&rules), None);
    }

    #[test]
    fn a_failing_expression_does_not_match_and_is_counted_for_its_rule() {
        let rules = parse(
            r#"
[[rule]]
name = "missing label"
when = 'src_label["team"] == "x"'
action = "drop"

[[rule]]
name = "guarded"
when = '"team" in src_label && src_label["team"] == "x"'
action = "log"
"#,
        )
        .unwrap();
        let outcome = rules.evaluate(&input());
        assert_eq!(outcome.results, [None, Some(false)]);
        assert_eq!(outcome.errors().collect::<Vec<_>>(), [0]);
    }

    #[test]
    fn in_cidr_tells_addresses_inside_a_block() {
        let mut input = input();
        input.dst_ip = "203.0.113.77".to_owned();
        for (when, matched) in [
            (r#"dst_ip.inCidr("203.0.113.0/24")"#, Some(true)),
            (r#"dst_ip.inCidr("203.0.113.0/26")"#, Some(false)),
            (r#"inCidr(dst_ip, "0.0.0.0/0")"#, Some(true)),
            (r#"dst_ip.inCidr("2001:db8::/32")"#, Some(false)),
            (r#"src_ip.inCidr("10.0.0.0/8")"#, Some(false)),
        ] {
            let rules = one(when).unwrap_or_else(|e| panic!("{when}: {e}"));
            assert_eq!(rules.evaluate(&input).results, [matched], "{when}");
        }
        input.dst_ip = "::ffff:203.0.113.77".to_owned();
        let rules = one(r#"dst_ip.inCidr("203.0.113.0/24")"#).unwrap();
        assert_eq!(rules.evaluate(&input).results, [Some(true)]);
        let error = one(r#"dst_ip.inCidr("203.0.113.0/33")"#).unwrap_err();
        assert!(error.to_string().contains("is not a CIDR"), "{error}");
        let error = one("dst_port.inCidr(\"10.0.0.0/8\")").unwrap_err();
        assert!(error.to_string().contains("inCidr"), "{error}");
    }

    #[test]
    fn macros_bind_their_variables() {
        for when in [
            "[1, 2].all(x, x > 0)",
            r#"dst_label.exists(k, k == "app")"#,
            r#"dst_label.exists(k, dst_label[k] == "postgres")"#,
            r"[80, 443, 5432].exists_one(p, p == dst_port)",
            r"[1, 2, 3].map(x, x * 2).filter(y, y > 2).size() == 2",
            r"has(identity.k8s.src_namespace)",
        ] {
            let rules = one(when).unwrap_or_else(|e| panic!("{when}: {e}"));
            let outcome = rules.evaluate(&input());
            assert_eq!(outcome.results, [Some(true)], "{when}");
        }
    }

    #[test]
    fn wrong_rules_are_named_with_the_column() {
        let error = |when: &str| one(when).unwrap_err().to_string();
        assert!(error("dst_port ==== 1").contains("the expression does not compile"));
        let e = error("port == 1");
        assert!(
            e.contains("rule \"r\": at column 1: unknown variable \"port\""),
            "{e}"
        );
        let e = error(r#"identity.k8s.src_namspace == "shop""#);
        assert!(
            e.contains("identity.k8s has no member \"src_namspace\""),
            "{e}"
        );
        let e = error(r#"dst_port == "5432""#);
        assert!(e.contains("== cannot take (int, string)"), "{e}");
        let e = error(r#"dst_port.startsWith("5")"#);
        assert!(e.contains("startsWith cannot take (int, string)"), "{e}");
        let e = error(r#"lowerAscii(service) == "ssh""#);
        assert!(e.contains("unknown function \"lowerAscii\""), "{e}");
        let e = error(r#"service.matches("(")"#);
        assert!(e.contains("matches(): not a valid pattern"), "{e}");
        let e = error("dst_port + 1");
        assert!(e.contains("gives int, not a bool"), "{e}");
        let e = error("edge.verdict.declared");
        assert!(e.contains("string has no member \"declared\""), "{e}");
    }

    #[test]
    fn the_file_and_its_keys_are_checked() {
        let error = |text: &str| parse(text).unwrap_err().to_string();
        assert!(
            error("[[rule]]\nname = \"c\"\nwhen = \"true\"\naction = \"ban\"")
                .contains("rules.toml")
        );
        assert!(error(
            "[[rule]]\nname = \"d\"\nwhen = \"true\"\naction = \"log\"\n[[rule]]\nname = \"d\"\nwhen = \"true\"\naction = \"log\""
        )
        .contains("rule \"d\": a rule of that name came before"));
        assert!(
            error("[[rule]]\nname = \"e\"\nwhen = \"true\"\naction = \"log\"\nttl_seconds = 5")
                .contains("ttl_seconds is for drop rules only")
        );
        assert!(
            error("[[rule]]\nname = \"f\"\nwhen = \"true\"\naction = \"log\"\ncolour = 1")
                .contains("unknown field")
        );
        assert!(
            error(
                "[[rule]]\nname = \"g\"\nwhen = \"true\"\naction = \"drop\"\nttl_seconds = 9999999"
            )
            .contains("ttl_seconds must be at most 86400")
        );
    }

    /// Rules that once loaded and then overflowed the stack or took
    /// gigabytes are refused at load, naming the limit.
    #[test]
    fn hostile_expressions_are_refused_at_load() {
        let error = |when: &str| one(when).unwrap_err().to_string();
        let sum = vec!["dst_port"; 10_000].join(" + ") + " > 0";
        assert!(error(&sum).contains("more than the 4096 allowed"));
        let sum = vec!["1"; 300].join(" + ") + " > dst_port";
        let e = error(&sum);
        assert!(e.contains("nests deeper than 48"), "{e}");
        let parens = "(".repeat(200) + "true" + &")".repeat(200);
        assert!(error(&parens).contains("brackets nest deeper than 48"));
        let list = format!(
            "dst_port in [{}]",
            (0..300)
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(error(&list).contains("more than 256 elements"));
        let nested = "[1].all(a, [1].all(b, [1].all(c, a + b + c > 0)))";
        assert!(error(nested).contains("macros (all, exists, map, filter) nest deeper than 2"));
        let long = format!("service == \"{}\"", "x".repeat(2_000));
        assert!(error(&long).contains("string literal is longer than 1024 bytes"));
    }
}
