//! The identity stream at cluster scale, measured whole-process:
//! `stream-scale [FOLLOWERS] [PODS] [CHANGES_PER_SECOND] [SECONDS] [BASELINE_PODS]`
//! (defaults 2000 10000 1000 30 100000).
//!
//! A fake API server (`edgewise_k8s::testing`) in this process holds PODS
//! pods; `edgewise identity serve --kubeconfig` (the binary beside this
//! one, a process of its own) watches it and serves over TLS with a bearer
//! token. FOLLOWERS simulated followers in this process (tasks on two
//! threads, spread over loopback source addresses as agents on many nodes
//! would be) open the identity stream, asking for gzip as `edgewise`'s
//! follower does; each reads the events and notes the
//! sequence number of every delta, as a real follower must before it
//! applies one (they skip the baseline: its cost is measured apart).
//! Then `CHANGES_PER_SECOND` pod label changes are applied to the fake
//! for `SECONDS`. Printed: the time from a change being applied to the last
//! follower having the delta that holds it (p50, p99, max), the server's
//! CPU over the run and its resident memory per follower, and, from a
//! second server reading `BASELINE_PODS` pods from a file, the baseline's
//! size and download time (cold, then cached).

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use edgewise_k8s::testing::{FakeApiServer, kubeconfig};
use edgewise_test_support::pki::Pki;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// Followers per loopback source address.
const PER_SOURCE: usize = 20;

/// One follower in this many inflates and reads every delta (the sample
/// the latency is measured on); the others read and decrypt every byte
/// and count it, as the server cannot tell them apart, without inflating:
/// 2,000 inflaters in one process would need more than this machine's
/// two cores, where each real agent inflates only its own stream.
const SAMPLE_EVERY: usize = 20;

fn pod(i: usize, rev: u64) -> Value {
    json!({"kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": format!("p-{i}"), "namespace": "scale", "uid": format!("uid-{i}"),
                     "labels": {"app": format!("app-{}", i % 100), "rev": rev.to_string()},
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"nodeName": "node-1", "serviceAccountName": "default"},
        "status": {"phase": "Running", "podIP": pod_ip(i), "startTime": "2026-01-01T00:00:00Z",
                   "conditions": [{"type": "Ready", "status": "True"}]}})
}

fn pod_ip(i: usize) -> String {
    let i = u32::try_from(i).expect("a pod number");
    format!("10.{}.{}.{}", 100 + (i >> 16), (i >> 8) & 255, i & 255)
}

