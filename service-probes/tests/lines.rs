//! What a file with mistakes gives: the good lines kept, each bad one
//! reported with its number, and no probe at all an error.

use edgewise_service_probes::{Database, ProbesError};

#[test]
fn bad_lines_are_reported_and_skipped() {
    let file = b"# a comment\n\
match ssh m|^SSH-| p/early/\n\
Probe TCP NULL q||\n\
rarity 1\n\
match ssh m|^SSH-([\\d.]+)-Tiny_([\\w.]+)\\r?\\n| p/TinySSH/ v/$2/ i/protocol $1/\n\
match broken m|^unclosed\n\
match ftp m|^220 x| q/bad field/\n\
softmatch ftp m|^220 |\n\
rarity 12\n\
ports 21,8000-8010,70000\n\
Probe TCP GetRequest q|GET / HTTP/1.0\\r\\n\\r\\n|\n\
fallback NULL\n\
frobnicate 3\n\
match http m|^HTTP/1\\.[01] \\d\\d\\d.*\\r\\nServer: Tiny/([\\d.]+)\\r\\n|s p/Tiny httpd/ v/$1/\n";
    let db = Database::parse(file).unwrap();
    let lines: Vec<(usize, &str)> = db
        .line_errors()
        .iter()
        .map(|e| (e.line, e.problem.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (2, "match before any Probe"),
            (6, "the pattern is not closed"),
            (7, "unknown template field 'q'"),
            (9, "rarity \"12\" is not 1 to 9"),
            (10, "\"70000\" is not a port or range"),
            (13, "unknown directive \"frobnicate\""),
        ]
    );
    assert_eq!(db.probes().len(), 2);
    let ssh = db.identify_banner(b"SSH-2.0-Tiny_1.4\r\n").unwrap();
    assert_eq!(
        (
            ssh.version.product.as_deref(),
            ssh.version.version.as_deref(),
            ssh.version.info.as_deref()
        ),
        (Some("TinySSH"), Some("1.4"), Some("protocol 2.0"))
    );
    let ftp = db.identify_banner(b"220 welcome\r\n").unwrap();
    assert!(ftp.soft && ftp.service == "ftp" && ftp.version.product.is_none());
    let http = db
        .identify("GetRequest", b"HTTP/1.0 200 OK\r\nServer: Tiny/2.1\r\n\r\n")
        .unwrap();
    assert_eq!(
        (http.service.as_str(), http.version.version.as_deref()),
        ("http", Some("2.1"))
    );
    // A response to GetRequest falls back to the NULL probe's matches.
    let fallback = db.identify("GetRequest", b"SSH-2.0-Tiny_1.4\r\n").unwrap();
    assert_eq!(fallback.probe, "NULL");
    assert_eq!(db.identify_banner(b""), None);
    assert_eq!(db.identify("NoSuchProbe", b"x"), None);
}

#[test]
fn a_softmatch_only_gives_way_to_a_hard_match_of_its_service() {
    let db = Database::parse(
        b"Probe TCP NULL q||\n\
softmatch ftp m|^220 |\n\
match smtp m|^220 .*ESMTP| p/some smtpd/\n\
match ftp m|^220 .*FTP| p/some ftpd/\n",
    )
    .unwrap();
    let found = db.identify_banner(b"220 ESMTP and FTP\r\n").unwrap();
    assert_eq!(
        (found.service.as_str(), found.version.product.as_deref()),
        ("ftp", Some("some ftpd"))
    );
}

#[test]
fn a_pattern_pcre2_refuses_never_matches_and_is_counted() {
    let db =
        Database::parse(b"Probe TCP NULL q||\nmatch x m|^a(b| p/x/\nmatch y m|^a| p/y/\n").unwrap();
    assert_eq!(db.identify_banner(b"ab").unwrap().service, "y");
    assert_eq!(db.pattern_errors(), 1);
    assert_eq!(db.compile_all()[0].line, 2);
}

#[test]
fn a_file_without_a_probe_is_an_error() {
    let error = Database::parse(b"match ssh m|^SSH-|\nnonsense\n").unwrap_err();
    assert!(matches!(error, ProbesError::NoProbe { ref errors } if errors.len() == 2));
    assert!(
        error.to_string().contains("line 1: match before any Probe"),
        "{error}"
    );
}

#[test]
fn a_probe_plan_is_null_then_the_ports_probes_then_the_rest_by_rarity() {
    let db = Database::parse(
        b"Exclude T:9100-9107\n\
          Probe TCP NULL q||\n\
          Probe TCP Rare q|r|\nrarity 8\n\
          Probe TCP Common q|c|\nrarity 1\n\
          Probe TCP Web q|w|\nrarity 9\nports 80,8000-8100\n\
          Probe UDP Dns q|d|\nrarity 1\n\
          Probe TCP Middling q|m|\nrarity 5\n",
    )
    .unwrap();
    let names = |port, intensity| -> Vec<String> {
        db.probe_plan(port, intensity)
            .iter()
            .map(|p| p.name().to_owned())
            .collect()
    };
    assert_eq!(names(8080, 7), ["NULL", "Web", "Common", "Middling"]);
    assert_eq!(names(22, 9), ["NULL", "Common", "Middling", "Rare", "Web"]);
    assert_eq!(names(22, 7), ["NULL", "Common", "Middling"]);
    assert_eq!(names(22, 0), ["NULL"]);
    assert!(names(9100, 9).is_empty(), "an excluded port gets no probe");
}
