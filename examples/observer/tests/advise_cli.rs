//! `edgewise advise` as a user runs it on a week of a synthetic cluster
//! (`edgewise_advise::testing`): the same report from graph files, a
//! SQLite trail and a Postgres trail; generated NetworkPolicies that
//! `edgewise edges` finds no violation in for the same flows; `advise
//! check` per day; and bad input refused with the file named and nothing
//! stored.

mod common;

use std::path::Path;
use std::process::Command;

use common::{edgewise, schema};
use edgewise_test_support::ScratchDir;
use edgewise_test_support::postgres::TestDatabase;

fn scratch(name: &str) -> ScratchDir {
    let dir = ScratchDir::new(&format!("advise-cli-{name}"));
    for (file, bytes) in edgewise_advise::testing::week() {
        std::fs::write(dir.join(file), bytes).unwrap();
    }
    dir
}

fn days(dir: &Path, n: usize) -> Vec<String> {
    (1..=n)
        .map(|d| dir.join(format!("day-{d}.json")).display().to_string())
        .collect()
}

fn path(dir: &Path, file: &str) -> String {
    dir.join(file).display().to_string()
}

/// Runs edgewise with `args` then `rest`.
fn run(args: &[&str], rest: &[String]) -> (String, String, bool) {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(rest.iter().map(String::as_str));
    edgewise(&all)
}

fn advice_of(store: &str, dir: &Path) -> String {
    let (_, err, ok) = run(
        &["trail", "--store", store, "import", "--agent", "node-a"],
        &days(dir, 8),
    );
    assert!(ok, "{err}");
    assert!(err.contains("8 slices merged, 0 already"), "{err}");
    let (_, err, ok) = run(
        &["trail", "--store", store, "import", "--agent", "node-a"],
        &days(dir, 8),
    );
    assert!(ok && err.contains("0 slices merged, 8 already"), "{err}");
    let (out, err, ok) = edgewise(&[
        "advise",
        "--store",
        store,
        "--since",
        "all",
        "--json",
        "--prefixes",
        &path(dir, "prefixes.json"),
    ]);
    assert!(ok, "{err}");
    out
}

#[test]
fn graph_files_and_both_trails_give_the_same_report() {
    let dir = scratch("same");
    let mut args = vec![
        "advise".to_owned(),
        "--json".to_owned(),
        "--prefixes".to_owned(),
        path(&dir, "prefixes.json"),
        "--graph".to_owned(),
    ];
    args.extend(days(&dir, 8));
    let (from_files, err, ok) = run(&[], &args);
    assert!(ok, "{err}");
    schema("advice").assert_document(&from_files);
    let report: serde_json::Value = serde_json::from_str(&from_files).unwrap();
    assert_eq!(report["groups"].as_array().unwrap().len(), 33);
    let sqlite = format!("sqlite:{}", path(&dir, "trail.db"));
    assert_eq!(advice_of(&sqlite, &dir), from_files, "SQLite");
    match TestDatabase::create("advise_cli") {
        Ok(db) => assert_eq!(advice_of(&db.url, &dir), from_files, "Postgres"),
        Err(why) => edgewise_test_support::skip(&why),
    }
}

