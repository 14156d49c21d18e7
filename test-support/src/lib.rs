//! Test-only helpers shared by the edgewise crates.
//!
//! [`CountingAllocator`] wraps the system allocator and counts, per thread,
//! the allocations made and the bytes still held, so a test can prove that a
//! path allocates nothing or measure what a structure costs per entry. A test
//! binary installs it with
//! `#[global_allocator] static A: CountingAllocator = CountingAllocator;`
//! and calls [`measure`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
}

/// The system allocator, counting per thread.
pub struct CountingAllocator;

fn count(allocations: usize, bytes: isize) {
    // `try_with`: the thread-locals may already be gone while a thread exits.
    let _ = ALLOCATIONS.try_with(|cell| cell.set(cell.get() + allocations));
    let _ = LIVE_BYTES.try_with(|cell| cell.set(cell.get() + bytes));
}

fn signed(size: usize) -> isize {
    isize::try_from(size).unwrap_or(isize::MAX)
}

// SAFETY: every call is delegated unchanged to the system allocator; the
// wrapper only updates thread-local counters, which never allocate.
#[expect(
    unsafe_code,
    reason = "a global allocator must implement an unsafe trait"
)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(1, signed(layout.size()));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(0, -signed(layout.size()));
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(1, signed(new_size) - signed(layout.size()));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// What a measured closure did on this thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    /// Allocations and reallocations made.
    pub allocations: usize,
    /// Bytes allocated and not freed by the end (negative if it freed more).
    pub net_bytes: isize,
}

/// Runs `f` and reports its allocations on this thread. Meaningful only in
/// a binary whose global allocator is [`CountingAllocator`].
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Measured) {
    let allocations = ALLOCATIONS.with(Cell::get);
    let bytes = LIVE_BYTES.with(Cell::get);
    let result = f();
    let measured = Measured {
        allocations: ALLOCATIONS.with(Cell::get) - allocations,
        net_bytes: LIVE_BYTES.with(Cell::get) - bytes,
    };
    (result, measured)
}

/// The shared folder beside the repository (`EDGEWISE_SHARED`, or
/// `../shared` from the workspace root): third-party test data, never
/// copied into the repository.
pub fn shared_dir() -> std::path::PathBuf {
    std::env::var_os("EDGEWISE_SHARED").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
        std::path::PathBuf::from,
    )
}

/// Prints why a test skips; under `CI=true` a skip fails instead, so nothing
/// silently stops being tested.
///
/// # Panics
/// Under `CI=true`.
pub fn skip(why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "SKIPPED in CI: {why}; CI must not skip"
    );
    eprintln!("SKIPPED: {why}");
}

/// Whether a command is on the PATH.
pub fn have(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Whether the test runs as root.
pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

/// Network namespaces a test created, deleted (with their veth pairs) when
/// dropped, also when the test panics.
pub struct Namespaces(pub Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for namespace in &self.0 {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", namespace])
                .status();
        }
    }
}

/// Runs a command.
///
/// # Panics
/// If it cannot start or fails (with its stderr): a test's set-up step.
pub fn run(args: &[&str]) {
    let out = std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", args[0]));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub mod kubelet;
pub mod pki;
pub mod postgres;

/// A fresh folder `edgewise-NAME-PID` under the temporary directory,
/// removed when dropped unless the thread is panicking (a failed test
/// leaves its files to look at).
pub struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    /// Creates it, empty (what an earlier run left is removed).
    ///
    /// # Panics
    /// When the folder cannot be made.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("edgewise-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        Self(dir)
    }
}

impl std::ops::Deref for ScratchDir {
    type Target = std::path::Path;

    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
