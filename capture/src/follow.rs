//! Interfaces that follow the links: sensors attached to every interface
//! whose name matches a pattern, as interfaces come and go.
//!
//! A [`Follower`] holds the sensors of one network namespace (the
//! loader's own or a named one), each with the interface patterns it
//! observes on ingress and on egress: a name (`eth0`), a glob (`cali*`,
//! `lxc*`, `veth?x`, `[ab]*`) or [`AUTO`] (the default-route interface,
//! looked up once when the sensor is added). Netlink ([`crate::links`])
//! says when links change; [`Follower::follow`] then compares the links
//! with what is attached:
//! - a link whose name matches and that is not attached is attached;
//! - an attachment whose link is gone, or was renamed, is released (a
//!   renamed link that still matches is attached again under its name);
//! - an attach that fails is a [`Change::Failed`], kept in
//!   [`Follower::failures`] and tried again when netlink next reports that
//!   link (it went up, was renamed, ...), never in a loop; the other
//!   interfaces keep running.
//!
//! A listed name that does not exist is not an error: it is in
//! [`Follower::missing`] and attached when it appears.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::attach::{self, AUTO, Attachment};
use crate::bans::BanTable;
use crate::event::{Direction, Event, EventError};
use crate::links::{LinkChanges, LinkTable, Links};
use crate::{Capture, CaptureError, Counters, sys};

/// Which interfaces a sensor observes (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterfacePattern {
    /// The default-route interface ([`AUTO`]).
    Auto,
    /// One interface by name.
    Name(String),
    /// Every interface whose name matches (`*`, `?`, `[...]`).
    Glob(glob::Pattern),
}

/// A pattern that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("interface pattern {pattern:?}: {problem}")]
pub struct BadPattern {
    /// The pattern.
    pub pattern: String,
    /// What is wrong with it.
    pub problem: String,
}

impl FromStr for InterfacePattern {
    type Err = BadPattern;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |problem: &str| BadPattern {
            pattern: text.to_owned(),
            problem: problem.to_owned(),
        };
        // IFNAMSIZ is 16 with the NUL: a longer name can never match.
        if text.is_empty() || text.len() > 64 || text.contains(['/', ' ', '\0']) {
            return Err(bad("not an interface name or glob"));
        }
        if text == AUTO {
            return Ok(Self::Auto);
        }
        if text.contains(['*', '?', '[']) {
            return glob::Pattern::new(text)
                .map(Self::Glob)
                .map_err(|e| bad(e.msg));
        }
        if text.len() > 15 {
            return Err(bad("longer than an interface name can be (15 bytes)"));
        }
        Ok(Self::Name(text.to_owned()))
    }
}

impl InterfacePattern {
    /// Whether the interface `name` is one of these (never for
    /// [`InterfacePattern::Auto`], which [`Follower::add`] turns into the
    /// default-route interface's name).
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Self::Auto => false,
            Self::Name(wanted) => wanted == name,
            Self::Glob(pattern) => pattern.matches(name),
        }
    }
}

/// What observes interfaces: the eBPF [`Capture`], or a packet socket
/// capture ([`crate::PacketCapture`]).
pub trait Sensor {
    /// Attaches to `interface` in `direction`; attached already, the
    /// attachment as it is.
    ///
    /// # Errors
    /// [`CaptureError`] naming the interface.
    fn attach_interface(
        &mut self,
        interface: &str,
        direction: Direction,
    ) -> Result<Attachment, CaptureError>;

    /// Releases whatever is attached to the interface of index `index`.
    fn detach_interface(&mut self, index: u32) -> Vec<Attachment>;

    /// What is attached where.
    fn attachments(&self) -> &[Attachment];

    /// Waits up to `timeout` for events and hands each to `on_event`;
    /// how many were read.
    ///
    /// # Errors
    /// [`CaptureError::Poll`] if waiting fails.
    fn poll_events(
        &mut self,
        timeout: Duration,
        on_event: &mut dyn FnMut(Result<Event<'_>, EventError>),
    ) -> Result<usize, CaptureError>;

    /// The counters (events, lost, dropped).
    ///
    /// # Errors
    /// [`CaptureError::Map`] if they cannot be read.
    fn counters(&mut self) -> Result<Counters, CaptureError>;

    /// The drop map, when the sensor can enforce.
    fn ban_table(&mut self) -> Option<&mut BanTable>;
}

impl Sensor for Capture {
    fn attach_interface(
        &mut self,
        interface: &str,
        direction: Direction,
    ) -> Result<Attachment, CaptureError> {
        Capture::attach_interface(self, interface, direction).cloned()
    }

    fn detach_interface(&mut self, index: u32) -> Vec<Attachment> {
        Capture::detach_interface(self, index)
    }

