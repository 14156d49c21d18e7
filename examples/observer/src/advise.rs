//! `edgewise advise` and `edgewise advise check`: the command lines of
//! `edgewise-advise`, reading the trail (`--store`) or graph files
//! (`--graph`), and `edgewise trail import`, which loads graph files into
//! a trail.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use edgewise_advise::policies::{generate, yaml};
use edgewise_advise::render::{date, html, json, markdown};
use edgewise_advise::{
    AdviseError, CheckReport, Granularity, Observation, Prefixes, Settings, Target, Tier, analyze,
    check, observation::from_graph,
};
use edgewise_edge_set::render::read_graph_json;
use edgewise_ip_index::Protocol;
use edgewise_trail::history::{EgressRow, egress_history};
use edgewise_trail::time::parse_duration;
use edgewise_trail::{SliceUpload, Store, StoreUrl, TrailError};

use crate::FileError;
use crate::edges::{EdgesError, EdgesInput, load};

/// Why an advise command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdviseCommandError {
    /// The analysis or an input it read.
    #[error(transparent)]
    Advise(#[from] AdviseError),
    /// The trail.
    #[error(transparent)]
    Trail(#[from] TrailError),
    /// A file.
    #[error(transparent)]
    File(#[from] FileError),
    /// A policies file.
    #[error(transparent)]
    Policies(#[from] EdgesError),
    /// A settings file.
    #[error("{}: {problem}", path.display())]
    Settings {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A trail row that cannot be read back.
    #[error("the trail holds an edges row that cannot be used: {0}")]
    Row(String),
    /// Nothing to read: neither `--store` nor `--graph`.
    #[error("--store URL or --graph FILE... is needed")]
    NoInput,
    /// Writing failed.
    #[error("writing: {0}")]
    Output(std::io::Error),
}

/// Where the history comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct InputArgs {
    /// The trail: `postgres://USER@HOST/DB` or `sqlite:PATH`.
    #[arg(long, conflicts_with = "graph")]
    pub store: Option<StoreUrl>,
    /// Graph files (`edgewise.graph/v1`, one per day, say).
    #[arg(long = "graph", num_args = 1..)]
    pub graph: Vec<PathBuf>,
    /// From the trail: how far back (`30d`, `2w`), or `all`.
    #[arg(long, default_value = "30d")]
    pub since: String,
    /// How sources are grouped: `namespace` or
    /// `namespace+service-identity` (overrides the settings file).
    #[arg(long)]
    pub granularity: Option<Granularity>,
}

/// `edgewise advise`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct AdviseArgs {
    /// Where the history comes from.
    #[command(flatten)]
    pub input: InputArgs,
    /// Thresholds: a TOML file of the settings' keys (see the README).
    #[arg(long)]
    pub settings: Option<PathBuf>,
    /// Named ranges for outside addresses: a JSON list of {"prefix",
    /// "name"}, such as a cloud's published ranges.
    #[arg(long)]
    pub prefixes: Option<PathBuf>,
    /// The report as JSON (`edgewise.advice/v1`) instead of markdown.
    #[arg(long)]
    pub json: bool,
    /// Write the report to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write the HTML page (with the chart of new destinations).
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Generate policies for these tiers (`A,B` or `pilot,small`) ...
    #[arg(long, requires = "write_policies")]
    pub tiers: Option<String>,
    /// ... into this directory.
    #[arg(long, requires = "tiers")]
    pub write_policies: Option<PathBuf>,
    /// The TTL of the generated drop rules.
    #[arg(long, default_value_t = 300)]
    pub drop_ttl_seconds: u64,
}

/// `edgewise advise check`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Where the history comes from.
    #[command(flatten)]
    pub input: InputArgs,
    /// The candidate NetworkPolicies (JSON or YAML); repeat for several.
    #[arg(long = "policies", required = true, num_args = 1..)]
    pub policies: Vec<PathBuf>,
    /// Namespaces (Kubernetes JSON or YAML), for policies that select
    /// namespaces by labels other than their name.
    #[arg(long = "objects")]
    pub objects: Vec<PathBuf>,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The observations the input names.
///
/// # Errors
/// [`AdviseCommandError`] for the first input that cannot be read.
pub fn observations(input: &InputArgs) -> Result<Vec<Observation>, AdviseCommandError> {
    if let Some(url) = &input.store {
        let since = if input.since == "all" {
            i64::MIN / 2
        } else {
            now_ms().saturating_sub(parse_duration(&input.since)?)
        };
        let mut store = Store::open(url, 0)?;
        return egress_history(&mut store, since)?
            .iter()
            .map(observation)
            .collect();
    }
    if input.graph.is_empty() {
        return Err(AdviseCommandError::NoInput);
    }
    let mut all = Vec::new();
    for path in &input.graph {
        let bytes = std::fs::read(path).map_err(FileError::at(path))?;
        all.extend(from_graph(&path.display().to_string(), &bytes)?);
    }
    Ok(all)
}

/// A trail row as an observation.
fn observation(row: &EgressRow) -> Result<Observation, AdviseCommandError> {
    let bad = |what: &str| AdviseCommandError::Row(format!("{what} in {row:?}"));
    let ip: IpAddr = row.dst_ip.parse().map_err(|_| bad("dst_ip"))?;
    let protocol = Protocol::parse(&row.proto).ok_or_else(|| bad("proto"))?;
    let port = u16::try_from(row.port).map_err(|_| bad("port"))?;
    let labels: BTreeMap<String, String> = if row.dst_labels.is_empty() {
        BTreeMap::new()
    } else {
        serde_json::from_str(&row.dst_labels).map_err(|_| bad("dst_labels"))?
    };
    let target = match row.dst_kind.as_str() {
        "Pod" => Target::Workload {
            namespace: row.dst_ns.clone(),
            workload_kind: if row.dst_workload.is_empty() {
                "Pod".to_owned()
            } else {
                row.dst_workload_kind.clone()
            },
            name: if row.dst_workload.is_empty() {
                row.dst_name.clone()
            } else {
                row.dst_workload.clone()
            },
        },
        "Service" => Target::Service {
            namespace: row.dst_ns.clone(),
            name: row.dst_name.clone(),
        },
        "Node" => Target::Node {
            name: row.dst_name.clone(),
        },
        _ => Target::of_name(&row.dst_fqdn).unwrap_or(Target::Address { ip }),
    };
    Ok(Observation {
        day: row.day,
        namespace: row.src_ns.clone(),
        service_identity: row.src_identity.clone(),
        target,
        ip,
        labels,
        port,
        protocol,
        flows: u64::try_from(row.flows).unwrap_or(0),
        first_seen_ms: row.first_seen,
        last_seen_ms: row.last_seen,
    })
}

fn settings(args: &AdviseArgs) -> Result<Settings, AdviseCommandError> {
    let mut settings = match &args.settings {
        None => Settings::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(FileError::at(path))?;
            toml::from_str(&text).map_err(|e| AdviseCommandError::Settings {
                path: path.clone(),
                problem: e.to_string(),
            })?
        }
    };
    if let Some(granularity) = args.input.granularity {
        settings.granularity = granularity;
    }
    settings.check()?;
    Ok(settings)
}

fn write_file(path: &Path, text: &str) -> Result<(), AdviseCommandError> {
    Ok(std::fs::write(path, text).map_err(FileError::at(path))?)
}

/// `edgewise advise`: the report, and the policies of the tiers asked
/// for.
///
/// # Errors
/// [`AdviseCommandError`]; nothing is written when the input cannot be
/// read.
pub fn advise(args: &AdviseArgs) -> Result<(), AdviseCommandError> {
    let settings = settings(args)?;
    let tiers = args.tiers.as_deref().map(Tier::parse_list).transpose()?;
    let prefixes = match &args.prefixes {
        None => Prefixes::default(),
        Some(path) => {
            let bytes = std::fs::read(path).map_err(FileError::at(path))?;
            Prefixes::from_json(&path.display().to_string(), &bytes)?
        }
    };
    let observations = observations(&args.input)?;
    let report = analyze(&observations, &settings, &prefixes)?;
    let text = if args.json {
        let mut text = serde_json::to_string_pretty(&json(&report)).unwrap_or_default();
        text.push('\n');
        text
    } else {
        markdown(&report)
    };
    if let Some(path) = &args.html {
        write_file(path, &html(&report))?;
    }
    if let (Some(tiers), Some(dir)) = (tiers, &args.write_policies) {
        let policies = generate(&report, &tiers, args.drop_ttl_seconds);
        std::fs::create_dir_all(dir).map_err(FileError::at(dir))?;
        write_file(
            &dir.join("networkpolicies.yaml"),
            &yaml(&policies.network_policies),
        )?;
        write_file(&dir.join("cilium.yaml"), &yaml(&policies.cilium))?;
        write_file(&dir.join("calico.yaml"), &yaml(&policies.calico))?;
        write_file(&dir.join("rules-log.toml"), &policies.rules_log)?;
        write_file(&dir.join("rules-drop.toml"), &policies.rules_drop)?;
        let mut notes = format!(
            "# Notes on these policies\n\nSources: {}.\n\n",
            if policies.sources.is_empty() {
                "none of the tiers asked for".to_owned()
            } else {
                policies.sources.join(", ")
            }
        );
        for note in &policies.notes {
            notes.push_str("- ");
            notes.push_str(note);
            notes.push('\n');
        }
        write_file(&dir.join("NOTES.md"), &notes)?;
        eprintln!(
            "edgewise: policies for {} sources in {} ({} notes in NOTES.md)",
            policies.sources.len(),
            dir.display(),
            policies.notes.len()
        );
    }
    if let Some(path) = &args.out {
        return write_file(path, &text);
    }
    print(&text)
}

fn print(text: &str) -> Result<(), AdviseCommandError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(AdviseCommandError::Output)
}

