//! What the secret-volume observer costs a file open, measured (needs
//! root):
//!
//! ```sh
//! sudo cargo run --release -p edgewise-capture --example secret_cost
//! ```
//!
//! A tight loop opening and closing one file, on a filesystem that is not
//! a secret volume (the cost every other open of the node pays: the
//! kernel filter's one hash lookup), `OPENS` times per round, with nothing
//! attached and with the observer attached on each hook this kernel
//! accepts (its filter holding 1,000 volume devices, none of them the
//! file's); rounds interleaved, each round's rate the fastest of ten
//! chunks, the median and the spread of the added cost per open, and the program's own time per run as the kernel counts
//! it (`kernel.bpf_stats_enabled`: the filter alone, without the hook's
//! dispatch). Then the cost of an open that is reported (the file on a
//! tmpfs in the filter: the event reserved, filled and submitted), the
//! ring drained between rounds. Prints one table; the README quotes it.

#![expect(
    clippy::cast_precision_loss,
    reason = "nanosecond counts far below 2^52 shown as rates"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use edgewise_capture::secrets::{SecretHook, SecretObserver, mounts};

const OPENS: u32 = 100_000;
const REPORTED_OPENS: u32 = 2_000;
const ROUNDS: usize = 31;

/// Nanoseconds per open of `path`, over `count` opens.
fn opens(path: &Path, count: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..count {
        drop(std::hint::black_box(
            std::fs::File::open(path).expect("open"),
        ));
    }
    start.elapsed().as_nanos() as f64 / f64::from(count)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A tmpfs mounted for the measurement, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: PathBuf) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "mount a tmpfs at {}", dir.display());
        Self(dir)
    }

    fn dev(&self) -> u32 {
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        mounts(&table)
            .into_iter()
            .rev()
            .find(|m| Path::new(&m.mount_point) == self.0)
            .expect("the tmpfs is in the mount table")
            .dev
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn main() {
    let work = std::env::temp_dir().join(format!("edgewise-secret-cost-{}", std::process::id()));
    let volume = Tmpfs::mount(work.join("volume"));
    let secret = volume.0.join("token");
    std::fs::write(&secret, "x").unwrap();
    let other = work.join("other");
    std::fs::write(&other, "x").unwrap();
    // Devices that are never opened here: a node's worth of volumes.
    let decoys = (0..1_000).map(|n| 0x0fff_0000 + n);
    let mut hooks = Vec::new();
    for hook in [SecretHook::Lsm, SecretHook::Fentry, SecretHook::Tracepoint] {
        match SecretObserver::attach(hook, 1 << 20) {
            Ok(_) => hooks.push(hook),
            Err(error) => println!("{}: refused here ({error})", hook.as_str()),
        }
    }
    opens(&other, OPENS); // warm the caches
    let mut bare = Vec::new();
    let mut added: Vec<Vec<f64>> = vec![Vec::new(); hooks.len()];
    let mut reported: Vec<Vec<f64>> = vec![Vec::new(); hooks.len()];
    let mut own: Vec<Vec<f64>> = vec![Vec::new(); hooks.len()];
    let _stats =
        aya::sys::enable_stats(aya::sys::Stats::RunTime).expect("enable BPF run-time statistics");
    for _ in 0..ROUNDS {
        let baseline = opens(&other, OPENS);
        bare.push(baseline);
        for (at, hook) in hooks.iter().enumerate() {
            let mut observer = SecretObserver::attach(*hook, 1 << 20).unwrap();
            observer.set_volumes(decoys.clone()).unwrap();
            added[at].push(opens(&other, OPENS) - baseline);
            let (runs, time) = observer.kernel_time().unwrap();
            own[at].push(time.as_nanos() as f64 / runs.max(1) as f64);
            observer
                .set_volumes(decoys.clone().chain([volume.dev()]))
                .unwrap();
            let base_secret = {
                // The same file's open without a program, for the reported cost.
                drop(observer);
                let bare_secret = opens(&secret, REPORTED_OPENS);
                observer = SecretObserver::attach(*hook, 1 << 20).unwrap();
                observer
                    .set_volumes(decoys.clone().chain([volume.dev()]))
                    .unwrap();
                bare_secret
            };
            let cost = opens(&secret, REPORTED_OPENS) - base_secret;
            let mut seen = 0u32;
            observer.poll(Duration::ZERO, |_| seen += 1).unwrap();
            let lost = observer.counters().unwrap().lost;
            assert_eq!(
                u64::from(seen) + lost,
                u64::from(REPORTED_OPENS),
                "every reported open is read or counted lost"
            );
            reported[at].push(cost);
        }
    }
    println!(
        "an open and close with nothing attached: {:.0} ns (median of {ROUNDS} rounds of {OPENS})",
        median(&mut bare)
    );
    println!(
        "| hook | added per other open (median) | spread | the program's own run (kernel stats) | added per reported open (median) |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for (at, hook) in hooks.iter().enumerate() {
        let (low, high) = (
            added[at].iter().copied().fold(f64::MAX, f64::min),
            added[at].iter().copied().fold(f64::MIN, f64::max),
        );
        println!(
            "| {} | {:.1} ns | {low:.1} to {high:.1} ns | {:.1} ns | {:.0} ns |",
            hook.as_str(),
            median(&mut added[at]),
            median(&mut own[at]),
            median(&mut reported[at]),
        );
    }
    drop(volume);
    let _ = std::fs::remove_dir_all(&work);
}
