//! The engine on nmap's own database (Debian's `nmap` package; the test
//! skips with a reason without it, and fails in CI): every line parsed,
//! every pattern compiled by PCRE2, real servers' banners identified as
//! nmap names them, and the prefix index agreeing with a loop over every
//! pattern.

use std::sync::OnceLock;

use edgewise_service_probes::Database;

/// Where Debian's `nmap` package puts the database.
const DEBIAN_PATH: &str = "/usr/share/nmap/nmap-service-probes";

fn database() -> Option<&'static Database> {
    static DATABASE: OnceLock<Option<Database>> = OnceLock::new();
    let found = DATABASE.get_or_init(|| {
        let bytes = std::fs::read(DEBIAN_PATH).ok()?;
        Some(Database::parse(&bytes).expect("nmap's database loads"))
    });
    if found.is_none() {
        edgewise_test_support::skip(&format!("{DEBIAN_PATH} is absent (apt-get install nmap)"));
    }
    found.as_ref()
}

#[test]
fn every_line_of_nmaps_database_is_read_and_every_pattern_compiles() {
    let Some(db) = database() else { return };
    assert_eq!(db.line_errors(), [], "no line of nmap's file is refused");
    assert!(db.probes().len() >= 100, "{} probes", db.probes().len());
    assert!(db.match_count() >= 10_000, "{} matches", db.match_count());
    let null = db.probe("NULL").unwrap();
    assert!(null.definition.payload.is_empty());
    let get = db.probe("GetRequest").unwrap();
    assert_eq!(get.definition.payload, b"GET / HTTP/1.0\r\n\r\n");
    assert!(get.definition.is_for_port(80));
    assert_eq!(db.compile_all(), [], "PCRE2 takes every pattern");
}

/// Banners and answers of the servers Debian packages (the versions of
/// Debian 12), and what nmap makes of them.
/// (probe, response, service, product, version).
type Server = (
    &'static str,
    &'static [u8],
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

const SERVERS: &[Server] = &[
    (
        "NULL",
        b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
        "ssh",
        Some("OpenSSH"),
        Some("9.2p1 Debian 2+deb12u3"),
    ),
    ("NULL", b"220 (vsFTPd 3.0.3)\r\n", "ftp", Some("vsftpd"), Some("3.0.3")),
    (
        "NULL",
        b"220 mail.example.org ESMTP Postfix (Debian/GNU)\r\n",
        "smtp",
        Some("Postfix smtpd"),
        None,
    ),
    (
        "GetRequest",
        b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 30 Nov 2026 20:00:00 GMT\r\nContent-Type: text/html\r\nContent-Length: 615\r\nConnection: close\r\n\r\n<!DOCTYPE html>",
        "http",
        Some("nginx"),
        Some("1.22.1"),
    ),
    (
        "GetRequest",
        b"-ERR wrong number of arguments for 'get' command\r\n",
        "redis",
        Some("Redis key-value store"),
        None,
    ),
];

#[test]
fn real_servers_are_named_as_nmap_names_them() {
    let Some(db) = database() else { return };
    for &(probe, response, service, product, version) in SERVERS {
        let found = db
            .identify(probe, response)
            .unwrap_or_else(|| panic!("{}: nothing", String::from_utf8_lossy(response)));
        assert_eq!(found.service, service, "{found:?}");
        assert_eq!(found.version.product.as_deref(), product, "{found:?}");
        if version.is_some() {
            assert_eq!(found.version.version.as_deref(), version, "{found:?}");
        }
        assert_eq!(db.identify_unfiltered(probe, response), Some(found));
    }
}

#[test]
fn a_mariadb_greeting_is_read_from_its_bytes() {
    let Some(db) = database() else { return };
    let mut greeting = vec![0x5b, 0, 0, 0, 0x0a];
    greeting.extend_from_slice(b"5.5.5-10.11.6-MariaDB-0+deb12u1\0");
    greeting.extend_from_slice(&[0x1f, 0, 0, 0]);
    greeting.extend_from_slice(b"abcdefgh\0\xfe\xf7\x2d\x02\0\xff\x81\x15\0\0\0\0\0\0\x1d\0\0\0ijklmnopqrst\0mysql_native_password\0");
    let found = db.identify_banner(&greeting).expect("a MariaDB greeting");
    assert_eq!(found.service, "mysql", "{found:?}");
    assert!(
        found
            .version
            .version
            .as_deref()
            .is_some_and(|v| v.contains("10.11.6")),
        "{found:?}"
    );
}

#[test]
fn the_prefix_index_agrees_with_every_pattern_in_turn() {
    let Some(db) = database() else { return };
    // A banner made of each hundredth pattern's prefix, and the same with
    // the case changed.
    let mut banners: Vec<Vec<u8>> = Vec::new();
    for m in db.probes().iter().flat_map(|p| &p.matches).step_by(100) {
        let mut banner = m.prefix.clone();
        banner.extend_from_slice(b" 1.0 test\r\n");
        banners.push(banner.to_ascii_uppercase());
        banners.push(banner);
    }
    banners.push(b"\x00\x01garbage".to_vec());
    // And the real servers' answers, each cut at every 7th byte (so that
    // required literals are found, then lost).
    for &(_, response, ..) in SERVERS {
        for end in (1..=response.len()).step_by(7) {
            banners.push(response[..end].to_vec());
        }
    }
    for banner in &banners {
        for probe in ["NULL", "GetRequest"] {
            assert_eq!(
                db.identify(probe, banner),
                db.identify_unfiltered(probe, banner),
                "{probe}: {:?}",
                String::from_utf8_lossy(banner)
            );
        }
    }
}

#[test]
fn requests_find_the_probe_they_answer() {
    let Some(db) = database() else { return };
    let name = |request: &[u8]| {
        db.probe_of_request(request)
            .map(edgewise_service_probes::Probe::name)
    };
    assert_eq!(name(b"GET / HTTP/1.0\r\n\r\n"), Some("GetRequest"));
    assert_eq!(name(b"\r\n\r\n"), Some("GenericLines"));
    assert_eq!(
        name(b"POST /api HTTP/1.1\r\nHost: x\r\n\r\n"),
        Some("GetRequest")
    );
    assert_eq!(name(b"\x16\x03\x01\x02\x00"), None);
}
