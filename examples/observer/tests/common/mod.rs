//! Locating `../shared/vectors/` (third-party test data kept beside the
//! repository, never copied into it).

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
    let why = format!(
        "SKIPPED: {} is absent (set EDGEWISE_SHARED to the shared/ folder)",
        dir.display()
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why}; CI must not skip"
    );
    eprintln!("{why}");
    None
}
