//! JA4 (a TLS client, from its ClientHello) and JA4S (a TLS server, from
//! its ServerHello), as FoxIO's specification describes them.
//!
//! JA4 is `a_b_c`, always 36 characters:
//! - `a`: `t` (TLS over TCP; `q` QUIC, `d` DTLS), the version (the highest
//!   of `supported_versions`, else `legacy_version`: `13`, `12`, `11`,
//!   `10`, `s3`, `s2`, `d1`, `d2`, `d3`, `00` for anything else), `d` when
//!   a `server_name` extension is present and `i` when not, the cipher and
//!   extension counts (two digits, at most 99), and the first and last
//!   characters of the first ALPN protocol (`00` without one; `99` when
//!   either end is not ASCII; the first and last hex digits of its bytes
//!   when either end is ASCII but not a letter or digit);
//! - `b`: the first 12 hex digits of SHA-256 over the cipher suites,
//!   sorted, as 4-digit lower-case hex joined by `,`;
//! - `c`: the same over the extensions, sorted, without `server_name` and
//!   ALPN, then `_` and the signature algorithms in the client's order
//!   (no `_` when there are none).
//!
//! GREASE values (RFC 8701) are skipped everywhere. An empty list hashes
//! to `000000000000`.
//!
//! One rule follows FoxIO's implementations rather than their written
//! specification: for an ALPN protocol whose first or last byte is not
//! ASCII (`0xba 0xad` in FoxIO's `tls-non-ascii-alpn.pcapng`), their
//! Python tool, Wireshark plugin and Rust tool all print `99`, where the
//! specification's text gives the hex digits (`bd`). A fingerprint is
//! only useful if it matches the databases those tools fill, so `99` it
//! is.
//!
//! JA4S is `a_b_c`, always 25 characters: `a` is the transport, the
//! version (the `supported_versions` the server chose, else
//! `legacy_version`), the extension count and the chosen ALPN's first and
//! last characters; `b` the chosen cipher suite (4 hex digits); `c` the
//! SHA-256 prefix of the extensions in the server's order.
//!
//! The raw forms (`JA4_r`, `JA4_ro`, `JA4S_r`) are what gets hashed, before
//! hashing ([`Ja4::raw`], [`Ja4s::raw`]). Nothing here allocates: the lists
//! are sorted in fixed arrays ([`MAX_LISTED`]) and hashed as they are
//! written.

use core::fmt;

use sha2::{Digest, Sha256};

use crate::tls::TlsError;
use crate::tls::hello::{ClientHello, ServerHello, extension, is_grease};

/// The most cipher suites or extensions a hello may list to be
/// fingerprinted; real ones list under 100, and a hello over this is
/// refused ([`TlsError::TooManyValues`]) rather than sorted on the heap.
pub const MAX_LISTED: usize = 512;

/// Which transport carried the hello: JA4's first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Transport {
    /// TLS over TCP (`t`).
    #[default]
    Tcp,
    /// QUIC (`q`).
    Quic,
    /// DTLS (`d`).
    Dtls,
}

impl Transport {
    fn letter(self) -> u8 {
        match self {
            Transport::Tcp => b't',
            Transport::Quic => b'q',
            Transport::Dtls => b'd',
        }
    }
}

/// Which raw form [`Ja4::raw`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// `JA4_r`: the lists sorted, `server_name` and ALPN left out, as
    /// hashed.
    Sorted,
    /// `JA4_ro`: the lists in wire order, every extension listed.
    Original,
}

/// A JA4 fingerprint: 36 ASCII bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ja4([u8; 36]);

/// A JA4S fingerprint: 25 ASCII bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ja4s([u8; 25]);