/// `edgewise advise check`: what the candidate policies would have
/// denied, per day. Returns whether anything would have been.
///
/// # Errors
/// [`AdviseCommandError`].
pub fn check_policies(args: &CheckArgs) -> Result<bool, AdviseCommandError> {
    let (_, policies) = load(&EdgesInput {
        objects: args.objects.clone(),
        policies: args.policies.clone(),
        allow_lists: Vec::new(),
        cluster: None,
    })?;
    let observations = observations(&args.input)?;
    let granularity = args.input.granularity.unwrap_or_default();
    let report = check(&observations, &policies, granularity);
    print(&if args.json {
        check_json(&report)
    } else {
        check_table(&report)
    })?;
    Ok(!report.denials.is_empty())
}

fn check_json(report: &CheckReport) -> String {
    let value = serde_json::json!({
        "schema": edgewise_advise::render::CHECK_SCHEMA,
        "days": report.days.iter().map(|d| serde_json::json!({
            "date": date(d.day), "denied": d.denied, "flows": d.flows})).collect::<Vec<_>>(),
        "denials": report.denials.iter().map(|d| serde_json::json!({
            "date": date(d.day), "source": d.source.to_string(),
            "destination": d.target.to_string(), "port": d.port, "flows": d.flows,
            "policy": d.policy})).collect::<Vec<_>>(),
    });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

fn check_table(report: &CheckReport) -> String {
    let mut text = String::from("date        denied  flows\n");
    for d in &report.days {
        let _ = writeln!(text, "{}  {:>6}  {:>5}", date(d.day), d.denied, d.flows);
    }
    for d in &report.denials {
        let _ = writeln!(
            text,
            "{}  {} -> {} {}/{} ({} flows; {})",
            date(d.day),
            d.source,
            d.target,
            d.port.port,
            d.port.protocol.as_str(),
            d.flows,
            d.policy.as_deref().unwrap_or("-")
        );
    }
    text
}

/// `edgewise trail import`: graph files into the trail, each a slice of
/// `agent` numbered by its place in the list (importing the same files
/// again merges nothing twice). Returns the slices merged and already
/// there.
///
/// # Errors
/// [`AdviseCommandError`] for a file that is not a graph document (none
/// of the files is then imported) or the store.
pub fn import(
    url: &StoreUrl,
    agent: &str,
    files: &[PathBuf],
) -> Result<(usize, usize), AdviseCommandError> {
    let mut uploads = Vec::new();
    for (seq, path) in files.iter().enumerate() {
        let bytes = std::fs::read(path).map_err(FileError::at(path))?;
        let slice = read_graph_json(agent, &bytes).map_err(|problem| AdviseError::Graph {
            source_name: path.display().to_string(),
            problem,
        })?;
        let upload = SliceUpload::new(seq as u64, 86_400_000, slice);
        // The collector's checks: a window of at most a day, bounded
        // strings, an agent name a node could have.
        upload.check().map_err(|e| AdviseError::Graph {
            source_name: path.display().to_string(),
            problem: e.to_string(),
        })?;
        uploads.push(upload);
    }
    let mut store = Store::open(url, 0)?;
    let written = store.write(&uploads, now_ms())?;
    let merged = written
        .outcomes
        .iter()
        .filter(|o| **o == edgewise_trail::Outcome::Merged)
        .count();
    Ok((merged, uploads.len() - merged))
}
