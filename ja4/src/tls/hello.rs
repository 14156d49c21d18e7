//! Checked views of the two hellos (RFC 8446 section 4.1.2 and 4.1.3; the
//! same layout back to TLS 1.0, where the extensions may be absent).
//!
//! Contract: [`ClientHello::parse`] and [`ServerHello::parse`] walk the
//! whole body once: every vector length, every extension's length and the
//! inner lists of the extensions read here (server name, ALPN, signature
//! algorithms, supported versions) are checked, so no accessor can fail
//! or panic afterwards. Bytes after the extensions are an error. An
//! unknown extension is kept as it is; nothing allocates.

use crate::tls::TlsError;
use crate::tls::reader::{Reader, u16_list, u16s};

/// Extension numbers this module reads (IANA "TLS `ExtensionType` Values").
pub mod extension {
    /// `server_name` (RFC 6066).
    pub const SERVER_NAME: u16 = 0x0000;
    /// `signature_algorithms` (RFC 8446).
    pub const SIGNATURE_ALGORITHMS: u16 = 0x000d;
    /// `application_layer_protocol_negotiation` (RFC 7301).
    pub const ALPN: u16 = 0x0010;
    /// `supported_versions` (RFC 8446).
    pub const SUPPORTED_VERSIONS: u16 = 0x002b;
}

/// The handshake type of a ClientHello.
pub const CLIENT_HELLO: u8 = 1;
/// The handshake type of a ServerHello.
pub const SERVER_HELLO: u8 = 2;

/// A GREASE value (RFC 8701): `0x?a?a` with both bytes equal, reserved so
/// that peers keep tolerating unknown values; fingerprints skip them.
pub fn is_grease(value: u16) -> bool {
    value & 0x0f0f == 0x0a0a && value >> 8 == value & 0xff
}

/// A ClientHello's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientHello<'a> {
    /// `legacy_version` (the version before `supported_versions`).
    pub version: u16,
    ciphers: &'a [u8],
    extensions: &'a [u8],
    server_name: Option<&'a [u8]>,
    alpn: Option<&'a [u8]>,
    signature_algorithms: &'a [u8],
    supported_versions: &'a [u8],
}

impl<'a> ClientHello<'a> {
    /// Reads a ClientHello's body (after the handshake header).
    ///
    /// # Errors
    /// [`TlsError::Truncated`], [`TlsError::OddLength`] or
    /// [`TlsError::Trailing`] naming the field.
    pub fn parse(body: &'a [u8]) -> Result<Self, TlsError> {
        let mut r = Reader::new(body);
        let version = r.u16("legacy_version")?;
        r.take(32, "random")?;
        r.vec8("legacy_session_id")?;
        let ciphers = u16_list(r.vec16("cipher_suites")?, "cipher_suites")?;
        r.vec8("legacy_compression_methods")?;
        let extensions = extensions_of(&mut r)?;
        let mut hello = ClientHello {
            version,
            ciphers,
            extensions,
            server_name: None,
            alpn: None,
            signature_algorithms: &[],
            supported_versions: &[],
        };
        for (kind, data) in Extensions::new(extensions) {
            match kind {
                extension::SERVER_NAME => hello.server_name = host_name(data)?,
                extension::ALPN => hello.alpn = first_protocol(data)?,
                extension::SIGNATURE_ALGORITHMS => {
                    let mut e = Reader::new(data);
                    hello.signature_algorithms =
                        u16_list(e.vec16("signature_algorithms")?, "signature_algorithms")?;
                }
                extension::SUPPORTED_VERSIONS => {
                    let mut e = Reader::new(data);
                    hello.supported_versions =
                        u16_list(e.vec8("supported_versions")?, "supported_versions")?;
                }
                _ => {}
            }
        }
        Ok(hello)
    }

    /// The cipher suites, in the client's order (GREASE included).
    pub fn ciphers(&self) -> impl Iterator<Item = u16> + 'a {
        u16s(self.ciphers)
    }

    /// The extensions' numbers, in wire order (GREASE included).
    pub fn extension_kinds(&self) -> impl Iterator<Item = u16> + 'a {
        Extensions::new(self.extensions).map(|(kind, _)| kind)
    }

    /// The extensions, numbers and data, in wire order.
    pub fn extensions(&self) -> Extensions<'a> {
        Extensions::new(self.extensions)
    }

    /// Whether a `server_name` extension is present (even an empty one).
    pub fn has_server_name(&self) -> bool {
        self.extension_kinds().any(|k| k == extension::SERVER_NAME)
    }

    /// The first `host_name` of the `server_name` extension, as sent
    /// (not checked to be a host name).
    pub fn server_name(&self) -> Option<&'a [u8]> {
        self.server_name
    }

    /// The first protocol the ALPN extension offers, when one does.
    pub fn alpn(&self) -> Option<&'a [u8]> {
        self.alpn
    }

    /// The signature algorithms, in the client's order (GREASE included).
    pub fn signature_algorithms(&self) -> impl Iterator<Item = u16> + 'a {
        u16s(self.signature_algorithms)
    }

    /// The versions of `supported_versions` (GREASE included).
    pub fn supported_versions(&self) -> impl Iterator<Item = u16> + 'a {
        u16s(self.supported_versions)
    }
}

