//! The deployment files stay true to the binary: the systemd unit's
//! settings file loads as `edgewise run` settings, every flag its
//! `ExecStart` passes exists in `edgewise run --help`, and it grants the
//! loader's capabilities and no more; every Kubernetes manifest parses into
//! its k8s-openapi type with no field that type does not know, its settings
//! and rules load, its flags exist, and its role covers exactly the kinds
//! watched; the Helm chart renders the same objects (rendered here with a
//! Go-template engine, `gtmpl`, and the chart's one Sprig function,
//! `indent`: Helm itself is not packaged in Debian); the audit policy logs
//! Secret reads at Metadata level only and its webhook kubeconfig names the
//! daemon's `/audit`; the Containerfile builds the daemon's package and
//! runs the binary where the DaemonSet calls it. Building the image needs
//! its base images from a registry this machine cannot reach: not done
//! here.

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
    // A folder per call: tests calling this run at the same time.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let data = config.data.unwrap();
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("edgewise-deploy-{}-{call}", std::process::id()));
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
    let text = std::fs::read_to_string(deploy("kubernetes/edgewise.yaml")).unwrap();
    let documents: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&text).expect("the manifests are YAML");
    let kinds = check_manifests(&documents);
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

/// Checks each document as its Kubernetes type (see the module docs);
/// the kinds, in order.
fn check_manifests(documents: &[serde_json::Value]) -> Vec<String> {
    use k8s_openapi::api::apps::v1::DaemonSet;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};

    let mut kinds = Vec::new();
    let (mut role, mut config, mut daemonset) = (None, None, None);
    for document in documents {
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
    assert!(
        settings.observe_interfaces.iter().any(|i| i == "cali*"),
        "the pods' interfaces are followed: {:?}",
        settings.observe_interfaces
    );

    // Every flag the DaemonSet passes exists; it mounts the settings where
    // it names them, bpffs, and probes /healthz on the listen port.
    let spec = daemonset.unwrap().spec.template.spec.unwrap();
    assert_eq!(spec.host_network, Some(true));
    check_secret_reads(&settings, &spec);
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
    kinds
}

/// The DaemonSet reads the host's mount table through the host's pid
/// namespace, and mounts the host's cgroup hierarchy where the settings
/// look for it.
fn check_secret_reads(settings: &Settings, spec: &k8s_openapi::api::core::v1::PodSpec) {
    assert!(settings.secret_reads);
    assert_eq!(spec.host_pid, Some(true));
    assert_eq!(
        settings.mountinfo.as_deref(),
        Some(Path::new("/proc/1/mountinfo"))
    );
    let cgroup_root = settings.cgroup_root.clone().unwrap();
    let cgroup_mount = spec.containers[0]
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| Path::new(&m.mount_path) == cgroup_root)
        .expect("cgroup_root is mounted");
    let cgroup_volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == cgroup_mount.name)
        .unwrap();
    assert_eq!(
        cgroup_volume.host_path.as_ref().unwrap().path,
        "/sys/fs/cgroup"
    );
}

/// `indent N TEXT` as Helm's Sprig has it: every line, the first
/// included, `N` spaces in.
fn indent(args: &[gtmpl::Value]) -> Result<gtmpl::Value, gtmpl::FuncError> {
    let [gtmpl::Value::Number(width), gtmpl::Value::String(text)] = args else {
        return Err(gtmpl::FuncError::ExactlyXArgs("indent".into(), 2));
    };
    let pad = " ".repeat(usize::try_from(width.as_u64().unwrap_or(0)).unwrap_or(0));
    Ok(gtmpl::Value::String(format!(
        "{pad}{}",
        text.replace('\n', &format!("\n{pad}"))
    )))
}

fn template_value(value: &serde_json::Value) -> gtmpl::Value {
    use gtmpl::Value;
    match value {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => n
            .as_u64()
            .map_or_else(|| Value::from(n.as_f64().unwrap_or(0.0)), Value::from),
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(items) => Value::Array(items.iter().map(template_value).collect()),
        serde_json::Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), template_value(v)))
                .collect(),
        ),
    }
}

