//! Reads of mounted secrets, as a node shows them: which tmpfs mounts are
//! a pod's secret volumes ([`secret_volumes`], from the mount table), which
//! pod a cgroup belongs to ([`pod_uid_of_cgroup`], from the kubelet's
//! cgroup names), and the secret-volume observer's events
//! ([`SecretOpen::decode`]).
//!
//! The kubelet mounts each `secret` and `projected` volume of a pod as a
//! tmpfs at `ROOT/pods/UID/volumes/kubernetes.io~secret/VOLUME` (or
//! `kubernetes.io~projected`); containers reach it through bind mounts of
//! the same superblock, so its device number names it wherever it is
//! opened from. The observer ([`kernel`], behind the `kernel` feature)
//! reports opens for reading of regular files on those devices.
//!
//! Everything here is parsing, without I/O: the mount table and cgroup
//! paths are handed in, and a line or name that does not have the
//! expected shape is skipped, never a panic.

#[cfg(feature = "kernel")]
pub mod cgroups;
#[cfg(feature = "kernel")]
pub mod kernel;
#[cfg(feature = "kernel")]
pub mod watch;

#[cfg(feature = "kernel")]
pub use cgroups::{CgroupLookup, CgroupPaths};
#[cfg(feature = "kernel")]
pub use kernel::{SECRETS_OBJECT, SecretCounters, SecretHook, SecretObserver, SecretObserverError};
#[cfg(feature = "kernel")]
pub use watch::MountTable;

use edgewise_time::MonotonicNanos;

/// A secret volume's kind, as the kubelet names its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VolumeKind {
    /// `kubernetes.io~secret`: one Secret's keys.
    Secret,
    /// `kubernetes.io~projected`: several sources (the service account
    /// token, Secrets, ConfigMaps, the downward API).
    Projected,
}

impl VolumeKind {
    /// `secret` or `projected`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::Projected => "projected",
        }
    }
}

/// A pod's secret volume, mounted on this node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretVolume {
    /// The tmpfs's device number, as the kernel encodes it
    /// (`major << 20 | minor`).
    pub dev: u32,
    /// The pod's uid.
    pub pod_uid: String,
    /// Secret or projected.
    pub kind: VolumeKind,
    /// The volume's name in the pod's spec.
    pub volume: String,
}

/// One line of a mount table (`/proc/PID/mountinfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The device number, as the kernel encodes it.
    pub dev: u32,
    /// Where it is mounted (escapes undone).
    pub mount_point: String,
    /// The filesystem type (`tmpfs`, `cgroup2`, ...).
    pub fstype: String,
}

/// The mounts of a mount table, in its order; lines that do not read are
/// skipped.
pub fn mounts(mountinfo: &str) -> Vec<Mount> {
    mountinfo.lines().filter_map(mount).collect()
}

fn mount(line: &str) -> Option<Mount> {
    // ID PARENT MAJOR:MINOR ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER
    let mut fields = line.split(' ');
    let (_id, _parent) = (fields.next()?, fields.next()?);
    let (major, minor) = fields.next()?.split_once(':')?;
    let (major, minor): (u32, u32) = (major.parse().ok()?, minor.parse().ok()?);
    if major >= 1 << 12 || minor >= 1 << 20 {
        return None;
    }
    let _root = fields.next()?;
    let mount_point = unescape(fields.next()?)?;
    let fstype = fields.skip_while(|field| *field != "-").nth(1)?;
    Some(Mount {
        dev: major << 20 | minor,
        mount_point,
        fstype: fstype.to_owned(),
    })
}

