//! Which records a follower asked for: `/records` query parameters (what
//! `edgewise observe` sends), and the facts of a record they are matched
//! against.
//!
//! Parameters (each may repeat; repeats of one parameter are alternatives,
//! different parameters must all hold):
//!
//! | parameter   | matches                                                        |
//! |-------------|----------------------------------------------------------------|
//! | `type`      | the record's `type` (`edge`, `rule`, `unban`, `drop`, `dns`, `secret_read`) |
//! | `namespace` | the client's or the server's namespace                        |
//! | `from_pod`  | the client pod, `[namespace/]name-prefix` (any namespace when none is given) |
//! | `to_pod`    | the server pod, the same way                                   |
//! | `to_fqdn`   | the server's name (`*` matches any run of characters); a `dns` record's question |
//! | `verdict`   | an `edge` record's verdict (`declared`, `violation`, `not_governed`) |
//! | `port`      | the server port (a `dns` record's is 53)                       |
//! | `protocol`  | `tcp` or `udp`                                                 |
//! | `since_ns`  | records at or after this time (nanoseconds since the Unix epoch) |
//!
//! and, for the stream itself, `last=N` (the last N matching records held,
//! before any new one) and `follow=true|false`. An unknown parameter or a
//! value that does not parse is refused with a message, never ignored.
//!
//! A record's namespaces, pods and server name come from its own facts
//! (`edge`), else from who had its addresses and what the server was
//! called when it was held ([`Names`]: `rule`, `unban`, `drop`, `dns`;
//! `secret_read`: the reading pod's or service account's namespace, the
//! reading pod, and the secret's namespace).

use std::net::IpAddr;
use std::sync::Arc;

use edgewise_edge_set::EdgeKey;
use edgewise_ip_index::{ClusterObject, ObjectKind};
use edgewise_pipeline::Record;
use edgewise_pipeline::dns::DnsLine;
use edgewise_pipeline::records::Endpoint;

/// One end of a record, as far as filters look.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Side {
    /// Its namespace.
    pub namespace: Option<String>,
    /// Its pod's name (a pod only).
    pub pod: Option<String>,
    /// Its name from DNS (the server only).
    pub fqdn: Option<String>,
}

impl Side {
    fn of_object(object: Option<&ClusterObject>) -> Self {
        Self {
            namespace: object.and_then(|o| o.namespace.clone()),
            pod: object
                .filter(|o| o.kind == ObjectKind::Pod)
                .map(|o| o.name.clone()),
            fqdn: None,
        }
    }

    /// An end of an `edge` record.
    fn of_endpoint(endpoint: &Endpoint) -> Self {
        Self {
            fqdn: endpoint.fqdn.clone(),
            ..Self::of_object(endpoint.identity.as_deref())
        }
    }
}

/// What a filter looks at in a record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordFacts {
    /// The `type`.
    pub kind: String,
    /// Its time (nanoseconds since the Unix epoch).
    pub time_ns: Option<u64>,
    /// The client.
    pub src: Side,
    /// The server.
    pub dst: Side,
    /// The server port.
    pub port: Option<u16>,
    /// `tcp` or `udp`.
    pub protocol: Option<String>,
    /// An edge's verdict.
    pub verdict: Option<String>,
}

/// Who has an address and what a server is called, for the records that
/// carry addresses only (the daemon asks its pipeline).
pub trait Names {
    /// Who has `ip` now.
    fn identity(&self, ip: IpAddr) -> Option<Arc<ClusterObject>>;
    /// What `client` calls `server` at `time_ns`.
    fn server_name(&self, client: IpAddr, server: IpAddr, time_ns: u64) -> Option<String>;
}

/// No names: records with addresses only match no pod, namespace or name.
pub struct NoNames;

impl Names for NoNames {
    fn identity(&self, _ip: IpAddr) -> Option<Arc<ClusterObject>> {
        None
    }

    fn server_name(&self, _client: IpAddr, _server: IpAddr, _time_ns: u64) -> Option<String> {
        None
    }
}

