//! Reading pcap and pcapng streams.

#![expect(
    clippy::cast_possible_truncation,
    reason = "test builders write fixed-width wire fields from small values"
)]

use edgewise_packet::{CaptureError, CaptureReader, LinkType};

fn pcap(magic: u32, linktype: u32, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&magic.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&65535u32.to_le_bytes());
    f.extend_from_slice(&linktype.to_le_bytes());
    for (sec, sub, data) in records {
        f.extend_from_slice(&sec.to_le_bytes());
        f.extend_from_slice(&sub.to_le_bytes());
        f.extend_from_slice(&(data.len() as u32).to_le_bytes());
        f.extend_from_slice(&(data.len() as u32 + 10).to_le_bytes());
        f.extend_from_slice(data);
    }
    f
}

fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(body);
    b.resize(8 + padded, 0);
    b.extend_from_slice(&total.to_le_bytes());
    b
}

fn shb() -> Vec<u8> {
    let mut body = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&u64::MAX.to_le_bytes());
    block(0x0a0d_0d0a, &body)
}

fn idb(linktype: u16, tsresol: Option<u8>) -> Vec<u8> {
    let mut body = linktype.to_le_bytes().to_vec();
    body.extend_from_slice(&[0, 0]);
    body.extend_from_slice(&0u32.to_le_bytes());
    if let Some(r) = tsresol {
        body.extend_from_slice(&9u16.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&[r, 0, 0, 0]);
        body.extend_from_slice(&[0, 0, 0, 0]);
    }
    block(1, &body)
}

fn epb(interface: u32, ts: u64, data: &[u8]) -> Vec<u8> {
    let mut body = interface.to_le_bytes().to_vec();
    body.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
    body.extend_from_slice(&(ts as u32).to_le_bytes());
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(data);
    block(6, &body)
}

type Frames = Vec<(u64, u64, LinkType, Vec<u8>)>;

fn read_all(bytes: &[u8]) -> (Frames, Option<CaptureError>) {
    let mut reader = match CaptureReader::new(bytes) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut frames = Vec::new();
    while let Some(frame) = reader.next_frame() {
        match frame {
            Ok(f) => frames.push((f.number, f.time.as_nanos(), f.link, f.data.to_vec())),
            Err(e) => return (frames, Some(e)),
        }
    }
    (frames, None)
}

#[test]
fn pcap_microsecond_and_nanosecond() {
    let (frames, err) = read_all(&pcap(0xa1b2_c3d4, 1, &[(10, 5, b"ab"), (11, 0, b"cd")]));
    assert!(err.is_none());
    assert_eq!(
        frames[0],
        (1, 10_000_005_000, LinkType::Ethernet, b"ab".to_vec())
    );
    assert_eq!(frames[1].0, 2);
    let (frames, _) = read_all(&pcap(0xa1b2_3c4d, 101, &[(10, 5, b"ab")]));
    assert_eq!(frames[0].1, 10_000_000_005);
    assert_eq!(frames[0].2, LinkType::RawIp);
}

#[test]
fn pcapng_interfaces_resolutions_and_sections() {
    let mut f = shb();
    f.extend(idb(1, None));
    f.extend(idb(0, Some(9)));
    f.extend(block(0xdead, b"unknown block")); // skipped, not numbered
    f.extend(epb(1, 3_000_000_007, b"null"));
    f.extend(epb(0, 2_000_001, b"eth"));
    // A new section forgets the interfaces of the previous one.
    f.extend(shb());
    f.extend(idb(113, Some(3)));
    f.extend(epb(0, 1500, b"sll"));
    let (frames, err) = read_all(&f);
    assert!(err.is_none(), "{err:?}");
    let summary: Vec<_> = frames.iter().map(|(n, t, l, _)| (*n, *t, *l)).collect();
    assert_eq!(
        summary,
        vec![
            (1, 3_000_000_007, LinkType::Null),
            (2, 2_000_001_000, LinkType::Ethernet),
            (3, 1_500_000_000, LinkType::LinuxSll),
        ]
    );
}

