//! Per-client rate limiting and the header-size check done by the relay
//! itself (the native shell's HTTP layer also enforces a hard header cap and
//! a header deadline; on Workers, Cloudflare's front end does).
//!
//! The core has no clock: every check is given `now` (both shells pass the
//! time since the Unix epoch), so the same arithmetic runs everywhere and
//! tests move time by hand.
//!
//! The rate limiter is a token bucket per client address: each address may
//! spend `per_minute` requests at once and regains them at `per_minute / 60`
//! per second. IPv6 addresses are grouped by /64, the block a single host
//! usually owns. Buckets live in a `Mutex<HashMap>` with a bounded number of
//! entries and no background task: when the table is full, buckets that have
//! refilled completely (and so carry no information) are dropped, and if that
//! frees nothing, the eighth of the table used least recently goes. A flood
//! from many addresses (a /48 holds 65,536 /64s) therefore evicts the idlest
//! budgets, never everyone's: the clients spending their budget right now
//! keep it.

use http::HeaderMap;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

/// How many client addresses the limiter tracks at most.
pub(crate) const MAX_TRACKED: usize = 65_536;

/// A token bucket per client address.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    capacity: f64,
    per_second: f64,
    max_tracked: usize,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Duration,
}

impl RateLimiter {
    /// A limiter allowing `per_minute` requests per address (must be > 0).
    pub(crate) fn new(per_minute: u32) -> Self {
        Self::with_table_size(per_minute, MAX_TRACKED)
    }

