//! What a flow's first bytes say (`Banners`): what each server is, and
//! what each TLS client and server said in its hello.
//!
//! Per banner event (already oriented client -> server by the pipeline):
//! 1. capture's [`FirstBytes`] puts a TLS hello that spans segments back
//!    together; until a side's first bytes are whole, only the service its
//!    first part shows by prefix (`tls`) is taken.
//! 2. The server's first bytes name its service: nmap's database when one
//!    was given (`Pipeline::set_service_probes`; the server's bytes are a
//!    banner when it spoke first, else the answer to the probe the client's
//!    request has the shape of), else edge-set's fixed prefixes
//!    ([`detect_service`]). The client's request names it too (an HTTP
//!    request says `http`), prefixes only.
//! 3. A ClientHello gives the edge's SNI, first offered ALPN protocol and
//!    JA4 (and, when it is a host name, names the server's address in the
//!    graph where no DNS answer did); a ServerHello the server port's JA4S. After a proxy handshake
//!    (SOCKS, HTTP CONNECT) the sensors keep a few more payloads of each
//!    side: a hello among them counts, but only a side's first bytes name
//!    the service.
//!
//! Cache, per server address, port and protocol: once the database gave a
//! hard match, that server's later conversations are not matched again;
//! without one (no match, or a softmatch), it is tried for up to
//! [`MAX_ATTEMPTS`] conversations, after which the server keeps what it
//! has and its bytes are only read by prefix.
//!
//! Bounds: everything is held in `Latest` memories (at most
//! 65,536 keys each, starting over when full) and [`FirstBytes`]
//! ([`MAX_WAITING`] flows); a client's request is kept until its server
//! answers (at most [`REQUEST_KEPT`] bytes of it, and the latest
//! [`MAX_REQUESTS`] requests: a server that spoke first never takes its
//! client's request, which the newer ones push out).

use std::collections::BTreeMap;
#[cfg(feature = "service-probes")]
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use edgewise_capture::Event;
use edgewise_capture::first_bytes::FirstBytes;
use edgewise_edge_set::{ServiceSeen, ServiceSource, detect_service};
use edgewise_ip_index::Protocol;
use edgewise_ja4::tls::{self, HelloFingerprint, Ja4, Ja4s, Transport};
#[cfg(feature = "service-probes")]
use edgewise_service_probes::Database;

use crate::memory::Latest;

/// Conversations of a server read against the database without a hard
/// match before its bytes are read by prefix only.
pub const MAX_ATTEMPTS: u8 = 3;

/// The most flows waiting for the rest of a hello.
pub const MAX_WAITING: usize = 4096;

/// The most bytes of a client's request kept for matching its answer.
pub const REQUEST_KEPT: usize = 1024;

/// The most clients' requests waiting for their server's answer.
pub const MAX_REQUESTS: usize = 4096;

/// Clients' first requests until their server answers, the oldest
/// pushed out beyond [`MAX_REQUESTS`].
#[cfg(feature = "service-probes")]
#[derive(Debug, Default)]
struct Requests {
    waiting: HashMap<(SocketAddr, SocketAddr), Box<[u8]>, foldhash::fast::RandomState>,
    order: VecDeque<(SocketAddr, SocketAddr)>,
}

#[cfg(feature = "service-probes")]
impl Requests {
    fn keep(&mut self, key: (SocketAddr, SocketAddr), request: &[u8]) {
        while self.waiting.len() >= MAX_REQUESTS {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.waiting.remove(&old);
        }
        if self.order.len() >= 2 * MAX_REQUESTS {
            let waiting = &self.waiting;
            self.order.retain(|k| waiting.contains_key(k));
        }
        let kept = &request[..request.len().min(REQUEST_KEPT)];
        if self.waiting.insert(key, kept.into()).is_none() {
            self.order.push_back(key);
        }
    }

    fn take(&mut self, key: &(SocketAddr, SocketAddr)) -> Option<Box<[u8]>> {
        self.waiting.remove(key)
    }
}

