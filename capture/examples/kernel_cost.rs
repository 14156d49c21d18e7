//! What the observers cost in the kernel, measured (needs root):
//!
//! ```sh
//! sudo cargo run --release -p edgewise-capture --example kernel_cost
//! ```
//!
//! Two network namespaces joined by a veth pair; a bulk TCP transfer (this
//! binary, re-run inside the namespaces as sender and receiver) for a few
//! seconds with nothing attached, with an empty tcx program attached the
//! same way (ingress and egress of the sender's interface), and with the
//! observers; three rounds, interleaved. With `kernel.bpf_stats_enabled`,
//! the kernel's own run time and run count of the attached programs give
//! nanoseconds per packet (a packet is what tc sees: a GSO super-packet
//! when the veth offloads segmentation). Then the programs' own cost in a
//! hot loop: `BPF_PROG_TEST_RUN` repeating one data packet of an
//! established flow a million times (IPv4 and IPv6 TCP, UDP, and TCP
//! inside VXLAN), the kernel's average per run, for the observers and the
//! empty program (`--hot-loop OBJECT...` runs this
//! part alone, adding the observer of each object given: an earlier build,
//! compared in the same run). Prints both tables; the README quotes them.

#![expect(
    clippy::cast_precision_loss,
    reason = "nanosecond and byte counts far below 2^52 shown as rates"
)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edgewise_capture::{Capture, CaptureConfig, Programs};

const SECONDS: u64 = 4;
const ROUNDS: usize = 5;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--receive") => receive(),
        Some("--send") => send(&args[2]),
        Some("--hot-loop") => hot_loop(&args[2..]),
        _ => {
            measure();
            hot_loop(&[]);
        }
    }
}

/// `union bpf_attr`'s `test` member (`BPF_PROG_TEST_RUN`), up to
/// `batch_size`.
#[repr(C)]
#[derive(Default)]
struct TestRun {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    pad: u32,
}

/// `BPF_PROG_TEST_RUN` of `fd` on `packet`, `repeat` times: the kernel's
/// average nanoseconds per run.
fn test_run(fd: std::os::fd::RawFd, packet: &[u8], repeat: u32) -> u32 {
    const BPF_PROG_TEST_RUN: libc::c_long = 10;
    let mut attr = TestRun {
        prog_fd: u32::try_from(fd).expect("a valid descriptor"),
        data_size_in: u32::try_from(packet.len()).expect("a small packet"),
        data_in: packet.as_ptr() as u64,
        repeat,
        ..TestRun::default()
    };
    // SAFETY: `attr` is a valid, zero-padded `bpf_attr.test` that outlives
    // the call; `data_in` points at `packet`, which the kernel only reads
    // (no `data_out` is given).
    #[expect(
        unsafe_code,
        reason = "bpf(2) BPF_PROG_TEST_RUN has no wrapper in aya 0.14"
    )]
    let status = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &raw mut attr,
            size_of::<TestRun>(),
        )
    };
    assert_eq!(
        status,
        0,
        "BPF_PROG_TEST_RUN: {}",
        std::io::Error::last_os_error()
    );
    attr.duration
}

/// An IPv4 header for `payload` of `protocol` from `src` to `dst`.
fn ipv4(protocol: u8, src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut ip = vec![0u8; 20];
    ip[0] = 0x45;
    let total = u16::try_from(20 + payload.len()).expect("a small packet");
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[8] = 64;
    ip[9] = protocol;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    ip.extend_from_slice(payload);
    ip
}

