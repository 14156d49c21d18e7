//! Test helpers: locating `../shared/vectors/` (third-party test data kept
//! beside the repository, never copied into it) and skipping with a reason.

#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses its own subset of these helpers, so `expect` would misfire"
)]

use std::path::PathBuf;

pub(crate) use edgewise_test_support::{have, is_root, skip};

/// The vectors folder `name` under `shared/vectors/`, or `None` after printing
/// why the test skips. Under `CI=true` a missing folder fails the test: CI
/// always has `shared/` beside the clone.
pub(crate) fn vectors_dir(name: &str) -> Option<PathBuf> {
    let dir = edgewise_test_support::shared_dir()
        .join("vectors")
        .join(name);
    if dir.is_dir() {
        return Some(dir);
    }
    skip(&format!(
        "{} is absent (set EDGEWISE_SHARED to the shared/ folder)",
        dir.display()
    ));
    None
}

/// Runs the `edgewise` binary with `args`: (stdout, stderr, success).
pub(crate) fn edgewise(args: &[&str]) -> (String, String, bool) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_edgewise"))
        .args(args)
        .output()
        .expect("run edgewise");
    (
        String::from_utf8(output.stdout).expect("UTF-8"),
        String::from_utf8(output.stderr).expect("UTF-8"),
        output.status.success(),
    )
}