/// The server process and the address it printed.
struct Serve {
    child: Child,
    address: SocketAddr,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[expect(
    clippy::zombie_processes,
    reason = "the child is killed and waited on when the Serve is dropped; a panic here ends the program"
)]
fn serve(edgewise: &Path, args: &[String]) -> Serve {
    let mut child = Command::new(edgewise)
        .args(["identity", "serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .expect("edgewise identity serve");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap_or(0) > 0, "serve ended");
        if let Some(rest) = line.split("https://").nth(1) {
            let address = rest.split_whitespace().next().expect("an address");
            let address = address.parse().expect("an address");
            std::thread::spawn(move || for _ in stderr.lines() {});
            return Serve { child, address };
        }
    }
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// User plus system CPU seconds of `pid`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |n: usize| {
        fields
            .get(n)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the
    // command; the kernel's clock ticks are 100 a second.
    (ticks(11) + ticks(12)) / 100.0
}

/// What every follower records: how many have each seq, and when the
/// last of them got it (ns since the start).
struct Arrivals {
    start: Instant,
    followers: u32,
    count: Vec<AtomicU32>,
    last: Vec<AtomicU64>,
    hellos: AtomicU32,
    /// Bytes the non-sampled followers read.
    bytes: AtomicU64,
    /// Streams that ended (cut, or closed) before the end of the run.
    ended: AtomicU32,
}

impl Arrivals {
    fn seen(&self, seq: usize) {
        if let Some(count) = self.count.get(seq)
            && count.fetch_add(1, Ordering::Relaxed) + 1 == self.followers
        {
            let now = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.last[seq].store(now, Ordering::Relaxed);
        }
    }
}

/// The seq of a `data: {"schema":...,"epoch":E,"seq":S,...}` line.
fn seq_of(line: &[u8]) -> Option<usize> {
    let at = line.windows(6).position(|w| w == b"\"seq\":")? + 6;
    let digits = line[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&line[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

type Tls = Arc<rustls::ClientConfig>;

/// Which delta (seq) holds each change (`rev`), as one follower saw them.
type ChangeIndex = std::sync::Mutex<Vec<(u64, usize)>>;

async fn follower(
    n: usize,
    server: SocketAddr,
    tls: Tls,
    token: Arc<str>,
    arrivals: Arc<Arrivals>,
    index: Option<Arc<ChangeIndex>>,
) {
    let source = IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        1 + u8::try_from(n / PER_SOURCE / 250).unwrap_or(0),
        2 + u8::try_from(n / PER_SOURCE % 250).unwrap_or(0),
    ));
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::new(source, 0))
        .expect("a source address");
    let tcp = socket.connect(server).await.expect("connected");
    let connector = tokio_rustls::TlsConnector::from(tls);
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("a name");
    let tls = connector.connect(name, tcp).await.expect("a TLS session");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tls))
            .await
            .expect("HTTP");
    tokio::spawn(connection);
    let request = http::Request::get("/identities/deltas")
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {token}"))
        .header("accept-encoding", "gzip")
        .body(Empty::new())
        .expect("a request");
    let response = sender.send_request(request).await.expect("a response");
    assert_eq!(response.status(), 200);
    let gzip = response.headers().contains_key("content-encoding");
    let mut body = response.into_body();
    if !n.is_multiple_of(SAMPLE_EVERY) {
        let mut first = true;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            if let Some(data) = frame.data_ref() {
                arrivals
                    .bytes
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                if std::mem::take(&mut first) {
                    arrivals.hellos.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        arrivals.ended.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let mut compressed: Vec<u8> = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        let Some(data) = frame.data_ref() else {
            continue;
        };
        if gzip {
            compressed.extend_from_slice(data);
            gunzip_members(&mut compressed, &mut pending);
        } else {
            pending.extend_from_slice(data);
        }
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|b| *b == b'\n') {
            let line = &pending[start..start + end];
            if line.starts_with(b"data: {") {
                if line.windows(10).any(|w| w == b"\"resumed\":") {
                    arrivals.hellos.fetch_add(1, Ordering::Relaxed);
                } else if let Some(seq) = seq_of(line) {
                    arrivals.seen(seq);
                    if let Some(index) = &index {
                        note_changes(index, seq, &line[6..]);
                    }
                }
            }
            start += end + 1;
        }
        pending.drain(..start);
    }
    arrivals.ended.fetch_add(1, Ordering::Relaxed);
}

/// Moves every whole gzip member at the start of `compressed`, decoded,
/// to `out` (a member cut by a frame waits for the rest).
fn gunzip_members(compressed: &mut Vec<u8>, out: &mut Vec<u8>) {
    use std::io::Read;
    let mut used = 0;
    while used < compressed.len() {
        let mut cursor = std::io::Cursor::new(&compressed[used..]);
        let mut member = Vec::new();
        if flate2::bufread::GzDecoder::new(&mut cursor)
            .read_to_end(&mut member)
            .is_err()
        {
            break;
        }
        used += usize::try_from(cursor.position()).unwrap_or(usize::MAX);
        out.append(&mut member);
    }
    compressed.drain(..used);
}

/// The changes (label `rev`) a delta holds, for the latency of each.
fn note_changes(index: &ChangeIndex, seq: usize, json: &[u8]) {
    let Ok(delta) = serde_json::from_slice::<Value>(json) else {
        return;
    };
    let mut index = index.lock().expect("the index");
    for upsert in delta["upserts"].as_array().into_iter().flatten() {
        if let Some(rev) = upsert["identity"]["labels"]["rev"]
            .as_str()
            .and_then(|r| r.parse().ok())
        {
            index.push((rev, seq));
        }
    }
}

#[expect(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "ranks and milliseconds of a few hundred thousand samples"
)]
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// The run's sizes.
struct Sizes {
    followers: usize,
    pods: usize,
    rate: usize,
    seconds: usize,
    baseline_pods: usize,
}

/// The files every server of the run shares.
struct Setup {
    edgewise: PathBuf,
    dir: PathBuf,
    pki: Pki,
    tokens: PathBuf,
}

