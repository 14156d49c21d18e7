//! Telling what a service is from the first bytes of a flow (the banner a
//! server sends first, or the client's first request): a small, fixed set
//! of byte prefixes, checked in order. Anything else is `None`: a guess is
//! never made from the port number alone.
//!
//! | bytes                                               | name         |
//! |-----------------------------------------------------|--------------|
//! | `SSH-`                                              | `ssh`        |
//! | TLS handshake record (`16 03 00..=04`)              | `tls`        |
//! | `PRI * HTTP/2.0`                                    | `http2`      |
//! | `HTTP/1.` or a request line (`GET `, `POST `, ...)  | `http`       |
//! | `220` greeting naming SMTP / FTP                    | `smtp`/`ftp` |
//! | PostgreSQL startup or SSLRequest                    | `postgresql` |
//! | MySQL protocol-10 greeting                          | `mysql`      |
//! | RESP array (`*<n>\r\n`) or `+PONG`                  | `redis`      |
//! | `AMQP\0`                                            | `amqp`       |
//! | `INFO {`                                            | `nats`       |

const HTTP_METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

/// The service `payload` (a flow's first payload bytes, either direction)
/// belongs to, if one is recognised (see the module docs). Allocates
/// nothing.
pub fn detect_service(payload: &[u8]) -> Option<&'static str> {
    if payload.starts_with(b"SSH-") {
        return Some("ssh");
    }
    if let [0x16, 0x03, minor, ..] = payload
        && *minor <= 4
    {
        return Some("tls");
    }
    if payload.starts_with(b"PRI * HTTP/2.0") {
        return Some("http2");
    }
    if payload.starts_with(b"HTTP/1.") || HTTP_METHODS.iter().any(|m| payload.starts_with(m)) {
        return Some("http");
    }
    if payload.starts_with(b"220") {
        let line = payload.split(|&b| b == b'\n').next().unwrap_or_default();
        if contains(line, b"SMTP") {
            return Some("smtp");
        }
        if contains(line, b"FTP") {
            return Some("ftp");
        }
    }
    if is_postgres_startup(payload) {
        return Some("postgresql");
    }
    if is_mysql_greeting(payload) {
        return Some("mysql");
    }
    if payload.starts_with(b"+PONG") || is_resp_array(payload) {
        return Some("redis");
    }
    if payload.starts_with(b"AMQP\0") {
        return Some("amqp");
    }
    if payload.starts_with(b"INFO {") {
        return Some("nats");
    }
    None
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A startup message (length, protocol 3.0) or an `SSLRequest` /
/// `GSSENCRequest` (length 8, code 80877103 / 80877104).
fn is_postgres_startup(payload: &[u8]) -> bool {
    let [l0, l1, l2, l3, c0, c1, c2, c3, ..] = *payload else {
        return false;
    };
    let length = u32::from_be_bytes([l0, l1, l2, l3]);
    let code = u32::from_be_bytes([c0, c1, c2, c3]);
    (length == 8 && matches!(code, 80_877_103 | 80_877_104))
        || ((9..=10_000).contains(&length) && code == 0x0003_0000)
}

/// A server greeting: 3-byte length, sequence 0, protocol version 10, a
/// NUL-terminated version string.
fn is_mysql_greeting(payload: &[u8]) -> bool {
    let [l0, l1, l2, 0, 10, rest @ ..] = payload else {
        return false;
    };
    let length = u32::from_le_bytes([*l0, *l1, *l2, 0]) as usize;
    (20..=1024).contains(&length)
        && rest
            .iter()
            .take(64)
            .position(|&b| b == 0)
            .is_some_and(|end| end > 0 && rest[..end].iter().all(u8::is_ascii_graphic))
}

/// `*<digits>\r\n$` : a RESP command array.
fn is_resp_array(payload: &[u8]) -> bool {
    let Some(rest) = payload.strip_prefix(b"*") else {
        return false;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    (1..=4).contains(&digits) && rest[digits..].starts_with(b"\r\n$")
}

#[cfg(test)]
mod tests {
    use super::detect_service;

    #[test]
    fn banners_and_first_requests() {
        let cases: [(&[u8], Option<&str>); 16] = [
            (b"SSH-2.0-OpenSSH_9.6\r\n", Some("ssh")),
            (&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01], Some("tls")),
            (&[0x16, 0x03, 0x07], None),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Some("http2")),
            (b"GET /metrics HTTP/1.1\r\nHost: x\r\n", Some("http")),
            (b"HTTP/1.1 204 No Content\r\n", Some("http")),
            (b"220 mail.example ESMTP Postfix\r\n", Some("smtp")),
            (b"220 (vsFTPd 3.0.5)\r\n", Some("ftp")),
            (b"220 hello\r\n", None),
            (&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f], Some("postgresql")),
            (
                &[0, 0, 0, 0x29, 0, 3, 0, 0, b'u', b's', b'e', b'r', 0],
                Some("postgresql"),
            ),
            (
                b"\x4a\x00\x00\x00\x0a8.0.36\x00\x08\x00\x00\x00abcdefgh\x00",
                Some("mysql"),
            ),
            (b"*1\r\n$4\r\nPING\r\n", Some("redis")),
            (b"AMQP\x00\x00\x09\x01", Some("amqp")),
            (b"INFO {\"server_id\":\"x\"}\r\n", Some("nats")),
            (b"\x00\x01binary", None),
        ];
        for (payload, expected) in cases {
            assert_eq!(detect_service(payload), expected, "{payload:?}");
        }
        for len in 0..4 {
            assert_eq!(detect_service(&b"SSH-"[..len]), None);
        }
    }
}
