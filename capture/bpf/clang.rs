// The clang-19 command line that builds `bpf/observer.bpf.c`, shared by
// build.rs and tests/object.rs (through `include!`). Flags as EBPF-NOTES.md
// says: a relative source path and a fixed debug directory, so that the
// object is byte-for-byte reproducible; run from the crate's folder. The
// including file imports `std::path::Path` and `std::ffi::OsString`.

/// clang-19's arguments, writing the object to `out`.
fn clang_args(out: &Path) -> Vec<OsString> {
    let include = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
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
        "bpf/observer.bpf.c",
        "-o",
    ]
    .iter()
    .map(Into::into)
    .collect();
    args.push(out.into());
    args
}
