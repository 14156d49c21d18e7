//! Test helpers: locating `../shared/vectors/` (third-party test data kept
//! beside the repository, never copied into it) and skipping with a reason.

#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses its own subset of these helpers, so `expect` would misfire"
)]

use std::path::PathBuf;

pub(crate) use edgewise_test_support::{have, is_root, skip};

/// The vectors folder `name` under `shared/vectors/`, or `None` after printing
/// why the test skips. Under `CI=true` a missing folder fails the test: CI
/// always has `shared/` beside the clone.
pub(crate) fn vectors_dir(name: &str) -> Option<PathBuf> {
    let dir = edgewise_test_support::shared_dir()
        .join("vectors")
        .join(name);
    if dir.is_dir() {
        return Some(dir);
    }
    skip(&format!(
        "{} is absent (set EDGEWISE_SHARED to the shared/ folder)",
        dir.display()
    ));
    None
}

/// The names of the pcap and pcapng files in `dir`, sorted.
pub(crate) fn capture_files(dir: &std::path::Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("a folder of captures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    files.sort();
    files
}

/// Runs the `edgewise` binary with `args`: (stdout, stderr, success).
pub(crate) fn edgewise(args: &[&str]) -> (String, String, bool) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_edgewise"))
        .args(args)
        .output()
        .expect("run edgewise");
    (
        String::from_utf8(output.stdout).expect("UTF-8"),
        String::from_utf8(output.stderr).expect("UTF-8"),
        output.status.success(),
    )
}

/// An edge as the daemon's `edge` records describe it, for comparing
/// runs: client and server names (identity, else name, else address),
/// server port, protocol, verdict, and the server's resolved name.
pub(crate) type EdgeSeen = (String, String, u16, String, String, Option<String>);

/// The edges of the daemon's JSON lines.
pub(crate) fn edges_of(lines: &str) -> std::collections::BTreeSet<EdgeSeen> {
    records(lines, "edge")
        .map(|edge| {
            let name = |end: &serde_json::Value| {
                end["identity"]["display"]
                    .as_str()
                    .or_else(|| end["fqdn"].as_str())
                    .or_else(|| end["ip"].as_str())
                    .unwrap()
                    .to_owned()
            };
            (
                name(&edge["src"]),
                name(&edge["dst"]),
                u16::try_from(edge["dst"]["port"].as_u64().unwrap()).unwrap(),
                edge["proto"].as_str().unwrap().to_owned(),
                edge["verdict"].as_str().unwrap().to_owned(),
                edge["dst"]["fqdn"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// The daemon's records of one `type`.
pub(crate) fn records<'a>(
    lines: &'a str,
    kind: &'a str,
) -> impl Iterator<Item = serde_json::Value> + 'a {
    lines
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("a JSON line"))
        .filter(move |record| record["type"] == kind)
}

/// Every line of `lines` validates against `schemas/record.schema.json`
/// (formats such as `date-time` and `ipv4` asserted), and its `time` is
/// its `time_ns` in RFC 3339; returns how many lines of each type there
/// were.
pub(crate) fn assert_records_match_schema(
    lines: &str,
) -> std::collections::BTreeMap<String, usize> {
    record_schema().assert_lines(lines);
    let mut types = std::collections::BTreeMap::new();
    for line in lines.lines() {
        let record: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let time_ns = record["time_ns"].as_u64().expect("time_ns");
        let seconds = i64::try_from(time_ns / 1_000_000_000).unwrap();
        let date = record["time"].as_str().expect("time");
        assert!(
            date.starts_with(&unix_date(seconds)),
            "{date} is not {time_ns} ns"
        );
        *types
            .entry(record["type"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    types
}

/// One of the JSON Schemas under `schemas/`, compiled with the others
/// (they refer to each other, `cluster-object.schema.json` above all), with
/// formats such as `date-time` and `ipv4` asserted.
pub(crate) struct Schema {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl Schema {
    /// The validation error, as boon words it, or `Ok`.
    pub(crate) fn check(&self, value: &serde_json::Value) -> Result<(), String> {
        self.schemas
            .validate(value, self.index)
            .map_err(|error| format!("{error:#}"))
    }

    /// Every line of `lines` is a JSON object that validates; returns how
    /// many there were.
    pub(crate) fn assert_lines(&self, lines: &str) -> usize {
        for line in lines.lines() {
            let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            if let Err(error) = self.check(&value) {
                panic!("{error}\nin {line}");
            }
        }
        lines.lines().count()
    }

    /// `document` is JSON that validates.
    pub(crate) fn assert_document(&self, document: &str) {
        let value: serde_json::Value = serde_json::from_str(document).expect("a JSON document");
        if let Err(error) = self.check(&value) {
            panic!("{error}\nin {document}");
        }
    }
}

/// `schemas/NAME.schema.json`, compiled.
pub(crate) fn schema(name: &str) -> Schema {
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas");
    let mut compiler = boon::Compiler::new();
    compiler.enable_format_assertions();
    for entry in std::fs::read_dir(folder).expect("the schemas folder") {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&path).expect("a schema file");
        let value: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file} is not JSON: {e}"));
        compiler
            .add_resource(&format!("file:///schemas/{file}"), value)
            .expect("the schema is added");
    }
    let mut schemas = boon::Schemas::new();
    let index = compiler
        .compile(&format!("file:///schemas/{name}.schema.json"), &mut schemas)
        .unwrap_or_else(|e| panic!("{name} compiles: {e:#}"));
    Schema { schemas, index }
}

pub(crate) fn record_schema() -> Schema {
    schema("record")
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time, from the civil calendar (days to
/// year, month, day as in Howard Hinnant's `civil_from_days`), so that the
/// daemon's formatting is checked by a computation of its own.
fn unix_date(seconds: i64) -> String {
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}
