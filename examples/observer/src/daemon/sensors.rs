//! `edgewise run`'s sensors: one per interface group, following the links
//! of the observed namespace (`edgewise_capture::follow`).
//!
//! - `observe_interfaces` (ingress and egress) and
//!   `observe_egress_interfaces` (egress only, limited to packets from
//!   `pod_cidrs` when set) are each their own sensor, so the limit does not
//!   touch the first. Names, globs (`cali*`, `lxc*`) and `auto`.
//! - The eBPF observers (`tcx`, `clsact`, `xdp`) or, with `af_packet`,
//!   packet sockets that observe only: a ban is then refused, said once in
//!   the log and in each `rule` record (`"enforced": false`).
//! - An interface that appears later is attached, one that goes is
//!   released, each logged once; a listed name that does not exist is a
//!   warning and is attached when it appears; an attach that fails is
//!   logged, counted in `stats` (`interface_failures`), `/metrics` and
//!   `/healthz`, and the rest keep running.
//! - The first sensor's drop map is pinned in `bpf_pin_dir` when bpffs
//!   allows, so another process can ban through it and bans outlive a
//!   restart; a ban goes into every sensor's drop map.

use std::collections::BTreeMap;
use std::time::Duration;

use edgewise_capture::{
    AttachMode, Capture, CaptureConfig, CaptureError, Change, Counters, Direction, Event,
    EventError, Follower, InterfacePattern, PacketCapture, Sensor,
};
use edgewise_edge_set::EdgeKey;

use super::config::Settings;
use super::{DaemonError, live::DEFAULT_PIN_DIR};

/// The sensors and the links they follow.
pub struct Sensors {
    follower: Follower<Box<dyn Sensor>>,
    /// A refused ban was said in the log (said once).
    refusal_said: bool,
}

/// What the sensors' state says for `stats`, `/metrics` and `/healthz`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SensorHealth {
    /// Attachments now.
    pub attached: usize,
    /// `INTERFACE DIRECTION` -> why its attach failed.
    pub failures: BTreeMap<String, String>,
    /// Listed interfaces that do not exist (yet).
    pub missing: Vec<String>,
}

impl SensorHealth {
    /// The `/healthz` body: `ok` and a line per failure or missing name.
    pub fn detail(&self) -> String {
        use std::fmt::Write;
        let mut text = format!("ok\nattached: {}\n", self.attached);
        for (what, error) in &self.failures {
            let _ = writeln!(text, "failed: {what}: {error}");
        }
        for name in &self.missing {
            let _ = writeln!(text, "missing: {name}");
        }
        text
    }
}

/// One sensor's settings and what it observes.
struct Group {
    config: CaptureConfig,
    ingress: Vec<InterfacePattern>,
    egress: Vec<InterfacePattern>,
}

fn patterns(names: &[String]) -> Result<Vec<InterfacePattern>, DaemonError> {
    names
        .iter()
        .map(|name| {
            name.parse()
                .map_err(|error: edgewise_capture::follow::BadPattern| {
                    super::config::ConfigError::Invalid {
                        setting: "observe_interfaces",
                        problem: error.to_string(),
                    }
                    .into()
                })
        })
        .collect()
}

/// The sensor groups the settings ask for (see the module docs).
fn groups(settings: &Settings) -> Result<Vec<Group>, DaemonError> {
    let modes = match settings.observe_mode {
        Some(AttachMode::Clsact) => vec![AttachMode::Clsact],
        Some(AttachMode::Xdp) => vec![AttachMode::Xdp, AttachMode::Tcx],
        Some(AttachMode::AfPacket) => vec![AttachMode::AfPacket],
        _ => vec![AttachMode::Tcx],
    };
    let mut base = CaptureConfig::default();
    base.modes = modes;
    base.netns = settings.observe_netns_path();
    base.pin_dir = Some(
        settings
            .bpf_pin_dir
            .clone()
            .unwrap_or_else(|| DEFAULT_PIN_DIR.into()),
    );
    if let Some(bytes) = settings.ring_bytes {
        base.ring_bytes = bytes;
    }
    if let Some(payload) = settings.dns_max_payload {
        base.dns_max_payload = payload;
    }
    if let Some(seconds) = settings.flow_sample_seconds {
        base.flow_sample_window = Duration::from_secs(seconds);
    }
    let mut groups = Vec::new();
    if !settings.observe_interfaces.is_empty() {
        let both = patterns(&settings.observe_interfaces)?;
        groups.push(Group {
            config: base.clone(),
            ingress: both.clone(),
            egress: both,
        });
    }
    if !settings.observe_egress_interfaces.is_empty() {
        groups.push(Group {
            config: {
                let mut config = base;
                config.egress_sources.clone_from(&settings.pod_cidrs);
                // The first sensor holds the pin.
                if !groups.is_empty() {
                    config.pin_dir = None;
                }
                config
            },
            ingress: Vec::new(),
            egress: patterns(&settings.observe_egress_interfaces)?,
        });
    }
    Ok(groups)
}

const fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Egress => "egress",
        _ => "ingress",
    }
}

/// Says what changed, one line each.
fn log_changes(changes: Vec<Change>) {
    for change in changes {
        match change {
            Change::Attached(a) => tracing::info!(
                interface = %a.interface,
                direction = direction_name(a.direction),
                mode = %a.mode,
                "attached"
            ),
            Change::Detached(a) => tracing::info!(
                interface = %a.interface,
                direction = direction_name(a.direction),
                "detached (the interface went or was renamed)"
            ),
            Change::Failed {
                interface,
                direction,
                error,
            } => tracing::warn!(
                %interface,
                direction = direction_name(direction),
                %error,
                "attach failed; the other interfaces keep running"
            ),
        }
    }
}

