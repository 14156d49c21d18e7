//! The live daemon's test helpers: the demo cluster of
//! `demo/cluster/scenario.sh`, `edgewise run` in its node namespace, and
//! child processes whose output is collected as it comes.

#![allow(
    dead_code,
    reason = "each test binary uses its own subset of these helpers, so `expect` would misfire"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{have, is_root, skip};

pub(crate) mod fake;

pub(crate) fn demo(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../demo/cluster")
        .join(file)
}

pub(crate) fn scenario(args: &[&str]) -> bool {
    Command::new(demo("scenario.sh"))
        .args(args)
        .status()
        .expect("run scenario.sh")
        .success()
}

/// The cluster, taken down when dropped (also on panic).
pub(crate) struct Cluster;

impl Drop for Cluster {
    fn drop(&mut self) {
        scenario(&["down"]);
    }
}

/// A child process whose output lines are collected as they come.
pub(crate) struct Collected {
    pub(crate) child: Child,
    pub(crate) stdout: Arc<Mutex<Vec<String>>>,
    pub(crate) stderr: Arc<Mutex<Vec<String>>>,
}

impl Collected {
    pub(crate) fn spawn(command: &mut Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let collect = |stream: Box<dyn std::io::Read + Send>| {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
            lines
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// Waits up to `seconds` until a line of `stream` satisfies `found`.
    pub(crate) fn wait_for(
        stream: &Mutex<Vec<String>>,
        seconds: u64,
        found: impl Fn(&str) -> bool,
    ) -> bool {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while Instant::now() < deadline {
            if stream.lock().unwrap().iter().any(|line| found(line)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub(crate) fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status();
    }

    pub(crate) fn text(stream: &Mutex<Vec<String>>) -> String {
        stream.lock().unwrap().join("\n")
    }
}

impl Drop for Collected {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET http://127.0.0.1:9464{path}` from the node's namespace.
pub(crate) fn http_get(path: &str) -> String {
    let output = Command::new("ip")
        .args(["netns", "exec", "ewcl-node", "python3", "-c"])
        .arg(
            "import sys, urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9464' + sys.argv[1], timeout=5).read().decode())",
        )
        .arg(path)
        .output()
        .unwrap();
    assert!(output.status.success(), "GET {path}");
    String::from_utf8(output.stdout).unwrap()
}

pub(crate) fn preflight() -> bool {
    if !is_root() {
        skip("network namespaces and eBPF need root");
        return false;
    }
    for tool in ["ip", "python3", "dnsmasq", "tcpdump"] {
        if !have(tool) {
            skip(&format!("{tool} is not installed"));
            return false;
        }
    }
    true
}

/// `edgewise run` in the node's namespace on every pod's host interface.
pub(crate) fn start_daemon(inputs: &[String], graph_dir: &Path, more: &[&str]) -> Collected {
    let interfaces = [
        "frontend", "checkout", "postgres", "telegraf", "influxdb", "coredns", "partner",
    ]
    .map(|pod| format!("ewh-{pod}"))
    .join(",");
    Collected::spawn(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                "ewcl-node",
                env!("CARGO_BIN_EXE_edgewise"),
                "run",
            ])
            .args(["--observe-interfaces", &interfaces])
            .args(inputs)
            .args(["--graph-out", graph_dir.to_str().unwrap()])
            .args([
                "--listen",
                "127.0.0.1:9464",
                "--stats-interval-seconds",
                "1",
            ])
            .args(more),
    )
}

/// The demo's objects and policies (no rules: nothing is banned).
pub(crate) fn inputs() -> Vec<String> {
    [
        "--objects",
        demo("objects.json").to_str().unwrap(),
        "--policies",
        demo("policies.json").to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `edgewise run` in the node's namespace on the demo's objects and
/// policies, with a stats tick a second and `more` flags.
pub(crate) fn run_daemon(more: &[&str]) -> Collected {
    Collected::spawn(
        Command::new("ip")
            .args(["netns", "exec", "ewcl-node"])
            .args([env!("CARGO_BIN_EXE_edgewise"), "run"])
            .args(inputs())
            .args(["--stats-interval-seconds", "1"])
            .args(more),
    )
}

pub(crate) fn stop(daemon: Collected) -> String {
    daemon.signal("-TERM");
    let mut daemon = daemon;
    let exit = daemon.child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        exit.success(),
        "SIGTERM ends it cleanly: {}",
        Collected::text(&daemon.stderr)
    );
    Collected::text(&daemon.stdout)
}

pub(crate) fn logged(daemon: &Collected, seconds: u64, words: &[&str]) -> bool {
    Collected::wait_for(&daemon.stderr, seconds, |line| {
        words.iter().all(|w| line.contains(w))
    })
}
