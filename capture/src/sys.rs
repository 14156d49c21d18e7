//! Where the crate meets the kernel outside aya: the system calls aya does
//! not wrap (`setns`, `poll`, `clock_gettime`, `if_nametoindex`, packet
//! sockets), the map key and value types the programs share
//! (`bpf/event.h`), and the kernel's way of counting time. Every `unsafe`
//! block of the crate is here.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
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

/// The index of the interface `name` in the calling thread's network
/// namespace.
///
/// # Errors
/// `NotFound` when there is no such interface (or the name cannot be one).
pub(crate) fn if_index(name: &str) -> io::Result<u32> {
    let not_found = || io::Error::new(io::ErrorKind::NotFound, "no such interface");
    let name = std::ffi::CString::new(name).map_err(|_| not_found())?;
    // SAFETY: `name` is a valid NUL-terminated string that outlives the
    // call, which only reads it.
    #[expect(unsafe_code, reason = "if_nametoindex(3) has no safe wrapper in std")]
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        Err(not_found())
    } else {
        Ok(index)
    }
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
    wait_any(&[fd], timeout)
}

/// Waits until one of `fds` is readable or `timeout` passes; whether one
/// is.
///
/// # Errors
/// The `poll` error.
pub(crate) fn wait_any(
    fds: &[std::os::fd::BorrowedFd<'_>],
    timeout: std::time::Duration,
) -> io::Result<bool> {
    let mut entries: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    if entries.is_empty() {
        std::thread::sleep(timeout);
        return Ok(false);
    }
    let count = libc::nfds_t::try_from(entries.len()).unwrap_or(libc::nfds_t::MAX);
    // SAFETY: `entries` holds `count` valid pollfds and outlives the call;
    // the descriptors are borrowed, so they stay open during it.
    #[expect(unsafe_code, reason = "poll(2) has no safe wrapper in std")]
    let ready = unsafe { libc::poll(entries.as_mut_ptr(), count, millis) };
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

/// `PACKET_OUTGOING`: a packet the host sent.
pub(crate) const PACKET_OUTGOING: u8 = 4;

/// A packet socket (`AF_PACKET`, `SOCK_DGRAM`: packets from their network
/// header) on the interface of index `index` in the calling thread's
/// namespace, non-blocking, with `filter` (classic BPF) attached before it
/// is bound so that it never receives a packet the filter would refuse,
/// and a receive buffer of `buffer_bytes`.
///
/// # Errors
/// The failing call's error, naming it.
pub(crate) fn packet_socket(
    index: u32,
    filter: &[libc::sock_filter],
    buffer_bytes: u32,
) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let named = |call: &str| {
        let error = io::Error::last_os_error();
        io::Error::new(error.kind(), format!("{call}: {error}"))
    };
    // SAFETY: plain system call with constant arguments; protocol 0 means
    // nothing is received until the bind below.
    #[expect(unsafe_code, reason = "socket(2) for AF_PACKET has no safe wrapper")]
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if raw < 0 {
        return Err(named("socket(AF_PACKET)"));
    }
    // SAFETY: `raw` is a descriptor just returned by socket(2), owned by
    // nothing else.
    #[expect(unsafe_code, reason = "taking ownership of a new descriptor")]
    let socket = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
    let program = libc::sock_fprog {
        len: u16::try_from(filter.len()).unwrap_or(u16::MAX),
        filter: filter.as_ptr().cast_mut(),
    };
    set_option(&socket, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &program)
        .map_err(|_| named("setsockopt(SO_ATTACH_FILTER)"))?;
    let buffer = libc::c_int::try_from(buffer_bytes).unwrap_or(libc::c_int::MAX);
    // SO_RCVBUFFORCE needs CAP_NET_ADMIN; without it the capped size is fine.
    if set_option(&socket, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &buffer).is_err() {
        let _ = set_option(&socket, libc::SOL_SOCKET, libc::SO_RCVBUF, &buffer);
    }
    // Every packet stamped as the kernel queues it (`packet_received_ns`),
    // from the first one on.
    let on: libc::c_int = 1;
    set_option(&socket, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &on)
        .map_err(|_| named("setsockopt(SO_TIMESTAMPNS)"))?;
    // SAFETY: an all-zero sockaddr_ll is a valid value of the type.
    #[expect(unsafe_code, reason = "zeroed C struct")]
    let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    address.sll_family = u16::try_from(libc::AF_PACKET).unwrap_or_default();
    address.sll_protocol = u16::try_from(libc::ETH_P_ALL).unwrap_or_default().to_be();
    address.sll_ifindex = libc::c_int::try_from(index).unwrap_or(0);
    let length = libc::socklen_t::try_from(size_of::<libc::sockaddr_ll>()).unwrap_or(0);
    // SAFETY: `address` is a valid sockaddr_ll of `length` bytes that
    // outlives the call; the socket is open.
    #[expect(unsafe_code, reason = "bind(2) of a sockaddr_ll has no safe wrapper")]
    let status = unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&raw const address).cast::<libc::sockaddr>(),
            length,
        )
    };
    if status != 0 {
        return Err(named("bind(AF_PACKET)"));
    }
    Ok(socket)
}

