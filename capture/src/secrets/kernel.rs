//! The secret-volume observer (`bpf/secrets.bpf.c`) loaded and attached:
//! the BPF LSM hook `file_open` where the kernel runs BPF LSM, else fentry
//! on `security_file_open`, else the exits of the `open`, `openat` and
//! `openat2` system calls (tracepoints, for kernels that refuse BPF
//! trampolines; tracefs is mounted when it is not) ([`SecretHook`]), the
//! choice reported. Its
//! filter holds the devices of the secret volumes ([`SecretObserver::set_volumes`]);
//! every other open costs one hash lookup in the kernel.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use aya::maps::{HashMap as BpfHashMap, MapData, MapError, PerCpuArray, RingBuf};
use aya::programs::{FEntry, Lsm, ProgramError, TracePoint};
use aya::{Btf, BtfError, Ebpf, EbpfError, EbpfLoader};
use thiserror::Error;

use super::SecretOpen;
use crate::sys;

/// The secret-volume observer object (built by `build.rs`).
pub static SECRETS_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/secrets.bpf.o"));

const PROGRAM_LSM: &str = "secret_open_lsm";
const PROGRAM_FENTRY: &str = "secret_open_fentry";
/// The tracepoint programs, by system call (`open` is missing on some
/// architectures: the other two suffice there).
const PROGRAMS_EXIT: [(&str, &str); 3] = [
    ("secret_exit_openat", "sys_exit_openat"),
    ("secret_exit_openat2", "sys_exit_openat2"),
    ("secret_exit_open", "sys_exit_open"),
];
/// The kernel function every open passes through.
const OPEN_HOOK: &str = "security_file_open";
const MAP_EVENTS: &str = "secret_events";
const MAP_VOLUMES: &str = "secret_volumes";
const MAP_COUNTERS: &str = "secret_counters";

/// The most secret volumes the kernel filter holds (`SECRET_VOLUMES_MAX`).
pub const MAX_VOLUMES: usize = 16_384;

/// Where the observer hooks file opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecretHook {
    /// The first that attaches of: the BPF LSM hook (when the kernel runs
    /// BPF LSM: `bpf` in `/sys/kernel/security/lsm`), fentry, tracepoints.
    #[default]
    Auto,
    /// The BPF LSM hook `file_open`.
    Lsm,
    /// fentry on `security_file_open` (kernels with BTF and BPF
    /// trampolines).
    Fentry,
    /// The exit tracepoints of `open`, `openat` and `openat2` (any kernel
    /// with syscall tracepoints; opens made through `io_uring` are not
    /// seen).
    Tracepoint,
}

impl SecretHook {
    /// `auto`, `lsm` or `fentry`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Lsm => "lsm",
            Self::Fentry => "fentry",
            Self::Tracepoint => "tracepoint",
        }
    }

    /// Reads `auto`, `lsm` or `fentry`.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Auto, Self::Lsm, Self::Fentry, Self::Tracepoint]
            .into_iter()
            .find(|hook| hook.as_str() == text)
    }
}

/// Why the observer could not start or read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SecretObserverError {
    /// The object could not be loaded.
    #[error("loading the secret-volume observer: {0}")]
    Load(#[source] Box<EbpfError>),
    /// The kernel's BTF (which both hooks need) could not be read.
    #[error("reading the kernel's BTF: {0}")]
    Btf(#[source] Box<BtfError>),
    /// The program could not be loaded or attached on the hook.
    #[error("the {hook} hook: {source}")]
    Hook {
        /// `lsm`, `fentry` or `tracepoint`.
        hook: &'static str,
        /// aya's error (with the verifier log when the verifier refused).
        #[source]
        source: Box<ProgramError>,
    },
    /// A map is missing, of the wrong type, or refused an update.
    #[error("map {map}: {source}")]
    Map {
        /// The map.
        map: &'static str,
        /// aya's error.
        #[source]
        source: Box<MapError>,
    },
    /// More secret volumes than the filter holds.
    #[error("{0} secret volumes, more than the {MAX_VOLUMES} the kernel filter holds")]
    TooManyVolumes(usize),
    /// Waiting for events failed.
    #[error("poll on the secret ring buffer: {0}")]
    Poll(#[source] std::io::Error),
}

fn map_error(map: &'static str) -> impl FnOnce(MapError) -> SecretObserverError {
    move |source| SecretObserverError::Map {
        map,
        source: Box::new(source),
    }
}

/// The observer's counters, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecretCounters {
    /// Opens reported.
    pub events: u64,
    /// Opens lost because the ring was full.
    pub lost: u64,
}

/// The secret-volume observer, attached. Dropping it detaches.
pub struct SecretObserver {
    // Field order: the maps before the object they belong to.
    events: RingBuf<MapData>,
    volumes: BpfHashMap<MapData, u32, u8>,
    counters: PerCpuArray<MapData, u64>,
    held: BTreeSet<u32>,
    hook: SecretHook,
    ebpf: Ebpf,
}

impl std::fmt::Debug for SecretObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretObserver")
            .field("hook", &self.hook)
            .field("volumes", &self.held.len())
            .finish_non_exhaustive()
    }
}

