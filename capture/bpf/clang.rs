// The clang-19 command line that builds the eBPF objects (`bpf/NAME.bpf.c`
// into `NAME.bpf.o`), shared by build.rs and tests/object.rs (through
// `include!`). Flags as EBPF-NOTES.md says: a relative source path and a
// fixed debug directory, so that each object is byte-for-byte
// reproducible; run from the crate's folder. The including file imports
// `std::path::Path` and `std::ffi::OsString`.

/// The objects built, by name: the packet observers and the secret-volume
/// observer.
const OBJECTS: [&str; 2] = ["observer", "secrets"];

/// clang-19's arguments building object `name`, writing it to `out`.
fn clang_args(name: &str, out: &Path) -> Vec<OsString> {
    let include = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);

    let source = format!("bpf/{name}.bpf.c");
    let mut args: Vec<OsString> = [
        "-target",
        "bpf",
        "-O2",
        "-g",
        "-Wall",
        "-Werror",
        "-fdebug-compilation-dir=.",
        include.as_str(),
        "-c",
        source.as_str(),
        "-o",
    ]
    .iter()
    .map(Into::into)
    .collect();
    args.push(out.into());
    args
}
