//! `edgewise services FILE`: per server address and port of a pcap or
//! pcapng file, what nmap's service database says it is, from the first
//! payloads of its TCP conversations.
//!
//! Pipeline: [`CaptureReader`] -> [`decode`] -> capture's [`Replay`] (the
//! kernel's rules: each direction's first payload is a banner event) ->
//! [`FirstBytes`] (a TLS hello across segments put back together) ->
//! per conversation (client, server), the first bytes of each side ->
//! [`Database`]. The server of a conversation is the receiver of its SYN,
//! or, for a conversation whose SYN is not in the file, the side with the
//! lower port. When the server spoke first, its payload is a banner (the
//! NULL probe); when the client did, the server's payload is the answer
//! to the probe whose shape the client's request has
//! ([`Database::probe_of_request`]), or read as a banner when no probe
//! has that shape. A server keeps the first hard match of its
//! conversations (a softmatch gives way to a later hard match).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::SocketAddr;

use edgewise_capture::event::EventKind;
use edgewise_capture::first_bytes::FirstBytes;
use edgewise_capture::replay::{Replay, ReplayConfig};
use edgewise_packet::{CaptureError, CaptureReader, decode};
use edgewise_service_probes::{Database, Identification};
use edgewise_time::UnixNanos;
use serde::Serialize;

use crate::{CommandError, JsonLines};

/// Where Debian's `nmap` package puts the database.
pub const DEBIAN_SERVICE_PROBES: &str = "/usr/share/nmap/nmap-service-probes";

/// Why nmap's service database could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceProbesError {
    /// The file could not be read.
    #[error(
        "{}: {source} (the service database is nmap's: apt-get install nmap, or give --service-probes PATH)",
        path.display()
    )]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a service database.
    #[error("{}: {source}", path.display())]
    Parse {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: edgewise_service_probes::ProbesError,
    },
}

/// Reads nmap's service database from `path`; its skipped lines are in
/// [`Database::line_errors`].
///
/// # Errors
/// [`ServiceProbesError`] naming the file.
pub fn load_database(path: &std::path::Path) -> Result<Database, ServiceProbesError> {
    let bytes = std::fs::read(path).map_err(|source| ServiceProbesError::Read {
        path: path.to_owned(),
        source,
    })?;
    Database::parse(&bytes).map_err(|source| ServiceProbesError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// The most conversations held (the oldest are passed over beyond it).
pub const MAX_CONVERSATIONS: usize = 65_536;

/// The first payload of each side of one conversation, with its time.
#[derive(Debug, Default)]
struct Conversation {
    client: Option<(UnixNanos, Vec<u8>)>,
    server: Option<(UnixNanos, Vec<u8>)>,
}

/// What was found of one server.
#[derive(Debug, Clone, Default)]
pub struct ServerSeen {
    /// Conversations whose payloads were read.
    pub conversations: u64,
    /// The identification, and whether it came from a banner (the server
    /// spoke first) or an answer.
    pub identified: Option<(Identification, &'static str)>,
}

/// What one run found, per server.
#[derive(Debug, Default)]
pub struct Services {
    /// By server address and port.
    pub servers: BTreeMap<SocketAddr, ServerSeen>,
    /// Conversations passed over because [`MAX_CONVERSATIONS`] were held.
    pub passed_over: u64,
}

/// Reads a capture and identifies its servers.
///
/// # Errors
/// The [`CaptureError`] that stopped the reading, with what the frames
/// before it showed (identified).
pub fn identify_capture<R: Read + Send>(
    input: R,
    db: &Database,
) -> Result<Services, (Services, CaptureError)> {
    let mut found = Services::default();
    let mut reader = match CaptureReader::new(input) {
        Ok(reader) => reader,
        Err(e) => return Err((found, e)),
    };
    let mut replay = Replay::new(ReplayConfig::default());
    let mut first_bytes = FirstBytes::new(MAX_CONVERSATIONS);
    let mut servers: HashSet<SocketAddr> = HashSet::new();
    let mut conversations: HashMap<(SocketAddr, SocketAddr), Conversation> = HashMap::new();
    let mut order: Vec<(SocketAddr, SocketAddr)> = Vec::new();
    let mut stopped = None;
    while let Some(frame) = reader.next_frame() {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                // What was read before the break is still identified.
                stopped = Some(e);
                break;
            }
        };
        let Ok(packet) = decode(frame.link, frame.data) else {
            continue;
        };
        replay.packet(frame.time, frame.original_len, &packet, |event| {
            if event.protocol != 6 {
                return;
            }
            match event.kind {
                EventKind::Syn if servers.len() < MAX_CONVERSATIONS => {
                    servers.insert(event.dst);
                }
                EventKind::Banner => {
                    // A TLS hello across segments is taken whole once it
                    // is, and its first part until then (the rest may
                    // never come: a capture cut short).
                    let first_part = !first_bytes.waits_for(&event);
                    let whole = first_bytes.add(&event);
                    let bytes: &[u8] = match &whole {
                        Some(bytes) => bytes,
                        None if first_part => event.data,
                        None => return,
                    };
                    let to_server = servers.contains(&event.dst)
                        || (!servers.contains(&event.src) && event.dst.port() < event.src.port());
                    let key = if to_server {
                        (event.src, event.dst)
                    } else {
                        (event.dst, event.src)
                    };
                    if !conversations.contains_key(&key) {
                        if conversations.len() >= MAX_CONVERSATIONS {
                            found.passed_over += 1;
                            return;
                        }
                        order.push(key);
                    }
                    let conversation = conversations.entry(key).or_default();
                    let side = if to_server {
                        &mut conversation.client
                    } else {
                        &mut conversation.server
                    };
                    match side {
                        // The rest of the side's first hello; a later
                        // banner (after a proxy handshake) leaves it be.
                        Some((_, held)) if whole.is_some() && bytes.starts_with(held) => {
                            *held = bytes.to_vec();
                        }
                        Some(_) => {}
                        None => *side = Some((event.time, bytes.to_vec())),
                    }
                }
                _ => {}
            }
        });
    }
    for key in order {
        let Some(conversation) = conversations.remove(&key) else {
            continue;
        };
        let seen = found.servers.entry(key.1).or_default();
        seen.conversations += 1;
        if seen.identified.as_ref().is_some_and(|(i, _)| !i.soft) {
            continue;
        }
        if let Some(identified) = identify(db, &conversation) {
            let better = seen.identified.is_none() || !identified.0.soft;
            if better {
                seen.identified = Some(identified);
            }
        }
    }
    match stopped {
        Some(e) => Err((found, e)),
        None => Ok(found),
    }
}

/// One conversation's answer (see the module docs).
fn identify(db: &Database, c: &Conversation) -> Option<(Identification, &'static str)> {
    let (server_at, response) = c.server.as_ref()?;
    let request = c
        .client
        .as_ref()
        .filter(|(client_at, _)| client_at < server_at)
        .map(|(_, request)| request.as_slice());
    db.identify_exchange(request, response)
        .map(|(i, exchange)| (i, exchange.as_str()))
}

/// The JSON line of one server.
#[derive(Serialize)]
struct Line<'a> {
    server: SocketAddr,
    proto: &'static str,
    conversations: u64,
    service: Option<&'a str>,
    #[serde(flatten)]
    identification: Option<Found<'a>>,
}

