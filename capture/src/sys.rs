//! Where the crate meets the kernel outside aya: the system calls aya does
//! not wrap (`setns`, `poll`, `clock_gettime`), the map key and value types the
//! programs share (`bpf/event.h`), and the kernel's way of counting time.
//! Every `unsafe` block of the crate is here.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Runs `f` with the calling thread in the network namespace of `netns`
/// (such as `/run/netns/NAME`), then returns the thread to the namespace
/// it was in. Interface names in `f` resolve in that namespace.
///
/// # Errors
/// The `open` or `setns` error, naming the call and the path.
pub(crate) fn in_netns<T>(netns: &Path, f: impl FnOnce() -> T) -> io::Result<T> {
    let home = File::open("/proc/thread-self/ns/net")
        .map_err(|e| io::Error::new(e.kind(), format!("open /proc/thread-self/ns/net: {e}")))?;
    let target = File::open(netns)
        .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", netns.display())))?;
    setns(&target)
        .map_err(|e| io::Error::new(e.kind(), format!("setns {}: {e}", netns.display())))?;
    let result = f();
    // Returning can only fail if the original namespace vanished, which a
    // namespace we were in cannot; if it did, the thread must not go on.
    setns(&home).expect("setns back to the thread's own network namespace");
    Ok(result)
}

fn setns(namespace: &File) -> io::Result<()> {
    // SAFETY: `namespace` is an open file, so its descriptor is valid for
    // the duration of the call; setns only reads it.
    #[expect(unsafe_code, reason = "setns(2) has no safe wrapper in std or aya")]
    let status = unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) };
    if status == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Waits until `fd` is readable or `timeout` passes; whether it is.
///
/// # Errors
/// The `poll` error.
pub(crate) fn wait_readable(
    fd: std::os::fd::BorrowedFd<'_>,
    timeout: std::time::Duration,
) -> io::Result<bool> {
    let mut entry = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `entry` is one valid pollfd that outlives the call, and the
    // count passed is 1; `fd` is borrowed, so it stays open during it.
    #[expect(unsafe_code, reason = "poll(2) has no safe wrapper in std")]
    let ready = unsafe { libc::poll(&raw mut entry, 1, millis) };
    match ready {
        -1 => {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(error)
            }
        }
        0 => Ok(false),
        _ => Ok(true),
    }
}

/// `struct edge_key` of `bpf/event.h`: a banned edge as the map keys it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct EdgeKey {
    pub(crate) src: [u8; 16],
    pub(crate) dst: [u8; 16],
    pub(crate) dst_port: u16,
    pub(crate) protocol: u8,
    pub(crate) family: u8,
    pub(crate) pad: u32,
}

/// `struct ban` of `bpf/event.h`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct BanValue {
    pub(crate) expires_ns: u64,
    pub(crate) drops: u64,
    pub(crate) reported_ns: u64,
    pub(crate) reported_drops: u64,
}

const _: () = assert!(size_of::<EdgeKey>() == 40 && size_of::<BanValue>() == 32);

// SAFETY: both are `repr(C)` structs of integers and byte arrays with
// explicit padding fields (no implicit padding, asserted sizes), so every
// bit pattern is a valid value, as `aya::Pod` requires.
#[expect(unsafe_code, reason = "aya::Pod is an unsafe marker trait")]
unsafe impl aya::Pod for EdgeKey {}
// SAFETY: as above.
#[expect(unsafe_code, reason = "aya::Pod is an unsafe marker trait")]
unsafe impl aya::Pod for BanValue {}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock of `bpf_ktime_get_ns`.
pub(crate) fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec that outlives the call;
    // CLOCK_MONOTONIC always exists on Linux.
    #[expect(
        unsafe_code,
        reason = "clock_gettime(2) with a raw clock id has no safe wrapper in std"
    )]
    let status = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut now) };
    debug_assert_eq!(status, 0);
    u64::try_from(now.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(now.tv_nsec).unwrap_or(0)
}

/// A duration in nanoseconds, as the kernel programs count time (saturating
/// at `u64::MAX`, some 584 years).
pub(crate) fn nanos(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
