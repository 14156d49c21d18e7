//! The ways to attach, on a real kernel: classic clsact filters, XDP (with
//! tcx as the fallback for egress), `auto` as the default-route interface,
//! and what a loader that is killed leaves behind in each mode.
//!
//! Needs root, `ip`, `tc` and `python3`; skips with the reason otherwise (a
//! failure under `CI=true`). Traffic stays between the two namespaces each
//! test creates.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use edgewise_capture::{
    AttachMode, Capture, CaptureConfig, CaptureError, Direction, EventKind, PROGRAM_EGRESS,
    PROGRAM_INGRESS, PROGRAM_XDP, tcx_programs,
};
use edgewise_edge_set::EdgeKey;
use edgewise_ip_index::Protocol;
use edgewise_test_support::{have, run, skip};
use support::{Listener, Net, check_handshake, collect, connects, netns, preflight};

mod support;

/// The program names of the classic tc filters on `interface` in
/// `direction`.
fn tc_filters(namespace: &str, interface: &str, direction: &str) -> Vec<String> {
    let output = Command::new("ip")
        .args(["netns", "exec", namespace, "tc", "filter", "show", "dev"])
        .args([interface, direction])
        .output()
        .expect("run tc");
    // A filter's line says `... handle 0x1 NAME direct-action ... name NAME ...`.
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|&w| w == "name")?;
            words.next().map(str::to_owned)
        })
        .collect()
}

fn have_tc() -> bool {
    if have("tc") {
        return true;
    }
    skip("tc (iproute2) is not installed");
    false
}

#[test]
fn clsact_filters_observe_like_tcx_and_go_with_the_capture() {
    if !preflight() || !have_tc() {
        return;
    }
    let net = Net::create("c");
    let mut capture = Capture::attach(&{
        let mut capture_config = CaptureConfig::default();
        capture_config.ingress = vec![net.client_if.clone()];
        capture_config.egress = vec![net.client_if.clone()];
        capture_config.netns = Some(netns(&net.client_ns));
        capture_config.modes = vec![AttachMode::Clsact];
        capture_config
    })
    .expect("attach as clsact filters");
    assert!(
        capture
            .attachments()
            .iter()
            .all(|a| a.mode == AttachMode::Clsact),
        "{:?}",
        capture.attachments()
    );
    assert_eq!(
        tc_filters(&net.client_ns, &net.client_if, "ingress"),
        [PROGRAM_INGRESS]
    );
    assert_eq!(
        tc_filters(&net.client_ns, &net.client_if, "egress"),
        [PROGRAM_EGRESS]
    );
    assert_eq!(
        tcx_programs(&net.client_if, Some(&netns(&net.client_ns))).unwrap(),
        (0, 0),
        "no tcx link"
    );

    let _listener = Listener::start(&net.server_ns);
    assert!(connects(
        &net.client_ns,
        "10.214.0.1",
        "10.214.0.2",
        8086,
        5.0
    ));
    let seen = collect(&mut capture, 2);
    check_handshake(&seen, "10.214.0.1", "10.214.0.2:8086");

    drop(capture);
    assert!(
        tc_filters(&net.client_ns, &net.client_if, "ingress").is_empty()
            && tc_filters(&net.client_ns, &net.client_if, "egress").is_empty(),
        "dropping the capture removed its filters"
    );
}

#[test]
fn xdp_observes_ingress_and_drops_a_banned_edge_with_tcx_as_the_egress_fallback() {
    if !preflight() {
        return;
    }
    let net = Net::create("x");
    let server_netns = netns(&net.server_ns);
    let only_xdp = Capture::attach(&{
        let mut capture_config = CaptureConfig::default();
        capture_config.egress = vec![net.server_if.clone()];
        capture_config.netns = Some(server_netns.clone());
        capture_config.modes = vec![AttachMode::Xdp];
        capture_config
    });
    assert!(
        matches!(only_xdp, Err(CaptureError::NoMode { .. })),
        "XDP cannot observe egress"
    );

    let mut capture = Capture::attach(&{
        let mut capture_config = CaptureConfig::default();
        capture_config.ingress = vec![net.server_if.clone()];
        capture_config.egress = vec![net.server_if.clone()];
        capture_config.netns = Some(server_netns.clone());
        capture_config.modes = vec![AttachMode::Xdp, AttachMode::Tcx];
        capture_config
    })
    .expect("attach XDP on ingress, tcx on egress");
    let modes: Vec<_> = capture
        .attachments()
        .iter()
        .map(|a| (a.direction, a.mode, a.program))
        .collect();
    assert_eq!(
        modes,
        [
            (Direction::Ingress, AttachMode::Xdp, PROGRAM_XDP),
            (Direction::Egress, AttachMode::Tcx, PROGRAM_EGRESS)
        ]
    );

    let _listener = Listener::start(&net.server_ns);
    assert!(connects(
        &net.client_ns,
        "10.214.0.1",
        "10.214.0.2",
        8086,
        5.0
    ));
    let seen = collect(&mut capture, 2);
    let syn = seen
        .iter()
        .find(|e| e.kind == EventKind::Syn)
        .unwrap_or_else(|| panic!("XDP saw the SYN arrive: {seen:?}"));
    assert_eq!(syn.direction, Direction::Ingress);
    assert_eq!(syn.dst, "10.214.0.2:8086".parse().unwrap());
    assert_eq!(usize::from(syn.data[12] >> 4) * 4, syn.data.len());
    assert!(
        seen.iter()
            .any(|e| e.kind == EventKind::SynAck && e.direction == Direction::Egress),
        "tcx saw the SYN-ACK leave: {seen:?}"
    );

    let edge = EdgeKey {
        src: "10.214.0.1".parse().unwrap(),
        dst: "10.214.0.2".parse().unwrap(),
        port: 8086,
        protocol: Protocol::Tcp,
    };
    capture.bans().ban(&edge, Duration::from_secs(30)).unwrap();
    assert!(
        !connects(&net.client_ns, "10.214.0.1", "10.214.0.2", 8086, 0.7),
        "XDP drops the banned edge's SYN"
    );
    assert!(
        connects(&net.client_ns, "10.214.0.1", "10.214.0.2", 8087, 2.0),
        "another port passes"
    );
    assert!(capture.counters().unwrap().dropped >= 1);
    assert!(capture.bans().unban(&edge).unwrap());
    assert!(connects(
        &net.client_ns,
        "10.214.0.1",
        "10.214.0.2",
        8086,
        2.0
    ));
}