    fn attachments(&self) -> &[Attachment] {
        Capture::attachments(self)
    }

    fn poll_events(
        &mut self,
        timeout: Duration,
        on_event: &mut dyn FnMut(Result<Event<'_>, EventError>),
    ) -> Result<usize, CaptureError> {
        self.poll(timeout, on_event)
    }

    fn counters(&mut self) -> Result<Counters, CaptureError> {
        Capture::counters(self)
    }

    fn ban_table(&mut self) -> Option<&mut BanTable> {
        Some(self.bans())
    }
}

impl<S: Sensor + ?Sized> Sensor for Box<S> {
    fn attach_interface(
        &mut self,
        interface: &str,
        direction: Direction,
    ) -> Result<Attachment, CaptureError> {
        (**self).attach_interface(interface, direction)
    }

    fn detach_interface(&mut self, index: u32) -> Vec<Attachment> {
        (**self).detach_interface(index)
    }

    fn attachments(&self) -> &[Attachment] {
        (**self).attachments()
    }

    fn poll_events(
        &mut self,
        timeout: Duration,
        on_event: &mut dyn FnMut(Result<Event<'_>, EventError>),
    ) -> Result<usize, CaptureError> {
        (**self).poll_events(timeout, on_event)
    }

    fn counters(&mut self) -> Result<Counters, CaptureError> {
        (**self).counters()
    }

    fn ban_table(&mut self) -> Option<&mut BanTable> {
        (**self).ban_table()
    }
}

/// A change to what is attached.
#[derive(Debug)]
pub enum Change {
    /// A sensor was attached.
    Attached(Attachment),
    /// A sensor was released (its interface went, or was renamed).
    Detached(Attachment),
    /// An interface that matches could not be attached.
    Failed {
        /// The interface.
        interface: String,
        /// The direction.
        direction: Direction,
        /// Why.
        error: CaptureError,
    },
}

/// An attach that failed and is not being retried until its link changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The interface.
    pub interface: String,
    /// The direction.
    pub direction: Direction,
    /// Why, as the error said it.
    pub error: String,
}

struct Watched<S> {
    sensor: S,
    ingress: Vec<InterfacePattern>,
    egress: Vec<InterfacePattern>,
}

/// Sensors that follow the links of one namespace (see the module docs).
pub struct Follower<S> {
    links: Links,
    table: LinkTable,
    netns: Option<PathBuf>,
    sensors: Vec<Watched<S>>,
    /// By (sensor, interface index, direction).
    failures: BTreeMap<(usize, u32, DirectionKey), Failure>,
}

/// [`Direction`] as a map key.
type DirectionKey = u8;

const fn direction_key(direction: Direction) -> DirectionKey {
    match direction {
        Direction::Ingress => 0,
        Direction::Egress => 1,
        Direction::Unknown => 2,
    }
}

impl<S: Sensor> Follower<S> {
    /// Follows the links of `netns` (such as `/run/netns/NAME`), or of the
    /// caller's namespace; no sensor yet.
    ///
    /// # Errors
    /// [`CaptureError::Netlink`] or [`CaptureError::Netns`].
    pub fn new(netns: Option<&Path>) -> Result<Self, CaptureError> {
        let mut links = Links::open(netns)?;
        let table = links.dump()?;
        Ok(Self {
            links,
            table,
            netns: netns.map(Path::to_path_buf),
            sensors: Vec::new(),
            failures: BTreeMap::new(),
        })
    }

    /// Adds a sensor observing `ingress` and `egress`, attached at once to
    /// every link that matches; what it attached and what failed.
    ///
    /// # Errors
    /// [`CaptureError::NoDefaultRoute`] when [`AUTO`] is asked and the
    /// namespace has no default route, [`CaptureError::Netns`].
    pub fn add(
        &mut self,
        sensor: S,
        ingress: &[InterfacePattern],
        egress: &[InterfacePattern],
    ) -> Result<Vec<Change>, CaptureError> {
        let resolve = |patterns: &[InterfacePattern]| -> Result<_, CaptureError> {
            patterns
                .iter()
                .map(|pattern| match pattern {
                    InterfacePattern::Auto => {
                        let lookup = || attach::resolve(AUTO);
                        let name = match &self.netns {
                            Some(netns) => {
                                sys::in_netns(netns, lookup).map_err(CaptureError::Netns)??
                            }
                            None => lookup()?,
                        };
                        Ok(InterfacePattern::Name(name))
                    }
                    other => Ok(other.clone()),
                })
                .collect()
        };
        let watched = Watched {
            sensor,
            ingress: resolve(ingress)?,
            egress: resolve(egress)?,
        };
        self.sensors.push(watched);
        Ok(self.reconcile())
    }

