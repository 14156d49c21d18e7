//! Real handshakes from this machine's kernel: two network namespaces joined
//! by a veth pair, a listener and clients (IPv4, IPv6, an ECN-enabled client,
//! a client with a small MSS), captured by tcpdump. Every SYN / SYN-ACK
//! fingerprint we compute is checked against what tcpdump's own, independent
//! decoder says the packet carries (window, option list, MSS, scale).
//!
//! Needs root, `ip`, `tcpdump` and `python3`; skips with the reason otherwise
//! (a failure under `CI=true`). Traffic stays between the two namespaces the
//! test creates; both are deleted on exit, even on panic.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use edgewise_ja4::TrackerConfig;
use edgewise_observer::fingerprints::{FingerprintRecord, Record, fingerprint_capture};
use edgewise_test_support::{Namespaces, run};

const SERVER_V4: &str = "10.213.7.2";
const SERVER_V6: &str = "fd00:ed6e::2";

fn wait_for(child: &mut Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if child.try_wait().expect("wait").is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

const SERVER: &str = r"
import select, socket, sys, time
socks = []
for family, addr in ((socket.AF_INET, '0.0.0.0'), (socket.AF_INET6, '::')):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, 8080)); s.listen(16); socks.append(s)
print('ready', flush=True)
accepted, deadline = 0, time.time() + 20
while accepted < int(sys.argv[1]) and time.time() < deadline:
    ready, _, _ = select.select(socks, [], [], 0.5)
    for s in ready:
        c, _ = s.accept(); c.settimeout(2)
        try: c.recv(64)
        except OSError: pass
        c.close(); accepted += 1
";

const CLIENT: &str = r"
import socket, sys
host, mss = sys.argv[1], int(sys.argv[2])
family = socket.AF_INET6 if ':' in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
if mss: s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
s.settimeout(5); s.connect((host, 8080)); s.sendall(b'hello'); s.close()
";

/// What tcpdump says about one packet.
#[derive(Debug)]
struct Dumped {
    flags: String,
    expected: Option<String>,
}

/// JA4 base string from tcpdump's text: `win N, options [mss 1460,sackOK,TS
/// val 1 ecr 0,nop,wscale 7]`.
fn from_tcpdump(line: &str) -> Option<Dumped> {
    let flags = line.split("Flags [").nth(1)?.split(']').next()?.to_string();
    let win: u32 = line
        .split(", win ")
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let mut kinds = Vec::new();
    let (mut mss, mut ws) = (0u32, 0u32);
    if let Some(opts) = line
        .split("options [")
        .nth(1)
        .and_then(|o| o.split(']').next())
    {
        for opt in opts.split(',') {
            let mut words = opt.split_whitespace();
            match words.next()? {
                "mss" => {
                    kinds.push("2".to_string());
                    mss = words.next()?.parse().ok()?;
                }
                "nop" => kinds.push("1".to_string()),
                "wscale" => {
                    kinds.push("3".to_string());
                    ws = words.next()?.parse().ok()?;
                }
                "sackOK" => kinds.push("4".to_string()),
                "TS" => kinds.push("8".to_string()),
                "eol" => kinds.push("0".to_string()),
                other => panic!("tcpdump option {other:?} not mapped in this test"),
            }
        }
    }
    let kinds = if kinds.is_empty() {
        "00".into()
    } else {
        kinds.join("-")
    };
    let ws = if ws == 0 { "00".into() } else { ws.to_string() };
    Some(Dumped {
        flags,
        expected: Some(format!("{win}_{kinds}_{mss:02}_{ws}")),
    })
}

fn dump(pcap: &Path) -> Vec<Dumped> {
    let out = Command::new("tcpdump")
        .args(["-r"])
        .arg(pcap)
        .args(["-nn", "-S"])
        .output()
        .expect("tcpdump -r");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            from_tcpdump(l).unwrap_or(Dumped {
                flags: String::new(),
                expected: None,
            })
        })
        .collect()
}

