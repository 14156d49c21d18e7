//! `edgewise identity build` and `lookup` as a user runs them.

mod common;

use std::path::PathBuf;

use common::edgewise;

#[test]
fn build_then_look_up_through_a_baseline_and_deltas() {
    let dir = std::env::temp_dir().join(format!("edgewise-identity-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let objects = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../ip-index/tests/fixtures/cluster.json");
    let mmdb = dir.join("identities.mmdb");
    let build = || {
        edgewise(&[
            "identity",
            "build",
            "--objects",
            objects.to_str().unwrap(),
            "--out",
            mmdb.to_str().unwrap(),
            "--epoch",
            "7",
            "--build-time",
            "1795000000",
        ])
    };
    let (_, stderr, ok) = build();
    assert!(ok, "{stderr}");
    assert!(stderr.contains("(11 addresses)"), "{stderr}");
    let first = std::fs::read(&mmdb).unwrap();

    let deltas = dir.join("deltas.jsonl");
    std::fs::write(
        &deltas,
        concat!(
            r#"{"epoch": 7, "seq": 2, "upserts": [{"ip": "10.42.9.9", "identity": {"kind": "Pod", "namespace": "shop", "name": "cart-0", "display": "shop/cart-0"}}], "removes": ["10.42.1.160"]}"#,
            "\n\n",
            r#"{"epoch": 7, "seq": 2, "removes": ["10.42.1.159"]}"#,
            "\n"
        ),
    )
    .unwrap();
    let (stdout, stderr, ok) = edgewise(&[
        "identity",
        "lookup",
        "--mmdb",
        mmdb.to_str().unwrap(),
        "--deltas",
        deltas.to_str().unwrap(),
        "10.42.1.159",
        "10.42.9.9",
        "10.42.1.160",
        "fd00:56::11",
    ]);
    assert!(ok, "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[0]["identity"]["display"], "analytics/influxdb-0",
        "the duplicate seq 2 was ignored"
    );
    assert_eq!(lines[1]["identity"]["display"], "shop/cart-0");
    assert_eq!(
        lines[2]["identity"],
        serde_json::Value::Null,
        "removed by the delta"
    );
    assert_eq!(lines[2]["ip"], "10.42.1.160");
    assert_eq!(lines[3]["identity"]["display"], "node/worker-1");
    assert!(stderr.is_empty(), "{stderr}");

    // The same objects give the same bytes.
    build();
    assert_eq!(std::fs::read(&mmdb).unwrap(), first);

    std::fs::write(&deltas, "{\"epoch\": 7, \"seq\": 9}\n").unwrap();
    let (_, stderr, ok) = edgewise(&[
        "identity",
        "lookup",
        "--mmdb",
        mmdb.to_str().unwrap(),
        "--deltas",
        deltas.to_str().unwrap(),
        "10.42.1.159",
    ]);
    assert!(ok);
    assert!(
        stderr.contains("need a newer baseline (Gap { expected: 2, got: 9 })"),
        "{stderr}"
    );

    let (_, stderr, ok) = edgewise(&[
        "identity",
        "lookup",
        "--mmdb",
        deltas.to_str().unwrap(),
        "10.42.1.159",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("the baseline is not a readable MMDB"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `identity serve` refuses to start on a token or TLS file it cannot use,
/// naming the file, and on an allow-list with a wrong line; `run` refuses
/// policy files in follow mode.
#[test]
fn serve_stops_at_start_on_files_it_cannot_use() {
    let dir = std::env::temp_dir().join(format!("edgewise-serve-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let objects = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../ip-index/tests/fixtures/cluster.json");
    let objects = objects.to_str().unwrap();
    let missing = dir.join("no-such-tokens");
    let empty = dir.join("empty-tokens");
    std::fs::write(&empty, "# no token yet\n").unwrap();
    let bad_pem = dir.join("bad.pem");
    std::fs::write(&bad_pem, "not a certificate\n").unwrap();
    let bad_allow = dir.join("bad.allow");
    std::fs::write(&bad_allow, "this is not an allow-list line\n").unwrap();
    let serve = |more: &[&str]| {
        let mut args = vec![
            "identity",
            "serve",
            "--objects",
            objects,
            "--listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(more);
        edgewise(&args)
    };
    for (more, named) in [
        (vec!["--token-file", missing.to_str().unwrap()], &missing),
        (vec!["--token-file", empty.to_str().unwrap()], &empty),
        (
            vec![
                "--tls-cert",
                bad_pem.to_str().unwrap(),
                "--tls-key",
                bad_pem.to_str().unwrap(),
            ],
            &bad_pem,
        ),
        (
            vec!["--allow-list", bad_allow.to_str().unwrap()],
            &bad_allow,
        ),
    ] {
        let (_, stderr, ok) = serve(&more);
        assert!(!ok, "{more:?} started");
        assert!(
            stderr.contains(named.to_str().unwrap()),
            "{more:?}: {stderr}"
        );
    }
    let (_, stderr, ok) = edgewise(&[
        "run",
        "--identity-stream",
        "http://127.0.0.1:9",
        "--allow-list",
        bad_allow.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(stderr.contains("follow mode"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
