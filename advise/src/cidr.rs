//! Addresses into CIDRs: the widest blocks that leave at most a set share
//! of their space unseen ([`cover`]), and a user's named ranges
//! ([`Prefixes`], such as a cloud's published ones).

use core::net::IpAddr;
use std::collections::BTreeSet;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::AdviseError;

/// A user's range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prefix {
    /// The block.
    pub prefix: IpNet,
    /// What it is (`cloudfront`, `github`, ...).
    pub name: String,
}

/// A user's ranges: a JSON list of `{"prefix": "CIDR", "name": "..."}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefixes {
    /// Most specific first.
    prefixes: Vec<Prefix>,
}

/// The most ranges a file may hold.
pub const MAX_PREFIXES: usize = 100_000;

impl Prefixes {
    /// Reads a prefixes file; `source_name` names it in errors.
    ///
    /// # Errors
    /// [`AdviseError::Prefixes`] when it is not such a list, a prefix is
    /// not a CIDR, a name is empty or longer than 253 bytes, or it has
    /// more than [`MAX_PREFIXES`] entries.
    pub fn from_json(source_name: &str, bytes: &[u8]) -> Result<Self, AdviseError> {
        let fail = |problem: String| AdviseError::Prefixes {
            source_name: source_name.to_owned(),
            problem,
        };
        let mut prefixes: Vec<Prefix> = serde_json::from_slice(bytes).map_err(|e| {
            fail(format!(
                "expected a JSON list of {{\"prefix\": CIDR, \"name\": text}}: {e}"
            ))
        })?;
        if prefixes.len() > MAX_PREFIXES {
            return Err(fail(format!(
                "{} prefixes: at most {MAX_PREFIXES}",
                prefixes.len()
            )));
        }
        for (index, prefix) in prefixes.iter_mut().enumerate() {
            if prefix.name.trim().is_empty() || prefix.name.len() > 253 {
                return Err(fail(format!(
                    "entry {}: a name of 1 to 253 bytes is needed",
                    index + 1
                )));
            }
            prefix.prefix = prefix.prefix.trunc();
        }
        prefixes.sort_by(|a, b| {
            b.prefix
                .prefix_len()
                .cmp(&a.prefix.prefix_len())
                .then_with(|| a.prefix.cmp(&b.prefix))
        });
        Ok(Self { prefixes })
    }

    /// The most specific range holding `ip`.
    pub fn find(&self, ip: IpAddr) -> Option<&Prefix> {
        self.prefixes.iter().find(|p| p.prefix.contains(&ip))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }
}

/// How many addresses a block holds (as a float: an IPv6 block can hold
/// more than any integer type a report would carry).
pub fn size(net: &IpNet) -> f64 {
    let bits = match net {
        IpNet::V4(_) => 32,
        IpNet::V6(_) => 128,
    };
    2f64.powi(i32::from(bits - net.prefix_len()))
}

/// The share of `net` that `seen` addresses leave unseen.
pub fn unseen_share(net: &IpNet, seen: usize) -> f64 {
    #[expect(clippy::cast_precision_loss, reason = "a share")]
    let seen = seen as f64;
    (1.0 - seen / size(net)).max(0.0)
}

/// The blocks covering `addresses`: starting from each address's block of
/// `widest_v4` (`widest_v6`) bits, a block is taken whole when at most
/// `max_unseen` of it is unseen, else split in two halves, down to single
/// addresses. Each block comes with how many of the addresses it holds.
pub fn cover(
    addresses: &BTreeSet<IpAddr>,
    max_unseen: f64,
    widest_v4: u8,
    widest_v6: u8,
) -> Vec<(IpNet, usize)> {
    let mut out = Vec::new();
    let mut starts: BTreeSet<IpNet> = BTreeSet::new();
    for ip in addresses {
        let widest = if ip.is_ipv4() { widest_v4 } else { widest_v6 };
        if let Ok(net) = IpNet::new(*ip, widest) {
            starts.insert(net.trunc());
        }
    }
    for start in starts {
        let inside: Vec<IpAddr> = addresses
            .iter()
            .copied()
            .filter(|ip| start.contains(ip))
            .collect();
        split(start, &inside, max_unseen, &mut out);
    }
    out
}