#[test]
#[expect(clippy::too_many_lines, reason = "one scenario, told in order")]
fn fingerprints_of_real_kernel_handshakes_match_the_packet_bytes() {
    if !common::is_root() {
        return common::skip("needs root to create network namespaces");
    }
    for tool in ["ip", "tcpdump", "python3"] {
        if !common::have(tool) {
            return common::skip(&format!(
                "needs `{tool}` (apt-get install iproute2 tcpdump)"
            ));
        }
    }
    let id = std::process::id() % 100_000;
    let (c, s) = (format!("ewc{id}"), format!("ews{id}"));
    let _guard = Namespaces(vec![c.clone(), s.clone()]);
    let (vc, vs) = (format!("ewc{id}v"), format!("ews{id}v"));
    run(&["ip", "netns", "add", &c]);
    run(&["ip", "netns", "add", &s]);
    run(&[
        "ip", "link", "add", &vc, "netns", &c, "type", "veth", "peer", "name", &vs, "netns", &s,
    ]);
    for (ns, dev, v4, v6) in [
        (&c, &vc, "10.213.7.1/24", "fd00:ed6e::1/64"),
        (&s, &vs, "10.213.7.2/24", "fd00:ed6e::2/64"),
    ] {
        run(&["ip", "-n", ns, "addr", "add", v4, "dev", dev]);
        run(&["ip", "-n", ns, "-6", "addr", "add", v6, "dev", dev, "nodad"]);
        run(&["ip", "-n", ns, "link", "set", dev, "up"]);
        run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
    let dir = std::env::temp_dir().join(format!("edgewise-handshakes-{id}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pcap = dir.join("handshakes.pcap");

    let mut tcpdump = Command::new("ip")
        .args([
            "netns",
            "exec",
            &s,
            "tcpdump",
            "--immediate-mode",
            "-i",
            &vs,
            "-U",
            "-n",
            "-w",
        ])
        .arg(&pcap)
        .arg("tcp")
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump");
    let mut lines = BufReader::new(tcpdump.stderr.take().expect("stderr")).lines();
    let listening = lines
        .by_ref()
        .take(5)
        .any(|l| l.is_ok_and(|l| l.contains("listening on")));
    assert!(listening, "tcpdump did not start");
    // Keep draining tcpdump's stderr so it never blocks or dies on a closed pipe.
    let drain = std::thread::spawn(move || lines.for_each(drop));

    let clients: [(&str, &str, bool); 4] = [
        (SERVER_V4, "0", false),
        (SERVER_V6, "0", false),
        (SERVER_V4, "1000", false),
        (SERVER_V4, "0", true),
    ];
    let mut server = Command::new("ip")
        .args([
            "netns",
            "exec",
            &s,
            "python3",
            "-c",
            SERVER,
            &clients.len().to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("server");
    let mut ready = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("ready");
    assert_eq!(ready.trim(), "ready");

    for (host, mss, ecn) in clients {
        let script = format!(
            "sysctl -qw net.ipv4.tcp_ecn={} && exec python3 -c \"$0\" {host} {mss}",
            u8::from(ecn)
        );
        run(&["ip", "netns", "exec", &c, "sh", "-c", &script, CLIENT]);
    }
    assert!(
        wait_for(&mut server, Duration::from_secs(20)),
        "server did not finish"
    );
    // Immediate mode hands each packet to tcpdump at once; the pause covers
    // the last FIN/ACK still in flight.
    std::thread::sleep(Duration::from_millis(500));
    run(&["kill", "-INT", &tcpdump.id().to_string()]);
    assert!(
        wait_for(&mut tcpdump, Duration::from_secs(10)),
        "tcpdump did not stop"
    );
    drain.join().expect("stderr drained");

    let mut records: BTreeMap<u64, FingerprintRecord> = BTreeMap::new();
    fingerprint_capture(
        BufReader::new(File::open(&pcap).expect("pcap")),
        TrackerConfig::default(),
        |r| {
            if let Record::Tcp(r) = r {
                records.insert(r.frame, *r);
            }
        },
    )
    .expect("capture reads");
    let dumped = dump(&pcap);
    let _ = std::fs::remove_dir_all(&dir);

    let (mut syns, mut syn_acks, mut ecn_syns, mut v6, mut small_mss) = (0, 0, 0, 0, 0);
    for (i, packet) in dumped.iter().enumerate() {
        let frame = i as u64 + 1;
        let is_syn = packet.flags.starts_with('S') && !packet.flags.contains('.');
        let is_syn_ack = packet.flags.starts_with("S.");
        let is_bare_rst = packet.flags == "R";
        let record = records.get(&frame);
        assert_eq!(
            record.is_some(),
            is_syn || is_syn_ack || is_bare_rst,
            "frame {frame} [{}]: fingerprinted = {:?}",
            packet.flags,
            record.map(FingerprintRecord::fingerprint)
        );
        let Some(record) = record else { continue };
        if is_bare_rst {
            continue;
        }
        let ours = record.fingerprint();
        let base: Vec<&str> = ours.splitn(5, '_').take(4).collect();
        assert_eq!(
            Some(base.join("_")),
            packet.expected,
            "frame {frame} [{}]",
            packet.flags
        );
        assert_eq!(record.kind(), if is_syn { "ja4t" } else { "ja4ts" });
        if is_syn {
            syns += 1;
            ecn_syns += usize::from(packet.flags.contains('E'));
            small_mss += usize::from(base[2] == "1000");
        } else {
            syn_acks += 1;
        }
        v6 += usize::from(record.src.is_ipv6());
    }
    assert!(
        syns >= 4 && syn_acks >= 4,
        "saw {syns} SYNs and {syn_acks} SYN-ACKs in {dumped:#?}"
    );
    assert!(
        ecn_syns >= 1,
        "the ECN client's SYN|ECE|CWR was fingerprinted"
    );
    assert!(v6 >= 2, "IPv6 handshake fingerprinted both ways");
    assert!(small_mss >= 1, "the MSS-1000 client was seen");
}
