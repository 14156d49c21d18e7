//! A network namespace's interfaces as netlink tells them: the links there
//! now (an `RTM_GETLINK` dump), and a socket subscribed to their changes
//! (`RTNLGRP_LINK`: a link added, changed, renamed or deleted).
//!
//! Both sockets are made inside the namespace (a netlink socket stays in
//! the namespace it was made in), so the loader itself stays where it is.
//! Notifications only say *that* something changed: the truth is the next
//! dump, so a lost notification (the socket's buffer overran, `ENOBUFS`)
//! costs nothing but a dump.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};

use crate::{CaptureError, sys};

/// The links of a namespace: interface index to name.
pub type LinkTable = BTreeMap<u32, String>;

/// What changed since the last look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkChanges {
    /// Notifications about these interface indexes.
    Links(BTreeSet<u32>),
    /// Notifications were lost: anything may have changed.
    Overrun,
}

/// The two netlink sockets of one namespace (see the module docs).
pub struct Links {
    /// Subscribed to `RTNLGRP_LINK`, non-blocking.
    notifications: Socket,
    /// For dumps.
    requests: Socket,
    sequence: u32,
}

fn netlink(call: &'static str) -> impl Fn(io::Error) -> CaptureError {
    move |source| CaptureError::Netlink { call, source }
}

impl Links {
    /// Opens both sockets in `netns` (such as `/run/netns/NAME`), or in
    /// the calling thread's namespace.
    ///
    /// # Errors
    /// [`CaptureError::Netlink`] or [`CaptureError::Netns`].
    pub fn open(netns: Option<&Path>) -> Result<Self, CaptureError> {
        let make = || -> Result<(Socket, Socket), CaptureError> {
            let mut notifications = Socket::new(NETLINK_ROUTE).map_err(netlink("socket"))?;
            notifications.bind_auto().map_err(netlink("bind"))?;
            notifications
                .add_membership(libc::RTNLGRP_LINK)
                .map_err(netlink("add_membership"))?;
            notifications
                .set_non_blocking(true)
                .map_err(netlink("set_non_blocking"))?;
            let mut requests = Socket::new(NETLINK_ROUTE).map_err(netlink("socket"))?;
            requests.bind_auto().map_err(netlink("bind"))?;
            requests
                .connect(&SocketAddr::new(0, 0))
                .map_err(netlink("connect"))?;
            Ok((notifications, requests))
        };
        let (notifications, requests) = match netns {
            Some(netns) => sys::in_netns(netns, make).map_err(CaptureError::Netns)??,
            None => make()?,
        };
        Ok(Self {
            notifications,
            requests,
            sequence: 0,
        })
    }

    /// The links now.
    ///
    /// # Errors
    /// [`CaptureError::Netlink`] when the dump cannot be asked for or read.
    pub fn dump(&mut self) -> Result<LinkTable, CaptureError> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut request = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::from(RouteNetlinkMessage::GetLink(LinkMessage::default())),
        );
        request.header.flags = NLM_F_DUMP | NLM_F_REQUEST;
        request.header.sequence_number = self.sequence;
        request.finalize();
        let mut buffer = vec![0; request.buffer_len()];
        request.serialize(&mut buffer);
        self.requests.send(&buffer, 0).map_err(netlink("send"))?;
        let mut table = LinkTable::new();
        let mut received = vec![0_u8; 64 * 1024];
        loop {
            let size = self
                .requests
                .recv(&mut &mut received[..], 0)
                .map_err(netlink("recv"))?;
            let mut bytes = &received[..size.min(received.len())];
            while !bytes.is_empty() {
                let message: NetlinkMessage<RouteNetlinkMessage> =
                    NetlinkMessage::deserialize(bytes).map_err(|e| CaptureError::Netlink {
                        call: "parse",
                        source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
                    })?;
                let length = usize::try_from(message.header.length).unwrap_or(0);
                match message.payload {
                    NetlinkPayload::Done(_) => return Ok(table),
                    NetlinkPayload::Error(error) => {
                        return Err(CaptureError::Netlink {
                            call: "dump",
                            source: error.to_io(),
                        });
                    }
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                        if let Some(name) = link_name(&link) {
                            table.insert(link.header.index, name);
                        }
                    }
                    _ => {}
                }
                if length == 0 || length > bytes.len() {
                    break;
                }
                bytes = &bytes[length..];
            }
        }
    }

    /// What changed since the last call (`None`: nothing), without
    /// waiting.
    ///
    /// # Errors
    /// [`CaptureError::Netlink`] when the socket fails otherwise than by
    /// having nothing to read or having overrun.
    pub fn changes(&mut self) -> Result<Option<LinkChanges>, CaptureError> {
        let mut touched = BTreeSet::new();
        let mut received = vec![0_u8; 64 * 1024];
        loop {
            match self.notifications.recv(&mut &mut received[..], 0) {
                Ok(size) => {
                    let mut bytes = &received[..size.min(received.len())];
                    while let Ok(message) =
                        NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes)
                    {
                        if let NetlinkPayload::InnerMessage(
                            RouteNetlinkMessage::NewLink(link) | RouteNetlinkMessage::DelLink(link),
                        ) = &message.payload
                        {
                            touched.insert(link.header.index);
                        }
                        let length = usize::try_from(message.header.length).unwrap_or(0);
                        if length == 0 || length >= bytes.len() {
                            break;
                        }
                        bytes = &bytes[length..];
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.raw_os_error() == Some(libc::ENOBUFS) => {
                    // Drain what is left, then say everything may have moved.
                    while self.notifications.recv(&mut &mut received[..], 0).is_ok() {}
                    return Ok(Some(LinkChanges::Overrun));
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(CaptureError::Netlink {
                        call: "recv",
                        source,
                    });
                }
            }
        }
        Ok((!touched.is_empty()).then_some(LinkChanges::Links(touched)))
    }
}

impl AsFd for Links {
    /// The notifications' socket: readable when a change waits.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.notifications.as_fd()
    }
}

fn link_name(link: &LinkMessage) -> Option<String> {
    link.attributes
        .iter()
        .find_map(|attribute| match attribute {
            LinkAttribute::IfName(name) => Some(name.clone()),
            _ => None,
        })
}