impl Ja4 {
    /// Fingerprints a ClientHello.
    ///
    /// # Errors
    /// [`TlsError::TooManyValues`] when it lists more than [`MAX_LISTED`]
    /// cipher suites or extensions.
    pub fn of(hello: &ClientHello<'_>, transport: Transport) -> Result<Self, TlsError> {
        let ciphers = Sorted::of(hello.ciphers(), "cipher_suites")?;
        let extensions = Sorted::of(
            hello
                .extension_kinds()
                .filter(|k| *k != extension::SERVER_NAME && *k != extension::ALPN),
            "extensions",
        )?;
        let mut out = [0u8; 36];
        out[0] = transport.letter();
        out[1..3].copy_from_slice(&version_code(client_version(hello)));
        out[3] = if hello.has_server_name() { b'd' } else { b'i' };
        out[4..6].copy_from_slice(&two_digits(ciphers.len));
        let listed = hello.extension_kinds().filter(|k| !is_grease(*k)).count();
        out[6..8].copy_from_slice(&two_digits(listed));
        out[8..10].copy_from_slice(&alpn_code(hello.alpn()));
        out[10] = b'_';
        out[11..23].copy_from_slice(&hash_prefix(ciphers.len, |h| {
            write_hex_list(h, ciphers.values());
        }));
        out[23] = b'_';
        out[24..36].copy_from_slice(&hash_prefix(extensions.len, |h| {
            write_extensions_and_algorithms(h, extensions.values(), hello);
        }));
        Ok(Ja4(out))
    }

    /// The fingerprint's text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The raw form of `hello`'s fingerprint (`JA4_r` or `JA4_ro`), written
    /// when displayed.
    pub fn raw<'h>(
        hello: &'h ClientHello<'h>,
        transport: Transport,
        order: Order,
    ) -> impl fmt::Display + 'h {
        RawJa4 {
            hello,
            transport,
            order,
        }
    }
}

impl Ja4s {
    /// Fingerprints a ServerHello.
    pub fn of(hello: &ServerHello<'_>, transport: Transport) -> Self {
        let listed = hello.extension_kinds().filter(|k| !is_grease(*k)).count();
        let mut out = [0u8; 25];
        out[0] = transport.letter();
        let version = hello.selected_version().unwrap_or(hello.version);
        out[1..3].copy_from_slice(&version_code(version));
        out[3..5].copy_from_slice(&two_digits(listed));
        out[5..7].copy_from_slice(&alpn_code(hello.alpn()));
        out[7] = b'_';
        out[8..12].copy_from_slice(&hex4(hello.cipher));
        out[12] = b'_';
        out[13..25].copy_from_slice(&hash_prefix(listed, |h| {
            write_hex_list(h, hello.extension_kinds());
        }));
        Ja4s(out)
    }

    /// The fingerprint's text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The raw form (`JA4S_r`): the extensions listed instead of hashed.
    pub fn raw<'h>(hello: &'h ServerHello<'h>, transport: Transport) -> impl fmt::Display + 'h {
        RawJa4s { hello, transport }
    }
}

macro_rules! text_impls {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($t), self.as_str())
            }
        }
    };
}

text_impls!(Ja4);
text_impls!(Ja4s);

/// The version JA4 reads: the highest non-GREASE `supported_versions`
/// entry, else `legacy_version`.
fn client_version(hello: &ClientHello<'_>) -> u16 {
    hello
        .supported_versions()
        .filter(|v| !is_grease(*v))
        .max()
        .unwrap_or(hello.version)
}

fn version_code(version: u16) -> [u8; 2] {
    match version {
        0x0304 => *b"13",
        0x0303 => *b"12",
        0x0302 => *b"11",
        0x0301 => *b"10",
        0x0300 => *b"s3",
        0x0002 => *b"s2",
        0xfeff => *b"d1",
        0xfefd => *b"d2",
        0xfefc => *b"d3",
        _ => *b"00",
    }
}

fn two_digits(n: usize) -> [u8; 2] {
    let n = u8::try_from(n.min(99)).unwrap_or(99);
    [b'0' + n / 10, b'0' + n % 10]
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex4(value: u16) -> [u8; 4] {
    let [hi, lo] = value.to_be_bytes();
    [
        HEX[usize::from(hi >> 4)],
        HEX[usize::from(hi & 0xf)],
        HEX[usize::from(lo >> 4)],
        HEX[usize::from(lo & 0xf)],
    ]
}

/// The first and last characters of the first ALPN protocol (see the
/// module docs).
fn alpn_code(alpn: Option<&[u8]>) -> [u8; 2] {
    let Some(&[first, ..]) = alpn else {
        return *b"00";
    };
    let last = alpn.and_then(<[u8]>::last).copied().unwrap_or(first);
    if !first.is_ascii() || !last.is_ascii() {
        *b"99"
    } else if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
        [first, last]
    } else {
        [HEX[usize::from(first >> 4)], HEX[usize::from(last & 0xf)]]
    }
}