impl RecordFacts {
    /// The facts of `record`, with `names` for records that carry
    /// addresses only; `None` for a `stats` record (never followed).
    pub fn of(record: &Record, names: &dyn Names) -> Option<Self> {
        let side = |ip: IpAddr| Side::of_object(names.identity(ip).as_deref());
        let of_edge = |kind: &str, time_ns: u64, edge: &EdgeKey| {
            let mut dst = side(edge.dst);
            dst.fqdn = names.server_name(edge.src, edge.dst, time_ns);
            Self {
                kind: kind.to_owned(),
                time_ns: Some(time_ns),
                src: side(edge.src),
                dst,
                port: Some(edge.port),
                protocol: Some(edge.protocol.as_str().to_owned()),
                verdict: None,
            }
        };
        Some(match record {
            Record::Edge(edge) => Self {
                kind: "edge".to_owned(),
                time_ns: Some(edge.time_ns),
                src: Side::of_endpoint(&edge.src),
                dst: Side::of_endpoint(&edge.dst),
                port: Some(edge.dst.port),
                protocol: Some(edge.proto.as_str().to_owned()),
                verdict: Some(edge.verdict.to_owned()),
            },
            Record::Rule(rule) => of_edge("rule", rule.time_ns, &rule.edge),
            Record::Unban(unban) => of_edge("unban", unban.time_ns, &unban.edge),
            Record::Drop(drop) => of_edge("drop", drop.time_ns, &drop.edge),
            Record::Dns(dns) => {
                let mut dst = side(dns.server);
                let mut protocol = None;
                if let DnsLine::Response(line) = &dns.line {
                    dst.fqdn = line.question.as_ref().map(|q| q.name.clone());
                    protocol = Some(line.transport.to_owned());
                }
                Self {
                    kind: "dns".to_owned(),
                    time_ns: Some(dns.time_ns),
                    src: side(dns.client),
                    dst,
                    port: Some(53),
                    protocol,
                    verdict: None,
                }
            }
            Record::SecretRead(read) => {
                let namespace = |name: &str| {
                    name.split_once('/')
                        .map(|(ns, _)| ns.to_owned())
                        .filter(|ns| ns != "*")
                };
                let reader = read.pod.as_deref().or(read.service_account.as_deref());
                Self {
                    kind: "secret_read".to_owned(),
                    time_ns: Some(read.time_ns),
                    src: Side {
                        namespace: reader.and_then(namespace),
                        pod: read
                            .pod
                            .as_deref()
                            .and_then(|pod| pod.split_once('/'))
                            .map(|(_, name)| name.to_owned()),
                        ..Side::default()
                    },
                    dst: Side {
                        namespace: namespace(&read.secret),
                        ..Side::default()
                    },
                    ..Self::default()
                }
            }
            Record::Stats(_) => return None,
        })
    }
}

/// What a follower asked for (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordFilter {
    /// `type`.
    pub types: Vec<String>,
    /// `namespace`.
    pub namespaces: Vec<String>,
    /// `from_pod`.
    pub from_pods: Vec<String>,
    /// `to_pod`.
    pub to_pods: Vec<String>,
    /// `to_fqdn`.
    pub to_fqdns: Vec<String>,
    /// `verdict`.
    pub verdicts: Vec<String>,
    /// `port`.
    pub ports: Vec<u16>,
    /// `protocol`.
    pub protocols: Vec<String>,
    /// `since_ns`.
    pub since_ns: Option<u64>,
}

/// The record types a follower may ask for.
pub const TYPES: [&str; 6] = ["edge", "rule", "unban", "drop", "dns", "secret_read"];
const VERDICTS: [&str; 3] = ["declared", "violation", "not_governed"];

fn any_or<T>(wanted: &[T], holds: impl Fn(&T) -> bool) -> bool {
    wanted.is_empty() || wanted.iter().any(holds)
}

/// Whether `pod` (`[namespace/]name-prefix`) names `side`'s pod.
fn pod_matches(pattern: &str, side: &Side) -> bool {
    let Some(name) = &side.pod else {
        return false;
    };
    match pattern.split_once('/') {
        Some((namespace, prefix)) => {
            side.namespace.as_deref() == Some(namespace) && name.starts_with(prefix)
        }
        None => name.starts_with(pattern),
    }
}

/// Whether `name` matches `pattern`, where `*` stands for any run of
/// characters (names compared without case and a trailing dot).
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

impl RecordFilter {
    /// Whether a record with `facts` is wanted.
    pub fn matches(&self, facts: &RecordFacts) -> bool {
        any_or(&self.types, |t| *t == facts.kind)
            && any_or(&self.namespaces, |ns| {
                facts.src.namespace.as_ref() == Some(ns) || facts.dst.namespace.as_ref() == Some(ns)
            })
            && any_or(&self.from_pods, |pod| pod_matches(pod, &facts.src))
            && any_or(&self.to_pods, |pod| pod_matches(pod, &facts.dst))
            && any_or(&self.to_fqdns, |pattern| {
                facts
                    .dst
                    .fqdn
                    .as_deref()
                    .is_some_and(|name| glob_matches(pattern, name))
            })
            && any_or(&self.verdicts, |v| facts.verdict.as_ref() == Some(v))
            && any_or(&self.ports, |p| facts.port == Some(*p))
            && any_or(&self.protocols, |p| facts.protocol.as_ref() == Some(p))
            && self
                .since_ns
                .is_none_or(|since| facts.time_ns.is_some_and(|t| t >= since))
    }
}