fn violations(dir: &Path, policies: &str) -> Vec<(String, String)> {
    let (out, err, ok) = edgewise(&[
        "edges",
        "--objects",
        &path(dir, "objects.json"),
        "--policies",
        policies,
        "--flows",
        &path(dir, "flows.jsonl"),
    ]);
    assert!(ok, "{err}");
    out.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["verdict"] == "violation")
        .map(|v| {
            (
                v["src"]["identity"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                v["dst"]["ip"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// `edgewise advise` on the first `n` days with the CDN's range, its
/// policies into `out` (tiers A to C) and its report into `out`.md.
fn advise_into(dir: &Path, n: usize, out: &str, extra: &[&str]) -> String {
    let mut args: Vec<String> = [
        "advise",
        "--prefixes",
        &path(dir, "prefixes.json"),
        "--tiers",
        "A,B,C",
        "--write-policies",
        out,
        "--out",
        &format!("{out}.md"),
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.push("--graph".to_owned());
    args.extend(days(dir, n));
    let (_, err, ok) = run(&[], &args);
    assert!(ok, "{err}");
    err
}

/// `edgewise advise check` of `policies` against the whole week: the
/// exit code and the JSON answer.
fn check(dir: &Path, policies: &str) -> (Option<i32>, serde_json::Value) {
    let mut args: Vec<String> = [
        "advise",
        "check",
        "--json",
        "--policies",
        policies,
        "--graph",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(days(dir, 8));
    let output = Command::new(env!("CARGO_BIN_EXE_edgewise"))
        .args(&args)
        .output()
        .unwrap();
    let answer = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    if let Err(error) = schema("advice-check").check(&answer) {
        panic!("{error}\nin {answer}");
    }
    (output.status.code(), answer)
}

#[test]
fn generated_policies_hold_the_same_flows_and_check_agrees() {
    let dir = scratch("loop");
    let out = path(&dir, "policies");
    let err = advise_into(&dir, 8, &out, &["--html", &path(&dir, "report.html")]);
    assert!(err.contains("policies for 32 sources"), "{err}");
    let policies = Path::new(&out);
    for file in [
        "networkpolicies.yaml",
        "cilium.yaml",
        "calico.yaml",
        "rules-log.toml",
        "rules-drop.toml",
        "NOTES.md",
    ] {
        assert!(policies.join(file).is_file(), "{file}");
    }
    let nps = path(policies, "networkpolicies.yaml");
    assert_eq!(
        violations(&dir, &nps),
        [],
        "the week's flows under its own policies"
    );
    let (code, answer) = check(&dir, &nps);
    assert_eq!(code, Some(0));
    assert_eq!(answer["days"].as_array().unwrap().len(), 8);
    assert!(
        answer["days"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["denied"] == 0)
    );

    // The HTML page's chart: a cell per source and day, the CronJob's
    // destination new on its day.
    let html = std::fs::read_to_string(path(&dir, "report.html")).unwrap();
    assert!(html.contains("<svg id=\"new-per-day\""));
    assert_eq!(html.matches("class=\"day\"").count(), 33 * 8);
    assert!(
        html.contains("data-source=\"billing\" data-new=\"1\" x=\"360\""),
        "day 6 is the sixth column"
    );
}

#[test]
fn a_list_of_five_days_would_have_denied_the_cronjob_s_first_runs() {
    let dir = scratch("early");
    let early = path(&dir, "early");
    advise_into(&dir, 5, &early, &[]);
    let (code, answer) = check(&dir, &path(Path::new(&early), "networkpolicies.yaml"));
    assert_eq!(code, Some(3));
    let denied: Vec<(String, String, String)> = answer["denials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["date"].as_str().unwrap().to_owned(),
                d["source"].as_str().unwrap().to_owned(),
                d["destination"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = ["2026-11-07", "2026-11-08", "2026-11-09"]
        .map(|d| {
            (
                d.to_owned(),
                "billing".to_owned(),
                "sftp.bank.example".to_owned(),
            )
        })
        .to_vec();
    assert_eq!(denied, expected);
}

#[test]
fn without_the_cdn_range_a_networkpolicy_cannot_hold_the_rotating_names() {
    let dir = scratch("names");
    let out = path(&dir, "policies");
    let mut args: Vec<String> = [
        "advise",
        "--tiers",
        "B",
        "--write-policies",
        &out,
        "--out",
        &path(&dir, "r.md"),
        "--graph",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(days(&dir, 8));
    assert!(run(&[], &args).2);
    let found = violations(&dir, &path(Path::new(&out), "networkpolicies.yaml"));
    assert!(!found.is_empty());
    assert!(
        found
            .iter()
            .all(|(ns, ip)| ns == "media" && ip.starts_with("203.0.113.")),
        "{found:?}"
    );
    let notes = std::fs::read_to_string(Path::new(&out).join("NOTES.md")).unwrap();
    assert!(
        notes.contains("assets.cdn.example.net rotates its addresses"),
        "{notes}"
    );
    let cilium = std::fs::read_to_string(Path::new(&out).join("cilium.yaml")).unwrap();
    assert!(cilium.contains("*.cdn.example.net") && !cilium.contains("203.0.113."));
}

#[test]
fn bad_input_is_refused_with_its_name_and_stores_nothing() {
    let dir = scratch("bad");
    let broken = path(&dir, "broken.json");
    std::fs::write(
        &broken,
        b"{\"schema\": \"edgewise.graph/v1\", \"edges\": [{\"src\": 1}]}",
    )
    .unwrap();
    let (_, err, ok) = edgewise(&["advise", "--graph", &broken]);
    assert!(
        !ok && err.contains("broken.json: not a graph document"),
        "{err}"
    );
    let aggregate = path(&dir, "aggregate.json");
    std::fs::write(
        &aggregate,
        br#"{"schema": "edgewise.aggregate/v1", "edges": []}"#,
    )
    .unwrap();
    let (_, err, ok) = edgewise(&["advise", "--graph", &aggregate]);
    assert!(!ok && err.contains("aggregate.json: schema"), "{err}");
    let (_, err, ok) = edgewise(&["advise"]);
    assert!(
        !ok && err.contains("--store URL or --graph FILE... is needed"),
        "{err}"
    );
    let day = path(&dir, "day-1.json");
    let prefixes = path(&dir, "p.json");
    std::fs::write(&prefixes, br#"[{"prefix": "203.0.113.0/33", "name": "x"}]"#).unwrap();
    let (_, err, ok) = edgewise(&["advise", "--graph", &day, "--prefixes", &prefixes]);
    assert!(!ok && err.contains("p.json: expected a JSON list"), "{err}");
    let settings = path(&dir, "s.toml");
    std::fs::write(&settings, "baseline_share = 1.5\n").unwrap();
    let (_, err, ok) = edgewise(&["advise", "--graph", &day, "--settings", &settings]);
    assert!(!ok && err.contains("baseline_share = 1.5"), "{err}");
    std::fs::write(&settings, "pilot_max = 3\n").unwrap();
    let (_, err, ok) = edgewise(&["advise", "--graph", &day, "--settings", &settings]);
    assert!(
        !ok && err.contains("s.toml") && err.contains("pilot_max"),
        "{err}"
    );
    let (_, err, ok) = edgewise(&[
        "advise",
        "--graph",
        &day,
        "--tiers",
        "A,Z",
        "--write-policies",
        &path(&dir, "p"),
    ]);
    assert!(!ok && err.contains("\"Z\" is not a tier"), "{err}");
    assert!(!dir.join("p").exists(), "nothing written");

    let yaml = path(&dir, "bad.yaml");
    std::fs::write(&yaml, "kind: NetworkPolicy\n  spec: [\n").unwrap();
    let (_, err, ok) = edgewise(&[
        "edges",
        "--objects",
        &path(&dir, "objects.json"),
        "--policies",
        &yaml,
        "--flows",
        &path(&dir, "flows.jsonl"),
    ]);
    assert!(!ok && err.contains("bad.yaml: not YAML"), "{err}");

    // An import with one bad file imports none of them.
    let store = format!("sqlite:{}", path(&dir, "trail.db"));
    let (_, err, ok) = edgewise(&["trail", "--store", &store, "import", &day, &broken]);
    assert!(!ok && err.contains("broken.json"), "{err}");
    let (_, err, ok) = edgewise(&["advise", "--store", &store, "--since", "all"]);
    assert!(
        !ok && err.contains("no egress from pods was observed"),
        "{err}"
    );
}