/// What a server is, as far as its bytes told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceFact {
    /// The service (`ssh`, `http`, ...).
    pub(crate) name: Arc<str>,
    /// The product and its version, from nmap's database.
    pub(crate) product: Option<Arc<str>>,
    pub(crate) version: Option<Arc<str>>,
    /// A hard match of the database (a softmatch or a prefix is not).
    pub(crate) certain: bool,
    /// Learnt by probing the server.
    pub(crate) active: bool,
}

impl ServiceFact {
    fn named(name: &str) -> Self {
        ServiceFact {
            name: Arc::from(name),
            product: None,
            version: None,
            certain: false,
            active: false,
        }
    }

    /// As the graph holds it.
    pub(crate) fn seen(&self, port: u16, protocol: Protocol) -> ServiceSeen {
        ServiceSeen {
            port,
            protocol,
            name: self.name.to_string(),
            product: self.product.as_deref().map(str::to_owned),
            version: self.version.as_deref().map(str::to_owned),
            source: if self.active {
                ServiceSource::Active
            } else {
                ServiceSource::Passive
            },
        }
    }
}

/// What a TLS client said in its ClientHello to one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsClientFact {
    pub(crate) ja4: Ja4,
    pub(crate) sni: Option<Arc<str>>,
    pub(crate) alpn: Option<Arc<str>>,
}

/// What was learnt from one banner event.
#[derive(Debug, Default)]
pub(crate) struct Learnt {
    /// The server's service changed.
    pub(crate) service: Option<Arc<ServiceFact>>,
    /// A client's JA4.
    pub(crate) ja4: Option<Ja4>,
    /// A server's JA4S.
    pub(crate) ja4s: Option<Ja4s>,
}

type ServerKey = (IpAddr, u16, Protocol);

/// nmap's database and what matching with it keeps.
#[cfg(feature = "service-probes")]
struct Matching {
    database: Arc<Database>,
    requests: Requests,
    /// Conversations read against the database without a match.
    attempts: Latest<ServerKey, u8>,
}

/// See the module docs.
pub(crate) struct Banners {
    first: FirstBytes,
    #[cfg(feature = "service-probes")]
    matching: Option<Matching>,
    services: Latest<ServerKey, Arc<ServiceFact>>,
    /// The sides (sender, receiver) whose first bytes were read.
    spoke: Latest<(SocketAddr, SocketAddr), ()>,
    tls_clients: Latest<(IpAddr, IpAddr, u16), Arc<TlsClientFact>>,
    tls_servers: Latest<(IpAddr, u16), Ja4s>,
    /// The latest host name clients asked each server address for (SNI).
    server_names: Latest<IpAddr, Arc<str>>,
    scratch: Box<[u8]>,
    /// Hellos that could not be read, by reason.
    pub(crate) tls_errors: BTreeMap<&'static str, u64>,
    /// Servers' bytes matched against the database, and what came of it.
    pub(crate) matched: BTreeMap<&'static str, u64>,
}

impl Banners {
    pub(crate) fn new() -> Self {
        Banners {
            first: FirstBytes::new(MAX_WAITING),
            #[cfg(feature = "service-probes")]
            matching: None,
            services: Latest::new(),
            spoke: Latest::new(),
            tls_clients: Latest::new(),
            tls_servers: Latest::new(),
            server_names: Latest::new(),
            scratch: vec![0; tls::MAX_HELLO].into_boxed_slice(),
            tls_errors: BTreeMap::new(),
            matched: BTreeMap::new(),
        }
    }

    /// Reads servers' bytes against nmap's database from now on.
    #[cfg(feature = "service-probes")]
    pub(crate) fn with_service_probes(&mut self, database: Arc<Database>) {
        self.matching = Some(Matching {
            database,
            requests: Requests::default(),
            attempts: Latest::new(),
        });
    }

