//! Login sessions and the limit on failed logins.
//!
//! A login gives a bearer token: 256 random bits as 43 characters of base64url, valid for the
//! configured `token_ttl`. Only its SHA-256 is kept, in memory: a restart logs everyone out,
//! and a memory dump shows no usable token. Looking a token up hashes it and finds the digest
//! in a map; the map's timing can only tell about the digest, which does not help to forge a
//! token.
//!
//! Both types take the time as an argument (`now`), so the HTTP layer passes the clock and
//! tests move time by hand. Both are shared (`&self`, a mutex inside) by request handlers.

use crate::secret::{Secret, random_token, sha256};
use crate::{Principal, Result, Role, ServerError};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// A created login: the token (shown once, to the client that logged in) and when it expires.
#[derive(Clone, Debug)]
pub struct Session {
    pub token: Secret,
    pub expires: SystemTime,
}

struct Entry {
    user: String,
    role: Role,
    expires: SystemTime,
}

/// The live login sessions.
pub struct Sessions {
    ttl: Duration,
    map: Mutex<HashMap<[u8; 32], Entry>>,
}

impl Sessions {
    /// Sessions that last `ttl` (`server.token_ttl`).
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Starts a session for a user whose password was just checked. Expired sessions are
    /// dropped on the way, so the map holds only live ones.
    pub fn create(&self, user: &str, role: Role, now: SystemTime) -> Result<Session> {
        let token = random_token()?;
        let expires = now + self.ttl;
        let mut map = self.map.lock().expect("sessions lock");
        map.retain(|_, e| e.expires > now);
        map.insert(
            sha256(token.as_bytes()),
            Entry {
                user: user.to_string(),
                role,
                expires,
            },
        );
        Ok(Session {
            token: Secret::new(token),
            expires,
        })
    }

    /// The user and role of a live session token; `None` for an unknown or expired one (an
    /// expired one is forgotten).
    pub fn lookup(&self, token: &str, now: SystemTime) -> Option<Principal> {
        let key = sha256(token.as_bytes());
        let mut map = self.map.lock().expect("sessions lock");
        let e = map.get(&key)?;
        if e.expires <= now {
            map.remove(&key);
            return None;
        }
        Some(Principal {
            user: e.user.clone(),
            role: e.role,
            token: None,
        })
    }

    /// Ends one session (logout). Whether it existed.
    pub fn revoke(&self, token: &str) -> bool {
        let key = sha256(token.as_bytes());
        self.map
            .lock()
            .expect("sessions lock")
            .remove(&key)
            .is_some()
    }

    /// Ends every session of a user (removed, password or role changed). How many there were.
    pub fn revoke_user(&self, user: &str) -> usize {
        let mut map = self.map.lock().expect("sessions lock");
        let before = map.len();
        map.retain(|_, e| e.user != user);
        before - map.len()
    }

    /// Live sessions (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.map.lock().expect("sessions lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Failed logins per source address: after `max_failures` failures within `window`, further
/// attempts from that address are refused, without checking the password, until the oldest
/// of those failures is `window` old. A success does not reset the count: an attacker with one
/// valid account must not be able to clear its record between guesses at another.
///
/// It remembers at most [`LoginLimiter::MAX_SOURCES`] addresses. When full, addresses with no
/// failure inside the window are forgotten first; if all are recent, the one with the oldest
/// last failure is forgotten (counted in [`LoginLimiter::evicted`]).
pub struct LoginLimiter {
    max_failures: usize,
    window: Duration,
    inner: Mutex<Limits>,
}

#[derive(Default)]
struct Limits {
    failures: HashMap<IpAddr, VecDeque<Instant>>,
    evicted: u64,
}

impl Default for LoginLimiter {
    /// 5 failures per 60 s.
    fn default() -> Self {
        LoginLimiter::new(5, Duration::from_secs(60))
    }
}

impl LoginLimiter {
    pub const MAX_SOURCES: usize = 65_536;

    pub fn new(max_failures: usize, window: Duration) -> LoginLimiter {
        LoginLimiter {
            max_failures: max_failures.max(1),
            window,
            inner: Mutex::new(Limits::default()),
        }
    }

    /// `Ok` if a login from `addr` may be tried now, else [`ServerError::TooManyAttempts`]
    /// with how long to wait (for a `Retry-After` header).
    pub fn check(&self, addr: IpAddr, now: Instant) -> Result<()> {
        let mut inner = self.inner.lock().expect("limiter lock");
        let Some(q) = inner.failures.get_mut(&addr) else {
            return Ok(());
        };
        self.expire(q, now);
        if q.len() < self.max_failures {
            return Ok(());
        }
        let oldest = q[q.len() - self.max_failures];
        let retry_after = (oldest + self.window).saturating_duration_since(now);
        Err(ServerError::TooManyAttempts { retry_after })
    }

    /// Records a failed login from `addr`.
    pub fn failure(&self, addr: IpAddr, now: Instant) {
        let mut inner = self.inner.lock().expect("limiter lock");
        if !inner.failures.contains_key(&addr) && inner.failures.len() >= Self::MAX_SOURCES {
            self.make_room(&mut inner, now);
        }
        let q = inner.failures.entry(addr).or_default();
        self.expire(q, now);
        q.push_back(now);
        // Only the last `max_failures` matter.
        while q.len() > self.max_failures {
            q.pop_front();
        }
    }