/// A TCP ACK from port 40000 to 5201 with 100 bytes of payload.
fn tcp_ack() -> Vec<u8> {
    let mut tcp = vec![0u8; 20 + 100];
    tcp[0..2].copy_from_slice(&40_000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&5201u16.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x10;
    tcp
}

fn ethernet(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0u8; 12];
    frame.extend_from_slice(&ether_type.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// One data packet of an established flow, of each kind the hot loop
/// measures: what the flow cache answers in the entry program (IPv4 and
/// IPv6 TCP, UDP), and what takes the full path (TCP inside VXLAN).
fn data_packets() -> Vec<(&'static str, Vec<u8>)> {
    let (a, b) = ([10, 215, 0, 1], [10, 215, 0, 2]);
    let mut ipv6 = vec![0u8; 40];
    ipv6[0] = 0x60;
    let tcp = tcp_ack();
    ipv6[4..6].copy_from_slice(&u16::try_from(tcp.len()).expect("small").to_be_bytes());
    ipv6[6] = 6;
    ipv6[7] = 64;
    ipv6[8..24].copy_from_slice(&[0xfd, 0, 0xed, 0x6f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    ipv6[24..40].copy_from_slice(&[0xfd, 0, 0xed, 0x6f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    ipv6.extend_from_slice(&tcp);
    let mut udp = vec![0u8; 8 + 100];
    udp[0..2].copy_from_slice(&40_000u16.to_be_bytes());
    udp[2..4].copy_from_slice(&443u16.to_be_bytes());
    udp[4..6].copy_from_slice(&108u16.to_be_bytes());
    let inner = ethernet(0x0800, &ipv4(6, [10, 9, 0, 1], [10, 9, 0, 2], &tcp));
    let mut vxlan = vec![0u8; 16];
    vxlan[0..2].copy_from_slice(&50_000u16.to_be_bytes());
    vxlan[2..4].copy_from_slice(&4789u16.to_be_bytes());
    vxlan[4..6].copy_from_slice(
        &u16::try_from(16 + inner.len())
            .expect("small")
            .to_be_bytes(),
    );
    vxlan[8] = 0x08;
    vxlan.extend_from_slice(&inner);
    vec![
        ("IPv4 TCP", ethernet(0x0800, &ipv4(6, a, b, &tcp))),
        ("IPv6 TCP", ethernet(0x86dd, &ipv6)),
        ("IPv4 UDP", ethernet(0x0800, &ipv4(17, a, b, &udp))),
        ("TCP in VXLAN", ethernet(0x0800, &ipv4(17, a, b, &vxlan))),
    ]
}

/// The programs' own cost per run in a hot loop, for each kind of packet.
fn hot_loop(others: &[String]) {
    use std::os::fd::{AsFd, AsRawFd};
    const REPEAT: u32 = 1_000_000;
    let packets = data_packets();
    // (label, object, program): the empty program, the observer built
    // here, and the observer of each object given (an earlier build, to
    // compare in the same run).
    let mut programs: Vec<(String, Vec<u8>, &str)> = vec![
        (
            "empty program".to_owned(),
            edgewise_capture::OBSERVER_OBJECT.to_vec(),
            edgewise_capture::PROGRAM_PASS_THROUGH,
        ),
        (
            "edgewise observer (egress)".to_owned(),
            edgewise_capture::OBSERVER_OBJECT.to_vec(),
            edgewise_capture::PROGRAM_EGRESS,
        ),
    ];
    for path in others {
        let object = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        programs.push((
            format!("observer of {path} (egress)"),
            object,
            edgewise_capture::PROGRAM_EGRESS,
        ));
    }
    let mut loaded = Vec::new();
    for (_, object, name) in &programs {
        let mut ebpf = aya::EbpfLoader::new()
            .load(object)
            .expect("load the object");
        let program: &mut aya::programs::SchedClassifier = ebpf
            .program_mut(name)
            .expect("the program")
            .try_into()
            .expect("a classifier");
        program.load().expect("the verifier accepts it");
        let fd = program.fd().expect("loaded").as_fd().as_raw_fd();
        // The first run makes each flow's entry; the rest are the steady
        // state.
        for (_, packet) in &packets {
            test_run(fd, packet, 1);
        }
        loaded.push((ebpf, fd));
    }
    // runs[packet][program]: rounds interleaved across the programs, so
    // drift hits them alike.
    let mut runs = vec![vec![Vec::new(); loaded.len()]; packets.len()];
    for _ in 0..ROUNDS {
        for (k, (_, packet)) in packets.iter().enumerate() {
            for (i, (_, fd)) in loaded.iter().enumerate() {
                runs[k][i].push(test_run(*fd, packet, REPEAT));
            }
        }
    }
    for per_program in &mut runs {
        for rounds in per_program.iter_mut() {
            rounds.sort_unstable();
        }
    }
    let median = |rounds: &Vec<u32>| rounds[rounds.len() / 2];
    println!();
    println!(
        "hot loop: BPF_PROG_TEST_RUN, one data packet of an established flow of each kind, {REPEAT} runs, median of {ROUNDS} (min-max), kernel ns per run"
    );
    let kinds: Vec<&str> = packets.iter().map(|(kind, _)| *kind).collect();
    println!("| program | {} |", kinds.join(" | "));
    println!("|{}", " --- |".repeat(kinds.len() + 1));
    for (i, (label, ..)) in programs.iter().enumerate() {
        let cells: Vec<String> = runs
            .iter()
            .map(|per_program| {
                let rounds = &per_program[i];
                format!(
                    "{} ({}-{})",
                    median(rounds),
                    rounds[0],
                    rounds[rounds.len() - 1]
                )
            })
            .collect();
        println!("| {label} | {} |", cells.join(" | "));
    }
    for (i, (label, ..)) in programs.iter().enumerate().skip(1) {
        let added: Vec<String> = runs
            .iter()
            .zip(&kinds)
            .map(|(per_program, kind)| {
                let delta = i64::from(median(&per_program[i])) - i64::from(median(&per_program[0]));
                format!("{kind} {delta:+}")
            })
            .collect();
        println!(
            "{label} vs empty program, ns per packet: {}",
            added.join(", ")
        );
    }
}

/// Accepts one connection and reads until it closes.
fn receive() {
    let listener = TcpListener::bind("0.0.0.0:5201").expect("bind 5201");
    println!("ready");
    std::io::stdout().flush().unwrap();
    let (mut stream, _) = listener.accept().expect("accept");
    let mut buffer = vec![0u8; 1 << 20];
    while stream.read(&mut buffer).is_ok_and(|n| n > 0) {}
}

/// Sends to `address` for SECONDS and prints the bytes sent.
fn send(address: &str) {
    let mut stream = TcpStream::connect(address).expect("connect");
    let buffer = vec![0x5au8; 1 << 20];
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < Duration::from_secs(SECONDS) {
        stream.write_all(&buffer).expect("send");
        sent += buffer.len() as u64;
    }
    println!("{sent} {}", start.elapsed().as_nanos());
}

fn run(args: &[&str]) {
    let status = Command::new(args[0])
        .args(&args[1..])
        .status()
        .expect(args[0]);
    assert!(status.success(), "{args:?}");
}

struct Namespaces;

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in ["ewcost-a", "ewcost-b"] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// One transfer: Gbit/s.
fn transfer() -> f64 {
    let me = std::env::current_exe().unwrap();
    let mut receiver = Command::new("ip")
        .args(["netns", "exec", "ewcost-b"])
        .arg(&me)
        .arg("--receive")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = [0u8; 6];
    receiver
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut ready)
        .unwrap();
    let output = Command::new("ip")
        .args(["netns", "exec", "ewcost-a"])
        .arg(&me)
        .args(["--send", "10.215.0.2:5201"])
        .output()
        .unwrap();
    let _ = receiver.wait();
    let text = String::from_utf8(output.stdout).unwrap();
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().unwrap());
    let (bytes, nanos) = (fields.next().unwrap(), fields.next().unwrap());
    bytes * 8.0 / nanos
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The median of the rounds, with their spread: `median (min-max)`.
fn spread(values: &[f64], decimals: usize) -> String {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let middle = median(values.to_vec());
    format!("{middle:.decimals$} ({low:.decimals$}-{high:.decimals$})")
}

fn measure() {
    let _namespaces = Namespaces;
    for ns in ["ewcost-a", "ewcost-b"] {
        run(&["ip", "netns", "add", ns]);
    }
    run(&[
        "ip", "link", "add", "ewcost0", "netns", "ewcost-a", "type", "veth", "peer", "name",
        "ewcost1", "netns", "ewcost-b",
    ]);
    for (ns, interface, address) in [
        ("ewcost-a", "ewcost0", "10.215.0.1/24"),
        ("ewcost-b", "ewcost1", "10.215.0.2/24"),
    ] {
        run(&["ip", "-n", ns, "addr", "add", address, "dev", interface]);
        run(&["ip", "-n", ns, "link", "set", interface, "up"]);
        run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
    let _stats =
        aya::sys::enable_stats(aya::sys::Stats::RunTime).expect("enable BPF run-time statistics");
    let config = |programs| {
        let mut capture_config = CaptureConfig::default();
        capture_config.ingress = vec!["ewcost0".to_owned()];
        capture_config.egress = vec!["ewcost0".to_owned()];
        capture_config.netns = Some(PathBuf::from("/run/netns/ewcost-a"));
        capture_config.programs = programs;
        capture_config
    };
    let mut throughput: [Vec<f64>; 3] = Default::default();
    let mut per_packet: [Vec<f64>; 2] = Default::default();
    let _ = transfer(); // warm-up
    for _ in 0..ROUNDS {
        throughput[0].push(transfer());
        for (slot, programs) in [Programs::PassThrough, Programs::Observers]
            .into_iter()
            .enumerate()
        {
            let mut capture = Capture::attach(&config(programs)).expect("attach");
            let gbits = transfer();
            let (runs, time) = capture.kernel_time().expect("program statistics");
            // Keep the ring empty so the observers never lose events.
            let _ = capture.poll(Duration::ZERO, |_| {});
            throughput[slot + 1].push(gbits);
            per_packet[slot].push(time.as_nanos() as f64 / runs.max(1) as f64);
        }
    }
    let none = median(throughput[0].clone());
    let observers = median(throughput[2].clone());
    let (empty_ns, observer_ns) = (median(per_packet[0].clone()), median(per_packet[1].clone()));
    println!(
        "bulk TCP over veth between namespaces, {SECONDS} s per transfer, median of {ROUNDS} rounds (min-max)"
    );
    println!("| attached | throughput, Gbit/s | kernel ns per packet (tc's view) |");
    println!("| --- | --- | --- |");
    println!("| nothing | {} | — |", spread(&throughput[0], 2));
    println!(
        "| empty tcx program, ingress + egress | {} | {} |",
        spread(&throughput[1], 2),
        spread(&per_packet[0], 1)
    );
    println!(
        "| edgewise observers, ingress + egress | {} | {} |",
        spread(&throughput[2], 2),
        spread(&per_packet[1], 1)
    );
    let added: Vec<f64> = per_packet[1]
        .iter()
        .zip(&per_packet[0])
        .map(|(observer, empty)| observer - empty)
        .collect();
    println!(
        "observers vs empty program: {:+.1} ns per packet (median of the rounds' differences: {}); throughput vs nothing: {:+.2}%",
        observer_ns - empty_ns,
        spread(&added, 1),
        (observers / none - 1.0) * 100.0
    );
}
