//! `edgewise observe`: a running daemon's records, followed over HTTP
//! (`GET /records`, server-sent events; see [`crate::web::records`]) with
//! filters in the style of `hubble observe`. One line per record: a
//! compact human line on a terminal, the record's JSON otherwise (or as
//! `--output` says).
//!
//! Without `--follow` it prints the last 20 matching records the daemon
//! holds (or `--last N`, or those since `--since`) and ends. With
//! `--follow` it goes on with new records; when the connection ends (the
//! daemon restarted, the network dropped, the stream reached its age) it
//! connects again with the last record's id, so that nothing is printed
//! twice and what the daemon still holds is not missed, and says on
//! standard error when records were lost or the daemon restarted.
//!
//! A refusal (a bad filter: 400, no token: 401, not a daemon: 404) stops
//! it with the daemon's message and a non-zero exit; a busy daemon (503)
//! is asked again when following.

use std::fmt::Write as _;
use std::io::{self, BufReader, IsTerminal, Write};
use std::time::Duration;

use edgewise_identity::http::sse::EventReader;
use edgewise_identity::http::{FollowConfig, Transport};
use edgewise_time::UnixNanos;
use serde_json::Value;

use crate::web::filter::{RecordFilter, RecordQuery, TYPES};

/// `edgewise observe`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ObserveArgs {
    /// The daemon's listener (`--listen` of `edgewise run` or `replay`).
    #[arg(long, default_value = "http://127.0.0.1:9464")]
    pub server: String,
    /// Records with a client or server in this namespace (repeatable).
    #[arg(long)]
    pub namespace: Vec<String>,
    /// Records from this pod: `[namespace/]name-prefix` (repeatable).
    #[arg(long)]
    pub from_pod: Vec<String>,
    /// Records to this pod: `[namespace/]name-prefix` (repeatable).
    #[arg(long)]
    pub to_pod: Vec<String>,
    /// Records to this name (`*` for any run of characters, such as
    /// `*.example.com`); for dns records, the question (repeatable).
    #[arg(long)]
    pub to_fqdn: Vec<String>,
    /// Edge records with this verdict (repeatable).
    #[arg(long, value_parser = ["declared", "violation", "not_governed"])]
    pub verdict: Vec<String>,
    /// Records to this server port (repeatable).
    #[arg(long)]
    pub port: Vec<u16>,
    /// Records of this protocol (repeatable).
    #[arg(long, value_parser = ["tcp", "udp"])]
    pub protocol: Vec<String>,
    /// Records of this type (repeatable).
    #[arg(long = "type", value_parser = TYPES)]
    pub types: Vec<String>,
    /// Records since then: a duration back from now (`30s`, `5m`, `2h`,
    /// `1d`) or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// The last N matching records the daemon holds (default 20 without
    /// --follow; none with it).
    #[arg(long)]
    pub last: Option<usize>,
    /// Go on with new records as they come, reconnecting when the
    /// connection ends.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// `compact` (one human line per record) or `json` (the records as
    /// the daemon writes them); default: compact on a terminal.
    #[arg(long, short = 'o', value_parser = ["compact", "json"])]
    pub output: Option<String>,
    /// How to reach the daemon (TLS, token).
    #[command(flatten)]
    pub client: crate::serve::ClientArgs,
}

