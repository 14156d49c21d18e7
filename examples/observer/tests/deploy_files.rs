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

/// `value`, read as `T` and written back: the same JSON, so no field is
/// unknown to the Kubernetes type (k8s-openapi ignores what it does not
/// know; the round trip shows it).
fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(value: &serde_json::Value) -> T {
    let object: T =
        serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{e}: {value}"));
    let back = serde_json::to_value(&object).unwrap();
    assert_eq!(&back, value, "a field the Kubernetes type does not know");
    object
}

/// `group/resource` of every rule, each allowing exactly list and watch.
fn granted(role: k8s_openapi::api::rbac::v1::ClusterRole) -> Vec<String> {
    let mut granted = Vec::new();
    for rule in role.rules.unwrap() {
        assert_eq!(rule.verbs, ["list", "watch"], "{rule:?}");
        for group in rule.api_groups.unwrap() {
            for resource in rule.resources.clone().unwrap() {
                granted.push(format!("{group}/{resource}"));
            }
        }
    }
    granted.sort();
    granted
}

/// The settings of the `ConfigMap`, loaded as the daemon loads them (and
/// its rules parsed).
fn configured(config: k8s_openapi::api::core::v1::ConfigMap) -> Settings {
    let data = config.data.unwrap();
    let dir = std::env::temp_dir().join(format!("edgewise-deploy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let settings_file = dir.join("edgewise.toml");
    std::fs::write(&settings_file, &data["edgewise.toml"]).unwrap();
    let settings = Settings::resolve(&Settings {
        config: Some(settings_file),
        ..Settings::default()
    })
    .expect("the ConfigMap's settings load");
    edgewise_pipeline::Rules::parse(Path::new("rules.toml"), &data["rules.toml"])
        .expect("the ConfigMap's rules load");
    std::fs::remove_dir_all(&dir).unwrap();
    settings
}

#[test]
fn the_kubernetes_manifests_parse_and_match_the_binary() {
    use k8s_openapi::api::apps::v1::DaemonSet;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};

    let text = std::fs::read_to_string(deploy("kubernetes/edgewise.yaml")).unwrap();
    let documents: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&text).expect("the manifests are YAML");
    let mut kinds = Vec::new();
    let (mut role, mut config, mut daemonset) = (None, None, None);
    for document in &documents {
        let kind = document["kind"].as_str().unwrap().to_owned();
        match kind.as_str() {
            "Namespace" => drop(typed::<Namespace>(document)),
            "ServiceAccount" => drop(typed::<ServiceAccount>(document)),
            "ClusterRole" => role = Some(typed::<ClusterRole>(document)),
            "ClusterRoleBinding" => drop(typed::<ClusterRoleBinding>(document)),
            "ConfigMap" => config = Some(typed::<ConfigMap>(document)),
            "DaemonSet" => daemonset = Some(typed::<DaemonSet>(document)),
            other => panic!("an unexpected kind {other}"),
        }
        kinds.push(kind);
    }

    // The role allows exactly list and watch on every kind watched.
    assert_eq!(
        granted(role.unwrap()),
        [
            "/namespaces",
            "/nodes",
            "/pods",
            "/services",
            "discovery.k8s.io/endpointslices",
            "networking.k8s.io/networkpolicies"
        ]
    );

    // The ConfigMap's settings and rules load as the daemon loads them.
    let settings = configured(config.unwrap());
    assert!(settings.kube, "the DaemonSet follows its cluster");

    // Every flag the DaemonSet passes exists; it mounts the settings where
    // it names them, bpffs, and probes /healthz on the listen port.
    let spec = daemonset.unwrap().spec.template.spec.unwrap();
    assert_eq!(spec.host_network, Some(true));
    let container = &spec.containers[0];
    let (help, _, _) = edgewise(&["run", "--help"]);
    for flag in container
        .args
        .iter()
        .flatten()
        .filter(|a| a.starts_with("--"))
    {
        assert!(
            help.contains(flag.as_str()),
            "{flag} is not a flag of edgewise run"
        );
    }
    let mounts: Vec<&str> = container
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| m.mount_path.as_str())
        .collect();
    assert!(mounts.contains(&"/etc/edgewise") && mounts.contains(&"/sys/fs/bpf"));
    let probe = container
        .liveness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(probe.path.as_deref(), Some("/healthz"));
    assert_eq!(
        settings.listen.map(|a| a.port()),
        Some(9464),
        "the probes' port is the listener's"
    );
    let capabilities = container
        .security_context
        .as_ref()
        .unwrap()
        .capabilities
        .as_ref()
        .unwrap();
    assert_eq!(capabilities.drop.as_deref(), Some(&["ALL".to_owned()][..]));
    let added = capabilities.add.clone().unwrap();
    assert!(!added.iter().any(|c| c == "SYS_ADMIN"), "{added:?}");
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "DaemonSet"
        ]
    );
}
