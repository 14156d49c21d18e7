//! Labelled CIDR ranges (pod CIDR, service CIDR, known external ranges),
//! consulted when no object owns an address: the longest prefix that
//! contains the address gives its label.
//!
//! One hash map per prefix length in use, probed from the longest: a lookup
//! costs at most one probe per distinct length, whatever the number of
//! ranges. IPv4 ranges live in the IPv4-mapped part of one 128-bit space.

use core::net::IpAddr;
use std::collections::HashMap;

use foldhash::fast::RandomState;
use ipnet::IpNet;

/// A CIDR range and the label an address in it resolves to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NamedRange {
    /// The range.
    pub net: IpNet,
    /// Its label, such as `pod-cidr` or `vendor-saas`.
    pub label: String,
}

impl NamedRange {
    /// A labelled range.
    pub fn new(net: IpNet, label: impl Into<String>) -> Self {
        Self {
            net,
            label: label.into(),
        }
    }
}

/// Longest-prefix match over [`NamedRange`]s. When two ranges are the same
/// network, the later one wins.
#[derive(Debug, Default)]
pub(crate) struct RangeTable {
    /// (prefix length in the 128-bit space, networks of that length),
    /// longest first.
    by_length: Vec<(u8, Networks)>,
}

/// Network (masked key) -> label, for one prefix length.
type Networks = HashMap<u128, Box<str>, RandomState>;

impl RangeTable {
    pub(crate) fn new(ranges: &[NamedRange]) -> Self {
        let mut by_length: Vec<(u8, Networks)> = Vec::new();
        for range in ranges {
            let length = match range.net {
                IpNet::V4(net) => net.prefix_len() + 96,
                IpNet::V6(net) => net.prefix_len(),
            };
            let key = mask(ip_key(range.net.network()), length);
            if let Some((_, networks)) = by_length.iter_mut().find(|(l, _)| *l == length) {
                networks.insert(key, range.label.as_str().into());
            } else {
                let networks = Networks::from_iter([(key, range.label.as_str().into())]);
                by_length.push((length, networks));
            }
        }
        by_length.sort_by_key(|(length, _)| core::cmp::Reverse(*length));
        Self { by_length }
    }

    /// The label of the longest range containing `key`.
    pub(crate) fn lookup(&self, key: u128) -> Option<&str> {
        self.by_length
            .iter()
            .find_map(|(length, nets)| nets.get(&mask(key, *length)).map(AsRef::as_ref))
    }
}

/// The index's key for an address: IPv4 as IPv4-mapped IPv6, so that
/// `::ffff:10.0.0.1` (how a dual-stack socket shows an IPv4 peer) finds the
/// owner of `10.0.0.1`.
#[inline]
/// The key every edgewise map uses for an address: IPv6 as its 128 bits,
/// IPv4 as its IPv4-mapped IPv6 form, so one key space covers both families
/// and an IPv4-mapped address is the IPv4 address it carries.
pub fn ip_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(ip) => u128::from(ip.to_ipv6_mapped()),
        IpAddr::V6(ip) => u128::from(ip),
    }
}

/// The address of a key made by [`ip_key`] (IPv4 for a mapped key).
pub fn ip_of(key: u128) -> IpAddr {
    IpAddr::V6(core::net::Ipv6Addr::from(key)).to_canonical()
}

fn mask(key: u128, length: u8) -> u128 {
    match length {
        0 => 0,
        128.. => key,
        _ => key & !(u128::MAX >> length),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> u128 {
        ip_key(text.parse().unwrap())
    }

    #[test]
    fn longest_prefix_wins() {
        let table = RangeTable::new(&[
            NamedRange::new("10.0.0.0/8".parse().unwrap(), "private"),
            NamedRange::new("10.42.0.0/16".parse().unwrap(), "pod-cidr"),
            NamedRange::new("10.42.7.0/24".parse().unwrap(), "node-7"),
            NamedRange::new("fd00::/8".parse().unwrap(), "ula"),
            NamedRange::new("0.0.0.0/0".parse().unwrap(), "any-v4"),
        ]);
        assert_eq!(table.lookup(key("10.42.7.9")), Some("node-7"));
        assert_eq!(table.lookup(key("10.42.8.9")), Some("pod-cidr"));
        assert_eq!(table.lookup(key("10.1.2.3")), Some("private"));
        assert_eq!(table.lookup(key("192.0.2.1")), Some("any-v4"));
        assert_eq!(table.lookup(key("fd12::1")), Some("ula"));
        assert_eq!(
            table.lookup(key("2001:db8::1")),
            None,
            "0.0.0.0/0 is IPv4 only"
        );
    }

    #[test]
    fn host_bits_in_the_range_are_ignored_and_later_duplicates_win() {
        let table = RangeTable::new(&[
            NamedRange::new("10.42.1.7/16".parse().unwrap(), "first"),
            NamedRange::new("10.42.0.0/16".parse().unwrap(), "second"),
        ]);
        assert_eq!(table.lookup(key("10.42.200.1")), Some("second"));
    }
}