/// Undoes the mount table's octal escapes (`\040` for a space).
fn unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'\\' {
            let digits = bytes.get(index + 1..index + 4)?;
            let text = core::str::from_utf8(digits).ok()?;
            out.push(u8::from_str_radix(text, 8).ok()?);
            index += 4;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The pods' secret volumes mounted in a mount table: tmpfs mounts at
/// `.../pods/UID/volumes/kubernetes.io~secret/VOLUME` (or
/// `~projected`), one per device (bind mounts of the same volume elsewhere
/// share it).
pub fn secret_volumes(mountinfo: &str) -> Vec<SecretVolume> {
    let mut volumes: Vec<SecretVolume> = Vec::new();
    for mount in mounts(mountinfo) {
        if mount.fstype != "tmpfs" || volumes.iter().any(|v| v.dev == mount.dev) {
            continue;
        }
        if let Some(volume) = volume_at(&mount.mount_point, mount.dev) {
            volumes.push(volume);
        }
    }
    volumes
}

fn volume_at(mount_point: &str, dev: u32) -> Option<SecretVolume> {
    let mut parts = mount_point.rsplit('/');
    let volume = parts.next()?;
    let kind = match parts.next()? {
        "kubernetes.io~secret" => VolumeKind::Secret,
        "kubernetes.io~projected" => VolumeKind::Projected,
        _ => return None,
    };
    if parts.next()? != "volumes" {
        return None;
    }
    let pod_uid = parts.next()?;
    if parts.next()? != "pods" || !is_uid(pod_uid) || !is_volume_name(volume) {
        return None;
    }
    Some(SecretVolume {
        dev,
        pod_uid: pod_uid.to_owned(),
        kind,
        volume: volume.to_owned(),
    })
}

/// A Kubernetes uid as the kubelet writes it in paths (lower-case hex and
/// dashes).
fn is_uid(text: &str) -> bool {
    (8..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-')
}

/// A volume name (an RFC 1123 label).
fn is_volume_name(text: &str) -> bool {
    (1..=63).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The uid of the pod a cgroup belongs to, from the kubelet's cgroup
/// names: `kubepods-besteffort-pod<UID with _>.slice` under the systemd
/// driver, `pod<UID>` under cgroupfs (the pod's own cgroup or any below
/// it, such as a container's). None for a cgroup outside any pod.
pub fn pod_uid_of_cgroup(path: &str) -> Option<String> {
    path.split('/').rev().find_map(|part| {
        let name = part.strip_suffix(".slice").unwrap_or(part);
        let at = name.rfind("pod")?;
        if at > 0 && name.as_bytes()[at - 1] != b'-' {
            return None;
        }
        let uid = name[at + 3..].replace('_', "-");
        is_uid(&uid).then_some(uid)
    })
}

/// Names kept of an opened file's path (innermost first in the event).
pub const PATH_DEPTH: usize = 4;
/// Bytes kept of each name, with its NUL.
pub const NAME_MAX_BYTES: usize = 64;

/// The size of the observer's event record.
pub const SECRET_EVENT_BYTES: usize = 8 + 8 + 4 + 4 + 16 + 8 + PATH_DEPTH * NAME_MAX_BYTES;

/// An open of a file in a secret volume, as the observer reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretOpen {
    /// When, on the kernel's monotonic clock (turn it into Unix time with
    /// the offset of [`crate::clock_offset`]).
    pub time: MonotonicNanos,
    /// The opener's cgroup v2 id.
    pub cgroup_id: u64,
    /// The opener's process id (in the node's pid namespace).
    pub pid: u32,
    /// The opener's command (at most 15 bytes, as the kernel keeps it).
    pub command: String,
    /// The volume's device (see [`SecretVolume::dev`]).
    pub dev: u32,
    /// The file's path inside the volume, without the kubelet's
    /// timestamped folder (`token`, not `..2024_11_30_.../token`).
    pub file: String,
    /// The path was deeper than the names kept: `file` is its tail.
    pub truncated: bool,
}

impl SecretOpen {
    /// Decodes one ring record; None when it is not one.
    pub fn decode(record: &[u8]) -> Option<Self> {
        if record.len() < SECRET_EVENT_BYTES {
            return None;
        }
        let u64_at =
            |at: usize| u64::from_ne_bytes(record[at..at + 8].try_into().unwrap_or_default());
        let u32_at =
            |at: usize| u32::from_ne_bytes(record[at..at + 4].try_into().unwrap_or_default());
        let depth = usize::from(record[40]).min(PATH_DEPTH);
        let names: Vec<String> = (0..depth)
            .map(|index| c_string(&record[48 + index * NAME_MAX_BYTES..][..NAME_MAX_BYTES]))
            .collect();
        Some(Self {
            time: MonotonicNanos::from_nanos(u64_at(0)),
            cgroup_id: u64_at(8),
            pid: u32_at(16),
            dev: u32_at(20),
            command: c_string(&record[24..40]),
            file: volume_path(names.iter().rev().map(String::as_str)),
            truncated: record[41] != 0,
        })
    }
}

/// Text up to the first NUL, lossily decoded.
fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// A path inside a volume from its names (outermost first), without the
/// kubelet's atomic-writer folder (`..2024_11_30_12_00_00.123456789`) or
/// `..data`.
pub fn volume_path<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    let skip = usize::from(names.first().is_some_and(|first| first.starts_with("..")));
    names[skip..].join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "6f1a3f4e-5b2c-4d7e-9a10-2b3c4d5e6f70";

    #[test]
    fn secret_volumes_are_found_by_their_kubelet_path_once_per_device() {
        let table = format!(
            "22 1 0:21 / /sys rw - sysfs sysfs rw\n\
             300 29 0:77 / /var/lib/kubelet/pods/{UID}/volumes/kubernetes.io~secret/db-creds rw,relatime - tmpfs tmpfs rw,size=1024k\n\
             301 29 0:78 / /var/lib/kubelet/pods/{UID}/volumes/kubernetes.io~projected/kube-api-access-x2x4 rw - tmpfs tmpfs rw\n\
             302 29 0:79 / /var/lib/kubelet/pods/{UID}/volumes/kubernetes.io~empty-dir/cache rw - tmpfs tmpfs rw\n\
             303 40 0:77 / /run/containerd/x/rootfs/etc/creds ro shared:5 master:3 - tmpfs tmpfs rw\n\
             304 29 0:80 / /data/kubelet\\040root/pods/{UID}/volumes/kubernetes.io~secret/tls rw - tmpfs tmpfs rw\n\
             305 29 8:1 / /var/lib/kubelet/pods/{UID}/volumes/kubernetes.io~secret/on-disk rw - ext4 /dev/sda1 rw\n\
             garbage line\n\
             306 29 0:81 / /var/lib/kubelet/pods/NOT_A_UID/volumes/kubernetes.io~secret/x rw - tmpfs tmpfs rw\n"
        );
        let volumes = secret_volumes(&table);
        let found: Vec<(u32, VolumeKind, &str)> = volumes
            .iter()
            .map(|v| (v.dev, v.kind, v.volume.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (77, VolumeKind::Secret, "db-creds"),
                (78, VolumeKind::Projected, "kube-api-access-x2x4"),
                (80, VolumeKind::Secret, "tls"),
            ]
        );
        assert!(volumes.iter().all(|v| v.pod_uid == UID));
        let cgroup = mounts("30 1 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
        assert_eq!(cgroup[0].fstype, "cgroup2");
        assert_eq!(mounts("1 2 259:3 / / rw - ext4 x rw")[0].dev, 259 << 20 | 3);
    }

    #[test]
    fn pods_are_found_in_both_cgroup_drivers_layouts() {
        let underscored = UID.replace('-', "_");
        for path in [
            format!(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{underscored}.slice/cri-containerd-abc.scope"
            ),
            format!("/kubepods.slice/kubepods-pod{underscored}.slice"),
            format!("/kubepods/burstable/pod{UID}/0123abcd"),
            format!("/kubepods/pod{UID}"),
        ] {
            assert_eq!(pod_uid_of_cgroup(&path).as_deref(), Some(UID), "{path}");
        }
        for path in [
            "/system.slice/sshd.service",
            "/",
            "/user.slice/ipod-fan",
            "/kubepods/besteffort",
        ] {
            assert_eq!(pod_uid_of_cgroup(path), None, "{path}");
        }
    }

    #[test]
    fn events_decode_and_drop_the_atomic_writer_folder() {
        let mut record = vec![0u8; SECRET_EVENT_BYTES];
        record[0..8].copy_from_slice(&7u64.to_ne_bytes());
        record[8..16].copy_from_slice(&99u64.to_ne_bytes());
        record[16..20].copy_from_slice(&1234u32.to_ne_bytes());
        record[20..24].copy_from_slice(&77u32.to_ne_bytes());
        record[24..27].copy_from_slice(b"cat");
        record[40] = 2;
        record[48..53].copy_from_slice(b"token");
        let folder = b"..2026_12_01_04_00_00.123456789";
        record[48 + NAME_MAX_BYTES..48 + NAME_MAX_BYTES + folder.len()].copy_from_slice(folder);
        let open = SecretOpen::decode(&record).unwrap();
        assert_eq!(
            (open.time, open.cgroup_id, open.pid, open.dev),
            (MonotonicNanos::from_nanos(7), 99, 1234, 77)
        );
        assert_eq!(
            (open.command.as_str(), open.file.as_str()),
            ("cat", "token")
        );
        assert!(!open.truncated);
        assert_eq!(SecretOpen::decode(&record[..100]), None);
        assert_eq!(volume_path(["sub", "key"].into_iter()), "sub/key");
    }
}
