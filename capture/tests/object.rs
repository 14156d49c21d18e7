//! The committed eBPF objects are exactly what clang-19 builds from the
//! committed sources (a machine without clang uses the objects, so the two
//! must never drift). Needs clang-19 and libbpf-dev; skips otherwise (a
//! failure under `CI=true`).

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use edgewise_test_support::{have, skip};

include!("../bpf/clang.rs");

#[test]
fn the_committed_objects_match_a_fresh_clang_build() {
    if !have("clang-19") || !Path::new("/usr/include/bpf/bpf_helpers.h").exists() {
        skip("clang-19 and libbpf-dev are needed to rebuild the eBPF objects");
        return;
    }
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, embedded) in OBJECTS.into_iter().zip([
        edgewise_capture::OBSERVER_OBJECT,
        edgewise_capture::secrets::SECRETS_OBJECT,
    ]) {
        let out =
            std::env::temp_dir().join(format!("edgewise-{name}-{}.bpf.o", std::process::id()));
        let status = Command::new("clang-19")
            .current_dir(crate_dir)
            .args(clang_args(name, &out))
            .status()
            .expect("run clang-19");
        assert!(status.success(), "clang-19 failed on {name}");
        let fresh = std::fs::read(&out).unwrap();
        std::fs::remove_file(&out).unwrap();
        let committed = std::fs::read(crate_dir.join(format!("bpf/{name}.bpf.o"))).unwrap();
        assert!(
            fresh == committed,
            "bpf/{name}.bpf.o is stale: rebuild it with clang-19 (see bpf/clang.rs) and commit it"
        );
        assert_eq!(
            embedded,
            &committed[..],
            "the crate embeds the same {name} object"
        );
    }
}