    /// Addresses forgotten because the table was full of recent failures.
    pub fn evicted(&self) -> u64 {
        self.inner.lock().expect("limiter lock").evicted
    }

    fn expire(&self, q: &mut VecDeque<Instant>, now: Instant) {
        while q
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            q.pop_front();
        }
    }

    fn make_room(&self, inner: &mut Limits, now: Instant) {
        let window = self.window;
        inner.failures.retain(|_, q| {
            q.back()
                .is_some_and(|t| now.saturating_duration_since(*t) < window)
        });
        if inner.failures.len() >= Self::MAX_SOURCES
            && let Some(addr) = inner
                .failures
                .iter()
                .min_by_key(|(_, q)| q.back().copied())
                .map(|(a, _)| *a)
        {
            inner.failures.remove(&addr);
            inner.evicted += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    #[test]
    fn a_session_lasts_its_ttl_and_no_longer() {
        let s = Sessions::new(Duration::from_secs(8 * 3600));
        let a = s.create("alice", Role::Operator, t0()).unwrap();
        assert_eq!(a.expires, t0() + Duration::from_secs(8 * 3600));
        assert_eq!(a.token.expose().len(), 43);
        let p = s.lookup(a.token.expose(), t0()).unwrap();
        assert_eq!((p.user.as_str(), p.role), ("alice", Role::Operator));
        let just_before = a.expires - Duration::from_millis(1);
        assert!(s.lookup(a.token.expose(), just_before).is_some());
        assert_eq!(s.lookup(a.token.expose(), a.expires), None);
        // Expired and forgotten: going back in time does not revive it.
        assert_eq!(s.lookup(a.token.expose(), t0()), None);
        assert!(s.is_empty());
    }

    #[test]
    fn unknown_tokens_logout_and_revoking_a_user() {
        let s = Sessions::new(Duration::from_secs(60));
        let a = s.create("alice", Role::Admin, t0()).unwrap();
        let b = s.create("bob", Role::Viewer, t0()).unwrap();
        let a2 = s.create("alice", Role::Admin, t0()).unwrap();
        assert_ne!(a.token, a2.token);
        assert_eq!(s.lookup("", t0()), None);
        assert_eq!(s.lookup("not-a-token", t0()), None);
        assert!(s.revoke(b.token.expose()));
        assert!(!s.revoke(b.token.expose()));
        assert_eq!(s.lookup(b.token.expose(), t0()), None);
        assert_eq!(s.revoke_user("alice"), 2);
        assert_eq!(s.lookup(a.token.expose(), t0()), None);
        assert!(s.is_empty());
    }

    #[test]
    fn creating_a_session_drops_expired_ones() {
        let s = Sessions::new(Duration::from_secs(60));
        for _ in 0..3 {
            s.create("alice", Role::Viewer, t0()).unwrap();
        }
        assert_eq!(s.len(), 3);
        s.create("bob", Role::Viewer, t0() + Duration::from_secs(61))
            .unwrap();
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn five_failures_in_a_minute_lock_an_address_out_until_the_first_is_a_minute_old() {
        let l = LoginLimiter::default();
        let t = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "2001:db8::1".parse().unwrap();
        for i in 0..5 {
            l.check(a, t + Duration::from_secs(i)).unwrap();
            l.failure(a, t + Duration::from_secs(i));
        }
        let e = l.check(a, t + Duration::from_secs(10)).unwrap_err();
        match e {
            ServerError::TooManyAttempts { retry_after } => {
                assert_eq!(retry_after, Duration::from_secs(50))
            }
            e => panic!("{e}"),
        }
        assert_eq!(
            e.to_string(),
            "too many failed logins from this address; try again in 50s"
        );
        // Other addresses are not affected.
        l.check(other, t + Duration::from_secs(10)).unwrap();
        // When the first failure is a minute old, one more try is allowed …
        l.check(a, t + Duration::from_secs(60)).unwrap();
        l.failure(a, t + Duration::from_secs(60));
        // … and failing it locks the address again until the second is a minute old.
        match l.check(a, t + Duration::from_secs(60)) {
            Err(ServerError::TooManyAttempts { retry_after }) => {
                assert_eq!(retry_after, Duration::from_secs(1))
            }
            r => panic!("{r:?}"),
        }
        l.check(a, t + Duration::from_secs(121)).unwrap();
    }

    #[test]
    fn the_limiter_forgets_old_addresses_when_full() {
        let l = LoginLimiter::new(2, Duration::from_secs(60));
        let t = Instant::now();
        for i in 0..LoginLimiter::MAX_SOURCES as u32 {
            l.failure(IpAddr::from(i.to_be_bytes()), t);
        }
        // Full of recent failures: the next address evicts one.
        let late = t + Duration::from_secs(1);
        l.failure("198.51.100.7".parse().unwrap(), late);
        assert_eq!(l.evicted(), 1);
        // A minute later every old entry has expired and makes room without evicting.
        let later = t + Duration::from_secs(60);
        l.failure("198.51.100.8".parse().unwrap(), later);
        assert_eq!(l.evicted(), 1);
        let a: IpAddr = "198.51.100.7".parse().unwrap();
        l.failure(a, later);
        assert!(l.check(a, later).is_err());
    }
}