    /// Reads netlink's news without waiting and attaches or releases what
    /// changed (nothing when nothing did).
    ///
    /// # Errors
    /// [`CaptureError::Netlink`] when the links cannot be read.
    pub fn follow(&mut self) -> Result<Vec<Change>, CaptureError> {
        match self.links.changes()? {
            None => return Ok(Vec::new()),
            Some(LinkChanges::Overrun) => self.failures.clear(),
            Some(LinkChanges::Links(indexes)) => {
                self.failures
                    .retain(|(_, index, _), _| !indexes.contains(index));
            }
        }
        self.table = self.links.dump()?;
        Ok(self.reconcile())
    }

    fn reconcile(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        let table = &self.table;
        self.failures
            .retain(|(_, index, _), _| table.contains_key(index));
        for (at, watched) in self.sensors.iter_mut().enumerate() {
            let stale: BTreeSet<u32> = watched
                .sensor
                .attachments()
                .iter()
                .filter(|a| table.get(&a.index) != Some(&a.interface))
                .map(|a| a.index)
                .collect();
            for index in stale {
                changes.extend(
                    watched
                        .sensor
                        .detach_interface(index)
                        .into_iter()
                        .map(Change::Detached),
                );
            }
            for (&index, name) in table {
                for (patterns, direction) in [
                    (&watched.ingress, Direction::Ingress),
                    (&watched.egress, Direction::Egress),
                ] {
                    let key = (at, index, direction_key(direction));
                    let attached = watched
                        .sensor
                        .attachments()
                        .iter()
                        .any(|a| a.index == index && a.direction == direction);
                    if attached
                        || self.failures.contains_key(&key)
                        || !patterns.iter().any(|p| p.matches(name))
                    {
                        continue;
                    }
                    match watched.sensor.attach_interface(name, direction) {
                        Ok(attachment) => changes.push(Change::Attached(attachment)),
                        // Gone or renamed since the dump: netlink says so next.
                        Err(CaptureError::NoInterface { .. }) => {}
                        Err(error) => {
                            self.failures.insert(
                                key,
                                Failure {
                                    interface: name.clone(),
                                    direction,
                                    error: error.to_string(),
                                },
                            );
                            changes.push(Change::Failed {
                                interface: name.clone(),
                                direction,
                                error,
                            });
                        }
                    }
                }
            }
        }
        changes
    }

    /// The listed names (not globs) that no link has now.
    pub fn missing(&self) -> Vec<String> {
        let mut missing: Vec<String> = self
            .sensors
            .iter()
            .flat_map(|w| w.ingress.iter().chain(&w.egress))
            .filter_map(|pattern| match pattern {
                InterfacePattern::Name(name) if !self.table.values().any(|n| n == name) => {
                    Some(name.clone())
                }
                _ => None,
            })
            .collect();
        missing.sort_unstable();
        missing.dedup();
        missing
    }

    /// The attaches that failed and wait for their link to change.
    pub fn failures(&self) -> impl Iterator<Item = &Failure> {
        self.failures.values()
    }

    /// The sensors, in the order added.
    pub fn sensors(&self) -> impl Iterator<Item = &S> {
        self.sensors.iter().map(|w| &w.sensor)
    }

    /// The sensors, in the order added.
    pub fn sensors_mut(&mut self) -> impl Iterator<Item = &mut S> {
        self.sensors.iter_mut().map(|w| &mut w.sensor)
    }

    /// How many sensors.
    pub fn len(&self) -> usize {
        self.sensors.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.sensors.is_empty()
    }

    /// Every attachment of every sensor.
    pub fn attachments(&self) -> impl Iterator<Item = &Attachment> {
        self.sensors.iter().flat_map(|w| w.sensor.attachments())
    }

    /// The sensors, released from following (dropping them detaches
    /// them).
    pub fn into_sensors(self) -> Vec<S> {
        self.sensors.into_iter().map(|w| w.sensor).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse_as_names_globs_or_auto() {
        assert_eq!("auto".parse(), Ok(InterfacePattern::Auto));
        assert_eq!("eth0".parse(), Ok(InterfacePattern::Name("eth0".into())));
        let glob: InterfacePattern = "cali*".parse().unwrap();
        assert!(glob.matches("cali12ab") && glob.matches("cali") && !glob.matches("lxc1"));
        let set: InterfacePattern = "veth[ab]?".parse().unwrap();
        assert!(set.matches("vetha1") && !set.matches("vethc1"));
        for bad in ["", "a/b", "much-too-long-a-name", "[unclosed", "a b"] {
            assert!(bad.parse::<InterfacePattern>().is_err(), "{bad}");
        }
    }
}