/// Whether the kernel runs BPF LSM (`bpf` among the active LSMs). Needs
/// securityfs at `/sys/kernel/security`.
pub fn bpf_lsm_active() -> bool {
    std::fs::read_to_string(Path::new("/sys/kernel/security/lsm"))
        .is_ok_and(|list| list.trim().split(',').any(|lsm| lsm == "bpf"))
}

impl SecretObserver {
    /// Loads the observer and attaches it on `hook` (for
    /// [`SecretHook::Auto`]: LSM when [`bpf_lsm_active`], then fentry, then
    /// the tracepoints, the first that the kernel accepts); its ring holds `ring_bytes` (a
    /// power of two and a multiple of the page size). The filter starts
    /// empty: nothing is reported until [`Self::set_volumes`].
    ///
    /// # Errors
    /// [`SecretObserverError`] naming the step that failed.
    pub fn attach(hook: SecretHook, ring_bytes: u32) -> Result<Self, SecretObserverError> {
        let btf = Btf::from_sys_fs().map_err(|e| SecretObserverError::Btf(Box::new(e)))?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .map_max_entries(MAP_EVENTS, ring_bytes)
            .load(SECRETS_OBJECT)
            .map_err(|e| SecretObserverError::Load(Box::new(e)))?;
        let used = match hook {
            SecretHook::Auto => {
                let lsm = bpf_lsm_active() && attach(&mut ebpf, &btf, SecretHook::Lsm).is_ok();
                if lsm {
                    SecretHook::Lsm
                } else if attach(&mut ebpf, &btf, SecretHook::Fentry).is_ok() {
                    SecretHook::Fentry
                } else {
                    attach(&mut ebpf, &btf, SecretHook::Tracepoint)?;
                    SecretHook::Tracepoint
                }
            }
            hook => {
                attach(&mut ebpf, &btf, hook)?;
                hook
            }
        };
        let mut take = |name: &'static str| {
            ebpf.take_map(name).ok_or(SecretObserverError::Map {
                map: name,
                source: Box::new(MapError::InvalidName {
                    name: name.to_owned(),
                }),
            })
        };
        let events = RingBuf::try_from(take(MAP_EVENTS)?).map_err(map_error(MAP_EVENTS))?;
        let volumes = BpfHashMap::try_from(take(MAP_VOLUMES)?).map_err(map_error(MAP_VOLUMES))?;
        let counters =
            PerCpuArray::try_from(take(MAP_COUNTERS)?).map_err(map_error(MAP_COUNTERS))?;
        Ok(Self {
            events,
            volumes,
            counters,
            held: BTreeSet::new(),
            hook: used,
            ebpf,
        })
    }

    /// The hook attached to (never [`SecretHook::Auto`]).
    pub fn hook(&self) -> SecretHook {
        self.hook
    }

    /// The kernel's run count and run time of the attached programs (both
    /// zero unless `kernel.bpf_stats_enabled` is on): the observer's own
    /// cost per open, the hook's dispatch aside.
    ///
    /// # Errors
    /// [`SecretObserverError::Hook`] if a program's information cannot be
    /// read.
    pub fn kernel_time(&self) -> Result<(u64, Duration), SecretObserverError> {
        let names: &[&str] = match self.hook {
            SecretHook::Lsm => &[PROGRAM_LSM],
            SecretHook::Fentry => &[PROGRAM_FENTRY],
            SecretHook::Tracepoint | SecretHook::Auto => {
                &[PROGRAMS_EXIT[0].0, PROGRAMS_EXIT[1].0, PROGRAMS_EXIT[2].0]
            }
        };
        let (mut runs, mut time) = (0, Duration::ZERO);
        for name in names {
            let Some(program) = self.ebpf.program(name).filter(|p| p.fd().is_ok()) else {
                continue;
            };
            let info = program.info().map_err(|source| SecretObserverError::Hook {
                hook: self.hook.as_str(),
                source: Box::new(source),
            })?;
            runs += info.run_count();
            time += info.run_time();
        }
        Ok((runs, time))
    }

    /// Makes the kernel filter hold exactly these devices (secret volumes'
    /// [`super::SecretVolume::dev`]): the new are added, the gone removed.
    ///
    /// # Errors
    /// [`SecretObserverError::TooManyVolumes`] (nothing changed), or a map
    /// update that failed.
    pub fn set_volumes(
        &mut self,
        devs: impl IntoIterator<Item = u32>,
    ) -> Result<(), SecretObserverError> {
        let wanted: BTreeSet<u32> = devs.into_iter().collect();
        if wanted.len() > MAX_VOLUMES {
            return Err(SecretObserverError::TooManyVolumes(wanted.len()));
        }
        for gone in self.held.difference(&wanted).copied().collect::<Vec<_>>() {
            match self.volumes.remove(&gone) {
                Ok(()) | Err(MapError::KeyNotFound) => {}
                Err(error) => return Err(map_error(MAP_VOLUMES)(error)),
            }
            self.held.remove(&gone);
        }
        for new in wanted.difference(&self.held).copied().collect::<Vec<_>>() {
            self.volumes
                .insert(new, 1, 0)
                .map_err(map_error(MAP_VOLUMES))?;
            self.held.insert(new);
        }
        Ok(())
    }

    /// Waits up to `timeout` for opens and hands each to `on_open`
    /// (records that do not decode are skipped); returns how many were
    /// read.
    ///
    /// # Errors
    /// [`SecretObserverError::Poll`] if waiting fails.
    pub fn poll(
        &mut self,
        timeout: Duration,
        mut on_open: impl FnMut(SecretOpen),
    ) -> Result<usize, SecretObserverError> {
        let mut read = self.drain(&mut on_open);
        if read == 0 && !timeout.is_zero() {
            use std::os::fd::AsFd;
            sys::wait_readable(self.events.as_fd(), timeout).map_err(SecretObserverError::Poll)?;
            read = self.drain(&mut on_open);
        }
        Ok(read)
    }

    fn drain(&mut self, on_open: &mut impl FnMut(SecretOpen)) -> usize {
        let mut read = 0;
        while let Some(record) = self.events.next() {
            if let Some(open) = SecretOpen::decode(&record) {
                on_open(open);
            }
            read += 1;
        }
        read
    }

    /// The counters.
    ///
    /// # Errors
    /// [`SecretObserverError::Map`] if they cannot be read.
    pub fn counters(&self) -> Result<SecretCounters, SecretObserverError> {
        let read = |index: u32| {
            self.counters
                .get(&index, 0)
                .map(|values| values.iter().sum())
                .map_err(map_error(MAP_COUNTERS))
        };
        Ok(SecretCounters {
            events: read(0)?,
            lost: read(1)?,
        })
    }
}

