//! `edgewise fingerprints FILE`: JA4T / JA4TS for every fingerprinted packet of
//! a pcap or pcapng file, and JA4 / JA4S for every TLS hello that begins a
//! flow.
//!
//! Pipeline: [`CaptureReader`] -> [`decode`] (link, IP, tunnels) ->
//! [`TcpHeader::new_checked`] -> [`Ja4Tracker::observe`] with the frame's
//! capture time. Beside it, the replay's banner events (the kernel's rules:
//! each flow's first payload, and the segments that continue a TLS
//! handshake record it began) -> [`FirstBytes`] -> [`fingerprint_first`]:
//! a hello is recorded at the frame that completes it. Frames that are not
//! TCP, or whose headers are malformed, and first bytes that begin a
//! handshake record but hold no readable hello, are counted by reason in
//! [`FingerprintStats`] and skipped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::SocketAddr;

use edgewise_capture::first_bytes::FirstBytes;
use edgewise_capture::replay::{Replay, ReplayConfig};
use edgewise_ja4::tls::{self, HelloFingerprint, Ja4, Ja4s, fingerprint_first};
use edgewise_ja4::{Ja4Tracker, Observation, TcpFlags, TcpHeader, TrackerConfig};
use edgewise_packet::{CaptureError, CaptureReader, Transport, decode};
use serde::Serialize;

use crate::{CommandError, JsonLines};

/// One fingerprinted packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FingerprintRecord {
    /// 1-based packet number in the file.
    pub frame: u64,
    /// Capture time, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// Sender of the packet.
    pub src: SocketAddr,
    /// Receiver of the packet.
    pub dst: SocketAddr,
    /// TCP flags of the packet.
    pub flags: TcpFlags,
    /// The fingerprint.
    pub observation: Observation,
}

impl FingerprintRecord {
    /// `"ja4t"` or `"ja4ts"`.
    pub fn kind(&self) -> &'static str {
        match self.observation {
            Observation::Ja4t(_) => "ja4t",
            Observation::Ja4ts(_) => "ja4ts",
        }
    }

    /// The canonical fingerprint string.
    pub fn fingerprint(&self) -> String {
        self.observation.to_string()
    }
}

/// One TLS hello that began a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloRecord {
    /// 1-based number of the packet that completed it.
    pub frame: u64,
    /// That packet's capture time, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// Its sender.
    pub src: SocketAddr,
    /// Its receiver.
    pub dst: SocketAddr,
    /// What it says.
    pub hello: TlsHello,
}

/// A hello's fingerprint and names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsHello {
    /// A ClientHello.
    Client {
        /// Its JA4.
        ja4: Ja4,
        /// The server name it asked for (SNI), as text.
        server_name: Option<String>,
        /// The first protocol it offered by ALPN.
        alpn: Option<String>,
    },
    /// A ServerHello.
    Server {
        /// Its JA4S.
        ja4s: Ja4s,
        /// The protocol it chose by ALPN.
        alpn: Option<String>,
    },
}

impl TlsHello {
    /// From a fingerprinted hello; names that are not UTF-8 are written
    /// with replacement characters.
    pub fn of(hello: &HelloFingerprint<'_>) -> Self {
        let text = |bytes: Option<&[u8]>| bytes.map(|b| String::from_utf8_lossy(b).into_owned());
        match *hello {
            HelloFingerprint::Client {
                ja4,
                server_name,
                alpn,
            } => TlsHello::Client {
                ja4,
                server_name: text(server_name),
                alpn: text(alpn),
            },
            HelloFingerprint::Server { ja4s, alpn } => TlsHello::Server {
                ja4s,
                alpn: text(alpn),
            },
        }
    }
}

impl HelloRecord {
    /// `"ja4"` or `"ja4s"`.
    pub fn kind(&self) -> &'static str {
        match self.hello {
            TlsHello::Client { .. } => "ja4",
            TlsHello::Server { .. } => "ja4s",
        }
    }

    /// The fingerprint.
    pub fn fingerprint(&self) -> &str {
        match &self.hello {
            TlsHello::Client { ja4, .. } => ja4.as_str(),
            TlsHello::Server { ja4s, .. } => ja4s.as_str(),
        }
    }
}

/// What [`fingerprint_capture`] hands out, in file order.
#[derive(Debug, Clone, Copy)]
pub enum Record<'a> {
    /// A JA4T or JA4TS.
    Tcp(&'a FingerprintRecord),
    /// A JA4 or JA4S.
    Tls(&'a HelloRecord),
}

/// Counters of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FingerprintStats {
    /// Frames read from the capture.
    pub frames: u64,
    /// TCP segments seen.
    pub tcp_segments: u64,
    /// Fingerprints produced (TCP and TLS).
    pub fingerprints: u64,
    /// Frames skipped, by layer (`decode`, `tcp`, `tls`) and reason
    /// (`not_ip`, `options_truncated`, `incomplete`, ...).
    pub skipped: BTreeMap<(&'static str, &'static str), u64>,
}

