//! Service identification against nmap itself, on real servers from
//! Debian's packages (root): OpenSSH, nginx, Redis, PostgreSQL, MariaDB,
//! vsftpd and dnsmasq run in a network namespace of their own with
//! throwaway configurations; from another namespace, joined by a veth
//! pair, `nmap -sV` names each, and so does edgewise:
//! - actively, with `edgewise services --probe` (the daemon's prober):
//!   the same service, product and version as nmap, for every server;
//! - passively, with `edgewise services FILE` on tcpdump's capture of a
//!   client talking to each as clients do: the same service, product and
//!   version wherever nmap's answer comes from a server's banner (the NULL
//!   probe) or its answer to an HTTP request (`GetRequest`), the two
//!   exchanges ordinary traffic holds.
//!
//! Needs root, `ip`, `tcpdump`, `python3`, `nmap` and the servers (the
//! test script installs them); skips with the reason otherwise (a failure
//! under `CI=true`). Traffic stays between the two namespaces.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{have, is_root, skip};

const SERVER_NS: &str = "ewnm-srv";
const CLIENT_NS: &str = "ewnm-cli";
const SERVER: &str = "10.77.0.2";

/// The servers: (name, port, the command that starts it in the server's
/// namespace, in the lab's folder).
fn servers(dir: &Path) -> Vec<(&'static str, u16, Vec<String>)> {
    let d = dir.display();
    let words = |text: String| text.split_whitespace().map(str::to_owned).collect();
    vec![
        (
            "openssh",
            22,
            words(format!("/usr/sbin/sshd -D -e -f {d}/sshd_config")),
        ),
        (
            "nginx",
            80,
            words(format!("nginx -c {d}/nginx.conf -p {d}")),
        ),
        (
            "redis",
            6379,
            words(format!(
                "redis-server --bind {SERVER} --port 6379 --save \"\" --appendonly no --protected-mode no --dir {d}"
            )),
        ),
        (
            "vsftpd",
            21,
            words(format!("/usr/sbin/vsftpd {d}/vsftpd.conf")),
        ),
        (
            "mariadb",
            3306,
            words(format!(
                "mariadbd --no-defaults --datadir={d}/db --bind-address={SERVER} --port=3306 --socket={d}/my.sock --user=root --pid-file={d}/my.pid --skip-log-bin --skip-grant-tables"
            )),
        ),
        (
            "dnsmasq",
            53,
            words(format!(
                "dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces --listen-address={SERVER} --user=root --pid-file="
            )),
        ),
        (
            "postgresql",
            5432,
            words(format!(
                "runuser -u postgres -- {} -D {d}/pg -k {d}/pg -c listen_addresses={SERVER} -c port=5432",
                postgres_bin("postgres").display()
            )),
        ),
    ]
}

fn postgres_bin(name: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| PathBuf::from(name))
}

fn run(args: &[&str]) {
    let status = Command::new(args[0]).args(&args[1..]).status().unwrap();
    assert!(status.success(), "{args:?}");
}

fn in_ns(ns: &str, args: &[&str]) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", ns]).args(args);
    command
}

