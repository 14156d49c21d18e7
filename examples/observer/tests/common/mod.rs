//! Test helpers: locating `../shared/vectors/` (third-party test data kept
//! beside the repository, never copied into it) and skipping with a reason.

#![allow(
    dead_code,
    reason = "each test binary uses its own subset of these helpers, so `expect` would misfire"
)]

use std::path::PathBuf;

/// The vectors folder `name` under `shared/vectors/`, or `None` after printing
/// why the test skips. Under `CI=true` a missing folder fails the test: CI
/// always has `shared/` beside the clone.
pub(crate) fn vectors_dir(name: &str) -> Option<PathBuf> {
    let root = std::env::var_os("EDGEWISE_SHARED").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
        PathBuf::from,
    );
    let dir = root.join("vectors").join(name);
    if dir.is_dir() {
        return Some(dir);
    }
    skip(&format!(
        "{} is absent (set EDGEWISE_SHARED to the shared/ folder)",
        dir.display()
    ));
    None
}

/// Prints why a test skips; under `CI=true` a skip fails instead, so nothing
/// silently stops being tested.
pub(crate) fn skip(why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "SKIPPED in CI: {why}; CI must not skip"
    );
    eprintln!("SKIPPED: {why}");
}

/// Whether a command is on the PATH.
pub(crate) fn have(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether the test runs as root.
pub(crate) fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}