    /// A limiter tracking at most `max_tracked` addresses.
    pub(crate) fn with_table_size(per_minute: u32, max_tracked: usize) -> Self {
        let capacity = f64::from(per_minute.max(1));
        Self {
            capacity,
            per_second: capacity / 60.0,
            max_tracked: max_tracked.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Spends one request of `client`'s budget, or says in how many whole
    /// seconds (at least 1) the next request will be allowed.
    pub(crate) fn check(&self, client: IpAddr, now: Duration) -> Result<(), u64> {
        let key = bucket_key(client);
        // A poisoned lock only means another request panicked mid-update; the
        // counters are still usable.
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(&key) && buckets.len() >= self.max_tracked {
            let (capacity, per_second) = (self.capacity, self.per_second);
            buckets.retain(|_, b| {
                let elapsed = now.saturating_sub(b.updated).as_secs_f64();
                b.tokens + elapsed * per_second < capacity
            });
            if buckets.len() >= self.max_tracked {
                evict_least_recent(&mut buckets, (self.max_tracked / 8).max(1));
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket { tokens: self.capacity, updated: now });
        let elapsed = now.saturating_sub(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.per_second;
            // The float is small and positive; `as` saturates anyway.
            Err((wait.ceil() as u64).max(1))
        }
    }

    /// How many addresses are tracked now.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Drops the `count` buckets updated longest ago.
fn evict_least_recent(buckets: &mut HashMap<IpAddr, Bucket>, count: usize) {
    let mut ages: Vec<(Duration, IpAddr)> = buckets.iter().map(|(k, b)| (b.updated, *k)).collect();
    if count < ages.len() {
        ages.select_nth_unstable(count - 1);
        ages.truncate(count);
    }
    for (_, key) in ages {
        buckets.remove(&key);
    }
}

/// The key a client address is counted under: IPv4 as is (IPv4-mapped IPv6
/// too), IPv6 by its /64 prefix.
fn bucket_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The address a request is rate limited under: the last `X-Forwarded-For`
/// entry when the proxy is trusted and the entry parses, else the peer the
/// shell saw, else (in tests without a socket) the unspecified address.
pub(crate) fn client_ip(headers: &HeaderMap, peer: Option<IpAddr>, trust_proxy: bool) -> IpAddr {
    if trust_proxy && let Some(ip) = last_forwarded_for(headers) {
        return ip;
    }
    peer.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
}

/// The right-most address of all `X-Forwarded-For` headers: the one our own
/// proxy appended, which the client cannot forge.
fn last_forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let last_header = headers.get_all("x-forwarded-for").iter().next_back()?;
    let entry = last_header.to_str().ok()?.rsplit(',').next()?.trim();
    entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// The size of a request's header section as the relay counts it: each
/// field's name and value plus four bytes of separators.
pub(crate) fn header_bytes(headers: &HeaderMap) -> usize {
    headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    const T0: Duration = Duration::from_secs(1_000);

    #[test]
    fn allows_a_burst_then_refuses_with_retry_after() {
        let limiter = RateLimiter::new(3);
        let t0 = T0;
        for _ in 0..3 {
            assert_eq!(limiter.check(ip("192.0.2.1"), t0), Ok(()));
        }
        assert_eq!(limiter.check(ip("192.0.2.1"), t0), Err(20));
        assert_eq!(limiter.check(ip("192.0.2.2"), t0), Ok(()), "other addresses are separate");
        assert_eq!(limiter.check(ip("192.0.2.1"), t0 + Duration::from_secs(19)), Err(1));
        assert_eq!(limiter.check(ip("192.0.2.1"), t0 + Duration::from_secs(20)), Ok(()));
    }

    #[test]
    fn ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let limiter = RateLimiter::new(1);
        let t0 = T0;
        assert_eq!(limiter.check(ip("2001:db8:1:2::1"), t0), Ok(()));
        assert!(limiter.check(ip("2001:db8:1:2:ffff::9"), t0).is_err());
        assert_eq!(limiter.check(ip("2001:db8:1:3::1"), t0), Ok(()));
        assert_eq!(limiter.check(ip("198.51.100.7"), t0), Ok(()));
        assert!(limiter.check(ip("::ffff:198.51.100.7"), t0).is_err());
    }

    #[test]
    fn the_table_stays_bounded() {
        let limiter = RateLimiter::with_table_size(10, 4);
        let t0 = T0;
        for i in 0..4u8 {
            assert!(limiter.check(IpAddr::from([10, 0, 0, i]), t0).is_ok());
        }
        assert_eq!(limiter.tracked(), 4);
        // A minute later every bucket has refilled and can be forgotten.
        let later = t0 + Duration::from_secs(60);
        assert!(limiter.check(ip("10.0.1.1"), later).is_ok());
        assert_eq!(limiter.tracked(), 1);
        // If every bucket is busy, the least recently used go, not all.
        for i in 0..3u8 {
            assert!(limiter.check(IpAddr::from([10, 0, 2, i]), later).is_ok());
        }
        assert!(limiter.check(ip("10.0.3.1"), later).is_ok());
        assert_eq!(limiter.tracked(), 4);
    }

    #[test]
    fn a_flood_of_new_addresses_cannot_reset_a_busy_client() {
        let limiter = RateLimiter::with_table_size(2, 64);
        let t0 = T0;
        let busy = ip("192.0.2.1");
        // A flood from one /48: every /64 a new bucket, all at t0.
        let flood = |i: u16, at| limiter.check(IpAddr::from([0x2001, 0xdb8, 7, i, 0, 0, 0, 1]), at);
        for i in 0..32 {
            assert!(flood(i, t0).is_ok());
        }
        // The busy client spends its budget a second later...
        let t1 = t0 + Duration::from_secs(1);
        assert!(limiter.check(busy, t1).is_ok() && limiter.check(busy, t1).is_ok());
        assert!(limiter.check(busy, t1).is_err());
        // ... and keeps trying while a far bigger flood comes in: the
        // flood evicts idler buckets, never the busy client's, and the
        // table never grows past its bound.
        for i in 32..1000 {
            let now = t1 + Duration::from_millis(u64::from(i));
            assert!(flood(i, now).is_ok());
            assert!(limiter.tracked() <= 64);
            if i % 4 == 0 {
                assert!(limiter.check(busy, now).is_err(), "its spent budget was forgotten");
            }
        }
    }

    #[test]
    fn forwarded_for_is_used_only_when_trusted() {
        let peer = Some(ip("127.0.0.1"));
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", "203.0.113.9, 198.51.100.1".parse().expect("v"));
        headers.append("x-forwarded-for", "1.2.3.4, 192.0.2.44:1234".parse().expect("v"));
        assert_eq!(client_ip(&headers, peer, false), ip("127.0.0.1"));
        assert_eq!(client_ip(&headers, peer, true), ip("192.0.2.44"));
        headers.insert("x-forwarded-for", "garbage".parse().expect("v"));
        assert_eq!(client_ip(&headers, peer, true), ip("127.0.0.1"));
        assert_eq!(client_ip(&HeaderMap::new(), None, true), ip("::"));
    }
}
