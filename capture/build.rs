//! Builds the eBPF object with clang-19 when it is installed, else uses the
//! committed one (`bpf/observer.bpf.o`), so that a machine without clang
//! still builds. `tests/object.rs` fails when a fresh build differs from the
//! committed object.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

include!("bpf/clang.rs");

fn main() {
    println!("cargo::rerun-if-changed=bpf/observer.bpf.c");
    println!("cargo::rerun-if-changed=bpf/event.h");
    println!("cargo::rerun-if-changed=bpf/observer.bpf.o");
    println!("cargo::rerun-if-changed=bpf/clang.rs");
    // Without the `kernel` feature there is nothing to load.
    if std::env::var_os("CARGO_FEATURE_KERNEL").is_none() {
        return;
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("observer.bpf.o");
    let built = Command::new("clang-19")
        .args(clang_args(&out))
        .status()
        .is_ok_and(|status| status.success());
    if !built {
        println!(
            "cargo::warning=clang-19 did not build bpf/observer.bpf.c; using the committed object"
        );
        std::fs::copy("bpf/observer.bpf.o", &out).expect("copy the committed eBPF object");
    }
}
