//! Failed logins rate-limited per peer address, as MySQL's
//! `max_connect_errors` blocks a host (error 1129), but lifting itself:
//! once a peer has failed `max_failures` logins within `window`, every
//! login from it is refused without a password check until that window
//! (which starts at its first counted failure) has passed. A successful
//! login forgets the peer's failures.
//!
//! The time is an argument (`now`), so the rules are tested without
//! sleeping; the server passes `Instant::now()`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Peers remembered at most; past this, expired entries are dropped, and
/// if none are, the oldest window goes.
const MAX_PEERS: usize = 65_536;

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    since: Instant,
}

/// The failed-login counts of recent peers.
#[derive(Debug)]
pub struct LoginThrottle {
    max_failures: u32,
    window: Duration,
    peers: Mutex<HashMap<IpAddr, Failures>>,
}

impl LoginThrottle {
    /// Blocks a peer after `max_failures` failures within `window`; 0
    /// failures turns the limit off.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        LoginThrottle {
            max_failures,
            window,
            peers: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Failures>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn live(&self, f: &Failures, now: Instant) -> bool {
        now.saturating_duration_since(f.since) < self.window
    }

    /// If `peer` is blocked at `now`, how long it stays blocked.
    pub fn blocked(&self, peer: IpAddr, now: Instant) -> Option<Duration> {
        if self.max_failures == 0 {
            return None;
        }
        let peers = self.lock();
        let f = peers.get(&peer)?;
        (self.live(f, now) && f.count >= self.max_failures).then(|| {
            self.window
                .saturating_sub(now.saturating_duration_since(f.since))
        })
    }

    /// Counts a failed login of `peer`; returns its failures in the current
    /// window.
    pub fn failed(&self, peer: IpAddr, now: Instant) -> u32 {
        if self.max_failures == 0 {
            return 0;
        }
        let mut peers = self.lock();
        if peers.len() >= MAX_PEERS && !peers.contains_key(&peer) {
            peers.retain(|_, f| now.saturating_duration_since(f.since) < self.window);
            if peers.len() >= MAX_PEERS {
                if let Some(oldest) = peers.iter().min_by_key(|(_, f)| f.since).map(|(p, _)| *p) {
                    peers.remove(&oldest);
                }
            }
        }
        let window = self.window;
        let f = peers.entry(peer).or_insert(Failures {
            count: 0,
            since: now,
        });
        if now.saturating_duration_since(f.since) >= window {
            *f = Failures {
                count: 0,
                since: now,
            };
        }
        f.count = f.count.saturating_add(1);
        f.count
    }

    /// A successful login of `peer` forgets its failures.
    pub fn succeeded(&self, peer: IpAddr) {
        self.lock().remove(&peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_peer_is_blocked_after_max_failures_until_the_window_passes() {
        let t = LoginThrottle::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        let a = ip("127.0.0.1");
        assert_eq!(t.failed(a, t0), 1);
        assert_eq!(t.failed(a, t0 + Duration::from_secs(10)), 2);
        assert_eq!(t.blocked(a, t0 + Duration::from_secs(10)), None);
        assert_eq!(t.failed(a, t0 + Duration::from_secs(20)), 3);
        // Blocked until 60 s after the first failure.
        assert_eq!(
            t.blocked(a, t0 + Duration::from_secs(20)),
            Some(Duration::from_secs(40))
        );
        assert_eq!(
            t.blocked(a, t0 + Duration::from_secs(59)),
            Some(Duration::from_secs(1))
        );
        // Another peer is not.
        assert_eq!(
            t.blocked(ip("127.0.0.2"), t0 + Duration::from_secs(20)),
            None
        );
        // The window passed: free again, and counting starts over.
        assert_eq!(t.blocked(a, t0 + Duration::from_secs(60)), None);
        assert_eq!(t.failed(a, t0 + Duration::from_secs(61)), 1);
        assert_eq!(t.blocked(a, t0 + Duration::from_secs(61)), None);
    }

    #[test]
    fn a_success_resets_and_zero_turns_it_off() {
        let t = LoginThrottle::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        let a = ip("::1");
        t.failed(a, t0);
        t.succeeded(a);
        assert_eq!(t.failed(a, t0), 1, "the success forgot the earlier failure");
        assert_eq!(t.blocked(a, t0), None);
        assert_eq!(t.failed(a, t0), 2);
        assert!(t.blocked(a, t0).is_some());

        let off = LoginThrottle::new(0, Duration::from_secs(60));
        for _ in 0..100 {
            off.failed(a, t0);
        }
        assert_eq!(off.blocked(a, t0), None);
    }

    #[test]
    fn the_table_of_peers_is_bounded() {
        let t = LoginThrottle::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..(MAX_PEERS as u32 + 10) {
            t.failed(
                IpAddr::from(i.to_be_bytes()),
                t0 + Duration::from_millis(u64::from(i)),
            );
        }
        assert!(t.lock().len() <= MAX_PEERS);
        // The newest peer is still remembered (and blocked).
        let last = IpAddr::from((MAX_PEERS as u32 + 9).to_be_bytes());
        assert!(t.blocked(last, t0 + Duration::from_secs(1)).is_some());
    }
}