    /// nmap's database, when given.
    #[cfg(feature = "service-probes")]
    pub(crate) fn service_probes(&self) -> Option<&Arc<Database>> {
        self.matching.as_ref().map(|m| &m.database)
    }

    /// Hellos given up because their next segment never came.
    pub(crate) fn hellos_given_up(&self) -> u64 {
        self.first.given_up()
    }

    /// The service of a server's port.
    pub(crate) fn service(
        &self,
        server: IpAddr,
        port: u16,
        protocol: Protocol,
    ) -> Option<Arc<ServiceFact>> {
        self.services.get(&(server, port, protocol)).cloned()
    }

    /// What the client said in its hello to this server's port.
    pub(crate) fn tls_client(
        &self,
        client: IpAddr,
        server: IpAddr,
        port: u16,
    ) -> Option<Arc<TlsClientFact>> {
        self.tls_clients.get(&(client, server, port)).cloned()
    }

    /// The host name clients last asked `server` for by SNI.
    pub(crate) fn server_name(&self, server: IpAddr) -> Option<&Arc<str>> {
        self.server_names.get(&server)
    }

    /// The server port's JA4S.
    pub(crate) fn tls_server(&self, server: IpAddr, port: u16) -> Option<Ja4s> {
        self.tls_servers.get(&(server, port)).copied()
    }

    /// One banner event of the conversation `client` -> `server`.
    pub(crate) fn handle(
        &mut self,
        event: &Event<'_>,
        client: SocketAddr,
        server: SocketAddr,
        protocol: Protocol,
    ) -> Learnt {
        let mut learnt = Learnt::default();
        // A side's later banners (after a proxy handshake) may hold a
        // hello; only its first names the service.
        let first_unit = self.spoke.get(&(event.src, event.dst)).is_none();
        let first_part = !self.first.waits_for(event);
        let key = (server.ip(), server.port(), protocol);
        let Some(bytes) = self.first.add(event) else {
            // A hello that waits for its next segment (which may never
            // come: a capture cut short) already shows what it is.
            if first_part && first_unit {
                learnt.service = self.by_prefix(key, event.data);
            }
            return learnt;
        };
        let from_server = event.src == server;
        if tls::starts_handshake(&bytes) {
            self.hello(&bytes, client, server, &mut learnt);
        }
        if !first_unit {
            return learnt;
        }
        self.spoke.insert((event.src, event.dst), ());
        if from_server {
            #[cfg(feature = "service-probes")]
            if let Some(fact) = self.match_database(key, (client, server), &bytes) {
                learnt.service = self.learn(key, fact);
                return learnt;
            }
            learnt.service = self.by_prefix(key, &bytes);
        } else {
            #[cfg(feature = "service-probes")]
            if let Some(matching) = &mut self.matching {
                matching.requests.keep((client, server), &bytes);
            }
            if self.services.get(&key).is_none() {
                learnt.service = self.by_prefix(key, &bytes);
            }
        }
        learnt
    }

    fn hello(&mut self, bytes: &[u8], client: SocketAddr, server: SocketAddr, learnt: &mut Learnt) {
        let text = |b: Option<&[u8]>| b.map(|b| Arc::from(String::from_utf8_lossy(b).as_ref()));
        match tls::fingerprint_first(bytes, &mut self.scratch, Transport::Tcp) {
            Ok(Some(HelloFingerprint::Client {
                ja4,
                server_name,
                alpn,
            })) => {
                learnt.ja4 = Some(ja4);
                if let Some(name) = server_name.filter(|n| is_host_name(n)) {
                    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
                    self.server_names
                        .insert(server.ip(), Arc::from(name.as_str()));
                }
                let fact = TlsClientFact {
                    ja4,
                    sni: text(server_name),
                    alpn: text(alpn),
                };
                self.tls_clients
                    .insert((client.ip(), server.ip(), server.port()), Arc::new(fact));
            }
            Ok(Some(HelloFingerprint::Server { ja4s, .. })) => {
                learnt.ja4s = Some(ja4s);
                self.tls_servers.insert((server.ip(), server.port()), ja4s);
            }
            Ok(None) => {}
            Err(e) => *self.tls_errors.entry(e.reason()).or_default() += 1,
        }
    }

