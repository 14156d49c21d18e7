//! Rules: what to do about a new edge, written in CEL (the Common
//! Expression Language Kubernetes uses for admission policies).
//!
//! A rules file is TOML, one `[[rule]]` table per rule:
//!
//! ```toml
//! [[rule]]
//! name = "no-undeclared-db-access"          # unique; named in audit records
//! when = 'edge.policy_violation && dst_port == 5432'
//! action = "drop"                           # drop | log | allow
//! ttl_seconds = 600                         # drop only (default 300)
//! ```
//!
//! Every rule compiles when the file is loaded: a syntax error, a variable
//! that does not exist, a duplicate name or a misplaced TTL is a
//! [`RulesError`] naming the rule, and an unknown action or key one naming
//! the file's line. Rules are evaluated once per new edge,
//! never per packet. Each rule that matches gives one [`Match`] (one audit
//! record); an expression that fails at run time (such as a label lookup of
//! a key that is not there: write `"k" in src_label` first) or does not
//! give a boolean does not match and is counted.
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
//! | `src_label`, `dst_label` | map | the object's labels: `dst_label["app"]` |
//! | `src_ip`, `dst_ip` | string | addresses |
//! | `dst_port` | int | the server's port |
//! | `proto` | string | `tcp`, `udp` |
//! | `dns.fqdn` | string | the name the client resolved the server from |
//! | `edge.declared` | bool | a NetworkPolicy allows it (on each side that is governed) |
//! | `edge.policy_violation` | bool | a NetworkPolicy denies it |
//! | `edge.verdict` | string | `declared`, `violation`, `not_governed` |
//! | `ja4t`, `ja4ts` | string | the client's JA4T, the server's JA4TS |
//! | `service` | string | what the first payload showed (`http`, `ssh`, `tls`, ...) |

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use cel::{Context, Program, Value};
use edgewise_ip_index::ClusterObject;
use serde::{Deserialize, Serialize};

use super::records::EdgeRecord;
use super::{TomlFileError, parse_toml, read_toml};

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Ban the edge in the kernel for the rule's TTL.
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
    /// The file could not be read or is not TOML of the expected shape.
    #[error(transparent)]
    File(#[from] TomlFileError),
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
    when: String,
    action: Action,
    ttl_seconds: Option<u64>,
}

/// One compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// Its name.
    pub name: String,
    /// Its expression, as written.
    pub when: String,
    /// What it does.
    pub action: Action,
    /// How long a `drop` bans the edge.
    pub ttl: Duration,
    program: Program,
}

/// The default ban of a `drop` rule.
pub const DEFAULT_TTL: Duration = Duration::from_mins(5);

/// The variables an expression may use.
pub const VARIABLES: &[&str] = &[
    "identity",
    "src_label",
    "dst_label",
    "src_ip",
    "dst_ip",
    "dst_port",
    "proto",
    "dns",
    "edge",
    "ja4t",
    "ja4ts",
    "service",
];

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

/// What the rules see of an edge (see the module docs for each field).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuleInput {
    /// `identity.k8s.*`.
    pub identity: IdentityInput,
    /// The source's labels.
    pub src_label: BTreeMap<String, String>,
    /// The destination's labels.
    pub dst_label: BTreeMap<String, String>,
    /// The client's address.
    pub src_ip: String,
    /// The server's address.
    pub dst_ip: String,
    /// The server's port.
    pub dst_port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
    /// `dns.fqdn`.
    pub dns: DnsInput,
    /// `edge.*`.
    pub edge: EdgeInput,
    /// The client's JA4T.
    pub ja4t: String,
    /// The server's JA4TS.
    pub ja4ts: String,
    /// The service the first payload showed.
    pub service: String,
}

/// `identity`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IdentityInput {
    /// `identity.k8s`.
    pub k8s: K8sInput,
}

/// `identity.k8s`.
#[derive(Debug, Clone, Default, Serialize)]
#[expect(missing_docs, reason = "documented in the module's table")]
pub struct K8sInput {
    pub src_namespace: String,
    pub src_workload: String,
    pub src_kind: String,
    pub src_name: String,
    pub src_service_account: String,
    pub dst_namespace: String,
    pub dst_workload: String,
    pub dst_kind: String,
    pub dst_name: String,
    pub dst_service_account: String,
}