/// The namespaces, the servers and their folder; all gone when dropped.
struct Lab {
    dir: PathBuf,
    children: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [SERVER_NS, CLIENT_NS] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Lab {
    fn start() -> Self {
        for ns in [SERVER_NS, CLIENT_NS] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let dir = std::env::temp_dir().join(format!("edgewise-nmap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut lab = Lab {
            dir: dir.clone(),
            children: Vec::new(),
        };
        run(&["ip", "netns", "add", SERVER_NS]);
        run(&["ip", "netns", "add", CLIENT_NS]);
        run(&[
            "ip", "link", "add", "ewnm-c", "netns", CLIENT_NS, "type", "veth", "peer", "name",
            "ewnm-s", "netns", SERVER_NS,
        ]);
        for (ns, dev, address) in [
            (SERVER_NS, "ewnm-s", "10.77.0.2/24"),
            (CLIENT_NS, "ewnm-c", "10.77.0.1/24"),
        ] {
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            run(&["ip", "-n", ns, "addr", "add", address, "dev", dev]);
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        lab.configure();
        for (name, port, command) in servers(&dir) {
            let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
            let args: Vec<&str> = command.iter().map(String::as_str).collect();
            let child = in_ns(SERVER_NS, &args)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            lab.children.push(child);
            lab.wait_for(name, port);
        }
        lab
    }

    /// Throwaway configurations and data folders in the lab's folder.
    fn configure(&self) {
        let d = &self.dir;
        std::fs::create_dir_all(d.join("empty")).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        run(&[
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            &format!("{}/key", d.display()),
        ]);
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port 22\nListenAddress {SERVER}\nHostKey {}/key\nPidFile none\nUsePAM no\n",
                d.display()
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("nginx.conf"),
            format!(
                "daemon off;\npid {0}/nginx.pid;\nerror_log {0}/nginx.err;\nevents {{}}\nhttp {{\n access_log off;\n server {{ listen {SERVER}:80; location / {{ return 200 \"ok\\n\"; }} }}\n}}\n",
                d.display()
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("vsftpd.conf"),
            format!(
                "listen=YES\nlisten_address={SERVER}\nbackground=NO\nanonymous_enable=YES\nno_anon_password=YES\nanon_root={0}/empty\nlocal_enable=NO\nsecure_chroot_dir={0}/empty\nseccomp_sandbox=NO\n",
                d.display()
            ),
        )
        .unwrap();
        let db = format!("--datadir={}/db", d.display());
        run(&[
            "mariadb-install-db",
            "--no-defaults",
            &db,
            "--user=root",
            "--skip-test-db",
        ]);
        let pg = d.join("pg");
        std::fs::create_dir_all(&pg).unwrap();
        run(&["chown", "postgres", pg.to_str().unwrap()]);
        let initdb = postgres_bin("initdb");
        run(&[
            "runuser",
            "-u",
            "postgres",
            "--",
            initdb.to_str().unwrap(),
            "-D",
            pg.to_str().unwrap(),
            "-A",
            "trust",
        ]);
    }

    /// Waits until `port` accepts connections from the client's side.
    fn wait_for(&self, name: &str, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let probe = format!(
            "import socket; socket.create_connection(('{SERVER}', {port}), timeout=1).close()"
        );
        while Instant::now() < deadline {
            let ok = in_ns(CLIENT_NS, &["python3", "-c", &probe])
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success();
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
        panic!("{name} did not listen on {port}: {log}");
    }
}

/// What one side said of a server: service, product, version.
type Named = (Option<String>, Option<String>, Option<String>);

/// nmap -sV's answer per port, from its XML.
fn nmap(ports: &[u16]) -> BTreeMap<u16, Named> {
    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
    let output = in_ns(
        CLIENT_NS,
        &[
            "nmap",
            "-sV",
            "-Pn",
            "-n",
            "-p",
            &list.join(","),
            SERVER,
            "-oX",
            "-",
        ],
    )
    .output()
    .unwrap();
    assert!(output.status.success(), "nmap");
    let xml = String::from_utf8(output.stdout).unwrap();
    let attribute = |element: &str, name: &str| -> Option<String> {
        let start = element.find(&format!(" {name}=\""))? + name.len() + 3;
        let end = element[start..].find('"')? + start;
        Some(
            element[start..end]
                .replace("&quot;", "\"")
                .replace("&amp;", "&"),
        )
    };
    let mut named = BTreeMap::new();
    for part in xml.split("<port protocol=\"tcp\" portid=\"").skip(1) {
        let port: u16 = part[..part.find('"').unwrap()].parse().unwrap();
        let service = part
            .find("<service ")
            .map(|at| &part[at..at + part[at..].find('>').unwrap()])
            .unwrap_or_default();
        named.insert(
            port,
            (
                attribute(service, "name"),
                attribute(service, "product"),
                attribute(service, "version"),
            ),
        );
    }
    named
}

/// edgewise's JSON lines per port, with the probe that decided.
fn edgewise_lines(stdout: &[u8]) -> BTreeMap<u16, (Named, Option<String>)> {
    let text = String::from_utf8(stdout.to_vec()).unwrap();
    text.lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|line| line["server"].as_str().unwrap().starts_with(SERVER))
        .map(|line| {
            let server: std::net::SocketAddr = line["server"].as_str().unwrap().parse().unwrap();
            let text = |key: &str| line[key].as_str().map(str::to_owned);
            (
                server.port(),
                (
                    (text("service"), text("product"), text("version")),
                    text("probe"),
                ),
            )
        })
        .collect()
}

/// Clients talking to each server as clients do, from the client's side.
const CLIENTS: &str = r#"
import socket, struct, time
S = "10.77.0.2"
def talk(port, send=b"", first=True):
    s = socket.create_connection((S, port), timeout=3)
    try:
        if first:
            s.recv(4096)
        if send:
            s.sendall(send)
            s.recv(4096)
    except OSError:
        pass
    s.close()
talk(22, b"SSH-2.0-OpenSSH_9.2p1 client\r\n")
talk(21, b"USER anonymous\r\n")
talk(3306)
talk(80, b"GET / HTTP/1.1\r\nHost: 10.77.0.2\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n", first=False)
talk(6379, b"*1\r\n$4\r\nPING\r\n", first=False)
user = b"user\0postgres\0database\0postgres\0\0"
talk(5432, struct.pack(">II", 8 + len(user), 196608) + user, first=False)
q = struct.pack(">HHHHHH", 4242, 0x0100, 1, 0, 0, 0) + b"\x07example\x03com\x00" + struct.pack(">HH", 1, 1)
talk(53, struct.pack(">H", len(q)) + q, first=False)
time.sleep(0.5)
"#;

/// tcpdump's capture of `CLIENTS`.
fn capture(dir: &Path) -> PathBuf {
    let pcap = dir.join("clients.pcap");
    let mut tcpdump = in_ns(
        CLIENT_NS,
        &[
            "tcpdump",
            "--immediate-mode",
            "-U",
            "-s",
            "0",
            "-nn",
            "-i",
            "ewnm-c",
            "-w",
        ],
    )
    .arg(&pcap)
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(tcpdump.stderr.take().unwrap()).lines();
    assert!(
        lines
            .by_ref()
            .take(5)
            .any(|l| l.is_ok_and(|l| l.contains("listening on"))),
        "tcpdump did not start"
    );
    let drain = std::thread::spawn(move || lines.for_each(drop));
    let clients = in_ns(CLIENT_NS, &["python3", "-c", CLIENTS])
        .status()
        .unwrap();
    assert!(clients.success(), "the clients");
    std::thread::sleep(Duration::from_millis(500));
    run(&["kill", "-INT", &tcpdump.id().to_string()]);
    let _ = tcpdump.wait();
    let _ = drain.join();
    pcap
}

fn preflight() -> bool {
    if !is_root() {
        skip("network namespaces need root");
        return false;
    }
    for tool in [
        "ip",
        "tcpdump",
        "python3",
        "nmap",
        "nginx",
        "redis-server",
        "mariadbd",
        "mariadb-install-db",
        "dnsmasq",
        "ssh-keygen",
        "runuser",
    ] {
        if !have(tool) {
            skip(&format!("{tool} is not installed"));
            return false;
        }
    }
    for path in [
        "/usr/sbin/sshd",
        "/usr/sbin/vsftpd",
        edgewise_observer::services::DEBIAN_SERVICE_PROBES,
    ] {
        if !Path::new(path).exists() {
            skip(&format!("{path} is absent"));
            return false;
        }
    }
    if !postgres_bin("postgres").is_absolute() {
        skip("PostgreSQL is not installed");
        return false;
    }
    true
}

#[test]
fn edgewise_names_real_servers_as_nmap_does_actively_and_from_their_traffic() {
    if !preflight() {
        return;
    }
    let lab = Lab::start();
    let ports: Vec<u16> = servers(&lab.dir).iter().map(|s| s.1).collect();
    let reference = nmap(&ports);
    assert_eq!(reference.len(), ports.len(), "{reference:?}");

    let mut args = vec!["services".to_owned()];
    for port in &ports {
        args.push("--probe".to_owned());
        args.push(format!("{SERVER}:{port}"));
    }
    let bin = env!("CARGO_BIN_EXE_edgewise");
    let mut command = vec![bin];
    command.extend(args.iter().map(String::as_str));
    let active = in_ns(CLIENT_NS, &command).output().unwrap();
    assert!(
        active.status.success(),
        "{}",
        String::from_utf8_lossy(&active.stderr)
    );
    let active = edgewise_lines(&active.stdout);

    let pcap = capture(&lab.dir);
    let passive = Command::new(bin)
        .args(["services", pcap.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        passive.status.success(),
        "{}",
        String::from_utf8_lossy(&passive.stderr)
    );
    let passive = edgewise_lines(&passive.stdout);

    let mut failures = Vec::new();
    let mut passive_checked = Vec::new();
    for (port, nmap_said) in &reference {
        let Some((we_said, probe)) = active.get(port) else {
            failures.push(format!("{port}: no active line"));
            continue;
        };
        if we_said != nmap_said {
            failures.push(format!(
                "{port} active: nmap {nmap_said:?}, edgewise {we_said:?}"
            ));
        }
        // Passively: where the answer is a banner or an HTTP answer.
        if matches!(probe.as_deref(), Some("NULL" | "GetRequest")) {
            passive_checked.push(*port);
            match passive.get(port) {
                Some((said, _)) if said == nmap_said => {}
                other => failures.push(format!(
                    "{port} passive: nmap {nmap_said:?}, edgewise {other:?}"
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\nnmap: {reference:#?}\nactive: {active:#?}\npassive: {passive:#?}",
        failures.join("\n")
    );
    passive_checked.sort_unstable();
    // The servers that speak first, and nginx's answer to a request.
    assert_eq!(passive_checked, [21, 22, 80, 3306], "{active:#?}");
    println!(
        "nmap -sV agreed on {} servers: {reference:?}",
        reference.len()
    );
}
