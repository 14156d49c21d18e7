//! `edgewise services` on the demo capture, with Debian's nmap database:
//! the SSH server is named from its banner as nmap names it, servers
//! nothing matched are listed without a service, and bad input is
//! refused with a message.

mod common;

use common::edgewise;

const DATABASE: &str = "/usr/share/nmap/nmap-service-probes";

#[test]
fn the_demo_capture_s_servers_are_named() {
    if !std::path::Path::new(DATABASE).is_file() {
        return common::skip(&format!("{DATABASE} is absent (apt-get install nmap)"));
    }
    let capture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../demo/cluster/capture.pcap"
    );
    let (out, err, ok) = edgewise(&["services", capture]);
    assert!(ok, "{err}");
    common::schema("service").assert_lines(&out);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let servers: Vec<&str> = lines
        .iter()
        .map(|l| l["server"].as_str().unwrap())
        .collect();
    assert_eq!(
        servers,
        [
            "10.42.1.11:2222",
            "10.42.1.11:8080",
            "10.42.1.12:5432",
            "10.42.1.159:8086",
            "203.0.113.7:443"
        ]
    );
    let ssh = &lines[0];
    assert_eq!(
        (
            &ssh["service"],
            &ssh["product"],
            &ssh["version"],
            &ssh["info"],
            &ssh["from"]
        ),
        (
            &serde_json::json!("ssh"),
            &serde_json::json!("OpenSSH"),
            &serde_json::json!("9.6"),
            &serde_json::json!("protocol 2.0"),
            &serde_json::json!("banner")
        )
    );
    assert_eq!(
        ssh["cpes"],
        serde_json::json!(["cpe:/a:openbsd:openssh:9.6"])
    );
    // The demo's HTTP server answers `204 No Content` and nothing else:
    // nmap's database has no match for that either.
    assert_eq!(lines[1]["service"], serde_json::Value::Null);
    assert_eq!(lines[2]["conversations"], 2);
}

#[test]
fn a_missing_database_or_a_file_that_is_not_a_capture_is_refused() {
    let capture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../demo/cluster/capture.pcap"
    );
    let (_, err, ok) = edgewise(&[
        "services",
        "--service-probes",
        "/nonexistent/probes",
        capture,
    ]);
    assert!(
        !ok && err.contains("apt-get install nmap, or give --service-probes PATH"),
        "{err}"
    );
    let dir = std::env::temp_dir().join(format!("edgewise-services-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty-probes");
    std::fs::write(&empty, "# nothing\nmatch x m|^x|\n").unwrap();
    let (_, err, ok) = edgewise(&[
        "services",
        "--service-probes",
        empty.to_str().unwrap(),
        capture,
    ]);
    assert!(!ok && err.contains("no probe in the file"), "{err}");
    let probes = dir.join("probes");
    std::fs::write(
        &probes,
        "Probe TCP NULL q||\nmatch ssh m|^SSH-([\\d.]+)-| p/any/ v/$1/\nbogus line\n",
    )
    .unwrap();
    let (out, err, ok) = edgewise(&[
        "services",
        "--service-probes",
        probes.to_str().unwrap(),
        capture,
    ]);
    assert!(
        ok && err.contains("line 3: unknown directive \"bogus\" (skipped)"),
        "{err}"
    );
    assert!(out.contains(r#""product":"any","version":"2.0""#), "{out}");
    // A capture cut short: the servers before the cut are still written,
    // and the exit says the file is broken.
    let whole = std::fs::read(capture).unwrap();
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &whole[..whole.len() - 10]).unwrap();
    let (out, err, ok) = edgewise(&[
        "services",
        "--service-probes",
        probes.to_str().unwrap(),
        cut.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("cut.pcap"), "{err}");
    assert!(out.contains("10.42.1.11:2222"), "{out}");
    let text = dir.join("not-a-capture");
    std::fs::write(&text, "hello").unwrap();
    let (_, err, ok) = edgewise(&[
        "services",
        "--service-probes",
        probes.to_str().unwrap(),
        text.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("not-a-capture"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
