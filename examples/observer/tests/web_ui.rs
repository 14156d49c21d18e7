//! The web view in a real browser: headless Chromium (Debian's `chromium`
//! and `chromium-driver`) driven through WebDriver by Selenium
//! (`tests/browser/ui_check.py`), against `edgewise ui` on the demo's graph
//! file (nodes, the red violation edge, a click on it, the namespace
//! filter and the search; no console error and no request outside the
//! listener), against a listener with a token (the page asks for it), and
//! against a replay served while it runs (the graph grows live).
//!
//! `EDGEWISE_UPDATE_SCREENSHOT=1` writes the demo's picture into
//! `demo/cluster/ui.png`, which the README shows.

mod common;
mod live;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{have, skip};
use live::Collected;

fn demo(file: &str) -> String {
    format!("{}/../../demo/cluster/{file}", env!("CARGO_MANIFEST_DIR"))
}

/// Whether the browser and its driver are here (else skipped, with why).
fn browser_ready() -> bool {
    for tool in ["chromium", "chromedriver", "python3"] {
        if !have(tool) {
            skip(&format!(
                "{tool} is not installed (scripts/test.sh installs it as root)"
            ));
            return false;
        }
    }
    let selenium = Command::new("python3")
        .args(["-c", "import selenium"])
        .status()
        .is_ok_and(|s| s.success());
    if !selenium {
        skip("Selenium's Python client is not installed (scripts/test.sh installs it as root)");
    }
    selenium
}

/// Starts `edgewise` with `args` and waits for the URL it serves.
fn served(args: &[&str]) -> (Collected, String) {
    let process = Collected::spawn(Command::new(env!("CARGO_BIN_EXE_edgewise")).args(args));
    assert!(
        Collected::wait_for(&process.stderr, 30, |l| l.contains(": serving http://")),
        "{}",
        Collected::text(&process.stderr)
    );
    let url = Collected::text(&process.stderr)
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .expect("a URL")
        .to_owned();
    (process, url)
}

/// One browser at a time: three Chromiums on two cores would make the
/// live scenario's timing a matter of luck.
static BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_browser() -> std::sync::MutexGuard<'static, ()> {
    BROWSER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn check(scenario: &str, url: &str, more: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/ui_check.py");
    let output = Command::new("python3")
        .arg(script)
        .args([scenario, url])
        .args(more)
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "{scenario}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgewise-web-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_demo_graph_in_a_browser_with_its_violation_details_and_filters() {
    if !browser_ready() {
        return;
    }
    let _one = one_browser();
    let dir = scratch("demo");
    let (_ui, url) = served(&[
        "ui",
        "--graph",
        &demo("graph.json"),
        "--listen",
        "127.0.0.1:0",
    ]);
    let picture = dir.join("ui.png");
    check("demo", &url, &["--screenshot", picture.to_str().unwrap()]);
    assert!(std::fs::metadata(&picture).unwrap().len() > 10_000);
    if std::env::var_os("EDGEWISE_UPDATE_SCREENSHOT").is_some() {
        std::fs::copy(&picture, demo("ui.png")).unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_listener_with_a_token_gets_it_asked_for() {
    if !browser_ready() {
        return;
    }
    let _one = one_browser();
    let dir = scratch("token");
    let token = dir.join("token");
    std::fs::write(&token, "s3cret-view\n").unwrap();
    let (_ui, url) = served(&[
        "ui",
        "--graph",
        &demo("graph.json"),
        "--listen",
        "127.0.0.1:0",
        "--token-file",
        token.to_str().unwrap(),
    ]);
    check("token", &url, &["s3cret-view"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_running_replay_updates_the_page_live() {
    if !browser_ready() {
        return;
    }
    let _one = one_browser();
    // The demo capture spans about 1.5 s; at a tenth of its pace the page
    // sees the graph grow for about 15 s.
    let (_replay, url) = served(&[
        "replay",
        "--listen",
        "127.0.0.1:0",
        "--pace",
        "0.1",
        "--output",
        "/dev/null",
    ]);
    check("live", &url, &[]);
}
