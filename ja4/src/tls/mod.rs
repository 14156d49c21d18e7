//! TLS hellos: the record layer put back together ([`record`]), checked
//! views of the ClientHello and ServerHello ([`hello`]), and the JA4 and
//! JA4S fingerprints ([`fingerprint`]).
//!
//! The input is the first bytes of one direction of a connection (the
//! concatenated payloads, in order, as a sensor saw them); the output is
//! borrowed views and fixed-size fingerprints. Nothing allocates: a hello
//! that spans records is copied into a scratch buffer the caller owns.
//!
//! ```
//! use edgewise_ja4::tls::{Hello, Transport, parse_first};
//!
//! // A minimal TLS 1.2 ClientHello for "a.io" offering one suite and ALPN "h2".
//! let mut hello = vec![0x03, 0x03];
//! hello.extend([0; 32]); // random
//! hello.extend([0, 0, 2, 0xc0, 0x2f, 1, 0]); // session id, suites, compression
//! let sni = [0, 0, 0, 9, 0, 7, 0, 0, 4, b'a', b'.', b'i', b'o'];
//! let alpn = [0, 0x10, 0, 5, 0, 3, 2, b'h', b'2'];
//! hello.extend(u16::try_from(sni.len() + alpn.len())?.to_be_bytes());
//! hello.extend(sni);
//! hello.extend(alpn);
//! let mut stream = vec![22, 3, 1];
//! stream.extend(u16::try_from(hello.len() + 4)?.to_be_bytes());
//! stream.extend([1, 0]);
//! stream.extend(u16::try_from(hello.len())?.to_be_bytes());
//! stream.extend(hello);
//!
//! let mut scratch = [0u8; 64];
//! let Hello::Client(client) = parse_first(&stream, &mut scratch)? else { unreachable!() };
//! assert_eq!(client.server_name(), Some(&b"a.io"[..]));
//! let ja4 = edgewise_ja4::tls::Ja4::of(&client, Transport::Tcp)?;
//! assert!(ja4.as_str().starts_with("t12d0102h2_"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod fingerprint;
pub mod hello;
mod reader;
pub mod record;

use thiserror::Error;

pub use fingerprint::{Ja4, Ja4s, MAX_LISTED, Order, Transport};
pub use hello::{ClientHello, ServerHello, is_grease};
pub use record::{Handshake, first_handshake, starts_handshake};

/// The most bytes of a hello [`parse_first`] reassembles: a ClientHello
/// with post-quantum key shares is about 2 KB, and a handshake message may
/// not exceed what a few records carry in practice.
pub const MAX_HELLO: usize = 16 * 1024;

/// Why the first bytes of a stream gave no hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A record is not a handshake record (or not TLS at all).
    #[error("not a TLS handshake record")]
    NotHandshake,
    /// The stream ends before the first handshake message does.
    #[error("the handshake message is incomplete: {have} of {need} bytes")]
    Incomplete {
        /// Message bytes seen.
        have: usize,
        /// Message bytes needed (at least the 4-byte header).
        need: usize,
    },
    /// A record longer than the protocol allows.
    #[error("a TLS record of {len} bytes is longer than allowed")]
    RecordTooLong {
        /// Its announced length.
        len: usize,
    },
    /// The message does not fit in the caller's scratch buffer.
    #[error("a handshake message of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// The message length, header included.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A field runs past the end of what contains it.
    #[error("the hello is truncated in {field}")]
    Truncated {
        /// The field.
        field: &'static str,
    },
    /// A list of 2-byte values has an odd length.
    #[error("{field} has an odd length")]
    OddLength {
        /// The field.
        field: &'static str,
    },
    /// Bytes follow the last field.
    #[error("bytes follow {field}")]
    Trailing {
        /// The last field.
        field: &'static str,
    },
    /// More values than [`MAX_LISTED`].
    #[error("{field} lists more values than a fingerprint takes")]
    TooManyValues {
        /// The field.
        field: &'static str,
    },
}

impl TlsError {
    /// A short, stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            TlsError::NotHandshake => "not_handshake",
            TlsError::Incomplete { .. } => "incomplete",
            TlsError::RecordTooLong { .. } => "record_too_long",
            TlsError::TooLarge { .. } => "too_large",
            TlsError::Truncated { .. } => "truncated",
            TlsError::OddLength { .. } => "odd_length",
            TlsError::Trailing { .. } => "trailing",
            TlsError::TooManyValues { .. } => "too_many_values",
        }
    }
}

/// The first handshake message of a stream, read as a hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hello<'a> {
    /// A ClientHello.
    Client(ClientHello<'a>),
    /// A ServerHello.
    Server(ServerHello<'a>),
    /// Another message first (its handshake type).
    Other(u8),
}

/// Reads the first handshake message of `stream` (see [`first_handshake`])
/// and parses it when it is a hello.
///
/// # Errors
/// As [`first_handshake`], [`ClientHello::parse`] and
/// [`ServerHello::parse`].
pub fn parse_first<'a>(stream: &'a [u8], scratch: &'a mut [u8]) -> Result<Hello<'a>, TlsError> {
    let message = first_handshake(stream, scratch)?;
    Ok(match message.kind {
        hello::CLIENT_HELLO => Hello::Client(ClientHello::parse(message.body)?),
        hello::SERVER_HELLO => Hello::Server(ServerHello::parse(message.body)?),
        other => Hello::Other(other),
    })
}

/// A hello, fingerprinted: what [`fingerprint_first`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloFingerprint<'a> {
    /// A client's.
    Client {
        /// Its JA4.
        ja4: Ja4,
        /// The first `host_name` of its `server_name` extension (SNI).
        server_name: Option<&'a [u8]>,
        /// The first protocol its ALPN extension offers.
        alpn: Option<&'a [u8]>,
    },
    /// A server's.
    Server {
        /// Its JA4S.
        ja4s: Ja4s,
        /// The protocol it chose by ALPN.
        alpn: Option<&'a [u8]>,
    },
}

/// Fingerprints the hello that begins `stream` (see [`parse_first`]);
/// `None` when the first handshake message is not a hello.
///
/// # Errors
/// As [`parse_first`] and [`Ja4::of`].
pub fn fingerprint_first<'a>(
    stream: &'a [u8],
    scratch: &'a mut [u8],
    transport: Transport,
) -> Result<Option<HelloFingerprint<'a>>, TlsError> {
    Ok(match parse_first(stream, scratch)? {
        Hello::Client(hello) => Some(HelloFingerprint::Client {
            ja4: Ja4::of(&hello, transport)?,
            server_name: hello.server_name(),
            alpn: hello.alpn(),
        }),
        Hello::Server(hello) => Some(HelloFingerprint::Server {
            ja4s: Ja4s::of(&hello, transport),
            alpn: hello.alpn(),
        }),
        Hello::Other(_) => None,
    })
}