#[test]
fn auto_is_the_default_route_interface() {
    if !preflight() {
        return;
    }
    let net = Net::create("d");
    run(&[
        "ip",
        "-n",
        &net.client_ns,
        "route",
        "add",
        "default",
        "via",
        "10.214.0.2",
    ]);
    let config = |namespace: &str| {
        let mut capture_config = CaptureConfig::default();
        capture_config.ingress = vec![edgewise_capture::AUTO.to_owned()];
        capture_config.netns = Some(netns(namespace));
        capture_config
    };
    let capture = Capture::attach(&config(&net.client_ns)).expect("attach to auto");
    assert_eq!(capture.attachments()[0].interface, net.client_if);
    assert!(
        matches!(
            Capture::attach(&config(&net.server_ns)),
            Err(CaptureError::NoDefaultRoute)
        ),
        "the server's namespace has no default route"
    );
}

/// Not a test on its own: the loader process the next test kills. It
/// attaches as `EDGEWISE_LOADER` says (`MODE NETNS INTERFACE`), says so,
/// and waits.
#[test]
#[ignore = "a helper process, started by a_killed_loader_leaves_no_tcx_link_and_stale_clsact_filters_are_cleared"]
fn loader_process() {
    let spec = std::env::var("EDGEWISE_LOADER").expect("EDGEWISE_LOADER");
    let [mode, namespace, interface]: [&str; 3] = spec
        .split(' ')
        .collect::<Vec<_>>()
        .try_into()
        .expect("MODE NETNS INTERFACE");
    let _capture = Capture::attach(&{
        let mut capture_config = CaptureConfig::default();
        capture_config.ingress = vec![interface.to_owned()];
        capture_config.egress = vec![interface.to_owned()];
        capture_config.netns = Some(PathBuf::from(namespace));
        capture_config.modes = vec![mode.parse().unwrap()];
        capture_config
    })
    .expect("attach");
    println!("attached");
    std::thread::sleep(Duration::from_secs(60));
}

/// Starts the loader process and waits until it attached.
fn start_loader(mode: AttachMode, namespace: &Path, interface: &str) -> std::process::Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "loader_process", "--ignored", "--nocapture"])
        .env(
            "EDGEWISE_LOADER",
            format!("{mode} {} {interface}", namespace.display()),
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let attached = stdout
        .lines()
        .map_while(Result::ok)
        .any(|line| line == "attached");
    assert!(attached, "the loader process attached");
    child
}

fn kill(mut child: std::process::Child) {
    // SIGKILL: no destructor runs.
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_killed_loader_leaves_no_tcx_link_and_stale_clsact_filters_are_cleared() {
    if !preflight() || !have_tc() {
        return;
    }
    let net = Net::create("k");
    let namespace = netns(&net.client_ns);
    let loader = start_loader(AttachMode::Tcx, &namespace, &net.client_if);
    assert_eq!(
        tcx_programs(&net.client_if, Some(&namespace)).unwrap(),
        (1, 1)
    );
    kill(loader);
    assert_eq!(
        tcx_programs(&net.client_if, Some(&namespace)).unwrap(),
        (0, 0),
        "a tcx link goes with its process"
    );

    // Classic filters outlive their process (EBPF-NOTES); the next capture
    // in that mode clears them before attaching its own.
    let loader = start_loader(AttachMode::Clsact, &namespace, &net.client_if);
    kill(loader);
    assert_eq!(
        tc_filters(&net.client_ns, &net.client_if, "ingress"),
        [PROGRAM_INGRESS],
        "a killed loader's filter stays"
    );
    let capture = Capture::attach(&{
        let mut capture_config = CaptureConfig::default();
        capture_config.ingress = vec![net.client_if.clone()];
        capture_config.egress = vec![net.client_if.clone()];
        capture_config.netns = Some(namespace.clone());
        capture_config.modes = vec![AttachMode::Clsact];
        capture_config
    })
    .expect("attach as clsact filters");
    assert_eq!(
        tc_filters(&net.client_ns, &net.client_if, "ingress"),
        [PROGRAM_INGRESS],
        "the stale filter was replaced, not joined"
    );
    drop(capture);
    assert!(tc_filters(&net.client_ns, &net.client_if, "ingress").is_empty());
    assert!(tc_filters(&net.client_ns, &net.client_if, "egress").is_empty());
}
