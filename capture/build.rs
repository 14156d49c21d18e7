//! Builds the eBPF objects (`bpf/observer.bpf.o`, `bpf/secrets.bpf.o`) with
//! clang-19 when it is installed, else uses the committed ones, so that a
//! machine without clang still builds. `tests/object.rs` fails when a fresh
//! build differs from a committed object.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

include!("bpf/clang.rs");

fn main() {
    for name in OBJECTS {
        println!("cargo::rerun-if-changed=bpf/{name}.bpf.c");
        println!("cargo::rerun-if-changed=bpf/{name}.bpf.o");
    }
    println!("cargo::rerun-if-changed=bpf/event.h");
    println!("cargo::rerun-if-changed=bpf/secrets.h");
    println!("cargo::rerun-if-changed=bpf/clang.rs");
    // Without the `kernel` feature there is nothing to load.
    if std::env::var_os("CARGO_FEATURE_KERNEL").is_none() {
        return;
    }
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for name in OBJECTS {
        let out = out_dir.join(format!("{name}.bpf.o"));
        let built = Command::new("clang-19")
            .args(clang_args(name, &out))
            .status()
            .is_ok_and(|status| status.success());
        if !built {
            println!(
                "cargo::warning=clang-19 did not build bpf/{name}.bpf.c; using the committed object"
            );
            std::fs::copy(format!("bpf/{name}.bpf.o"), &out)
                .expect("copy the committed eBPF object");
        }
    }
}
