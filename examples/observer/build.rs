//! Checks the web view's vendored Cytoscape.js against the checksum pinned
//! in `ui/vendor/cytoscape.lock` before it is built into the binary: a file
//! changed by hand, or half-written, fails the build (`scripts/vendor-ui.sh`
//! fetches the pinned version again).

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

fn main() {
    let lock = "ui/vendor/cytoscape.lock";
    let file = "ui/vendor/cytoscape.min.js";
    println!("cargo::rerun-if-changed={lock}");
    println!("cargo::rerun-if-changed={file}");
    let pinned = std::fs::read_to_string(lock)
        .unwrap_or_else(|e| panic!("{lock}: {e}"))
        .lines()
        .find_map(|line| line.strip_prefix("sha256 = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .map_or_else(|| panic!("{lock}: no sha256 line"), str::to_owned);
    let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let digest = Sha256::digest(&bytes);
    let actual = digest.iter().fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    });
    assert!(
        actual == pinned,
        "{file} has sha256 {actual}, {lock} pins {pinned}: run scripts/vendor-ui.sh"
    );
}