/// Why `edgewise observe` stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObserveError {
    /// An argument cannot be used.
    #[error("{0}")]
    Usage(String),
    /// The daemon refused the request.
    #[error("{url}: {status}: {message}")]
    Refused {
        /// What was asked.
        url: String,
        /// The status.
        status: u16,
        /// What the daemon said.
        message: String,
    },
    /// The daemon could not be reached, or the stream broke (without
    /// `--follow`).
    #[error(transparent)]
    Transport(#[from] edgewise_identity::IdentityError),
    /// Reading the stream failed.
    #[error("{url}: {source}")]
    Stream {
        /// What was asked.
        url: String,
        /// Why.
        source: io::Error,
    },
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(#[source] io::Error),
}

/// How long one stream is read before it is opened again (so that a
/// connection that died silently is not waited on forever).
const MAX_STREAM_AGE: Duration = Duration::from_secs(5 * 60);
/// The longest record accepted.
const MAX_EVENT_BYTES: usize = 1 << 20;
/// The first and the longest wait before connecting again.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(5));

/// The query `args` ask for, `now_ns` being now.
///
/// # Errors
/// [`ObserveError::Usage`] for a `--since` that is neither a duration nor
/// an RFC 3339 time.
pub fn query(args: &ObserveArgs, now: UnixNanos) -> Result<RecordQuery, ObserveError> {
    let now_ns = now.as_nanos();
    let since_ns = args
        .since
        .as_deref()
        .map(|since| since_ns(since, now_ns))
        .transpose()?;
    Ok(RecordQuery {
        filter: RecordFilter {
            types: args.types.clone(),
            namespaces: args.namespace.clone(),
            from_pods: args.from_pod.clone(),
            to_pods: args.to_pod.clone(),
            to_fqdns: args.to_fqdn.clone(),
            verdicts: args.verdict.clone(),
            ports: args.port.clone(),
            protocols: args.protocol.clone(),
            since_ns,
        },
        last: args
            .last
            .or((!args.follow && args.since.is_none()).then_some(20)),
        follow: args.follow,
    })
}

fn since_ns(since: &str, now_ns: u64) -> Result<u64, ObserveError> {
    let ms_to_ns = |ms: i64| u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000);
    if let Ok(ms) = edgewise_trail::time::parse_duration(since) {
        return Ok(now_ns.saturating_sub(ms_to_ns(ms)));
    }
    edgewise_trail::time::parse_rfc3339(since)
        .map(ms_to_ns)
        .ok_or_else(|| {
            ObserveError::Usage(format!(
                "--since {since:?}: neither a duration (30s, 5m, 2h, 1d) nor an RFC 3339 time"
            ))
        })
}