impl Sensors {
    /// Loads a sensor per group and attaches it to every interface that
    /// matches now.
    ///
    /// # Errors
    /// [`DaemonError`] when no interface is configured (and no secret
    /// reads are observed either), a program cannot be loaded, netlink
    /// cannot be read or `auto` has no default route.
    pub fn start(settings: &Settings) -> Result<Self, DaemonError> {
        let groups = groups(settings)?;
        if groups.is_empty() && !settings.secret_reads {
            return Err(super::config::ConfigError::Invalid {
                setting: "observe_interfaces",
                problem:
                    "no interface to observe (observe_interfaces or observe_egress_interfaces), nor secret_reads"
                        .to_owned(),
            }
            .into());
        }
        let mut follower = Follower::new(settings.observe_netns_path().as_deref())?;
        for (at, group) in groups.into_iter().enumerate() {
            let sensor: Box<dyn Sensor> = if group.config.modes == [AttachMode::AfPacket] {
                Box::new(PacketCapture::new(&group.config))
            } else {
                let capture = Capture::load(&group.config)?;
                if at == 0 && capture.pin_dir().is_none() {
                    tracing::warn!(
                        pin_dir = %group.config.pin_dir.as_deref().unwrap_or(std::path::Path::new(DEFAULT_PIN_DIR)).display(),
                        "the drop map is not pinned (no writable bpffs there): bans will not survive a restart; mount one (mount -t bpf bpf DIR) or set bpf_pin_dir"
                    );
                }
                Box::new(capture)
            };
            log_changes(follower.add(sensor, &group.ingress, &group.egress)?);
        }
        for name in follower.missing() {
            tracing::warn!(interface = %name, "no such interface (yet): attached when it appears");
        }
        tracing::info!(
            attachments = follower.attachments().count(),
            mode = %settings.observe_mode.unwrap_or(AttachMode::Tcx),
            "observing"
        );
        Ok(Self {
            follower,
            refusal_said: false,
        })
    }

    /// Waits up to `wait` in all for events and hands each to `on_event`.
    ///
    /// # Errors
    /// [`CaptureError::Poll`] if waiting fails.
    pub fn poll(
        &mut self,
        wait: Duration,
        on_event: &mut dyn FnMut(Result<Event<'_>, EventError>),
    ) -> Result<(), CaptureError> {
        if self.follower.is_empty() {
            // Only secret reads are observed: their turn comes after this.
            std::thread::sleep(wait);
            return Ok(());
        }
        let share = wait / u32::try_from(self.follower.len()).unwrap_or(1).max(1);
        for sensor in self.follower.sensors_mut() {
            sensor.poll_events(share, on_event)?;
        }
        Ok(())
    }

    /// Attaches and releases what netlink says changed (without waiting).
    pub fn follow(&mut self) {
        match self.follower.follow() {
            Ok(changes) => log_changes(changes),
            Err(error) => tracing::warn!(%error, "the interfaces cannot be read now"),
        }
    }

    /// Puts a ban into every sensor's drop map; whether all took it (a
    /// sensor without one, `af_packet`, refuses).
    pub fn ban(&mut self, edge: &EdgeKey, ttl: Duration) -> bool {
        let mut accepted = true;
        for sensor in self.follower.sensors_mut() {
            let Some(table) = sensor.ban_table() else {
                accepted = false;
                if !self.refusal_said {
                    self.refusal_said = true;
                    tracing::warn!(
                        %edge,
                        "observe_mode af_packet observes only: bans are refused (rule records say \"enforced\": false); use tcx, clsact or xdp to enforce"
                    );
                }
                continue;
            };
            if let Err(error) = table.ban(edge, ttl) {
                accepted = false;
                tracing::warn!(%edge, %error, "ban refused");
            }
        }
        accepted
    }

    /// Lifts a ban from every drop map.
    pub fn unban(&mut self, edge: &EdgeKey) {
        for table in self.follower.sensors_mut().filter_map(|s| s.ban_table()) {
            if let Err(error) = table.unban(edge) {
                tracing::warn!(%edge, %error, "unban refused");
            }
        }
    }

    /// The bans the first drop map holds (a restart's), with their time
    /// left.
    pub fn held_bans(&mut self) -> Vec<edgewise_capture::Ban> {
        let Some(table) = self.follower.sensors_mut().find_map(|s| s.ban_table()) else {
            return Vec::new();
        };
        table.bans().unwrap_or_else(|error| {
            tracing::warn!(%error, "the bans held cannot be read");
            Vec::new()
        })
    }

    /// The sensors' counters summed; expired bans swept.
    pub fn counters(&mut self) -> Counters {
        let mut sum = Counters::default();
        for sensor in self.follower.sensors_mut() {
            if let Ok(counters) = sensor.counters() {
                sum.add(&counters);
            }
            if let Some(table) = sensor.ban_table() {
                let _ = table.sweep();
            }
        }
        sum
    }

    /// What is attached, what failed, what is missing.
    pub fn health(&self) -> SensorHealth {
        SensorHealth {
            attached: self.follower.attachments().count(),
            failures: self
                .follower
                .failures()
                .map(|f| {
                    (
                        format!("{} {}", f.interface, direction_name(f.direction)),
                        f.error.clone(),
                    )
                })
                .collect(),
            missing: self.follower.missing(),
        }
    }
}