fn split(net: IpNet, inside: &[IpAddr], max_unseen: f64, out: &mut Vec<(IpNet, usize)>) {
    if inside.is_empty() {
        return;
    }
    if unseen_share(&net, inside.len()) <= max_unseen {
        out.push((net, inside.len()));
        return;
    }
    let Ok(halves) = net.subnets(net.prefix_len() + 1) else {
        out.push((net, inside.len()));
        return;
    };
    for half in halves {
        let part: Vec<IpAddr> = inside
            .iter()
            .copied()
            .filter(|ip| half.contains(ip))
            .collect();
        split(half, &part, max_unseen, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> BTreeSet<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn nets(blocks: &[(IpNet, usize)]) -> Vec<String> {
        blocks.iter().map(|(n, _)| n.to_string()).collect()
    }

    #[test]
    fn dense_runs_become_blocks_and_strays_stay_single() {
        let mut list: Vec<String> = (0..8).map(|i| format!("198.51.100.{i}")).collect();
        list.push("198.51.100.200".to_owned());
        list.push("2001:db8::1".to_owned());
        let refs: Vec<&str> = list.iter().map(String::as_str).collect();
        let blocks = cover(&ips(&refs), 0.25, 24, 64);
        assert_eq!(
            nets(&blocks),
            ["198.51.100.0/29", "198.51.100.200/32", "2001:db8::1/128"]
        );
        assert_eq!(blocks[0].1, 8);
    }

    #[test]
    fn the_unseen_share_is_never_exceeded() {
        // Three of four: a /30 at 25% unseen, not at 20%.
        let three = ips(&["192.0.2.0", "192.0.2.1", "192.0.2.2"]);
        assert_eq!(nets(&cover(&three, 0.25, 24, 64)), ["192.0.2.0/30"]);
        assert_eq!(
            nets(&cover(&three, 0.2, 24, 64)),
            ["192.0.2.0/31", "192.0.2.2/32"]
        );
        // Never wider than the widest prefix, even when all is seen.
        let all: Vec<String> = (0..=255).map(|i| format!("192.0.2.{i}")).collect();
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        assert_eq!(
            nets(&cover(&ips(&refs), 0.25, 25, 64)),
            ["192.0.2.0/25", "192.0.2.128/25"]
        );
    }

    proptest::proptest! {
        /// Every address is in exactly one block; a block wider than one
        /// address leaves at most the share unseen and is never wider
        /// than the widest prefix.
        #[test]
        fn blocks_cover_each_address_once_within_the_share(
            octets in proptest::collection::btree_set((0u8..4, 0u8..=255), 1..200),
            share in 0.0f64..0.9,
        ) {
            let set: BTreeSet<IpAddr> = octets
                .iter()
                .map(|&(c, d)| IpAddr::from([198, 51, 100 + c, d]))
                .collect();
            let blocks = cover(&set, share, 23, 64);
            for ip in &set {
                proptest::prop_assert_eq!(blocks.iter().filter(|(n, _)| n.contains(ip)).count(), 1);
            }
            for (net, seen) in &blocks {
                proptest::prop_assert!(net.prefix_len() >= 23);
                proptest::prop_assert_eq!(*seen, set.iter().filter(|ip| net.contains(*ip)).count());
                proptest::prop_assert!(net.prefix_len() == 32 || unseen_share(net, *seen) <= share);
            }
        }
    }

    #[test]
    fn prefixes_are_checked_and_the_most_specific_wins() {
        let prefixes = Prefixes::from_json(
            "p.json",
            br#"[{"prefix": "203.0.113.0/24", "name": "wide"},
                 {"prefix": "203.0.113.128/25", "name": "narrow"}]"#,
        )
        .unwrap();
        assert_eq!(
            prefixes
                .find("203.0.113.200".parse().unwrap())
                .unwrap()
                .name,
            "narrow"
        );
        assert_eq!(
            prefixes.find("203.0.113.2".parse().unwrap()).unwrap().name,
            "wide"
        );
        assert!(prefixes.find("192.0.2.1".parse().unwrap()).is_none());
        for bad in [
            &br#"{"prefix": "203.0.113.0/24"}"#[..],
            br#"[{"prefix": "203.0.113.0/33", "name": "x"}]"#,
            br#"[{"prefix": "203.0.113.0/24", "name": ""}]"#,
            br#"[{"prefix": "203.0.113.0/24", "name": "x", "extra": 1}]"#,
        ] {
            let error = Prefixes::from_json("p.json", bad).unwrap_err();
            assert!(error.to_string().starts_with("p.json: "), "{error}");
        }
    }
}