/// `if_tsresol` with the high bit set is a power of two (pcapng 4.2):
/// 2^10 units a second, 2^30, and one that cannot fit (2^70) is an error
/// naming the offset, never microseconds by default.
#[test]
fn pcapng_binary_resolutions_are_honoured() {
    let mut f = shb();
    f.extend(idb(1, Some(0x8a))); // 0x80 | 10
    f.extend(idb(1, Some(0x9e))); // 0x80 | 30
    f.extend(epb(0, 1024 * 5 + 512, b"a"));
    f.extend(epb(1, 3 << 30, b"b"));
    let (frames, err) = read_all(&f);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(frames[0].1, 5_500_000_000, "5.5 s in 1/1024 s units");
    assert_eq!(frames[1].1, 3_000_000_000, "3 s in 1/2^30 s units");

    let mut f = shb();
    f.extend(idb(1, Some(0xc6))); // 0x80 | 70
    f.extend(epb(0, 1, b"a"));
    let (frames, err) = read_all(&f);
    assert!(frames.is_empty());
    let error = err.expect("an unusable resolution").to_string();
    assert!(error.contains("if_tsresol 0xc6"), "{error}");
}

#[test]
fn undeclared_interface_is_an_error() {
    let mut f = shb();
    f.extend(idb(1, None));
    f.extend(epb(3, 0, b"x"));
    let (frames, err) = read_all(&f);
    assert!(frames.is_empty());
    assert!(matches!(
        err,
        Some(CaptureError::UnknownInterface { interface: 3, .. })
    ));
}

#[test]
fn truncated_and_garbage_inputs_are_typed_errors() {
    assert!(matches!(read_all(b"").1, Some(CaptureError::Empty)));
    assert!(matches!(
        read_all(b"this is not a capture file at all").1,
        Some(CaptureError::NotACapture)
    ));
    let full = pcap(0xa1b2_c3d4, 1, &[(1, 0, b"first"), (2, 0, b"second")]);
    for cut in 25..full.len() {
        let (frames, err) = read_all(&full[..cut]);
        let complete = usize::from(cut >= 24 + 16 + 5);
        assert_eq!(frames.len(), complete, "cut at {cut}");
        if cut != 24 + 16 + 5 {
            assert!(
                matches!(err, Some(CaptureError::Truncated { .. })),
                "cut at {cut}: {err:?}"
            );
        }
    }
}

#[test]
fn large_records_grow_the_buffer() {
    let big = vec![0x55; 600 * 1024];
    let (frames, err) = read_all(&pcap(0xa1b2_c3d4, 1, &[(1, 0, &big), (2, 0, b"x")]));
    assert!(err.is_none(), "{err:?}");
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].3.len(), big.len());
}

#[test]
fn short_headers_and_wrong_magics_are_not_captures() {
    for bytes in [&b"\xd4\xc3"[..], b"\x0a\x0d\x0d", b"\xd4\xc3\xb2\xa1 short"] {
        assert!(
            matches!(read_all(bytes).1, Some(CaptureError::NotACapture)),
            "{bytes:?}"
        );
    }
    // Big-endian pcap is recognised by its magic.
    let mut big_endian = pcap(0xa1b2_c3d4, 1, &[]);
    big_endian[..4].copy_from_slice(&0xa1b2_c3d4_u32.to_be_bytes());
    assert!(CaptureReader::new(big_endian.as_slice()).is_ok());
}

#[test]
fn the_reader_is_an_iterator_of_owned_frames() {
    let bytes = pcap(0xa1b2_c3d4, 1, &[(1, 0, b"first"), (2, 0, b"second")]);
    let frames: Vec<_> = CaptureReader::new(bytes.as_slice())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!(
        (frames[1].number, frames[1].data.as_slice()),
        (2, &b"second"[..])
    );
    assert_eq!(frames[0].as_frame().time.as_nanos(), 1_000_000_000);
    // A cut stream ends the iteration with the error, after the frames before it.
    let cut: Vec<_> = CaptureReader::new(&bytes[..bytes.len() - 2])
        .unwrap()
        .collect();
    assert!(cut[0].is_ok());
    assert!(matches!(cut[1], Err(CaptureError::Truncated { .. })));
    assert_eq!(cut.len(), 2);
}

/// A reader that is not `Send` (standard input's lock) is accepted; the
/// capture reader is `Send` when its reader is.
#[test]
fn readers_need_not_be_send() {
    fn takes_send<T: Send>(_: &T) {}
    let _: fn(std::io::StdinLock<'static>) -> Result<CaptureReader<_>, _> = CaptureReader::new;
    let reader = CaptureReader::new(std::io::Cursor::new(pcap(0xa1b2_c3d4, 1, &[]))).unwrap();
    takes_send(&reader);
}
