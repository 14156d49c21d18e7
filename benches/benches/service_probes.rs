//! Service identification with nmap's database (Debian's `nmap` package):
//! a banner or answer of a real server through the prefix index, against
//! a loop over every pattern of the same probes (every pattern compiled
//! beforehand, so neither side pays compilation), in the same run.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgewise_service_probes::Database;

const DEBIAN_PATH: &str = "/usr/share/nmap/nmap-service-probes";

/// (name, probe, bytes): banners and answers of Debian 12's servers.
const BANNERS: &[(&str, &str, &[u8])] = &[
    ("openssh", "NULL", b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"),
    ("vsftpd", "NULL", b"220 (vsFTPd 3.0.3)\r\n"),
    ("postfix", "NULL", b"220 mail.example.org ESMTP Postfix (Debian/GNU)\r\n"),
    ("dovecot-pop3", "NULL", b"+OK Dovecot (Debian) ready.\r\n"),
    (
        "mariadb",
        "NULL",
        b"\x5b\0\0\0\x0a5.5.5-10.11.6-MariaDB-0+deb12u1\0\x1f\0\0\0abcdefgh\0\xfe\xf7\x2d\x02\0\xff\x81\x15\0\0\0\0\0\0\x1d\0\0\0ijklmnopqrst\0mysql_native_password\0",
    ),
    (
        "nginx",
        "GetRequest",
        b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 30 Nov 2026 20:00:00 GMT\r\nContent-Type: text/html\r\nContent-Length: 615\r\nConnection: close\r\n\r\n<!DOCTYPE html>",
    ),
    ("redis", "GetRequest", b"-ERR wrong number of arguments for 'get' command\r\n"),
];

fn identify(c: &mut Criterion) {
    let Ok(bytes) = std::fs::read(DEBIAN_PATH) else {
        eprintln!(
            "service_probes: {DEBIAN_PATH} is absent (apt-get install nmap): nothing measured"
        );
        return;
    };
    let db = Database::parse(&bytes).expect("nmap's database loads");
    assert!(db.compile_all().is_empty());
    let mut group = c.benchmark_group("service_probes");
    group.throughput(Throughput::Elements(1));
    for &(name, probe, banner) in BANNERS {
        assert!(db.identify(probe, banner).is_some(), "{name}");
        group.bench_function(format!("indexed/{name}"), |b| {
            b.iter(|| db.identify(black_box(probe), black_box(banner)));
        });
        group.bench_function(format!("every_pattern/{name}"), |b| {
            b.iter(|| db.identify_unfiltered(black_box(probe), black_box(banner)));
        });
    }
    group.finish();
}

criterion_group!(benches, identify);
criterion_main!(benches);
