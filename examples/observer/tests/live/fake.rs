//! A fake API server (`edgewise_k8s::testing::FakeApiServer`, which speaks
//! the real list and watch protocol) in the node's namespace: the test
//! binary started again as a child under `ip netns exec`, running its
//! `fake_api_process` helper test, driven by lines on its standard input.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::{Collected, demo, scenario, start_daemon};
use crate::common::records;

/// The child: a fake API server on the namespace's loopback, its URL on
/// standard output, then `apply JSON`, `delete JSON`, `compact` and
/// `drop` lines on standard input until it closes.
/// The body of each test binary's `fake_api_process` helper test.
pub(crate) fn serve_from_stdin() {
    if std::env::var_os("EDGEWISE_FAKE_API").is_none() {
        return;
    }
    let api = edgewise_k8s::testing::FakeApiServer::start();
    println!("url {}", api.url());
    let _ = std::io::stdout().flush();
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let (command, rest) = line.split_once(' ').unwrap_or((&line, ""));
        match command {
            "apply" => api.apply(serde_json::from_str(rest).expect("an object")),
            "delete" => api.delete(&serde_json::from_str(rest).expect("an object")),
            "compact" => api.compact(),
            "drop" => api.drop_watches(),
            _ => {}
        }
        println!("done");
        let _ = std::io::stdout().flush();
    }
}

/// The fake, driven from the parent.
pub(crate) struct Fake {
    child: std::process::Child,
    input: std::process::ChildStdin,
    output: BufReader<std::process::ChildStdout>,
}

impl Fake {
    pub(crate) fn start() -> (Self, String) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", "ewcl-node"])
            .arg(std::env::current_exe().unwrap())
            .args(["fake_api_process", "--exact", "--ignored", "--nocapture"])
            .env("EDGEWISE_FAKE_API", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the fake API server");
        let input = child.stdin.take().unwrap();
        let mut output = BufReader::new(child.stdout.take().unwrap());
        let mut url = String::new();
        while !url.starts_with("url ") {
            url.clear();
            assert!(output.read_line(&mut url).unwrap() > 0, "the fake started");
        }
        let url = url.trim_start_matches("url ").trim().to_owned();
        (
            Self {
                child,
                input,
                output,
            },
            url,
        )
    }

    pub(crate) fn send(&mut self, command: &str, object: Option<&Value>) {
        let line = match object {
            Some(object) => format!("{command} {object}\n"),
            None => format!("{command}\n"),
        };
        self.input.write_all(line.as_bytes()).unwrap();
        self.input.flush().unwrap();
        let mut answer = String::new();
        while answer.trim() != "done" {
            answer.clear();
            assert!(self.output.read_line(&mut answer).unwrap() > 0);
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn items(file: &Path) -> Vec<Value> {
    let list: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    list["items"].as_array().unwrap().clone()
}

/// Waits up to 10 s for an `edge` record (update or not) satisfying
/// `found`.
pub(crate) fn edge_record(daemon: &Collected, found: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let text = Collected::text(&daemon.stdout);
        if let Some(edge) = records(&text, "edge").find(|e| found(e)) {
            return edge;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("no such edge record: {}", Collected::text(&daemon.stdout));
}

impl Fake {
    /// A fake holding the demo's objects and policies, and a kubeconfig
    /// for it written into `dir`.
    pub(crate) fn with_demo(dir: &Path) -> (Self, std::path::PathBuf) {
        let (mut fake, url) = Self::start();
        for object in items(&demo("objects.json"))
            .iter()
            .chain(&items(&demo("policies.json")))
        {
            fake.send("apply", Some(object));
        }
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, edgewise_k8s::testing::kubeconfig(&url)).unwrap();
        (fake, kubeconfig)
    }
}

/// The demo's frontend -> postgres edge.
pub(crate) fn frontend_to_postgres(edge: &Value) -> bool {
    edge["src"]["identity"]["name"] == "frontend-7d9f8c6b5-x0"
        && edge["dst"]["identity"]["name"] == "postgres-0"
}

/// Edits the demo's `postgres-ingress` NetworkPolicy on the API to let the
/// frontend in, and waits for the edge's verdict to follow.
pub(crate) fn let_frontend_into_postgres(fake: &mut Fake, daemon: &Collected) {
    let mut policy = items(&demo("policies.json"))
        .into_iter()
        .find(|p| p["metadata"]["name"] == "postgres-ingress")
        .unwrap();
    policy["spec"]["ingress"][0]["from"]
        .as_array_mut()
        .unwrap()
        .push(json!({"podSelector": {"matchLabels": {"app": "frontend"}}}));
    fake.send("apply", Some(&policy));
    edge_record(daemon, |e| {
        frontend_to_postgres(e) && e["update"] == true && e["verdict"] == "declared"
    });
}

/// Replaces the demo's postgres pod by another on the same address, and
/// waits for the edge to name the new pod.
pub(crate) fn replace_postgres(fake: &mut Fake, daemon: &Collected) {
    let mut postgres = items(&demo("objects.json"))
        .into_iter()
        .find(|o| o["metadata"]["name"] == "postgres-0")
        .unwrap();
    fake.send("delete", Some(&postgres));
    postgres["metadata"]["name"] = json!("postgres-1");
    postgres["metadata"]["uid"] = json!("postgres-1-uid");
    fake.send("apply", Some(&postgres));
    edge_record(daemon, |e| {
        e["update"] == true
            && e["src"]["identity"]["name"] == "frontend-7d9f8c6b5-x0"
            && e["dst"]["identity"]["name"] == "postgres-1"
    });
}

/// `edgewise run` with `inputs` on the demo cluster, its traffic run, and
/// the first frontend -> postgres edge named from the cluster and judged a
/// violation (the demo's policies let only checkout in).
pub(crate) fn observe_demo_traffic(inputs: &[String], graph_dir: &Path) -> Collected {
    let daemon = start_daemon(inputs, graph_dir, &[]);
    assert!(
        Collected::wait_for(&daemon.stderr, 40, |line| line.contains(": observing")),
        "the daemon attached: {}",
        Collected::text(&daemon.stderr)
    );
    assert!(scenario(&["traffic"]), "the clients ran");
    let first = edge_record(&daemon, |e| frontend_to_postgres(e) && e["update"] == false);
    assert_eq!(first["verdict"], "violation", "{first}");
    daemon
}
