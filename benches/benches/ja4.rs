//! JA4T / JA4TS per-fingerprint cost, and the whole `fingerprints` pipeline.
//!
//! Baseline in the same run: what a user would write with the common crate
//! instead — etherparse's TCP header slice and option iterator, with the
//! string built by `format!`.

use std::fmt::Write;
use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgewise_benches::{LINUX_SYN, WINDOWS_SYN, synthetic_capture};
use edgewise_ja4::{Ja4Tracker, Ja4t, TcpHeader, TrackerConfig};
use edgewise_time::UnixNanos;
use etherparse::{TcpHeaderSlice, TcpOptionElement};

/// The baseline: etherparse parse + `format!` string.
fn etherparse_ja4t(tcp: &[u8]) -> String {
    let header = TcpHeaderSlice::from_slice(tcp).expect("valid header");
    let (mut kinds, mut mss, mut ws) = (Vec::new(), 0u16, 0u8);
    for option in header.options_iterator() {
        match option {
            Ok(TcpOptionElement::Noop) => kinds.push("1".to_string()),
            Ok(TcpOptionElement::MaximumSegmentSize(v)) => {
                kinds.push("2".to_string());
                mss = v;
            }
            Ok(TcpOptionElement::WindowScale(v)) => {
                kinds.push("3".to_string());
                ws = v;
            }
            Ok(TcpOptionElement::SelectiveAcknowledgementPermitted) => kinds.push("4".to_string()),
            Ok(TcpOptionElement::SelectiveAcknowledgement(..)) => kinds.push("5".to_string()),
            Ok(TcpOptionElement::Timestamp(..)) => kinds.push("8".to_string()),
            Err(_) => break,
        }
    }
    let ws = if ws == 0 {
        "00".to_string()
    } else {
        ws.to_string()
    };
    format!("{}_{}_{mss:02}_{ws}", header.window_size(), kinds.join("-"))
}

struct Stack([u8; 96], usize);

impl Write for Stack {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.1 + s.len();
        self.0
            .get_mut(self.1..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.1 = end;
        Ok(())
    }
}

fn per_fingerprint(c: &mut Criterion) {
    assert_eq!(
        etherparse_ja4t(&WINDOWS_SYN),
        Ja4t::from_syn(&WINDOWS_SYN).unwrap().to_string(),
        "the baseline computes the same string"
    );
    let mut group = c.benchmark_group("ja4t");
    group.throughput(Throughput::Elements(1));
    for (name, syn) in [
        ("windows_syn", &WINDOWS_SYN[..]),
        ("linux_syn", &LINUX_SYN[..]),
    ] {
        group.bench_function(format!("edgewise/{name}"), |b| {
            b.iter(|| Ja4t::from_syn(black_box(syn)).unwrap());
        });
        group.bench_function(format!("edgewise_with_string/{name}"), |b| {
            let mut text = Stack([0; 96], 0);
            b.iter(|| {
                text.1 = 0;
                write!(text, "{}", Ja4t::from_syn(black_box(syn)).unwrap()).unwrap();
                black_box(text.1)
            });
        });
        group.bench_function(format!("etherparse_format/{name}"), |b| {
            b.iter(|| etherparse_ja4t(black_box(syn)));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("ja4ts_tracker");
    group.throughput(Throughput::Elements(1));
    let mut syn_ack = LINUX_SYN;
    syn_ack[13] = 0x12;
    group.bench_function("observe_syn_ack_4096_connections", |b| {
        let mut tracker = Ja4Tracker::new(TrackerConfig::default());
        let (server, client) = (IpAddr::from([10, 0, 0, 2]), IpAddr::from([10, 0, 0, 1]));
        let mut i = 0u16;
        b.iter(|| {
            i = (i + 1) % 4096;
            let mut segment = syn_ack;
            segment[2..4].copy_from_slice(&i.to_be_bytes());
            let header = TcpHeader::new_checked(&segment[..]).unwrap();
            tracker.observe(
                server,
                client,
                &header,
                UnixNanos::from_nanos(u64::from(i) * 1_000),
            )
        });
    });
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    const FRAMES: usize = 200_000;
    let capture = synthetic_capture(FRAMES);
    let mut group = c.benchmark_group("fingerprints_pipeline");
    group.sample_size(10);
    group.throughput(Throughput::Elements(FRAMES as u64));
    group.bench_function("synthetic_200k_frames", |b| {
        b.iter(|| {
            let mut n = 0u64;
            edgewise_observer::fingerprints::fingerprint_capture(
                &capture[..],
                TrackerConfig::default(),
                |_| n += 1,
            )
            .unwrap();
            n
        });
    });
    group.finish();
}

criterion_group!(benches, per_fingerprint, pipeline);
criterion_main!(benches);