/// The chart's templates rendered as `helm template edgewise -n edgewise`
/// renders them with the default values.
fn render_chart() -> Vec<serde_json::Value> {
    let chart = deploy("helm/edgewise");
    let values: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(chart.join("values.yaml")).unwrap())
            .expect("values.yaml is YAML");
    let context = template_value(&serde_json::json!({
        "Values": values,
        "Release": {"Name": "edgewise", "Namespace": "edgewise"},
    }));
    let mut files: Vec<PathBuf> = std::fs::read_dir(chart.join("templates"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    let mut documents = Vec::new();
    for file in files {
        let mut template = gtmpl::Template::default();
        template.add_func("indent", indent);
        template
            .parse(std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let text = template
            .render(&gtmpl::Context::from(context.clone()))
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let rendered: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{} renders YAML: {e}\n{text}", file.display()));
        documents.extend(rendered);
    }
    documents
}

#[test]
fn the_helm_chart_renders_the_manifests() {
    let chart = deploy("helm/edgewise");
    let meta: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(chart.join("Chart.yaml")).unwrap())
            .unwrap();
    assert_eq!(meta["apiVersion"], "v2");
    assert_eq!(meta["appVersion"], env!("CARGO_PKG_VERSION"));
    let rendered = render_chart();
    check_manifests(&rendered);
    // The same objects as the plain manifests, less the Namespace (Helm's
    // --create-namespace makes it).
    let text = std::fs::read_to_string(deploy("kubernetes/edgewise.yaml")).unwrap();
    let plain: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    let key = |d: &serde_json::Value| format!("{}/{}", d["kind"], d["metadata"]["name"]);
    let mut plain: Vec<_> = plain
        .into_iter()
        .filter(|d| d["kind"] != "Namespace")
        .collect();
    let mut rendered = rendered;
    plain.sort_by_key(key);
    rendered.sort_by_key(key);
    assert_eq!(rendered, plain);
}

#[test]
fn the_audit_policy_and_webhook_send_secret_reads_to_the_daemon() {
    let policy: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(deploy("kubernetes/audit/policy.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(policy["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(policy["kind"], "Policy");
    let rules = policy["rules"].as_array().unwrap();
    let secrets = &rules[0];
    assert_eq!(secrets["resources"][0]["resources"][0], "secrets");
    assert_eq!(
        secrets["level"], "Metadata",
        "never the Secret's content (Request or RequestResponse would log it)"
    );
    assert_eq!(rules.last().unwrap()["level"], "None", "nothing else");
    for rule in rules {
        assert!(
            rule["level"] == "Metadata" || rule["level"] == "None",
            "{rule}"
        );
    }

    let kubeconfig: kube::config::Kubeconfig = serde_saphyr::from_str(
        &std::fs::read_to_string(deploy("kubernetes/audit/webhook.kubeconfig")).unwrap(),
    )
    .expect("a kubeconfig");
    let server = kubeconfig.clusters[0]
        .cluster
        .as_ref()
        .unwrap()
        .server
        .clone()
        .unwrap();
    let url: http::Uri = server.parse().unwrap();
    assert_eq!(url.path(), "/audit");
    assert_eq!(
        url.host(),
        Some("127.0.0.1"),
        "plain HTTP stays on loopback"
    );
    // The daemon's listen port, as the DaemonSet's settings set it.
    let text = std::fs::read_to_string(deploy("kubernetes/edgewise.yaml")).unwrap();
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    let config = documents.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let settings = configured(serde_json::from_value(config.clone()).unwrap());
    assert_eq!(url.port_u16(), settings.listen.map(|a| a.port()));
    let user = kubeconfig.auth_infos[0].auth_info.as_ref().unwrap();
    assert!(user.token.is_some(), "the bearer token the webhook needs");
}

#[test]
fn the_containerfile_builds_the_daemon_and_runs_it_where_the_daemonset_does() {
    let text = std::fs::read_to_string(deploy("../Containerfile")).unwrap();
    let joined = text.replace("\\\n", " ");
    let instructions: Vec<(&str, &str)> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once(' ').unwrap_or((l, "")))
        .collect();
    let stages: Vec<&str> = instructions
        .iter()
        .filter(|(i, _)| *i == "FROM")
        .map(|(_, rest)| *rest)
        .collect();
    assert_eq!(stages.len(), 2, "multi-stage: {stages:?}");
    // The builder's toolchain is the one CI tests with, at least the
    // workspace's minimum (`rust-version`).
    let manifest = std::fs::read_to_string(deploy("../Cargo.toml")).unwrap();
    let minimum = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"');
    let version =
        |text: &str| -> Vec<u32> { text.split('.').map(|n| n.parse().unwrap()).collect() };
    let Some((builder, _)) = stages[0]
        .split_once("rust:")
        .and_then(|(_, rest)| rest.split_once('-'))
    else {
        panic!("{} is not a rust:VERSION-... image", stages[0]);
    };
    assert!(
        version(builder) >= version(minimum),
        "{} builds with Rust {builder}, below the minimum {minimum}",
        stages[0]
    );
    let build = instructions
        .iter()
        .find(|(i, rest)| *i == "RUN" && rest.contains("cargo build"))
        .unwrap()
        .1;
    assert!(build.contains("--release") && build.contains("--locked"));
    assert!(build.contains(&format!("-p {}", env!("CARGO_PKG_NAME"))));
    // The final stage: the binary where the DaemonSet calls it, not root.
    let last = instructions
        .iter()
        .rposition(|(i, _)| *i == "FROM")
        .unwrap();
    let runtime = &instructions[last..];
    let copy = runtime.iter().find(|(i, _)| *i == "COPY").unwrap().1;
    assert!(copy.contains("target/release/edgewise /usr/local/bin/edgewise"));
    let user = runtime.iter().find(|(i, _)| *i == "USER").unwrap().1;
    assert!(
        !user.starts_with('0') && !user.starts_with("root"),
        "{user}"
    );
    let entrypoint = runtime.iter().find(|(i, _)| *i == "ENTRYPOINT").unwrap().1;
    let manifests = std::fs::read_to_string(deploy("kubernetes/edgewise.yaml")).unwrap();
    assert!(
        manifests.contains(&format!("command: {entrypoint}")),
        "the DaemonSet's command is the image's entrypoint {entrypoint}"
    );
    // The build context leaves the build output out.
    let ignored = std::fs::read_to_string(deploy("../.containerignore")).unwrap();
    assert!(ignored.lines().any(|l| l == "target"));
}

/// The identity server's manifests: each document parses into its
/// Kubernetes type with no unknown field; the Deployment passes only
/// flags of `edgewise identity serve`, reads the TLS and token files where
/// it mounts the Secrets, and probes `/healthz` over HTTPS on the port it
/// listens on, which the Service targets; it binds the DaemonSet's role.
#[test]
fn the_identity_server_manifests_parse_and_match_the_binary() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Service, ServiceAccount};
    use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    let text = std::fs::read_to_string(deploy("kubernetes/identity-server.yaml")).unwrap();
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    let kinds: Vec<&str> = documents
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "ClusterRoleBinding",
            "Deployment",
            "Service"
        ]
    );
    drop(typed::<ServiceAccount>(&documents[0]));
    let binding: ClusterRoleBinding = typed(&documents[1]);
    assert_eq!(binding.role_ref.name, "edgewise", "the DaemonSet's role");
    let deployment: Deployment = typed(&documents[2]);
    let service: Service = typed(&documents[3]);

    let spec = deployment.spec.template.spec.unwrap();
    let container = &spec.containers[0];
    let args = container.args.clone().unwrap();
    assert_eq!(args[..2], ["identity", "serve"]);
    let (help, _, ok) = edgewise(&["identity", "serve", "--help"]);
    assert!(ok);
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        assert!(
            help.contains(flag.as_str()),
            "{flag} is not a flag of identity serve"
        );
    }
    let value = |flag: &str| {
        let at = args.iter().position(|a| a == flag).unwrap();
        args[at + 1].clone()
    };
    let port: i32 = value("--listen")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mounts: Vec<(String, String)> = container
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.name.clone(), m.mount_path.clone()))
        .collect();
    let secrets: Vec<(String, String)> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| {
            (
                v.name.clone(),
                v.secret.as_ref().unwrap().secret_name.clone().unwrap(),
            )
        })
        .collect();
    for (flag, secret) in [
        ("--tls-cert", "edgewise-identity-tls"),
        ("--tls-key", "edgewise-identity-tls"),
        ("--token-file", "edgewise-identity-tokens"),
    ] {
        let file = value(flag);
        let (volume, _) = mounts
            .iter()
            .find(|(_, path)| file.starts_with(&format!("{path}/")))
            .unwrap_or_else(|| panic!("{flag} {file} is not in a mounted volume"));
        assert!(
            secrets.contains(&(volume.clone(), secret.to_owned())),
            "{flag} reads the Secret {secret}"
        );
    }
    for probe in [&container.liveness_probe, &container.readiness_probe] {
        let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(get.path.as_deref(), Some("/healthz"));
        assert_eq!(get.scheme.as_deref(), Some("HTTPS"));
        assert_eq!(get.port, IntOrString::Int(port));
    }
    let target = &service.spec.unwrap().ports.unwrap()[0];
    assert_eq!(target.target_port, Some(IntOrString::Int(port)));
}

