//! Interfaces that come and go, on a real kernel: a glob attached to a
//! veth created after the start and released when it is deleted or
//! renamed, a missing listed name, an attach that fails on one interface
//! while the rest run, and the packet-socket sensor giving the observers'
//! events.
//!
//! Needs root, `ip` and `python3`; skips with the reason otherwise (a
//! failure under `CI=true`). Traffic stays between the namespaces each test
//! creates.

use std::time::{Duration, Instant};

use edgewise_capture::{
    AttachMode, Capture, CaptureConfig, Change, Direction, EventKind, Follower, InterfacePattern,
    PacketCapture, Sensor,
};
use edgewise_test_support::{Namespaces, run};
use support::{Listener, Net, check_handshake, collect, connects, netns, preflight};

mod support;

fn patterns(list: &[&str]) -> Vec<InterfacePattern> {
    list.iter().map(|p| p.parse().unwrap()).collect()
}

/// Calls `follow` until `done` says the changes are there, or 2 s pass.
fn follow_until<S: Sensor>(
    follower: &mut Follower<S>,
    mut done: impl FnMut(&[Change]) -> bool,
) -> (Vec<Change>, Duration) {
    let start = Instant::now();
    let mut changes = Vec::new();
    while start.elapsed() < Duration::from_secs(2) {
        changes.extend(follower.follow().expect("follow the links"));
        if done(&changes) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (changes, start.elapsed())
}

fn attached(changes: &[Change], name: &str) -> usize {
    changes
        .iter()
        .filter(|c| matches!(c, Change::Attached(a) if a.interface == name))
        .count()
}

fn detached(changes: &[Change], name: &str) -> usize {
    changes
        .iter()
        .filter(|c| matches!(c, Change::Detached(a) if a.interface == name))
        .count()
}

#[test]
fn a_glob_follows_veths_as_they_are_created_renamed_and_deleted() {
    if !preflight() {
        return;
    }
    let id = std::process::id() % 100_000;
    let (host, pod) = (format!("ewf-h{id}"), format!("ewf-p{id}"));
    let _namespaces = Namespaces(vec![host.clone(), pod.clone()]);
    run(&["ip", "netns", "add", &host]);
    run(&["ip", "netns", "add", &pod]);
    let mut follower = Follower::new(Some(&netns(&host))).expect("follow the host namespace");
    let capture = Capture::load(&{
        let mut capture_config = CaptureConfig::default();
        capture_config.netns = Some(netns(&host));
        capture_config
    })
    .expect("load");
    let changes = follower
        .add(
            capture,
            &patterns(&["calf*", "missing0"]),
            &patterns(&["calf*", "missing0"]),
        )
        .expect("add the sensor");
    assert!(changes.is_empty(), "nothing matches yet: {changes:?}");
    assert_eq!(follower.missing(), ["missing0"]);

    // A pod's veth appears, as a CNI makes it.
    let veth = format!("calf{id}");
    run(&[
        "ip", "-n", &host, "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns",
        &pod,
    ]);
    run(&[
        "ip",
        "-n",
        &host,
        "addr",
        "add",
        "10.215.0.1/24",
        "dev",
        &veth,
    ]);
    run(&["ip", "-n", &host, "link", "set", &veth, "up"]);
    run(&[
        "ip",
        "-n",
        &pod,
        "addr",
        "add",
        "10.215.0.2/24",
        "dev",
        "eth0",
    ]);
    run(&["ip", "-n", &pod, "link", "set", "eth0", "up"]);
    run(&["ip", "-n", &pod, "link", "set", "lo", "up"]);
    let (changes, took) = follow_until(&mut follower, |c| attached(c, &veth) == 2);
    assert_eq!(
        attached(&changes, &veth),
        2,
        "ingress and egress: {changes:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(
        edgewise_capture::tcx_programs(&veth, Some(&netns(&host))).unwrap(),
        (1, 1)
    );

    // Its traffic is observed.
    let _listener = Listener::start(&pod);
    assert!(connects(&host, "10.215.0.1", "10.215.0.2", 8086, 5.0));
    let sensor = follower.sensors_mut().next().unwrap();
    let seen = collect(sensor, 4);
    check_handshake(&seen, "10.215.0.1", "10.215.0.2:8086");

    // Renamed out of the pattern: released; back in: attached again.
    run(&["ip", "-n", &host, "link", "set", &veth, "name", "other0"]);
    let (changes, _) = follow_until(&mut follower, |c| detached(c, &veth) == 2);
    assert_eq!(detached(&changes, &veth), 2, "{changes:?}");
    assert_eq!(follower.attachments().count(), 0);
    run(&["ip", "-n", &host, "link", "set", "other0", "name", &veth]);
    let (changes, _) = follow_until(&mut follower, |c| attached(c, &veth) == 2);
    assert_eq!(attached(&changes, &veth), 2, "{changes:?}");

    // Deleted: released, nothing fails.
    run(&["ip", "-n", &host, "link", "del", &veth]);
    let (changes, _) = follow_until(&mut follower, |c| detached(c, &veth) == 2);
    assert_eq!(detached(&changes, &veth), 2, "{changes:?}");
    assert_eq!(follower.attachments().count(), 0);
    assert_eq!(follower.failures().count(), 0);

    // The listed name appears: attached.
    run(&[
        "ip", "-n", &host, "link", "add", "missing0", "type", "veth", "peer", "name", "m1",
    ]);
    let (changes, _) = follow_until(&mut follower, |c| attached(c, "missing0") == 2);
    assert_eq!(attached(&changes, "missing0"), 2, "{changes:?}");
    assert!(follower.missing().is_empty());
}

#[test]
fn an_attach_that_fails_on_one_interface_is_reported_and_the_rest_run() {
    if !preflight() {
        return;
    }
    let net = Net::create("f");
    let ns = netns(&net.client_ns);
    let mut follower = Follower::new(Some(&ns)).unwrap();
    let mut xdp = CaptureConfig::default();
    xdp.netns = Some(ns.clone());
    xdp.modes = vec![AttachMode::Xdp];
    // The first holds the interface's XDP hook; the second cannot have it.
    let first = follower
        .add(
            Capture::load(&xdp).unwrap(),
            &patterns(&[&net.client_if]),
            &[],
        )
        .unwrap();
    assert_eq!(attached(&first, &net.client_if), 1, "{first:?}");
    let second = follower
        .add(
            Capture::load(&xdp).unwrap(),
            &patterns(&[&net.client_if, "lo"]),
            &[],
        )
        .unwrap();
    let failed: Vec<_> = second
        .iter()
        .filter_map(|c| match c {
            Change::Failed {
                interface,
                direction,
                error,
            } => Some((interface.clone(), *direction, error.to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1, "{second:?}");
    assert_eq!(failed[0].0, net.client_if);
    assert_eq!(failed[0].1, Direction::Ingress);
    assert!(failed[0].2.contains(&net.client_if), "{}", failed[0].2);
    assert_eq!(attached(&second, "lo"), 1, "the rest run: {second:?}");
    assert_eq!(follower.failures().count(), 1);
    // Not retried in a loop: only when the link changes.
    assert!(follower.follow().unwrap().is_empty());
    // The interface changes (down, up): tried again, fails again.
    run(&[
        "ip",
        "-n",
        &net.client_ns,
        "link",
        "set",
        &net.client_if,
        "mtu",
        "1400",
    ]);
    let (changes, _) = follow_until(&mut follower, |c| {
        c.iter().any(|c| matches!(c, Change::Failed { .. }))
    });
    assert!(
        changes.iter().any(|c| matches!(c, Change::Failed { .. })),
        "{changes:?}"
    );
    assert_eq!(follower.failures().count(), 1);
}

#[test]
fn packet_sockets_give_the_observers_events_and_refuse_nothing_else() {
    if !preflight() {
        return;
    }
    let net = Net::create("p");
    let _listener = Listener::start(&net.server_ns);
    let mut capture = PacketCapture::new(&{
        let mut capture_config = CaptureConfig::default();
        capture_config.netns = Some(netns(&net.client_ns));
        capture_config
    });
    for direction in [Direction::Ingress, Direction::Egress] {
        let attachment = capture
            .attach_interface(&net.client_if, direction)
            .expect("a packet socket");
        assert_eq!(attachment.mode, AttachMode::AfPacket);
    }
    assert!(capture.ban_table().is_none(), "observe only");
    assert!(connects(
        &net.client_ns,
        "10.214.0.1",
        "10.214.0.2",
        8086,
        5.0
    ));
    let seen = collect(&mut capture, 4);
    check_handshake(&seen, "10.214.0.1", "10.214.0.2:8086");
    // Each direction once: the two sockets do not both see a packet.
    let syns = seen.iter().filter(|e| e.kind == EventKind::Syn).count();
    assert_eq!(syns, 1, "{seen:?}");
    let counters = capture.counters().unwrap();
    assert!(counters.events >= 2 && counters.lost == 0, "{counters:?}");
    // A missing interface is a clear error.
    let error = capture
        .attach_interface("nosuch0", Direction::Ingress)
        .unwrap_err();
    assert!(error.to_string().contains("nosuch0"), "{error}");
    // Released: no more events.
    let index = capture.attachments()[0].index;
    assert_eq!(capture.detach_interface(index).len(), 2);
    assert!(connects(
        &net.client_ns,
        "10.214.0.1",
        "10.214.0.2",
        8087,
        5.0
    ));
    assert!(collect(&mut capture, 1).is_empty());
}
