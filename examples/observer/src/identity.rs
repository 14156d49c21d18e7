//! `edgewise identity build` and `edgewise identity lookup`: the identity
//! baseline MMDB made from Kubernetes objects, and lookups through the same
//! client a node agent runs (a baseline plus deltas).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use std::sync::atomic::AtomicBool;

use edgewise_identity::http::{FollowConfig, FollowEvent, Transport, follow};
use edgewise_identity::{
    Baseline, ClientState, DeltaLimits, IdentityClient, IdentityError, Producer, read_deltas,
    unix_time,
};

use crate::FileError;
use crate::resolve::{ResolveError, load_index};

/// Why an `edgewise identity` command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityCommandError {
    /// The objects could not be loaded.
    #[error(transparent)]
    Objects(#[from] ResolveError),
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// A baseline or delta that cannot be used.
    #[error("{}: {error}", path.display())]
    Identity {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: IdentityError,
    },
    /// The listener stopped serving.
    #[error("{0}: the HTTP listener stopped")]
    Listener(std::net::SocketAddr),
    /// The server could not start (the error names the address or file).
    #[error(transparent)]
    Serve(IdentityError),
    /// Objects, policies or allow-lists that cannot be used.
    #[error(transparent)]
    Inputs(crate::edges::EdgesError),
}

/// Builds the identity MMDB of the `objects` into `out` (written beside it
/// and renamed into place, so a reader that maps the file never sees it
/// half-written), at `epoch`, stamped `built_unix_seconds`; returns how many
/// addresses it holds.
///
/// # Errors
/// [`IdentityCommandError`] naming the file at fault.
pub fn build(
    objects: &[PathBuf],
    out: &Path,
    epoch: u64,
    built_unix_seconds: u64,
) -> Result<usize, IdentityCommandError> {
    let index = load_index(objects)?;
    let mut producer = Producer::new(epoch);
    producer.update_from_index(&index.snapshot());
    let baseline = producer.baseline();
    let bytes = baseline
        .to_mmdb(unix_time(built_unix_seconds))
        .map_err(|error| IdentityCommandError::Identity {
            path: out.to_owned(),
            error,
        })?;
    let partial = out.with_extension("mmdb.partial");
    std::fs::write(&partial, bytes).map_err(FileError::at(&partial))?;
    std::fs::rename(&partial, out).map_err(FileError::at(out))?;
    Ok(baseline.len())
}

/// What `edgewise identity lookup` found.
#[derive(Debug)]
pub struct Looked {
    /// One JSON line per address: `{"schema", "ip", "identity"}`, the
    /// identity `null` when the address has none.
    pub lines: Vec<String>,
    /// Set when the deltas left the client needing a newer baseline (the
    /// answers are then those of the last good state).
    pub needs_resync: Option<String>,
}

/// Loads the baseline `mmdb`, applies the `deltas` file (JSON lines; `-`
/// for standard input) if given, and looks each address up.
///
/// # Errors
/// [`IdentityCommandError`] for an unreadable file, a baseline that is not
/// an identity MMDB, or a delta line that cannot be used.
pub fn lookup(
    mmdb: &Path,
    deltas: Option<&Path>,
    ips: &[IpAddr],
) -> Result<Looked, IdentityCommandError> {
    let bytes = std::fs::read(mmdb).map_err(FileError::at(mmdb))?;
    let baseline = Baseline::from_mmdb(&bytes).map_err(|error| IdentityCommandError::Identity {
        path: mmdb.to_owned(),
        error,
    })?;
    let mut client = IdentityClient::default();
    client.load_baseline(baseline);
    if let Some(path) = deltas {
        let input = if path.as_os_str() == "-" {
            let mut input = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut input)
                .map_err(FileError::at(path))?;
            input
        } else {
            std::fs::read(path).map_err(FileError::at(path))?
        };
        let (deltas, errors) = read_deltas(&input, &DeltaLimits::default());
        if let Some(error) = errors.into_iter().next() {
            return Err(IdentityCommandError::Identity {
                path: path.to_owned(),
                error,
            });
        }
        for delta in deltas {
            client.apply(delta);
        }
    }
    let needs_resync = match client.state() {
        ClientState::Synced(_) => None,
        ClientState::NeedsResync(why) => Some(format!("{why:?}")),
    };
    let reader = client.reader();
    let snapshot = reader.snapshot();
    let lines = ips
        .iter()
        .map(|ip| {
            let line = LookupLine {
                schema: crate::schema::IDENTITY_LOOKUP,
                ip: *ip,
                identity: snapshot.lookup(*ip).map(|object| &**object),
            };
            // An address and a cluster object always serialize.
            serde_json::to_string(&line).unwrap_or_default()
        })
        .collect();
    Ok(Looked {
        lines,
        needs_resync,
    })
}

/// `edgewise identity follow`: keeps a client in step with the server of
/// `config` until `stop` is set, reporting each event as a JSON line.
///
/// # Errors
/// [`IdentityCommandError`] when the CA, client certificate or token file
/// cannot be used.
pub fn follow_stream(
    config: &FollowConfig,
    stop: &AtomicBool,
    mut on_line: impl FnMut(String),
) -> Result<(), IdentityCommandError> {
    let transport = Transport::new(config).map_err(|error| IdentityCommandError::Identity {
        path: PathBuf::from(&config.url),
        error,
    })?;
    let mut client = IdentityClient::default();
    follow(&mut client, config, &transport, stop, |_, event| {
        let version = |v: &edgewise_identity::Version| VersionJson {
            epoch: v.epoch,
            seq: v.seq,
        };
        let event = match event {
            FollowEvent::Connected { server, resumed } => EventJson::Connected {
                server: version(server),
                resumed: *resumed,
            },
            FollowEvent::BaselineLoaded(v) => EventJson::Baseline {
                version: version(v),
            },
            FollowEvent::Applied(v) => EventJson::Delta {
                version: version(v),
            },
            FollowEvent::Resync(why) => EventJson::Resync {
                why: format!("{why:?}"),
            },
            FollowEvent::Disconnected(why) => EventJson::Disconnected { why: why.clone() },
        };
        let line = EventLine {
            schema: crate::schema::IDENTITY_EVENT,
            event,
        };
        // Integers and strings always serialize.
        on_line(serde_json::to_string(&line).unwrap_or_default());
    });
    Ok(())
}

/// A line of `identity lookup` (`schemas/identity-lookup.schema.json`).
#[derive(serde::Serialize)]
struct LookupLine<'a> {
    schema: &'static str,
    ip: IpAddr,
    identity: Option<&'a edgewise_ip_index::ClusterObject>,
}

/// A line of `identity follow` (`schemas/identity-event.schema.json`).
#[derive(serde::Serialize)]
struct EventLine {
    schema: &'static str,
    #[serde(flatten)]
    event: EventJson,
}

#[derive(serde::Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum EventJson {
    Connected { server: VersionJson, resumed: bool },
    Baseline { version: VersionJson },
    Delta { version: VersionJson },
    Resync { why: String },
    Disconnected { why: String },
}

#[derive(serde::Serialize)]
struct VersionJson {
    epoch: u64,
    seq: u64,
}