fn set_option<T>(
    socket: &std::os::fd::OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    let length = libc::socklen_t::try_from(size_of::<T>()).unwrap_or(0);
    // SAFETY: `value` points at a valid `T` of `length` bytes that outlives
    // the call, which only reads it; the socket is open.
    #[expect(unsafe_code, reason = "setsockopt(2) has no safe wrapper in std")]
    let status = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(value).cast::<libc::c_void>(),
            length,
        )
    };
    if status == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads one packet into `buffer` without waiting: its length and the
/// kernel's packet type (`PACKET_HOST`, `PACKET_OUTGOING`, ...), or `None`
/// when none waits.
///
/// # Errors
/// The `recvfrom` error.
pub(crate) fn receive_packet(
    socket: std::os::fd::BorrowedFd<'_>,
    buffer: &mut [u8],
) -> io::Result<Option<(usize, u8)>> {
    loop {
        // SAFETY: an all-zero sockaddr_ll is a valid value of the type.
        #[expect(unsafe_code, reason = "zeroed C struct")]
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut length = libc::socklen_t::try_from(size_of::<libc::sockaddr_ll>()).unwrap_or(0);
        // SAFETY: `buffer` is valid for writes of its length, `address` for
        // `length` bytes; both outlive the call; the socket is open.
        #[expect(unsafe_code, reason = "recvfrom(2) has no safe wrapper in std")]
        let read = unsafe {
            libc::recvfrom(
                socket.as_raw_fd(),
                buffer.as_mut_ptr().cast::<libc::c_void>(),
                buffer.len(),
                libc::MSG_DONTWAIT,
                (&raw mut address).cast::<libc::sockaddr>(),
                &raw mut length,
            )
        };
        if let Ok(read) = usize::try_from(read) {
            return Ok(Some((read.min(buffer.len()), address.sll_pkttype)));
        }
        let error = io::Error::last_os_error();
        match error.kind() {
            io::ErrorKind::WouldBlock => return Ok(None),
            io::ErrorKind::Interrupted => {}
            _ => return Err(error),
        }
    }
}

/// `SIOCGSTAMPNS` (linux/sockios.h, 0x8907; `SIOCGSTAMPNS_OLD`, whose
/// `timespec` is the 64-bit one on 64-bit hosts): when the kernel received
/// the packet last read from a socket. libc does not name it.
const SIOCGSTAMPNS: libc::c_ulong = 0x8907;

