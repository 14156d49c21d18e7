//! A soak of the pipeline: 2,000 long-lived edges, each sending a flow
//! sample every 10 s, for 24 simulated hours (17.28 million events), with
//! `handle_timeout` every simulated second and the observed graph drained
//! every 10 s, as `edgewise run` does. Prints the peak resident memory at
//! each simulated hour, so that a growth shows as a trend.
//!
//! `cargo run --release -p edgewise-pipeline --example soak`

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use edgewise_capture::{Direction, Event, EventKind};
use edgewise_pipeline::{Identities, Pipeline, PipelineConfig, Rules};
use edgewise_time::UnixNanos;

const S: u64 = 1_000_000_000;
const EDGES: u32 = 2_000;

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let rules = Rules::parse(
        "rules.toml".as_ref(),
        r#"
[[rule]]
name = "log-external"
when = "net.dst_external"
action = "log"
"#,
    )
    .expect("rules");
    let mut pipeline = Pipeline::new(
        PipelineConfig::default(),
        Identities::None,
        edgewise_edge_set::DeclaredPolicies::default().compile(),
        rules,
        UnixNanos::ZERO,
    );
    let started = std::time::Instant::now();
    let mut outputs = 0u64;
    for second in 0..24 * 3600u64 {
        let now = second * S;
        // A tenth of the edges sample in each second: each every 10 s.
        for n in (0..EDGES).filter(|n| u64::from(*n) % 10 == second % 10) {
            let client = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a2a_0000 + n)), 40_000);
            let server = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0xc633_6400 + n % 200)), 443);
            let event = Event {
                kind: EventKind::FlowSample,
                direction: Direction::Unknown,
                time: UnixNanos::from_nanos(now),
                ifindex: 0,
                src: client,
                dst: server,
                protocol: 6,
                wire_len: 1500,
                seq: 0,
                data: &[],
            };
            pipeline.handle_event(&event, UnixNanos::from_nanos(now));
        }
        if pipeline
            .poll_timeout()
            .is_some_and(|at| at <= UnixNanos::from_nanos(now))
        {
            pipeline.handle_timeout(UnixNanos::from_nanos(now));
        }
        while pipeline.poll_output().is_some() {
            outputs += 1;
        }
        if second % 10 == 0 {
            pipeline.expire(UnixNanos::from_nanos(now));
            drop(pipeline.drain(UnixNanos::from_nanos(now)));
        }
        if second % 3600 == 0 {
            let stats = pipeline.stats(UnixNanos::from_nanos(now));
            println!(
                "hour {:>2}: peak RSS {:>6} KiB, edges held {}, outputs {outputs}",
                second / 3600,
                peak_rss_kib(),
                stats.edges
            );
        }
    }
    println!(
        "24 simulated hours in {:.1} s; peak RSS {} KiB",
        started.elapsed().as_secs_f64(),
        peak_rss_kib()
    );
}
