//! The deployment files stay true to the binary: the systemd unit's
//! settings file loads as `edgewise run` settings, every flag its
//! `ExecStart` passes exists in `edgewise run --help`, and it grants the
//! loader's capabilities and no more.

mod common;

use std::path::{Path, PathBuf};

use common::edgewise;
use edgewise_observer::daemon::config::Settings;

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(file)
}

#[test]
fn the_systemd_unit_and_its_settings_match_the_binary() {
    let settings = Settings::resolve(&Settings {
        config: Some(deploy("systemd/edgewise.toml")),
        ..Settings::default()
    })
    .expect("the unit's settings load");
    assert_eq!(settings.observe_interfaces, ["auto"]);

    let unit = std::fs::read_to_string(deploy("systemd/edgewise.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|line| line.strip_prefix("ExecStart="))
        .expect("an ExecStart");
    let mut words = exec.split_whitespace();
    assert!(
        words
            .next()
            .is_some_and(|binary| binary.ends_with("/edgewise"))
    );
    assert_eq!(words.next(), Some("run"));
    let (help, _, ok) = edgewise(&["run", "--help"]);
    assert!(ok);
    for flag in words.filter(|word| word.starts_with("--")) {
        assert!(help.contains(flag), "{flag} is not a flag of edgewise run");
    }

    let capabilities = unit
        .lines()
        .find_map(|line| line.strip_prefix("CapabilityBoundingSet="))
        .expect("a capability bounding set");
    for needed in ["CAP_BPF", "CAP_NET_ADMIN", "CAP_PERFMON"] {
        assert!(capabilities.contains(needed), "{needed}");
    }
    assert!(!capabilities.contains("CAP_SYS_ADMIN"), "{capabilities}");
    for hardening in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/sys/fs/bpf",
    ] {
        assert!(unit.lines().any(|line| line == hardening), "{hardening}");
    }
}
