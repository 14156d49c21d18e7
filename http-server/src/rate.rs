//! [`RateLimiter`]: a token bucket per peer address, in a bounded memory
//! that forgets the least recently seen peer when full (never all of them:
//! a limited peer cannot get its burst back by making many others appear).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A per-peer token bucket (see the module docs). Safe to share.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    max_peers: usize,
    buckets: Mutex<HashMap<IpAddr, Bucket, foldhash::fast::RandomState>>,
}

impl RateLimiter {
    /// `per_second` requests a second per peer, bursts of `burst`,
    /// remembering at most `max_peers` peers.
    pub fn new(per_second: u32, burst: u32, max_peers: usize) -> Self {
        Self {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            max_peers: max_peers.max(1),
            buckets: Mutex::new(HashMap::default()),
        }
    }

    /// Whether `peer` may make a request at `now` (taking a token if so).
    pub fn allow(&self, peer: IpAddr, now: Instant) -> bool {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !buckets.contains_key(&peer) && buckets.len() >= self.max_peers {
            // Forget the peer seen longest ago; a full bucket would be
            // refilled by now for most of them anyway.
            if let Some(oldest) = buckets
                .iter()
                .min_by_key(|(_, bucket)| bucket.last)
                .map(|(ip, _)| *ip)
            {
                buckets.remove(&oldest);
            }
        }
        let bucket = buckets.entry(peer).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Peers remembered.
    pub fn peers(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_limited_peer_stays_limited_however_many_others_appear() {
        let limiter = RateLimiter::new(10, 20, 64);
        let now = Instant::now();
        let hostile: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..20 {
            assert!(limiter.allow(hostile, now));
        }
        assert!(!limiter.allow(hostile, now), "burst spent");
        for n in 0..10_000u32 {
            // A microsecond apart: 10,000 of them refill a tenth of a token.
            let at = now + Duration::from_micros(u64::from(n));
            let other = IpAddr::from((0x0b00_0000 + n).to_be_bytes());
            limiter.allow(other, at);
            // The hostile peer keeps asking: it stays the most recent.
            assert!(!limiter.allow(hostile, at), "after {n} other peers");
        }
        assert!(limiter.peers() <= 64);
        assert!(limiter.allow(hostile, now + Duration::from_millis(150)));
    }
}