/// Mounts tracefs at `/sys/kernel/tracing` when nothing is there (aya
/// reads tracepoint ids from it); a failure shows in the attach that
/// follows.
fn ensure_tracefs() {
    let at = Path::new("/sys/kernel/tracing");
    if std::fs::read_dir(at).is_ok_and(|mut entries| entries.next().is_none()) {
        sys::mount_tracefs(at);
    }
}

fn program<'a>(
    ebpf: &'a mut Ebpf,
    name: &str,
) -> Result<&'a mut aya::programs::Program, ProgramError> {
    ebpf.program_mut(name)
        .ok_or(ProgramError::UnexpectedProgramType)
}

/// Loads and attaches the program of `hook` (not `Auto`).
fn attach(ebpf: &mut Ebpf, btf: &Btf, hook: SecretHook) -> Result<(), SecretObserverError> {
    let fail = |source| SecretObserverError::Hook {
        hook: hook.as_str(),
        source: Box::new(source),
    };
    match hook {
        SecretHook::Lsm => {
            let lsm: &mut Lsm = program(ebpf, PROGRAM_LSM)
                .and_then(TryInto::try_into)
                .map_err(fail)?;
            lsm.load("file_open", btf).map_err(fail)?;
            lsm.attach().map_err(fail)?;
        }
        SecretHook::Fentry => {
            let fentry: &mut FEntry = program(ebpf, PROGRAM_FENTRY)
                .and_then(TryInto::try_into)
                .map_err(fail)?;
            fentry.load(OPEN_HOOK, btf).map_err(fail)?;
            fentry.attach().map_err(fail)?;
        }
        SecretHook::Tracepoint | SecretHook::Auto => {
            ensure_tracefs();
            let mut attached = 0;
            let mut last = None;
            for (name, tracepoint) in PROGRAMS_EXIT {
                let done = program(ebpf, name).and_then(TryInto::try_into).and_then(
                    |program: &mut TracePoint| {
                        program.load()?;
                        program.attach("syscalls", tracepoint)
                    },
                );
                match done {
                    Ok(_) => attached += 1,
                    Err(error) => last = Some(error),
                }
            }
            if attached < 2
                && let Some(error) = last
            {
                return Err(fail(error));
            }
        }
    }
    Ok(())
}