impl Setup {
    fn new() -> Self {
        let edgewise = std::env::current_exe()
            .expect("this program")
            .with_file_name("edgewise");
        let dir = std::env::temp_dir().join(format!("edgewise-scale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        let pki = Pki::new(&dir);
        let tokens = dir.join("tokens");
        std::fs::write(&tokens, "scale-token\n").expect("tokens");
        Self {
            edgewise,
            dir,
            pki,
            tokens,
        }
    }

    /// `edgewise identity serve` over TLS with the token, and `flag
    /// path` for its objects.
    fn serve(&self, followers: usize, (flag, path): (&str, &Path)) -> Serve {
        let args: Vec<String> = [
            "--tls-cert",
            &self.pki.server.0.display().to_string(),
            "--tls-key",
            &self.pki.server.1.display().to_string(),
            "--token-file",
            &self.tokens.display().to_string(),
            "--max-followers",
            &(followers + 100).to_string(),
            flag,
            &path.display().to_string(),
        ]
        .map(str::to_owned)
        .to_vec();
        serve(&self.edgewise, &args)
    }

    fn client_tls(&self) -> Tls {
        let mut roots = rustls::RootCertStore::empty();
        for cert in edgewise_http_server::tls::read_certificates(&self.pki.ca).expect("the CA") {
            roots.add(cert).expect("a root");
        }
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
        )
    }
}

/// Opens every follower's stream; how long it took.
fn connect(
    runtime: &tokio::runtime::Runtime,
    sizes: &Sizes,
    server: SocketAddr,
    tls: &Tls,
    arrivals: &Arc<Arrivals>,
    index: &Arc<ChangeIndex>,
) -> Duration {
    let token: Arc<str> = Arc::from("scale-token");
    let started = Instant::now();
    for n in 0..sizes.followers {
        let (tls, token, arrivals) = (Arc::clone(tls), Arc::clone(&token), Arc::clone(arrivals));
        let index = (n == 0).then(|| Arc::clone(index));
        runtime.spawn(follower(n, server, tls, token, arrivals, index));
        if n % 100 == 99 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    while (arrivals.hellos.load(Ordering::Relaxed) as usize) < sizes.followers {
        assert!(
            started.elapsed() < Duration::from_secs(2 * 60),
            "followers connected: {}",
            arrivals.hellos.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

/// Applies the changes at the rate; when each was applied (ns since the
/// start).
#[expect(
    clippy::cast_precision_loss,
    reason = "change numbers of a few hundred thousand"
)]
fn apply_changes(api: &FakeApiServer, sizes: &Sizes, arrivals: &Arrivals) -> Vec<u64> {
    let total = sizes.rate * sizes.seconds;
    let started = Instant::now();
    let mut applied = Vec::with_capacity(total);
    let per_tick = (sizes.rate / 100).max(1);
    for k in 0..total {
        if k % per_tick == 0 {
            let due = started + Duration::from_secs_f64(k as f64 / sizes.rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        api.apply(pod(k % sizes.pods, k as u64 + 1));
        applied.push(u64::try_from(arrivals.start.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    applied
}

/// Each change's time to the last follower (ms), and how many never
/// reached every follower.
#[expect(clippy::cast_precision_loss, reason = "nanoseconds of a few seconds")]
fn latencies(applied: &[u64], index: &ChangeIndex, arrivals: &Arrivals) -> (Vec<f64>, usize) {
    let mut seq_of_change = vec![None; applied.len() + 1];
    for (rev, seq) in index.lock().expect("the index").iter() {
        if let Some(slot) = usize::try_from(*rev)
            .ok()
            .and_then(|r| seq_of_change.get_mut(r))
        {
            *slot = Some(*seq);
        }
    }
    let mut latencies = Vec::new();
    let mut missing = 0;
    for (k, at) in applied.iter().enumerate() {
        match seq_of_change[k + 1].map(|seq| arrivals.last[seq].load(Ordering::Relaxed)) {
            Some(last) if last > 0 => latencies.push(last.saturating_sub(*at) as f64 / 1e6),
            _ => missing += 1,
        }
    }
    latencies.sort_by(f64::total_cmp);
    (latencies, missing)
}

/// The fan-out run: followers on the stream while changes are applied.
#[expect(
    clippy::cast_precision_loss,
    reason = "memory and CPU figures for printing"
)]
fn fan_out(setup: &Setup, sizes: &Sizes) {
    let api = FakeApiServer::start();
    for i in 0..sizes.pods {
        api.apply(pod(i, 0));
    }
    let config_path = setup.dir.join("kubeconfig");
    std::fs::write(&config_path, kubeconfig(&api.url())).expect("a kubeconfig");
    let server = setup.serve(sizes.followers, ("--kubeconfig", &config_path));
    let pid = server.child.id();
    std::thread::sleep(Duration::from_secs(1));
    let idle_kib = status_kib(pid, "VmRSS:");
    let arrivals = Arc::new(Arrivals {
        start: Instant::now(),
        followers: u32::try_from(sizes.followers.div_ceil(SAMPLE_EVERY)).expect("followers"),
        count: (0..1_000_000).map(|_| AtomicU32::new(0)).collect(),
        last: (0..1_000_000).map(|_| AtomicU64::new(0)).collect(),
        hellos: AtomicU32::new(0),
        bytes: AtomicU64::new(0),
        ended: AtomicU32::new(0),
    });
    let index = Arc::new(ChangeIndex::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let connected_in = connect(
        &runtime,
        sizes,
        server.address,
        &setup.client_tls(),
        &arrivals,
        &index,
    );
    std::thread::sleep(Duration::from_secs(1));
    let with_kib = status_kib(pid, "VmRSS:");
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let applied = apply_changes(&api, sizes, &arrivals);
    let applying = started.elapsed();
    // Until every change reached every follower, or 10 s.
    while latencies(&applied, &index, &arrivals).1 > 0
        && started.elapsed() < applying + Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let cpu = cpu_seconds(pid) - cpu_before;
    let wall = started.elapsed().as_secs_f64();
    let peak_kib = status_kib(pid, "VmHWM:");
    let ended = arrivals.ended.load(Ordering::Relaxed);
    let sink_bytes = arrivals.bytes.load(Ordering::Relaxed);
    let (latencies, missing) = latencies(&applied, &index, &arrivals);
    println!(
        "followers: {} over TLS with a token ({} source addresses), connected in {:.1} s",
        sizes.followers,
        sizes.followers.div_ceil(PER_SOURCE),
        connected_in.as_secs_f64()
    );
    println!(
        "cluster: {} pods; {} label changes at {}/s over {:.1} s",
        sizes.pods,
        applied.len(),
        sizes.rate,
        applying.as_secs_f64()
    );
    println!(
        "streams ended during the run: {ended}; the {} non-sampled followers read {:.1} MiB of gzip ({:.1} MB/s in all)",
        sizes.followers - sizes.followers.div_ceil(SAMPLE_EVERY),
        sink_bytes as f64 / (1024.0 * 1024.0),
        sink_bytes as f64 / 1e6 / wall
    );
    println!(
        "change -> last of the {} sampled followers: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; {missing} changes not delivered to every sampled follower",
        sizes.followers.div_ceil(SAMPLE_EVERY),
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "server: {:.2} CPU cores over {wall:.1} s; RSS {} MiB idle, {} MiB with the followers ({:.1} KiB per follower), peak {} MiB",
        cpu / wall,
        idle_kib / 1024,
        with_kib / 1024,
        with_kib.saturating_sub(idle_kib) as f64 / sizes.followers as f64,
        peak_kib / 1024
    );
    drop(runtime);
}

/// The baseline of a large cluster, from a file: its size and download
/// times (cold, then cached).
#[expect(clippy::cast_precision_loss, reason = "MiB for printing")]
fn baseline(setup: &Setup, sizes: &Sizes) {
    let objects = setup.dir.join("objects.json");
    let items: Vec<Value> = (0..sizes.baseline_pods).map(|i| pod(i, 0)).collect();
    let list = json!({"kind": "List", "apiVersion": "v1", "items": items});
    std::fs::write(&objects, serde_json::to_vec(&list).expect("JSON")).expect("objects");
    let server = setup.serve(1, ("--objects", &objects));
    let roots: Vec<_> = ureq::tls::parse_pem(&std::fs::read(&setup.pki.ca).expect("the CA"))
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
                .unversioned_rustls_crypto_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .build(),
        )
        .build()
        .into();
    let url = format!(
        "https://127.0.0.1:{}/identities/baseline",
        server.address.port()
    );
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..2 {
        let started = Instant::now();
        let bytes = agent
            .get(&url)
            .header("authorization", "Bearer scale-token")
            .call()
            .expect("the baseline")
            .into_body()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .expect("the baseline's bytes");
        times.push(started.elapsed());
        size = bytes.len();
        let baseline = edgewise_identity::Baseline::from_mmdb(&bytes).expect("an identity MMDB");
        assert_eq!(baseline.len(), sizes.baseline_pods);
    }
    println!(
        "baseline: {} pods, {:.1} MiB; downloaded in {:.2} s cold (built), {:.2} s cached",
        sizes.baseline_pods,
        size as f64 / (1024.0 * 1024.0),
        times[0].as_secs_f64(),
        times[1].as_secs_f64()
    );
}

fn main() {
    let sizes = Sizes {
        followers: arg(1, 2000),
        pods: arg(2, 10_000),
        rate: arg(3, 1000),
        seconds: arg(4, 30),
        baseline_pods: arg(5, 100_000),
    };
    let setup = Setup::new();
    fan_out(&setup, &sizes);
    baseline(&setup, &sizes);
    let _ = std::fs::remove_dir_all(&setup.dir);
}
