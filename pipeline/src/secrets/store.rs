//! [`ReadStore`]: which secret reads were seen within the window, bounded.
//!
//! Two memories with the same window: `auditID`s, and (source, reader,
//! secret) keys. A key is remembered from its first read for the window
//! (a repeat does not extend it). Entries expire in the order they came
//! (the window is the same for all), so expiry and the bound are a queue:
//! past [`MAX_REMEMBERED`] entries the oldest is forgotten early and
//! counted.

use std::collections::{HashMap, VecDeque};

use edgewise_time::UnixNanos;

/// The default window (300 s).
pub const DEFAULT_TTL: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// The most reads (and, separately, audit ids) remembered.
pub const MAX_REMEMBERED: usize = 65_536;

/// A bounded memory of keys, each for the window from its insertion.
#[derive(Debug)]
struct Window<K> {
    until: HashMap<K, u64>,
    order: VecDeque<(u64, K)>,
    max: usize,
    forgotten: u64,
}

impl<K: std::hash::Hash + Eq + Clone> Window<K> {
    fn new(max: usize) -> Self {
        Self {
            until: HashMap::new(),
            order: VecDeque::new(),
            max,
            forgotten: 0,
        }
    }

    fn holds(&self, key: &K, now_ns: u64) -> bool {
        self.until.get(key).is_some_and(|&until| now_ns < until)
    }

    fn insert(&mut self, key: K, until: u64) {
        self.until.insert(key.clone(), until);
        self.order.push_back((until, key));
        while self.until.len() > self.max {
            if !self.pop() {
                break;
            }
            self.forgotten += 1;
        }
    }

    /// Forgets the oldest entry; false when there is none.
    fn pop(&mut self) -> bool {
        let Some((until, key)) = self.order.pop_front() else {
            return false;
        };
        // A key inserted again after it expired has a later entry too.
        if self.until.get(&key) == Some(&until) {
            self.until.remove(&key);
        }
        true
    }

    fn expire(&mut self, now: UnixNanos) {
        let now_ns = now.as_nanos();
        while self
            .order
            .front()
            .is_some_and(|(until, _)| *until <= now_ns)
        {
            self.pop();
        }
    }
}

/// Reads seen within the window (see the module docs).
#[derive(Debug)]
pub struct ReadStore {
    ttl_ns: u64,
    reads: Window<(&'static str, String, String)>,
    audit_ids: Window<String>,
}

impl ReadStore {
    /// A store with a window of `ttl_ns` remembering at most `max` reads
    /// and `max` audit ids.
    pub fn new(ttl_ns: u64, max: usize) -> Self {
        Self {
            ttl_ns,
            reads: Window::new(max),
            audit_ids: Window::new(max),
        }
    }

    /// Whether this read is a new observation (and remembers it): false
    /// when its audit id, or its (source, reader, secret), was seen within
    /// the window.
    pub fn first(
        &mut self,
        source: &'static str,
        reader: &str,
        secret: &str,
        audit_id: Option<&str>,
        now: UnixNanos,
    ) -> bool {
        let now_ns = now.as_nanos();
        self.expire(now);
        let until = now_ns.saturating_add(self.ttl_ns);
        if let Some(id) = audit_id {
            let id = id.to_owned();
            if self.audit_ids.holds(&id, now_ns) {
                return false;
            }
            self.audit_ids.insert(id, until);
        }
        let key = (source, reader.to_owned(), secret.to_owned());
        if self.reads.holds(&key, now_ns) {
            return false;
        }
        self.reads.insert(key, until);
        true
    }

    /// Forgets what the window no longer holds.
    pub fn expire(&mut self, now: UnixNanos) {
        self.reads.expire(now);
        self.audit_ids.expire(now);
    }

    /// Entries forgotten before their window ended.
    pub fn forgotten(&self) -> u64 {
        self.reads.forgotten + self.audit_ids.forgotten
    }

    /// Reads remembered now.
    pub fn len(&self) -> usize {
        self.reads.until.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// A test's instant: `nanos` nanoseconds of Unix time.
    fn ns(nanos: u64) -> UnixNanos {
        UnixNanos::from_nanos(nanos)
    }

    #[test]
    fn a_read_is_new_once_per_window_and_an_audit_id_once() {
        let mut store = ReadStore::new(300 * S, 100);
        assert!(store.first("api", "shop/api", "shop/db", Some("a-1"), UnixNanos::ZERO));
        // The API server posting the batch again.
        assert!(!store.first("api", "shop/api", "shop/db", Some("a-1"), ns(S)));
        // Another read of the same secret by the same account.
        assert!(!store.first("api", "shop/api", "shop/db", Some("a-2"), ns(2 * S)));
        // The same audit id with another key is still a repeat.
        assert!(!store.first("api", "shop/other", "shop/db", Some("a-1"), ns(3 * S)));
        assert!(store.first("api", "shop/other", "shop/db", Some("a-3"), ns(3 * S)));
        assert!(store.first("mounted", "shop/api", "shop/db", None, ns(3 * S)));
        // Repeats do not extend the window.
        assert!(!store.first("mounted", "shop/api", "shop/db", None, ns(299 * S)));
        assert!(store.first("mounted", "shop/api", "shop/db", None, ns(303 * S)));
        assert!(store.first("api", "shop/api", "shop/db", Some("a-1"), ns(301 * S)));
        store.expire(ns(10_000 * S));
        assert!(store.is_empty());
        assert_eq!(store.forgotten(), 0);
    }

    #[test]
    fn past_the_bound_the_oldest_is_forgotten_and_counted() {
        let mut store = ReadStore::new(300 * S, 2);
        for (n, reader) in ["a", "b", "c"].into_iter().enumerate() {
            assert!(store.first("mounted", reader, "x/y", None, ns(n as u64)));
        }
        assert_eq!((store.len(), store.forgotten()), (2, 1));
        assert!(
            store.first("mounted", "a", "x/y", None, ns(4)),
            "a was forgotten"
        );
        assert!(!store.first("mounted", "c", "x/y", None, ns(5)));
    }
}
