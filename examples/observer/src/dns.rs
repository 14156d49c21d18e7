//! `edgewise dns FILE`: every DNS response in a pcap or pcapng file, one JSON
//! object per message.
//!
//! Pipeline: [`CaptureReader`] -> [`decode`] -> UDP or TCP with port 53 on
//! either side -> (TCP: [`TcpDnsStreams`], the 2-byte length framing across
//! segments) -> [`describe`] (`Message::parse`, then the mapping rule of `Resolution`) ->
//! [`FqdnStore::record_resolution`]. Queries (QR=0) are counted and not
//! printed; a message that does not parse prints an `error` line and maps
//! nothing.
//!
//! Printed for each response:
//! `{"frame", "transport", "id", "rcode", "truncated", "question": {"name",
//! "type"} | null, "answers": [{"name", "type", "ttl", "data"?}],
//! "resolved": {"ip": "question name"}}`, where `frame` is the 1-based packet
//! number (for TCP, the segment that completed the message) and `data` is
//! the address of an A / AAAA record or the target of a CNAME.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::IpAddr;

use edgewise_fqdn_store::{
    DnsError, FqdnStore, Segment, StoreConfig, StoreStats, StreamsConfig, TcpDnsStreams,
};
use edgewise_ja4::TcpHeader;
use edgewise_packet::{CaptureError, CaptureReader, Transport, decode};
pub use edgewise_pipeline::dns::{AnswerLine, DnsLine, QuestionLine, ResponseLine, describe};
use edgewise_time::UnixNanos;

use crate::{CommandError, JsonLines};

/// The DNS port.
pub const DNS_PORT: u16 = 53;

/// Counters of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsStats {
    /// Frames read.
    pub frames: u64,
    /// Frames that did not decode to IP.
    pub undecoded: u64,
    /// DNS messages seen (queries included).
    pub messages: u64,
    /// Queries skipped.
    pub queries: u64,
    /// Responses printed.
    pub responses: u64,
    /// Messages rejected, by reason (`forward-pointer`, `truncated`, ...).
    pub rejected: BTreeMap<&'static str, u64>,
    /// TCP streams dropped to stay within bounds.
    pub tcp_streams_evicted: u64,
    /// The store the responses were recorded in: mappings made and evicted.
    pub store: StoreStats,
}

/// Runs the DNS pipeline over a capture, handing each line to `sink` in
/// file order. Returns the counters and, when a broken capture stopped the
/// reading, its [`CaptureError`] (lines before it were already handed out).
pub fn dns_capture<'r, R: Read + Send + 'r>(
    input: R,
    mut sink: impl FnMut(&DnsLine),
) -> (DnsStats, Result<(), CaptureError>) {
    let mut run = Run {
        stats: DnsStats::default(),
        store: FqdnStore::new(StoreConfig::default()),
    };
    let mut streams = TcpDnsStreams::new(StreamsConfig::default());
    let mut reader = match CaptureReader::new(input) {
        Ok(reader) => reader,
        Err(e) => return (run.finish(&streams), Err(e)),
    };
    while let Some(frame) = reader.next_frame() {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => return (run.finish(&streams), Err(e)),
        };
        run.stats.frames += 1;
        let Ok(packet) = decode(frame.link, frame.data) else {
            run.stats.undecoded += 1;
            continue;
        };
        let (number, now) = (frame.number, frame.time);
        match packet.transport() {
            Transport::Udp {
                src_port,
                dst_port,
                payload,
                ..
            } if src_port == DNS_PORT || dst_port == DNS_PORT => {
                run.message(number, "udp", payload, now, &mut sink);
            }
            Transport::Tcp {
                src_port,
                dst_port,
                segment,
                ..
            } if src_port == DNS_PORT || dst_port == DNS_PORT => {
                let Some(tcp) = tcp_segment(segment) else {
                    continue;
                };
                let key = (packet.src, src_port, packet.dst, dst_port);
                let pushed = streams.push(&key, tcp, now, |message| {
                    run.message(number, "tcp", message, now, &mut sink);
                });
                if let Err(error) = pushed {
                    run.error(number, "tcp", error, &mut sink);
                }
            }
            _ => {}
        }
    }
    (run.finish(&streams), Ok(()))
}

/// What the DNS stream reassembly needs from a TCP segment (header and
/// payload), or `None` when its header does not check.
pub fn tcp_segment(segment: &[u8]) -> Option<Segment<'_>> {
    const FIN: u8 = 0x01;
    const SYN: u8 = 0x02;
    const RST: u8 = 0x04;
    let header = TcpHeader::new_checked(segment).ok()?;
    let flags = header.flags().0;
    Some(Segment {
        seq: header.seq(),
        syn: flags & SYN != 0,
        fin_or_rst: flags & (FIN | RST) != 0,
        payload: segment.get(header.header_len()..)?,
    })
}

struct Run {
    stats: DnsStats,
    store: FqdnStore,
}

impl Run {
    fn message(
        &mut self,
        frame: u64,
        transport: &'static str,
        bytes: &[u8],
        now: UnixNanos,
        sink: &mut impl FnMut(&DnsLine),
    ) {
        self.stats.messages += 1;
        match describe(frame, transport, bytes, &mut self.store, now) {
            None => self.stats.queries += 1,
            Some(Ok(line)) => {
                self.stats.responses += 1;
                sink(&DnsLine::Response(line));
            }
            Some(Err(error)) => self.error(frame, transport, error, sink),
        }
    }

    fn error(
        &mut self,
        frame: u64,
        transport: &'static str,
        error: DnsError,
        sink: &mut impl FnMut(&DnsLine),
    ) {
        *self.stats.rejected.entry(error.reason()).or_default() += 1;
        sink(&DnsLine::Error {
            frame,
            transport,
            error: error.to_string(),
        });
    }

    fn finish(&self, streams: &TcpDnsStreams<(IpAddr, u16, IpAddr, u16)>) -> DnsStats {
        DnsStats {
            tcp_streams_evicted: streams.evicted(),
            store: self.store.stats(),
            ..self.stats.clone()
        }
    }
}

/// Writes one JSON object per line, as `edgewise dns` prints them.
///
/// # Errors
/// The capture error that stopped the reading, or an output error.
pub fn write_dns<R: Read + Send>(
    input: R,
    out: &mut (impl Write + ?Sized),
) -> Result<DnsStats, CommandError> {
    let mut lines = JsonLines::new(out, crate::schema::DNS);
    let (stats, result) = dns_capture(input, |line| lines.write(line));
    lines.finish().map_err(CommandError::Output)?;
    result.map(|()| stats).map_err(CommandError::Capture)
}
