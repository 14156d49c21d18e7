//! The daemon's `/records` ring: holding an edge record (made into its JSON
//! line, its filter facts read, handed to a follower) against what the
//! daemon does with every record anyway, writing it as a JSON line (with
//! its schema tag, node and RFC 3339 time, as `Output` writes it). (The
//! daemon makes the JSON once for both; the bench counts it on each side.)

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgewise_ip_index::{ClusterObject, Protocol};
use edgewise_observer::daemon::Output;
use edgewise_observer::web::filter::{NoNames, RecordQuery};
use edgewise_observer::web::records::RecordRing;
use edgewise_pipeline::Record;
use edgewise_pipeline::records::{EdgeRecord, Endpoint};

const RECORDS: u64 = 1_000;

fn pod(name: &str) -> Arc<ClusterObject> {
    Arc::new(
        serde_json::from_value(serde_json::json!({
            "kind": "Pod", "namespace": "shop", "name": name, "display": format!("shop/{name}"),
            "workload": {"namespace": "shop", "kind": "Deployment", "name": "frontend"},
            "labels": {"app": "frontend"}, "service_account": "frontend", "node_name": "node-1"
        }))
        .unwrap(),
    )
}

fn record(i: u64) -> Record {
    let mut src = Endpoint::new(
        "10.42.1.10".parse().unwrap(),
        40_000 + u16::try_from(i % 1000).unwrap(),
    );
    src.identity = Some(pod("frontend-7d9f8c6b5-x0"));
    let mut dst = Endpoint::new("10.42.1.12".parse().unwrap(), 5432);
    dst.identity = Some(pod("postgres-0"));
    dst.fqdn = Some("postgres.shop.svc.cluster.local".to_owned());
    let mut edge = EdgeRecord::new(
        1_795_436_760_000_000_000 + i,
        src,
        dst,
        Protocol::Tcp,
        "violation",
    );
    edge.policy = Some("shop/postgres-ingress".to_owned());
    edge.ja4t = Some("64240_2-4-8-1-3_1460_10".to_owned());
    edge.ja4ts = Some("65160_2-4-8-1-3_1460_10".to_owned());
    edge.service = Some("postgresql".to_owned());
    Record::Edge(edge)
}

fn ring(c: &mut Criterion) {
    let records: Vec<Record> = (0..RECORDS).map(record).collect();
    let mut group = c.benchmark_group("records/edge_record");
    group.throughput(Throughput::Elements(RECORDS));
    group.bench_function("record_json_alone", |b| {
        let mut out = Vec::with_capacity(1 << 20);
        b.iter(|| {
            out.clear();
            for record in &records {
                serde_json::to_writer(&mut out, record).unwrap();
                out.push(b'\n');
            }
            black_box(out.len())
        });
    });
    group.bench_function("rfc3339_time_alone", |b| {
        let mut out = Vec::with_capacity(1 << 20);
        b.iter(|| {
            out.clear();
            for record in &records {
                let time = jiff::Timestamp::from_nanosecond(i128::from(record.time_ns())).unwrap();
                std::io::Write::write_fmt(&mut out, format_args!("{time}")).unwrap();
            }
            black_box(out.len())
        });
    });
    let mut output = Output::new(Box::new(std::io::sink()), "node-1");
    group.bench_function("json_line", |b| {
        b.iter(|| {
            for record in &records {
                output.write(black_box(record));
            }
        });
    });
    let held = RecordRing::default();
    group.bench_function("ring_no_follower", |b| {
        b.iter(|| {
            for record in &records {
                held.push(record, &output_line(record), &NoNames);
            }
        });
    });
    let followed = RecordRing::default();
    let query = RecordQuery::parse("namespace=shop&verdict=violation&follow=true").unwrap();
    let mut stream = followed.subscribe(query, None);
    group.bench_function("ring_one_matching_follower", |b| {
        b.iter(|| {
            for record in &records {
                followed.push(record, &output_line(record), &NoNames);
            }
            // Drained as a reader would, so the follower is never cut.
            drain(&mut stream);
        });
    });
    group.finish();
}

/// A record's line as the daemon makes it for the ring.
fn output_line(record: &Record) -> String {
    thread_local! {
        static OUTPUT: Output = Output::new(Box::new(std::io::sink()), "node-1");
    }
    OUTPUT.with(|output| output.to_line(record).unwrap())
}

/// Takes what waits on a follower's stream.
fn drain(reply: &mut edgewise_http_server::Reply) {
    let edgewise_http_server::Reply::Stream { chunks, .. } = reply else {
        panic!("not a stream");
    };
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    while let std::task::Poll::Ready(Some(chunk)) = chunks.as_mut().poll_next(&mut cx) {
        black_box(chunk);
    }
}

criterion_group!(benches, ring);
criterion_main!(benches);