/// A `/records` request: the filter, and how much of the past and future.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordQuery {
    /// Which records.
    pub filter: RecordFilter,
    /// The last N matching records held, first.
    pub last: Option<usize>,
    /// Go on with new records as they come.
    pub follow: bool,
}

impl RecordQuery {
    /// Reads a query string (see the module docs).
    ///
    /// # Errors
    /// A message naming the parameter that is unknown or does not parse.
    pub fn parse(query: &str) -> Result<Self, String> {
        let mut parsed = Self::default();
        let filter = &mut parsed.filter;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let value = value.into_owned();
            let bad = |what: &str| format!("{key}={value:?}: {what}");
            match &*key {
                "type" if TYPES.contains(&value.as_str()) => filter.types.push(value),
                "type" => return Err(bad(&format!("not one of {}", TYPES.join(", ")))),
                "namespace" => filter.namespaces.push(value),
                "from_pod" => filter.from_pods.push(value),
                "to_pod" => filter.to_pods.push(value),
                "to_fqdn" => filter.to_fqdns.push(value),
                "verdict" if VERDICTS.contains(&value.as_str()) => filter.verdicts.push(value),
                "verdict" => return Err(bad(&format!("not one of {}", VERDICTS.join(", ")))),
                "port" => filter
                    .ports
                    .push(value.parse().map_err(|_| bad("not a port"))?),
                "protocol" if value == "tcp" || value == "udp" => filter.protocols.push(value),
                "protocol" => return Err(bad("not tcp or udp")),
                "since_ns" => {
                    filter.since_ns = Some(value.parse().map_err(|_| bad("not a number"))?);
                }
                "last" => parsed.last = Some(value.parse().map_err(|_| bad("not a number"))?),
                "follow" => {
                    parsed.follow = value.parse().map_err(|_| bad("not true or false"))?;
                }
                _ => return Err(format!("{key}: not a parameter of /records")),
            }
        }
        Ok(parsed)
    }

    /// The query string [`RecordQuery::parse`] reads back.
    pub fn to_query(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        let filter = &self.filter;
        for (key, values) in [
            ("type", &filter.types),
            ("namespace", &filter.namespaces),
            ("from_pod", &filter.from_pods),
            ("to_pod", &filter.to_pods),
            ("to_fqdn", &filter.to_fqdns),
            ("verdict", &filter.verdicts),
            ("protocol", &filter.protocols),
        ] {
            for value in values {
                query.append_pair(key, value);
            }
        }
        for port in &filter.ports {
            query.append_pair("port", &port.to_string());
        }
        if let Some(since) = filter.since_ns {
            query.append_pair("since_ns", &since.to_string());
        }
        if let Some(last) = self.last {
            query.append_pair("last", &last.to_string());
        }
        query.append_pair("follow", if self.follow { "true" } else { "false" });
        query.finish()
    }
}

#[cfg(test)]
mod tests {
    use edgewise_ip_index::Protocol;
    use edgewise_pipeline::dns::{QuestionLine, ResponseLine};
    use edgewise_pipeline::records::{DnsRecord, EdgeRecord, RuleRecord, SecretReadRecord};

    use super::*;

    fn object(json: serde_json::Value) -> Arc<ClusterObject> {
        Arc::new(serde_json::from_value(json).unwrap())
    }

    fn edge() -> Record {
        let mut src = Endpoint::new("10.0.0.1".parse().unwrap(), 40000);
        src.identity = Some(object(
            serde_json::json!({"kind": "Pod", "namespace": "shop",
            "name": "web-7d4b-abcde", "display": "shop/web-7d4b-abcde"}),
        ));
        let mut dst = Endpoint::new("203.0.113.7".parse().unwrap(), 443);
        dst.fqdn = Some("api.example.com".to_owned());
        Record::Edge(EdgeRecord::new(10, src, dst, Protocol::Tcp, "violation"))
    }

    fn facts(record: &Record) -> RecordFacts {
        RecordFacts::of(record, &NoNames).unwrap()
    }

    /// One pod, and one name for one server.
    struct OnePod(Arc<ClusterObject>);

    impl Names for OnePod {
        fn identity(&self, ip: IpAddr) -> Option<Arc<ClusterObject>> {
            (ip.to_string() == "10.0.1.9").then(|| Arc::clone(&self.0))
        }

