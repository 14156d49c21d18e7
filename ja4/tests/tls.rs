//! JA4 and JA4S on hellos built here from the specification's worked
//! example, split across records, cut at every length, and with the ALPN
//! cases the specification lists.

use edgewise_ja4::tls::{
    self, ClientHello, Hello, Ja4, Ja4s, Order, ServerHello, TlsError, Transport, parse_first,
};

fn hex_list(text: &str) -> Vec<u16> {
    text.split(',')
        .map(|v| u16::from_str_radix(v, 16).unwrap())
        .collect()
}

fn u16s(values: &[u16]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

fn vec16(body: &[u8]) -> Vec<u8> {
    let mut out = u16::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn extension(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut out = kind.to_be_bytes().to_vec();
    out.extend(vec16(data));
    out
}

/// The specification's example: 15 suites, 16 extensions, h2, with GREASE
/// sprinkled in (a suite, an extension, a version, an algorithm).
fn client_hello(alpn: &[u8]) -> Vec<u8> {
    let mut ciphers = vec![0x0a0a];
    ciphers.extend(hex_list(
        "1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035",
    ));
    let mut extensions = extension(0x2a2a, &[]);
    for kind in
        hex_list("001b,0000,0033,0010,4469,0017,002d,000d,0005,0023,0012,002b,ff01,000b,000a,0015")
    {
        let data = match kind {
            0x0000 => {
                let mut name = vec![0];
                name.extend(vec16(b"example.com"));
                vec16(&name)
            }
            0x0010 => {
                let mut list = vec![u8::try_from(alpn.len()).unwrap()];
                list.extend_from_slice(alpn);
                list.extend([8]);
                list.extend_from_slice(b"http/1.1");
                vec16(&list)
            }
            0x000d => {
                let mut algorithms = vec![0x1a1a];
                algorithms.extend(hex_list("0403,0804,0401,0503,0805,0501,0806,0601"));
                vec16(&u16s(&algorithms))
            }
            0x002b => {
                let versions = u16s(&[0x3a3a, 0x0304, 0x0303]);
                let mut data = vec![u8::try_from(versions.len()).unwrap()];
                data.extend(versions);
                data
            }
            _ => Vec::new(),
        };
        extensions.extend(extension(kind, &data));
    }
    let mut body = vec![0x03, 0x03];
    body.extend([7; 32]);
    body.extend([32]);
    body.extend([9; 32]);
    body.extend(vec16(&u16s(&ciphers)));
    body.extend([1, 0]);
    body.extend(vec16(&extensions));
    let mut message = vec![1, 0];
    message.extend(u16::try_from(body.len()).unwrap().to_be_bytes());
    message.extend(body);
    message
}

/// `message` in records of at most `chunk` bytes.
fn records(message: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for part in message.chunks(chunk) {
        out.extend([22, 3, 1]);
        out.extend(vec16(part));
    }
    out
}

fn ja4_of(stream: &[u8]) -> String {
    let mut scratch = vec![0; tls::MAX_HELLO];
    match parse_first(stream, &mut scratch).unwrap() {
        Hello::Client(hello) => Ja4::of(&hello, Transport::Tcp).unwrap().to_string(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_specifications_example_in_one_record_or_many() {
    let message = client_hello(b"h2");
    for chunk in [message.len(), 1000, 100, 3, 1] {
        assert_eq!(
            ja4_of(&records(&message, chunk)),
            "t13d1516h2_8daaf6152771_e5627efa2ab1",
            "records of {chunk} bytes"
        );
    }
}

#[test]
fn the_raw_forms_list_what_is_hashed() {
    let message = client_hello(b"h2");
    let hello = ClientHello::parse(&message[4..]).unwrap();
    assert_eq!(
        Ja4::raw(&hello, Transport::Tcp, Order::Sorted).to_string(),
        "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_\
         0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_\
         0403,0804,0401,0503,0805,0501,0806,0601"
    );
    let original = Ja4::raw(&hello, Transport::Tcp, Order::Original).to_string();
    assert!(
        original.starts_with("t13d1516h2_1301,1302,1303,c02b,"),
        "{original}"
    );
    assert!(
        original.contains("_001b,0000,0033,0010,4469,"),
        "{original}"
    );
    assert_eq!(hello.server_name(), Some(&b"example.com"[..]));
}

#[test]
fn alpn_characters_as_the_specification_and_the_reference_tools_give_them() {
    let cases: [(&[u8], &str); 10] = [
        (b"h2", "h2"),
        (b"http/1.1", "h1"),
        (b"x", "xx"),
        (b"", "00"),
        (&[0x20], "20"),
        (&[0x20, 0x61], "21"),
        (&[0x61, 0x20], "60"),
        (&[0x30, 0x41, 0x2f, 0x31], "01"),
        // Not ASCII at an end: as FoxIO's tools print it.
        (&[0xba, 0xad], "99"),
        (&[0x30, 0xab], "99"),
    ];
    for (alpn, want) in cases {
        let message = client_hello(alpn);
        let ja4 = ja4_of(&records(&message, message.len()));
        assert_eq!(&ja4[8..10], want, "{alpn:02x?}");
    }
}

#[test]
fn every_cut_of_the_stream_is_an_error_and_none_panics() {
    let message = client_hello(b"h2");
    let stream = records(&message, 200);
    let mut scratch = vec![0; tls::MAX_HELLO];
    for len in 0..stream.len() {
        let got = parse_first(&stream[..len], &mut scratch);
        assert!(
            matches!(got, Err(TlsError::Incomplete { .. })),
            "{len}: {got:?}"
        );
    }
    // Inside the message, every cut of the body is a named error, but the
    // one right after the compression methods: a hello without extensions,
    // as TLS 1.0 clients may send.
    let without_extensions = 2 + 32 + 33 + 2 + 32 + 2;
    for len in 0..message.len() - 4 {
        let body = &message[4..4 + len];
        let parsed = ClientHello::parse(body);
        assert_eq!(
            parsed.is_ok(),
            len == without_extensions,
            "{len}: {parsed:?}"
        );
        let _ = ServerHello::parse(body);
    }
    // A message too big for the scratch, and a record that is not a handshake.
    let mut small = [0u8; 64];
    assert!(matches!(
        parse_first(&stream, &mut small),
        Err(TlsError::TooLarge { .. })
    ));
    assert_eq!(
        parse_first(b"GET / HTTP/1.1\r\n", &mut scratch),
        Err(TlsError::NotHandshake)
    );
    let mut alert = stream.clone();
    alert[0] = 21;
    assert_eq!(
        parse_first(&alert, &mut scratch),
        Err(TlsError::NotHandshake)
    );
}

#[test]
fn a_server_hello_gives_ja4s() {
    // TLS 1.2, cipher c030, extensions ff01, 000b, 0023 (the JA4S figure's).
    let mut extensions = extension(0xff01, &[0]);
    extensions.extend(extension(0x000b, &[1, 0]));
    extensions.extend(extension(0x0023, &[]));
    let mut body = vec![0x03, 0x03];
    body.extend([1; 32]);
    body.extend([0]);
    body.extend(0xc030u16.to_be_bytes());
    body.extend([0]);
    body.extend(vec16(&extensions));
    let mut message = vec![2, 0];
    message.extend(u16::try_from(body.len()).unwrap().to_be_bytes());
    message.extend(&body);
    let mut scratch = vec![0; 64];
    let stream = records(&message, 40);
    let Hello::Server(hello) = parse_first(&stream, &mut scratch).unwrap() else {
        panic!("a ServerHello");
    };
    let ja4s = Ja4s::of(&hello, Transport::Tcp);
    assert_eq!(&ja4s.as_str()[..13], "t120300_c030_");
    assert_eq!(
        Ja4s::raw(&hello, Transport::Tcp).to_string(),
        "t120300_c030_ff01,000b,0023"
    );
}