    /// nmap's database on a server's bytes (see the module docs for the
    /// cache).
    #[cfg(feature = "service-probes")]
    fn match_database(
        &mut self,
        key: ServerKey,
        conversation: (SocketAddr, SocketAddr),
        response: &[u8],
    ) -> Option<ServiceFact> {
        let matching = self.matching.as_mut()?;
        // The client spoke first when its request is waiting.
        let request = matching.requests.take(&conversation);
        if self.services.get(&key).is_some_and(|s| s.certain) {
            return None;
        }
        let tried = matching.attempts.get(&key).copied().unwrap_or(0);
        if tried >= MAX_ATTEMPTS {
            return None;
        }
        let found = matching
            .database
            .identify_exchange(request.as_deref(), response);
        let Some((found, _)) = found else {
            matching.attempts.insert(key, tried + 1);
            *self.matched.entry("none").or_default() += 1;
            return None;
        };
        *self
            .matched
            .entry(if found.soft { "soft" } else { "hard" })
            .or_default() += 1;
        if found.soft {
            // A softmatch is tried again, within the same budget.
            matching.attempts.insert(key, tried + 1);
        }
        let text = |v: Option<String>| v.map(|v| Arc::from(v.as_str()));
        Some(ServiceFact {
            name: Arc::from(found.service.as_str()),
            product: text(found.version.product),
            version: text(found.version.version),
            certain: !found.soft,
            active: false,
        })
    }

    /// Whether a hard match named the server's service.
    pub(crate) fn identified(&self, key: ServerKey) -> bool {
        self.services.get(&key).is_some_and(|held| held.certain)
    }

    fn by_prefix(&mut self, key: ServerKey, bytes: &[u8]) -> Option<Arc<ServiceFact>> {
        let name = detect_service(bytes)?;
        if self
            .services
            .get(&key)
            .is_some_and(|held| held.product.is_some() || held.certain)
        {
            return None;
        }
        self.learn(key, ServiceFact::named(name))
    }

    /// What a probe session found: a hard match replaces anything; a
    /// softmatch only a prefix's name.
    pub(crate) fn probed(
        &mut self,
        key: ServerKey,
        found: &crate::probing::ProbeFinding,
    ) -> Option<Arc<ServiceFact>> {
        if found.soft && self.services.get(&key).is_some_and(|held| held.certain) {
            return None;
        }
        let text = |v: &Option<String>| v.as_deref().map(Arc::from);
        self.learn(
            key,
            ServiceFact {
                name: Arc::from(found.service.as_str()),
                product: text(&found.product),
                version: text(&found.version),
                certain: !found.soft,
                active: true,
            },
        )
    }

    fn learn(&mut self, key: ServerKey, fact: ServiceFact) -> Option<Arc<ServiceFact>> {
        if self.services.get(&key).is_some_and(|held| **held == fact) {
            return None;
        }
        let fact = Arc::new(fact);
        self.services.insert(key, Arc::clone(&fact));
        Some(fact)
    }
}

/// Whether an SNI value is a host name (RFC 1123 letters, digits, `-`,
/// `.`, `_`; at most 253 bytes, no empty label): what may name a graph's
/// address.
fn is_host_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .split(|&b| b == b'.')
            .all(|label| (1..=63).contains(&label.len()))
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::is_host_name;

    #[test]
    fn only_host_names_name_an_address() {
        for good in [&b"example.com"[..], b"a-b.c_d.io", b"localhost", b"x"] {
            assert!(is_host_name(good), "{good:?}");
        }
        let long = [b'a'; 254];
        for bad in [&b""[..], b"a..b", b".a", b"a b", b"a/b", b"\xffx", &long] {
            assert!(!is_host_name(bad), "{bad:?}");
        }
    }
}