/// Prints the records `args` ask for (see the module docs).
///
/// # Errors
/// [`ObserveError`] for bad arguments, a refusal, or (without `--follow`)
/// a daemon that cannot be reached.
pub fn observe(args: &ObserveArgs) -> Result<(), ObserveError> {
    let server = args.server.trim_end_matches('/');
    let transport = Transport::new(&{
        let mut follow_config = FollowConfig::new(server);
        follow_config.ca.clone_from(&args.client.ca);
        follow_config.client_cert = args.client.cert.clone().zip(args.client.key.clone());
        follow_config.token_file.clone_from(&args.client.token_file);
        follow_config
    })?;
    let query = query(args, crate::daemon::live::unix_now())?;
    let url = format!("{server}/records?{}", query.to_query());
    let compact = match args.output.as_deref() {
        Some(output) => output == "compact",
        None => io::stdout().is_terminal(),
    };
    let mut out = io::stdout().lock();
    let mut last_id: Option<String> = None;
    let mut backoff = BACKOFF.0;
    loop {
        let result = session(&transport, &url, &mut last_id, compact, &mut out);
        match result {
            // The daemon sent what was asked, or went away.
            Ok(()) if !args.follow => return Ok(()),
            Ok(()) => backoff = BACKOFF.0,
            // A refusal is final; a daemon that is busy (503: followers
            // enough already) is asked again when following.
            Err(
                error @ (ObserveError::Refused { status: ..500, .. } | ObserveError::Output(_)),
            ) => {
                return Err(error);
            }
            Err(error) if !args.follow => return Err(error),
            Err(error) => {
                eprintln!(
                    "edgewise observe: {error}; connecting again in {:.1} s",
                    backoff.as_secs_f64()
                );
            }
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(BACKOFF.1);
    }
}

/// One connection: prints its records, keeps the last id.
fn session(
    transport: &Transport,
    url: &str,
    last_id: &mut Option<String>,
    compact: bool,
    out: &mut impl Write,
) -> Result<(), ObserveError> {
    let headers: Vec<(&str, &str)> = last_id
        .as_deref()
        .map(|id| ("Last-Event-ID", id))
        .into_iter()
        .collect();
    let (status, body) = transport.open(url, &headers, MAX_STREAM_AGE)?;
    if status != 200 {
        let mut message = String::new();
        let _ = io::Read::read_to_string(&mut io::Read::take(body, 4096), &mut message);
        return Err(ObserveError::Refused {
            url: url.to_owned(),
            status,
            message: message.trim().to_owned(),
        });
    }
    let mut events = EventReader::new(BufReader::new(body), MAX_EVENT_BYTES);
    let stream_error = |source| ObserveError::Stream {
        url: url.to_owned(),
        source,
    };
    while let Some(event) = events.next_event().map_err(stream_error)? {
        // A record's id, or where a follower stands (`following`).
        if !event.id.is_empty() {
            last_id.clone_from(&Some(event.id.clone()));
        }
        match event.event.as_str() {
            "record" => {
                let line = if compact {
                    serde_json::from_str(&event.data)
                        .map_or_else(|_| event.data.clone(), |record| compact_line(&record))
                } else {
                    event.data
                };
                writeln!(out, "{line}")
                    .and_then(|()| out.flush())
                    .map_err(ObserveError::Output)?;
            }
            "lost" => {
                let lost: Value = serde_json::from_str(&event.data).unwrap_or_default();
                eprintln!(
                    "edgewise observe: {} records were lost (the daemon's ring moved on)",
                    lost["records"]
                );
            }
            "restarted" => eprintln!("edgewise observe: the daemon restarted"),
            _ => {}
        }
    }
    Ok(())
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// An endpoint of an edge record: who, else the name, else the address,
/// and the port.
fn endpoint(endpoint: &Value) -> String {
    let who = endpoint["identity"]["display"]
        .as_str()
        .or(endpoint["fqdn"].as_str())
        .or(endpoint["ip"].as_str())
        .unwrap_or("?");
    format!("{who}:{}", text(&endpoint["port"]))
}

/// `10.0.0.1 -> 10.0.0.9:5432/tcp`.
fn edge_key(edge: &Value) -> String {
    format!(
        "{} -> {}:{}/{}",
        text(&edge["src"]),
        text(&edge["dst"]),
        text(&edge["port"]),
        text(&edge["proto"])
    )
}

/// An edge record's line after its time and type.
fn edge_line(record: &Value) -> String {
    let mut line = format!(
        "{} -> {} {} {}",
        endpoint(&record["src"]),
        endpoint(&record["dst"]),
        text(&record["proto"]),
        text(&record["verdict"]).to_uppercase()
    );
    if let Some(policy) = record["policy"].as_str() {
        let _ = write!(line, " ({policy})");
    }
    for key in [
        "service",
        "service_product",
        "service_version",
        "ja4t",
        "ja4",
    ] {
        if let Some(value) = record[key].as_str() {
            let _ = write!(line, " {key}={value}");
        }
    }
    if record["update"] == true {
        line.push_str(" (update)");
    }
    line
}

/// The one human line of a record.
pub fn compact_line(record: &Value) -> String {
    let time = record["time_ns"]
        .as_u64()
        .map(|ns| i64::try_from(ns / 1_000_000).unwrap_or(i64::MAX))
        .or_else(|| record["time_s"].as_i64().map(|s| s.saturating_mul(1000)))
        .map_or_else(|| "-".to_owned(), edgewise_trail::time::rfc3339);
    let kind = record["type"].as_str().unwrap_or("?");
    let rest = match kind {
        "edge" => edge_line(record),
        "rule" => format!(
            "{} {} {}{}: {}",
            text(&record["rule"]),
            text(&record["action"]),
            if record["matched"] == true {
                "matched"
            } else {
                "no longer matches"
            },
            if record["enforced"] == true {
                ", enforced"
            } else {
                ""
            },
            text(&record["summary"])
        ),
        "unban" => format!(
            "{} rule={} reason={}",
            edge_key(&record["edge"]),
            text(&record["rule"]),
            text(&record["reason"])
        ),
        "drop" => format!(
            "{} rule={} packets={}",
            edge_key(&record["edge"]),
            text(&record["rule"]),
            text(&record["packets"])
        ),
        "dns" => {
            let answers: Vec<String> = record["answers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| format!("{} {}", text(&a["type"]), text(&a["data"])))
                .collect();
            format!(
                "{} <- {} {} {} {} [{}]",
                text(&record["client"]),
                text(&record["server"]),
                text(&record["question"]["name"]),
                text(&record["question"]["type"]),
                text(&record["rcode"]),
                answers.join(", ")
            )
        }
        "secret_read" => format!(
            "{} {} {} {} workloads={}{}",
            text(&record["source"]),
            text(record.get("pod").unwrap_or(&record["service_account"])),
            text(&record["verb"]),
            text(&record["secret"]),
            record["workloads"],
            if record["allowed"] == true {
                " allowed"
            } else {
                ""
            }
        ),
        _ => record.to_string(),
    };
    format!("{time} {kind:<11} {rest}")
}