/// The first 12 hex digits of SHA-256 over what `write` feeds it, or
/// `000000000000` for an empty list.
fn hash_prefix(listed: usize, write: impl FnOnce(&mut Sha256)) -> [u8; 12] {
    let mut out = *b"000000000000";
    if listed == 0 {
        return out;
    }
    let mut hasher = Sha256::new();
    write(&mut hasher);
    let digest = hasher.finalize();
    for (i, byte) in digest.iter().take(6).enumerate() {
        out[2 * i] = HEX[usize::from(byte >> 4)];
        out[2 * i + 1] = HEX[usize::from(byte & 0xf)];
    }
    out
}

/// Something the lists are written to: a hasher or a formatter.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

/// A formatter that remembers its first error.
struct Text<'f, 'g> {
    f: &'f mut fmt::Formatter<'g>,
    result: fmt::Result,
}

impl Sink for Text<'_, '_> {
    fn put(&mut self, bytes: &[u8]) {
        if self.result.is_ok() {
            // Only ASCII is ever written.
            self.result = self
                .f
                .write_str(core::str::from_utf8(bytes).unwrap_or_default());
        }
    }
}

fn write_hex_list(sink: &mut impl Sink, values: impl Iterator<Item = u16>) {
    for (i, value) in values.filter(|v| !is_grease(*v)).enumerate() {
        if i > 0 {
            sink.put(b",");
        }
        sink.put(&hex4(value));
    }
}

fn write_extensions_and_algorithms(
    sink: &mut impl Sink,
    extensions: impl Iterator<Item = u16>,
    hello: &ClientHello<'_>,
) {
    write_hex_list(sink, extensions);
    let mut algorithms = hello
        .signature_algorithms()
        .filter(|v| !is_grease(*v))
        .peekable();
    if algorithms.peek().is_some() {
        sink.put(b"_");
        write_hex_list(sink, algorithms);
    }
}

/// A list without its GREASE values, sorted in a fixed array.
struct Sorted {
    values: [u16; MAX_LISTED],
    len: usize,
}

impl Sorted {
    fn of(values: impl Iterator<Item = u16>, field: &'static str) -> Result<Self, TlsError> {
        let mut sorted = Sorted {
            values: [0; MAX_LISTED],
            len: 0,
        };
        for value in values.filter(|v| !is_grease(*v)) {
            let slot = sorted
                .values
                .get_mut(sorted.len)
                .ok_or(TlsError::TooManyValues { field })?;
            *slot = value;
            sorted.len += 1;
        }
        sorted.values[..sorted.len].sort_unstable();
        Ok(sorted)
    }

    fn values(&self) -> impl Iterator<Item = u16> + '_ {
        self.values[..self.len].iter().copied()
    }
}

struct RawJa4<'h> {
    hello: &'h ClientHello<'h>,
    transport: Transport,
    order: Order,
}

impl fmt::Display for RawJa4<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Ok(ja4) = Ja4::of(self.hello, self.transport) else {
            return Err(fmt::Error);
        };
        f.write_str(&ja4.as_str()[..11])?;
        let mut text = Text { f, result: Ok(()) };
        match self.order {
            Order::Sorted => {
                let ciphers =
                    Sorted::of(self.hello.ciphers(), "cipher_suites").map_err(|_| fmt::Error)?;
                let extensions = Sorted::of(
                    self.hello
                        .extension_kinds()
                        .filter(|k| *k != extension::SERVER_NAME && *k != extension::ALPN),
                    "extensions",
                )
                .map_err(|_| fmt::Error)?;
                write_hex_list(&mut text, ciphers.values());
                text.put(b"_");
                write_extensions_and_algorithms(&mut text, extensions.values(), self.hello);
            }
            Order::Original => {
                write_hex_list(&mut text, self.hello.ciphers());
                text.put(b"_");
                write_extensions_and_algorithms(
                    &mut text,
                    self.hello.extension_kinds(),
                    self.hello,
                );
            }
        }
        text.result
    }
}

struct RawJa4s<'h> {
    hello: &'h ServerHello<'h>,
    transport: Transport,
}

impl fmt::Display for RawJa4s<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ja4s = Ja4s::of(self.hello, self.transport);
        f.write_str(&ja4s.as_str()[..13])?;
        let mut text = Text { f, result: Ok(()) };
        write_hex_list(&mut text, self.hello.extension_kinds());
        text.result
    }
}