/// Runs the fingerprint pipeline over a capture, handing each record to
/// `sink` in file order. Returns the counters, or the capture error that
/// stopped the reading (records before it were already handed out).
///
/// # Errors
/// A [`CaptureError`] when the file is not a capture or a record is broken.
pub fn fingerprint_capture<'r, R: Read + Send + 'r>(
    input: R,
    config: TrackerConfig,
    mut sink: impl FnMut(Record<'_>),
) -> Result<FingerprintStats, (FingerprintStats, CaptureError)> {
    let mut stats = FingerprintStats::default();
    let mut reader = match CaptureReader::new(input) {
        Ok(reader) => reader,
        Err(e) => return Err((stats, e)),
    };
    let mut tracker = Ja4Tracker::new(config);
    let mut replay = Replay::new(ReplayConfig::default());
    let mut first_bytes = FirstBytes::new(FIRST_BYTES_FLOWS);
    let mut scratch = vec![0u8; tls::MAX_HELLO];
    while let Some(frame) = reader.next_frame() {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => return Err((stats, e)),
        };
        stats.frames += 1;
        let packet = match decode(frame.link, frame.data) {
            Ok(packet) => packet,
            Err(e) => {
                *stats.skipped.entry(("decode", e.reason())).or_default() += 1;
                continue;
            }
        };
        let Transport::Tcp {
            src_port,
            dst_port,
            segment,
            ..
        } = packet.transport()
        else {
            continue;
        };
        stats.tcp_segments += 1;
        replay.packet(frame.time, frame.original_len, &packet, |event| {
            let Some(bytes) = first_bytes.add(&event) else {
                return;
            };
            if !tls::starts_handshake(&bytes) {
                return;
            }
            match fingerprint_first(&bytes, &mut scratch, tls::Transport::Tcp) {
                Ok(Some(hello)) => {
                    stats.fingerprints += 1;
                    sink(Record::Tls(&HelloRecord {
                        frame: frame.number,
                        timestamp_ns: frame.time.as_nanos(),
                        src: event.src,
                        dst: event.dst,
                        hello: TlsHello::of(&hello),
                    }));
                }
                Ok(None) => {}
                Err(e) => *stats.skipped.entry(("tls", e.reason())).or_default() += 1,
            }
        });
        let header = match TcpHeader::new_checked(segment) {
            Ok(header) => header,
            Err(e) => {
                *stats.skipped.entry(("tcp", e.reason())).or_default() += 1;
                continue;
            }
        };
        if let Some(observation) = tracker.observe(packet.src, packet.dst, &header, frame.time) {
            stats.fingerprints += 1;
            sink(Record::Tcp(&FingerprintRecord {
                frame: frame.number,
                timestamp_ns: frame.time.as_nanos(),
                src: SocketAddr::new(packet.src, src_port),
                dst: SocketAddr::new(packet.dst, dst_port),
                flags: header.flags(),
                observation,
            }));
        }
    }
    Ok(stats)
}

/// The most flows whose TLS hello waits for its next segment at once.
const FIRST_BYTES_FLOWS: usize = 4096;

/// The JSON line printed for each record.
#[derive(Serialize)]
struct Line<'a> {
    frame: u64,
    kind: &'static str,
    fingerprint: &'a str,
    src: SocketAddr,
    dst: SocketAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    sni: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alpn: Option<&'a str>,
}

/// Writes one JSON object per line for every record, as `edgewise
/// fingerprints` prints them.
///
/// # Errors
/// The capture error that stopped the reading, or an output error.
pub fn write_fingerprints<R: Read + Send>(
    input: R,
    out: &mut (impl Write + ?Sized),
) -> Result<FingerprintStats, CommandError> {
    let mut lines = JsonLines::new(out, crate::schema::FINGERPRINT);
    let mut text = String::new();
    let result = fingerprint_capture(input, TrackerConfig::default(), |record| {
        if lines.failed() {
            return;
        }
        let line = match record {
            Record::Tcp(record) => {
                text.clear();
                // Formatting into a String cannot fail.
                let _ = write!(text, "{}", record.observation);
                Line {
                    frame: record.frame,
                    kind: record.kind(),
                    fingerprint: &text,
                    src: record.src,
                    dst: record.dst,
                    sni: None,
                    alpn: None,
                }
            }
            Record::Tls(record) => {
                let (sni, alpn) = match &record.hello {
                    TlsHello::Client {
                        server_name, alpn, ..
                    } => (server_name.as_deref(), alpn.as_deref()),
                    TlsHello::Server { alpn, .. } => (None, alpn.as_deref()),
                };
                Line {
                    frame: record.frame,
                    kind: record.kind(),
                    fingerprint: record.fingerprint(),
                    src: record.src,
                    dst: record.dst,
                    sni,
                    alpn,
                }
            }
        };
        lines.write(&line);
    });
    lines.finish().map_err(CommandError::Output)?;
    result.map_err(|(_, e)| CommandError::Capture(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut f = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
        f.extend_from_slice(&[
            2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
        ]);
        for frame in frames {
            let len = u32::try_from(frame.len()).unwrap().to_le_bytes();
            f.extend_from_slice(&[0; 8]);
            f.extend_from_slice(&len);
            f.extend_from_slice(&len);
            f.extend_from_slice(frame);
        }
        f
    }

    #[test]
    fn skipped_frames_are_counted_by_layer_and_reason() {
        let eth = |ether_type: [u8; 2], payload: &[u8]| {
            let mut f = vec![0; 12];
            f.extend_from_slice(&ether_type);
            f.extend_from_slice(payload);
            f
        };
        let arp = eth([0x08, 0x06], &[0; 28]);
        let mut bad_tcp = vec![
            0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let mut tcp = [0u8; 20];
        tcp[12] = 0x30; // data offset 3: below the minimum
        tcp[13] = 0x02;
        bad_tcp.extend_from_slice(&tcp);
        let input = pcap(&[arp, eth([0x08, 0x00], &bad_tcp)]);
        let stats = fingerprint_capture(&input[..], TrackerConfig::default(), |_| {
            panic!("nothing here is fingerprintable");
        })
        .unwrap();
        assert_eq!(
            (stats.frames, stats.tcp_segments, stats.fingerprints),
            (2, 1, 0)
        );
        assert_eq!(stats.skipped.get(&("decode", "not_ip")), Some(&1));
        assert_eq!(stats.skipped.get(&("tcp", "data_offset")), Some(&1));
    }
}