/// When the kernel received the packet last read from `socket`, in
/// nanoseconds of the real-time clock (sockets made by `packet_socket`
/// have every packet stamped).
///
/// # Errors
/// The `ioctl` error (`ENOENT` for a packet that was not stamped).
pub(crate) fn packet_received_ns(socket: std::os::fd::BorrowedFd<'_>) -> io::Result<u64> {
    let mut stamp = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `stamp` is a valid timespec that outlives the call, the
    // size SIOCGSTAMPNS writes on a 64-bit host; the socket is open.
    #[expect(unsafe_code, reason = "ioctl(2) has no safe wrapper in std")]
    let status = unsafe { libc::ioctl(socket.as_raw_fd(), SIOCGSTAMPNS, &raw mut stamp) };
    if status != 0 {
        return Err(io::Error::last_os_error());
    }
    let seconds = u64::try_from(stamp.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(stamp.tv_nsec).unwrap_or(0);
    Ok(seconds.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// The real-time clock, in nanoseconds since the Unix epoch.
pub(crate) fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The packets a packet socket received and dropped (its buffer was full)
/// since the last call (`PACKET_STATISTICS` resets them).
///
/// # Errors
/// The `getsockopt` error.
pub(crate) fn packet_statistics(socket: std::os::fd::BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let mut statistics = libc::tpacket_stats {
        tp_packets: 0,
        tp_drops: 0,
    };
    let mut length = libc::socklen_t::try_from(size_of::<libc::tpacket_stats>()).unwrap_or(0);
    // SAFETY: `statistics` is valid for writes of `length` bytes and
    // outlives the call; the socket is open.
    #[expect(unsafe_code, reason = "getsockopt(2) has no safe wrapper in std")]
    let status = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&raw mut statistics).cast::<libc::c_void>(),
            &raw mut length,
        )
    };
    if status == 0 {
        Ok((
            u64::from(statistics.tp_packets),
            u64::from(statistics.tp_drops),
        ))
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Mounts tracefs at `at` (best effort: a failure shows when a tracepoint
/// is attached).
pub(crate) fn mount_tracefs(at: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(target) = std::ffi::CString::new(at.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: every pointer is a NUL-terminated string that outlives the
    // call; no data argument.
    #[expect(unsafe_code, reason = "mount(2) has no safe wrapper in std")]
    let _status = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            target.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
}

/// Whether `fd` signals a priority event now (a mount table that changed
/// signals `POLLPRI`), without waiting.
///
/// # Errors
/// The `poll` error.
pub(crate) fn priority_event(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<bool> {
    let mut entry = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLPRI,
        revents: 0,
    };
    // SAFETY: one valid pollfd that outlives the call; the descriptor is
    // borrowed, so it stays open during it.
    #[expect(unsafe_code, reason = "poll(2) has no safe wrapper in std")]
    let ready = unsafe { libc::poll(&raw mut entry, 1, 0) };
    if ready < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ready > 0 && entry.revents & (libc::POLLPRI | libc::POLLERR) != 0)
}

/// `ARPHRD_ETHER`: an Ethernet header comes first.
pub(crate) const ARPHRD_ETHER: u16 = 1;
/// `ARPHRD_LOOPBACK`: loopback, with an Ethernet-shaped header.
pub(crate) const ARPHRD_LOOPBACK: u16 = 772;

/// The link type (`ARPHRD_*`) of interface `name` in the calling thread's
/// network namespace (`SIOCGIFHWADDR`: the hardware address's family).
///
/// # Errors
/// The socket's or the `ioctl`'s error (`ENODEV` for no such interface).
pub(crate) fn link_type(name: &str) -> io::Result<u16> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no such interface"));
    }
    // SAFETY: socket(2) with constant arguments; the descriptor is owned
    // at once.
    #[expect(unsafe_code, reason = "socket(2) has no safe wrapper in std")]
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a descriptor this call just opened and nothing else owns.
    #[expect(unsafe_code, reason = "taking ownership of a raw descriptor")]
    let socket = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data for which all zeroes is a valid value.
    #[expect(unsafe_code, reason = "zeroing a C struct")]
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (at, byte) in bytes.iter().enumerate() {
        request.ifr_name[at] = libc::c_char::from_ne_bytes([*byte]);
    }
    // SAFETY: `request` is a valid ifreq with a NUL-terminated name (the
    // name is shorter than IFNAMSIZ and the rest is zero) that outlives
    // the call; SIOCGIFHWADDR writes only into it.
    #[expect(unsafe_code, reason = "ioctl(2) has no safe wrapper in std")]
    let status = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFHWADDR, &raw mut request) };
    if status < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFHWADDR filled the union's hardware-address member.
    #[expect(unsafe_code, reason = "reading the union member the ioctl wrote")]
    let family = unsafe { request.ifr_ifru.ifru_hwaddr.sa_family };
    Ok(family)
}