/// `dns`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DnsInput {
    /// The name the client resolved the server from.
    pub fqdn: String,
}

/// `edge`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EdgeInput {
    /// Allowed by NetworkPolicy.
    pub declared: bool,
    /// Denied by NetworkPolicy.
    pub policy_violation: bool,
    /// `declared`, `violation` or `not_governed`.
    pub verdict: String,
}

/// A rule that matched an edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The rule's index in the file.
    pub rule: usize,
    /// Its action.
    pub action: Action,
    /// A `drop` that an `allow` rule overrode.
    pub overridden: bool,
}

/// What evaluating the rules on one edge gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The rules that matched, in file order.
    pub matches: Vec<Match>,
    /// Rules whose expression failed or did not give a boolean.
    pub errors: u64,
}

impl Outcome {
    /// The longest ban a `drop` that was not overridden asks for.
    pub fn ban(&self, rules: &Rules) -> Option<Duration> {
        self.matches
            .iter()
            .filter(|m| m.action == Action::Drop && !m.overridden)
            .map(|m| rules.rules[m.rule].ttl)
            .max()
    }
}

impl Rules {
    /// Reads and compiles a rules file.
    ///
    /// # Errors
    /// [`RulesError`] naming the file and, for a wrong rule, the rule.
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        Self::compile(path, read_toml(path)?)
    }

    /// Compiles rules from TOML text (`path` names it in errors).
    ///
    /// # Errors
    /// As [`Rules::load`].
    pub fn parse(path: &Path, text: &str) -> Result<Self, RulesError> {
        Self::compile(path, parse_toml(path, text)?)
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
            if !names.insert(text.name.clone()) {
                return Err(fail("a rule of that name came before".to_owned()));
            }
            if text.ttl_seconds.is_some() && text.action != Action::Drop {
                return Err(fail("ttl_seconds is for drop rules only".to_owned()));
            }
            if text.ttl_seconds == Some(0) {
                return Err(fail("ttl_seconds must be at least 1".to_owned()));
            }
            let program = Program::compile(&text.when)
                .map_err(|e| fail(format!("the expression does not compile: {e}")))?;
            let references = program.references();
            if let Some(unknown) = references
                .variables()
                .into_iter()
                .find(|v| !VARIABLES.contains(v))
            {
                return Err(fail(format!(
                    "unknown variable {unknown:?} (known: {})",
                    VARIABLES.join(", ")
                )));
            }
            rules.push(Rule {
                ttl: text.ttl_seconds.map_or(DEFAULT_TTL, Duration::from_secs),
                name: text.name,
                when: text.when,
                action: text.action,
                program,
            });
        }
        Ok(Self {
            rules,
            root: Context::default(),
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

    /// Evaluates every rule on one edge.
    pub fn evaluate(&self, input: &RuleInput) -> Outcome {
        let mut outcome = Outcome::default();
        if self.rules.is_empty() {
            return outcome;
        }
        let Some(context) = scope_of(&self.root, input) else {
            outcome.errors = self.rules.len() as u64;
            return outcome;
        };
        for (index, rule) in self.rules.iter().enumerate() {
            match rule.program.execute(&context) {
                Ok(Value::Bool(true)) => outcome.matches.push(Match {
                    rule: index,
                    action: rule.action,
                    overridden: false,
                }),
                Ok(Value::Bool(false)) => {}
                _ => outcome.errors += 1,
            }
        }
        if outcome.matches.iter().any(|m| m.action == Action::Allow) {
            for m in &mut outcome.matches {
                m.overridden = m.action == Action::Drop;
            }
        }
        outcome
    }
}

impl RuleInput {
    /// What the rules see of an edge record.
    pub fn of(record: &EdgeRecord) -> Self {
        let mut input = Self {
            src_ip: record.src.ip.to_string(),
            dst_ip: record.dst.ip.to_string(),
            dst_port: record.dst.port,
            proto: record.proto.as_str().to_owned(),
            ja4t: record.ja4t.clone().unwrap_or_default(),
            ja4ts: record.ja4ts.clone().unwrap_or_default(),
            service: record.service.clone().unwrap_or_default(),
            ..RuleInput::default()
        };
        input.dns.fqdn = record.dst.fqdn.clone().unwrap_or_default();
        record.verdict.clone_into(&mut input.edge.verdict);
        input.edge.declared = record.verdict == "declared";
        input.edge.policy_violation = record.verdict == "violation";
        let k8s = &mut input.identity.k8s;
        if let Some(object) = &record.src.identity {
            let fields = [
                &mut k8s.src_namespace,
                &mut k8s.src_workload,
                &mut k8s.src_kind,
                &mut k8s.src_name,
                &mut k8s.src_service_account,
            ];
            fill_side(object, fields, &mut input.src_label);
        }
        if let Some(object) = &record.dst.identity {
            let fields = [
                &mut k8s.dst_namespace,
                &mut k8s.dst_workload,
                &mut k8s.dst_kind,
                &mut k8s.dst_name,
                &mut k8s.dst_service_account,
            ];
            fill_side(object, fields, &mut input.dst_label);
        }
        input
    }
}

/// One side of `identity.k8s` (namespace, workload name, kind, name,
/// service account) and its labels, from `object`.
fn fill_side(
    object: &ClusterObject,
    [namespace, workload, kind, name, account]: [&mut String; 5],
    labels: &mut BTreeMap<String, String>,
) {
    *namespace = object.namespace.clone().unwrap_or_default();
    *workload = object
        .workload
        .as_ref()
        .map(|w| w.name.clone())
        .unwrap_or_default();
    kind.push_str(object.kind.as_str());
    name.clone_from(&object.name);
    *account = object.service_account.clone().unwrap_or_default();
    labels.clone_from(&object.labels);
}

/// A scope over `root` holding `input`'s fields as variables.
fn scope_of<'p>(
    root: &'p Context<'static, 'static>,
    input: &RuleInput,
) -> Option<Context<'p, 'static>> {
    let mut context = root.new_inner_scope();
    context.add_variable("identity", &input.identity).ok()?;
    context.add_variable("src_label", &input.src_label).ok()?;
    context.add_variable("dst_label", &input.dst_label).ok()?;
    context.add_variable("src_ip", input.src_ip.as_str()).ok()?;
    context.add_variable("dst_ip", input.dst_ip.as_str()).ok()?;
    context.add_variable("dst_port", input.dst_port).ok()?;
    context.add_variable("proto", input.proto.as_str()).ok()?;
    context.add_variable("dns", &input.dns).ok()?;
    context.add_variable("edge", &input.edge).ok()?;
    context.add_variable("ja4t", input.ja4t.as_str()).ok()?;
    context.add_variable("ja4ts", input.ja4ts.as_str()).ok()?;
    context
        .add_variable("service", input.service.as_str())
        .ok()?;
    Some(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Rules, RulesError> {
        Rules::parse(Path::new("rules.toml"), text)
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
"#,
        )
        .unwrap();
        let outcome = rules.evaluate(&input());
        assert_eq!(
            outcome.matches,
            [
                Match {
                    rule: 0,
                    action: Action::Drop,
                    overridden: false
                },
                Match {
                    rule: 1,
                    action: Action::Log,
                    overridden: false
                }
            ]
        );
        assert_eq!(outcome.errors, 0);
        assert_eq!(outcome.ban(&rules), Some(Duration::from_mins(1)));
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
        assert!(outcome.matches[0].overridden);
        assert_eq!(outcome.ban(&rules), None);
    }

    #[test]
    fn a_failing_expression_does_not_match_and_is_counted() {
        let rules = parse(
            r#"
[[rule]]
name = "missing label"
when = 'src_label["team"] == "x"'
action = "drop"

[[rule]]
name = "not a boolean"
when = "dst_port"
action = "log"

[[rule]]
name = "guarded"
when = '"team" in src_label && src_label["team"] == "x"'
action = "log"
"#,
        )
        .unwrap();
        let outcome = rules.evaluate(&input());
        assert!(outcome.matches.is_empty());
        assert_eq!(outcome.errors, 2);
    }

    #[test]
    fn wrong_rules_are_named() {
        let error = |text: &str| parse(text).unwrap_err().to_string();
        assert!(
            error("[[rule]]\nname = \"a\"\nwhen = \"dst_port ==== 1\"\naction = \"log\"")
                .contains("rule \"a\": the expression does not compile")
        );
        assert!(
            error("[[rule]]\nname = \"b\"\nwhen = \"port == 1\"\naction = \"log\"")
                .contains("rule \"b\": unknown variable \"port\"")
        );
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
    }
}