#[test]
fn the_trail_manifests_parse_and_call_the_binary_as_it_is() {
    let text = std::fs::read_to_string(deploy("kubernetes/collector.yaml")).unwrap();
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    let kinds: Vec<&str> = documents
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Deployment", "Service", "CronJob"]);
    let deployment: k8s_openapi::api::apps::v1::Deployment = typed(&documents[0]);
    drop(typed::<k8s_openapi::api::core::v1::Service>(&documents[1]));
    let cron: k8s_openapi::api::batch::v1::CronJob = typed(&documents[2]);
    let collect = &deployment.spec.template.spec.unwrap().containers[0];
    let digest = &cron
        .spec
        .job_template
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0];
    for (container, command) in [
        (collect, &["collect"][..]),
        (digest, &["trail", "digest"][..]),
    ] {
        let line = &container.args.as_ref().unwrap()[0];
        let mut help_args = command.to_vec();
        help_args.push("--help");
        let (help, _, ok) = edgewise(&help_args);
        assert!(ok);
        for flag in line.split_whitespace().filter(|a| a.starts_with("--")) {
            assert!(help.contains(flag), "{flag} is not a flag of {command:?}");
        }
    }
    let text = std::fs::read_to_string(deploy("kubernetes/postgres.yaml")).unwrap();
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    drop(typed::<k8s_openapi::api::apps::v1::StatefulSet>(
        &documents[0],
    ));
    let text = std::fs::read_to_string(deploy("kubernetes/alerts.yaml")).unwrap();
    let rule: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let alerts: Vec<&str> = rule["spec"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["alert"].as_str().unwrap())
        .collect();
    assert_eq!(
        alerts,
        [
            "EdgewiseCollectorDown",
            "EdgewiseAgentSilent",
            "EdgewiseDigestFailing"
        ]
    );
    let metrics = include_str!("../../../trail/src/collector.rs");
    for name in [
        "store_up",
        "agents_silent",
        "digest_last_success_timestamp_seconds",
    ] {
        assert!(
            metrics.contains(&format!("\"{name}\"")),
            "the collector has no {name}"
        );
    }
}
