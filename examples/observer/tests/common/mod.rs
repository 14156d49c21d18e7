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