/// A ServerHello's fields (a HelloRetryRequest has the same form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerHello<'a> {
    /// `legacy_version`.
    pub version: u16,
    /// The cipher suite the server chose.
    pub cipher: u16,
    extensions: &'a [u8],
    alpn: Option<&'a [u8]>,
    selected_version: Option<u16>,
}

impl<'a> ServerHello<'a> {
    /// Reads a ServerHello's body (after the handshake header).
    ///
    /// # Errors
    /// [`TlsError::Truncated`], [`TlsError::OddLength`] or
    /// [`TlsError::Trailing`] naming the field.
    pub fn parse(body: &'a [u8]) -> Result<Self, TlsError> {
        let mut r = Reader::new(body);
        let version = r.u16("legacy_version")?;
        r.take(32, "random")?;
        r.vec8("legacy_session_id")?;
        let cipher = r.u16("cipher_suite")?;
        r.u8("legacy_compression_method")?;
        let extensions = extensions_of(&mut r)?;
        let mut hello = ServerHello {
            version,
            cipher,
            extensions,
            alpn: None,
            selected_version: None,
        };
        for (kind, data) in Extensions::new(extensions) {
            match kind {
                extension::ALPN => hello.alpn = first_protocol(data)?,
                extension::SUPPORTED_VERSIONS => {
                    hello.selected_version = Some(Reader::new(data).u16("supported_versions")?);
                }
                _ => {}
            }
        }
        Ok(hello)
    }

    /// The extensions' numbers, in wire order.
    pub fn extension_kinds(&self) -> impl Iterator<Item = u16> + 'a {
        Extensions::new(self.extensions).map(|(kind, _)| kind)
    }

    /// The protocol the server chose by ALPN.
    pub fn alpn(&self) -> Option<&'a [u8]> {
        self.alpn
    }

    /// The version of `supported_versions` (TLS 1.3), when present.
    pub fn selected_version(&self) -> Option<u16> {
        self.selected_version
    }
}

/// The extensions block (absent before TLS 1.3 when the hello ends after
/// the compression methods), every extension's length checked.
fn extensions_of<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], TlsError> {
    if r.is_empty() {
        return Ok(&[]);
    }
    let block = r.vec16("extensions")?;
    if !r.is_empty() {
        return Err(TlsError::Trailing {
            field: "extensions",
        });
    }
    let mut e = Reader::new(block);
    while !e.is_empty() {
        e.u16("extension_type")?;
        e.vec16("extension_data")?;
    }
    Ok(block)
}

/// The extensions of a hello, number and data, in wire order (their
/// lengths were checked when the hello was parsed).
#[derive(Debug, Clone)]
pub struct Extensions<'a> {
    rest: Reader<'a>,
}

impl<'a> Extensions<'a> {
    fn new(block: &'a [u8]) -> Self {
        Extensions {
            rest: Reader::new(block),
        }
    }
}

impl<'a> Iterator for Extensions<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        // Checked whole by `extensions_of`: neither read can fail.
        let kind = self.rest.u16("extension_type").ok()?;
        let data = self.rest.vec16("extension_data").ok()?;
        Some((kind, data))
    }
}

/// The first `host_name` entry of a `server_name` extension (RFC 6066
/// section 3); the list is read whole so a malformed one is an error.
fn host_name(data: &[u8]) -> Result<Option<&[u8]>, TlsError> {
    if data.is_empty() {
        // A server's empty acknowledgement; a client never sends one,
        // but it names nothing either way.
        return Ok(None);
    }
    let mut e = Reader::new(data);
    let mut list = Reader::new(e.vec16("server_name_list")?);
    let mut first = None;
    while !list.is_empty() {
        let kind = list.u8("name_type")?;
        let name = list.vec16("host_name")?;
        if kind == 0 && first.is_none() {
            first = Some(name);
        }
    }
    Ok(first)
}

/// The first protocol of an ALPN extension's list (RFC 7301 section
/// 3.1); the list is read whole.
fn first_protocol(data: &[u8]) -> Result<Option<&[u8]>, TlsError> {
    let mut e = Reader::new(data);
    let mut list = Reader::new(e.vec16("protocol_name_list")?);
    let mut first = None;
    while !list.is_empty() {
        let name = list.vec8("protocol_name")?;
        first.get_or_insert(name);
    }
    Ok(first)
}