        fn server_name(&self, _client: IpAddr, server: IpAddr, _time_ns: u64) -> Option<String> {
            (server.to_string() == "10.0.1.9").then(|| "db.data.svc.cluster.local".to_owned())
        }
    }

    fn query(text: &str) -> RecordQuery {
        RecordQuery::parse(text).unwrap()
    }

    #[test]
    fn each_parameter_narrows_and_repeats_are_alternatives() {
        let edge = facts(&edge());
        for (text, wanted) in [
            ("", true),
            ("type=edge", true),
            ("type=dns", false),
            ("type=dns&type=edge", true),
            ("namespace=shop", true),
            ("namespace=data", false),
            ("from_pod=shop/web", true),
            ("from_pod=web", true),
            ("from_pod=data/web", false),
            ("to_pod=web", false),
            ("to_fqdn=*.example.com", true),
            ("to_fqdn=API.example.com.", true),
            ("to_fqdn=*.example.org", false),
            ("verdict=violation", true),
            ("verdict=declared", false),
            ("port=443", true),
            ("port=80&port=443", true),
            ("protocol=udp", false),
            ("since_ns=10", true),
            ("since_ns=11", false),
            ("namespace=shop&port=80", false),
        ] {
            assert_eq!(query(text).filter.matches(&edge), wanted, "{text}");
        }
    }

    #[test]
    fn records_with_addresses_take_identities_from_the_lookup() {
        let mut rule = RuleRecord::new(
            5,
            "no-db",
            "drop",
            EdgeKey {
                src: "10.0.0.1".parse().unwrap(),
                dst: "10.0.1.9".parse().unwrap(),
                port: 5432,
                protocol: Protocol::Tcp,
            },
        );
        rule.ttl_seconds = Some(60);
        let rule = Record::Rule(rule);
        let db = object(serde_json::json!({"kind": "Pod", "namespace": "data",
            "name": "db-0", "display": "data/db-0"}));
        let rule = RecordFacts::of(&rule, &OnePod(db)).unwrap();
        assert!(
            query("to_pod=data/db&port=5432&type=rule")
                .filter
                .matches(&rule)
        );
        assert!(query("to_fqdn=db.data.*").filter.matches(&rule));
        assert!(!query("from_pod=db").filter.matches(&rule));
        let dns = Record::Dns(DnsRecord::new(
            5,
            "10.0.0.1".parse().unwrap(),
            "10.0.0.10".parse().unwrap(),
            DnsLine::Response(ResponseLine {
                frame: 1,
                transport: "udp",
                id: 7,
                rcode: "NOERROR".to_owned(),
                truncated: false,
                question: Some(QuestionLine {
                    name: "api.example.com".to_owned(),
                    record_type: "A".to_owned(),
                }),
                answers: Vec::new(),
                resolved: std::collections::BTreeMap::new(),
            }),
        ));
        assert!(
            query("to_fqdn=api.*&port=53&protocol=udp")
                .filter
                .matches(&facts(&dns))
        );
        let mut read =
            SecretReadRecord::new(2_000_000_000, "api", "prod/db-password", "secret", "get");
        read.time_s = Some(1);
        read.service_account = Some("ci/runner".to_owned());
        let read = Record::SecretRead(read);
        assert!(
            query("namespace=prod&since_ns=2000000000")
                .filter
                .matches(&facts(&read))
        );
        let stats = Record::Stats(edgewise_pipeline::StatsRecord::default());
        assert_eq!(RecordFacts::of(&stats, &NoNames), None, "never followed");
    }

    #[test]
    fn a_query_round_trips_and_a_bad_one_is_named() {
        let asked = query("type=edge&namespace=a%2Fb&to_fqdn=*.x&port=53&last=20&follow=true");
        assert_eq!(query(&asked.to_query()), asked);
        assert_eq!((asked.last, asked.follow), (Some(20), true));
        for (bad, named) in [
            ("type=flow", "type"),
            ("verdict=dropped", "verdict"),
            ("port=70000", "port"),
            ("protocol=icmp", "protocol"),
            ("last=-1", "last"),
            ("follow=yes", "follow"),
            ("pod=x", "pod"),
        ] {
            let error = RecordQuery::parse(bad).unwrap_err();
            assert!(error.starts_with(named), "{bad}: {error}");
        }
    }

    #[test]
    fn globs_match_runs_of_characters() {
        for (pattern, name, wanted) in [
            ("*", "anything", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbbd", false),
            ("*.example.com", "example.com", false),
            ("*.example.com", "a.b.example.com", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "acb", false),
            ("exact.name", "exact.name", true),
            ("ab*ba", "aba", false),
        ] {
            assert_eq!(glob_matches(pattern, name), wanted, "{pattern} {name}");
        }
    }
}