impl<'a> Line<'a> {
    /// The line of `server`, with what identified it and how (`banner`,
    /// `answer`, `probe`).
    fn of(
        server: SocketAddr,
        conversations: u64,
        identified: Option<(&'a Identification, &'static str)>,
    ) -> Self {
        Line {
            server,
            proto: "tcp",
            conversations,
            service: identified.map(|(i, _)| i.service.as_str()),
            identification: identified.map(|(i, from)| Found {
                version: &i.version,
                soft: i.soft,
                probe: &i.probe,
                line: i.line,
                from,
            }),
        }
    }
}

#[derive(Serialize)]
struct Found<'a> {
    #[serde(flatten)]
    version: &'a edgewise_service_probes::template::Version,
    soft: bool,
    probe: &'a str,
    line: usize,
    from: &'static str,
}

/// Writes one JSON object per server, in address order:
/// `{"server", "proto", "conversations", "service", "product", "version",
/// "info", "hostname", "os", "device", "cpes", "soft", "probe", "line",
/// "from"}` (`service` null and the rest left out when nothing matched;
/// fields without a value left out).
///
/// # Errors
/// [`CommandError::Capture`] when the capture stops being readable (the
/// servers found before it are written), [`CommandError::Output`].
pub fn write_services<R: Read + Send>(
    input: R,
    db: &Database,
    out: &mut (impl Write + ?Sized),
) -> Result<Services, CommandError> {
    let (found, error) = match identify_capture(input, db) {
        Ok(found) => (found, None),
        Err((found, e)) => (found, Some(e)),
    };
    let mut lines = JsonLines::new(out, crate::schema::SERVICE);
    for (server, seen) in &found.servers {
        let identified = seen.identified.as_ref();
        let identified = identified.map(|(i, from)| (i, *from));
        lines.write(&Line::of(*server, seen.conversations, identified));
    }
    lines.finish().map_err(CommandError::Output)?;
    match error {
        Some(e) => Err(CommandError::Capture(e)),
        None => Ok(found),
    }
}

/// Probes each server with a session of the daemon's prober
/// ([`crate::daemon::prober::session`]) and writes one JSON object per
/// server, as [`write_services`] does (`"conversations": 0`,
/// `"from": "probe"`).
///
/// # Errors
/// [`CommandError::Output`].
pub fn write_probes(
    servers: &[SocketAddr],
    db: &Database,
    intensity: u8,
    out: &mut (impl Write + ?Sized),
) -> Result<(), CommandError> {
    let mut lines = JsonLines::new(out, crate::schema::SERVICE);
    for server in servers {
        let found = crate::daemon::prober::session(db, *server, intensity);
        let found = found.as_ref().map(|i| (i, "probe"));
        lines.write(&Line::of(*server, 0, found));
    }
    lines.finish().map_err(CommandError::Output)
}
