//! The connection loop every polling driver shares, so that Modbus and S7 survive a dead
//! device the same way:
//!
//! - connect; on failure, log once (not on every retry), mark the read points bad
//!   (`not_connected`), wait a [`Backoff`] delay with jitter and try again;
//! - once connected, run the driver's session until it fails; drop the link — a late answer must
//!   never be taken for the answer to the next request — and reconnect **at once**: most
//!   sessions end by a single lost answer, and if the device is really gone, connect fails and
//!   backs off;
//! - stop promptly on cancellation, whatever the driver is waiting for.
//!
//! [`Schedule`] is the other shared part: poll groups with due times that never burst after a
//! stall.

use crate::{Backoff, DriverStatus, RequestResult};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The first reconnect delay; it doubles up to the driver's `reconnect_max`.
pub const RECONNECT_MIN: Duration = Duration::from_millis(100);

/// What [`supervise`] needs from a driver.
pub trait Device: Send {
    /// An open connection.
    type Link: Send;
    type Error: std::fmt::Display + Send;

    /// Where the device is, in words, for logs (`tcp://host:port`).
    fn target(&self) -> String;

    fn connect(&mut self) -> impl Future<Output = Result<Self::Link, Self::Error>> + Send;

    /// Talks to the device until the link fails (`Some(error)`) or `cancel` fires (`None`).
    fn session(
        &mut self,
        link: &mut Self::Link,
        cancel: &CancellationToken,
    ) -> impl Future<Output = Option<Self::Error>> + Send;

    /// Closes the link politely, if the protocol has a way to.
    fn close(&mut self, link: Self::Link) -> impl Future<Output = ()> + Send;

    /// The device cannot be reached: its read points turn bad.
    fn unreachable(&mut self);

    /// A new link is up (before its session starts): e.g. write-only outputs are sent again.
    fn linked(&mut self);

    /// Whether an open link means the device is there. A serial port opens with nothing on the
    /// line, so a serial driver says no and marks itself connected from its first answer.
    fn link_proves_device(&self) -> bool {
        true
    }
}

/// Runs `dev` until `cancel`, reconnecting forever with backoff; reports through `status`.
pub async fn supervise<D: Device>(
    mut dev: D,
    status: &DriverStatus,
    reconnect_max: Duration,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::new(RECONNECT_MIN, reconnect_max);
    let target = dev.target();
    let name = status.name().to_string();
    loop {
        let connected = tokio::select! {
            _ = cancel.cancelled() => return,
            c = dev.connect() => c,
        };
        // Why the device is unreachable, when it is.
        let (error, why) = match connected {
            Err(e) => (e.to_string(), "cannot reach the device"),
            Ok(mut link) => {
                if backoff.attempts() > 0 || status.connects() == 0 {
                    tracing::info!(driver = %name, %target, "connected");
                }
                if dev.link_proves_device() {
                    status.set_connected(true);
                    status.set_error(None);
                }
                dev.linked();
                let answers = status.requests(RequestResult::Ok);
                let ended = dev.session(&mut link, &cancel).await;
                dev.close(link).await;
                match ended {
                    None => return,
                    Some(e) if status.requests(RequestResult::Ok) > answers => {
                        // The device answered in this session: reconnect at once.
                        tracing::debug!(driver = %name, error = %e, "session ended; reconnecting");
                        status.set_error(Some(e.to_string()));
                        backoff.reset();
                        continue;
                    }
                    // The link came up but nothing answered on it — a gateway whose device is
                    // gone, a port that accepts and closes: as unreachable as a refused connect.
                    Some(e) => (e.to_string(), "the device does not answer on its link"),
                }
            }
        };
        if status.is_connected() || backoff.attempts() == 0 {
            tracing::warn!(driver = %name, %target, %error,
                "{why}; its points are bad until it answers");
        }
        status.set_connected(false);
        status.set_error(Some(error));
        dev.unreachable();
        let wait = backoff.next_delay();
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Poll groups, each with a period and the instant it is next due.
#[derive(Debug)]
pub struct Schedule {
    groups: Vec<(Duration, Instant)>,
}

impl Schedule {
    /// One group per period, all due now.
    pub fn new(periods: impl IntoIterator<Item = Duration>) -> Schedule {
        let now = Instant::now();
        Schedule {
            groups: periods.into_iter().map(|p| (p, now)).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Whether group `g` is due at `now`.
    pub fn is_due(&self, g: usize, now: Instant) -> bool {
        self.groups.get(g).is_some_and(|(_, due)| *due <= now)
    }

    /// Group `g` was polled: it is due a period later. A group that fell behind (slow device,
    /// long timeouts) skips the missed polls — never a burst — and is due again at once.
    pub fn polled(&mut self, g: usize) {
        if let Some((period, due)) = self.groups.get_mut(g) {
            *due += *period;
            let now = Instant::now();
            if *due <= now {
                *due = now;
            }
        }
    }

    /// Group `g` is to be polled at once (e.g. after a re-plan).
    pub fn now(&mut self, g: usize) {
        if let Some((_, due)) = self.groups.get_mut(g) {
            *due = Instant::now();
        }
    }

    /// When the next group is due.
    pub fn next(&self) -> Option<Instant> {
        self.groups.iter().map(|(_, due)| *due).min()
    }

    /// The shortest period (failed writes are retried at that pace).
    pub fn shortest(&self) -> Option<Duration> {
        self.groups.iter().map(|(p, _)| *p).min()
    }
}

/// Waits until the next poll group is due, an output changed, failed writes are due for a
/// retry (at the pace of the fastest group), or `cancel` fired. Returns `false` on cancel.
pub async fn idle(
    cancel: &CancellationToken,
    schedule: &Schedule,
    outputs: Option<&crate::Outputs>,
) -> bool {
    let mut next = schedule.next();
    if next.is_some_and(|t| t <= Instant::now()) {
        // Behind: poll again at once. A timer would round up to the next millisecond and leave
        // the connection idle that long after every poll.
        return !cancel.is_cancelled();
    }
    if outputs.is_some_and(|o| o.pending_count() > 0) {
        let retry = Instant::now() + schedule.shortest().unwrap_or(Duration::from_secs(1));
        next = Some(next.map_or(retry, |n| n.min(retry)));
    }
    let changed = async {
        match outputs {
            Some(o) => o.changed().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = changed => true,
        _ = async {
            match next {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        } => true,
    }
}

/// Groups point indices by poll period: `(period, points)` in increasing period order, from
/// each point's period (`None`: the point is not polled).
pub fn poll_groups(
    polls: impl IntoIterator<Item = Option<Duration>>,
) -> Vec<(Duration, Vec<usize>)> {
    let mut groups: Vec<(Duration, Vec<usize>)> = Vec::new();
    for (i, p) in polls.into_iter().enumerate() {
        let Some(p) = p else { continue };
        match groups.iter_mut().find(|(q, _)| *q == p) {
            Some((_, v)) => v.push(i),
            None => groups.push((p, vec![i])),
        }
    }
    groups.sort_by_key(|(p, _)| *p);
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn points_are_grouped_by_period() {
        let s = Duration::from_secs(1);
        let ms = Duration::from_millis(100);
        let groups = poll_groups([Some(s), None, Some(ms), Some(s)]);
        assert_eq!(groups, vec![(ms, vec![2]), (s, vec![0, 3])]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_group_that_fell_behind_is_due_at_once_without_a_burst() {
        let p = Duration::from_millis(100);
        let mut s = Schedule::new([p]);
        let start = Instant::now();
        assert!(s.is_due(0, start));
        s.polled(0);
        assert_eq!(s.next(), Some(start + p));
        tokio::time::advance(Duration::from_millis(350)).await;
        s.polled(0);
        // Three periods were missed: due now, once, not three times.
        let now = Instant::now();
        assert_eq!(s.next(), Some(now));
        s.polled(0);
        assert_eq!(s.next(), Some(now + p));
    }

    /// A device that refuses `fail` connects, then serves one session that fails, then one
    /// that runs until cancelled.
    struct Flaky {
        /// Counts an answer in the session that fails (a session that talked to the device).
        status: Option<Arc<DriverStatus>>,
        fail: usize,
        connects: Arc<AtomicUsize>,
        sessions: usize,
        unreachable: usize,
        linked: usize,
    }

    impl Device for Flaky {
        type Link = ();
        type Error = String;
        fn target(&self) -> String {
            "test://flaky".into()
        }
        async fn connect(&mut self) -> Result<(), String> {
            let n = self.connects.fetch_add(1, Ordering::SeqCst);
            if n < self.fail {
                Err(format!("refused {n}"))
            } else {
                Ok(())
            }
        }
        async fn session(&mut self, _: &mut (), cancel: &CancellationToken) -> Option<String> {
            self.sessions += 1;
            if self.sessions == 1 {
                if let Some(s) = &self.status {
                    s.count(RequestResult::Ok);
                }
                return Some("lost an answer".into());
            }
            cancel.cancelled().await;
            None
        }
        async fn close(&mut self, _: ()) {}
        fn unreachable(&mut self) {
            self.unreachable += 1;
        }
        fn linked(&mut self) {
            self.linked += 1;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reconnects_with_backoff_then_at_once_after_a_lost_session() {
        let connects = Arc::new(AtomicUsize::new(0));
        let status = Arc::new(DriverStatus::new("flaky", "test", 1));
        let dev = Flaky {
            status: Some(status.clone()),
            fail: 3,
            connects: connects.clone(),
            sessions: 0,
            unreachable: 0,
            linked: 0,
        };
        let cancel = CancellationToken::new();
        let (st, c) = (status.clone(), cancel.clone());
        let start = Instant::now();
        let task =
            tokio::spawn(async move { supervise(dev, &st, Duration::from_secs(1), c).await });
        // 3 refusals back off (≥ 50 + 100 + 200 ms: half of each step is fixed), then a
        // session that fails and an immediate reconnect: 5 connects.
        while connects.load(Ordering::SeqCst) < 5 {
            tokio::time::advance(Duration::from_millis(10)).await;
        }
        assert!(Instant::now() - start >= Duration::from_millis(350));
        assert!(status.is_connected());
        // Down → up once: a session replaced at once is not a lost connection.
        assert_eq!(status.connects(), 1);
        cancel.cancel();
        task.await.unwrap();
    }

    /// A link that opens but on which nothing answers (a port that accepts and closes, a
    /// gateway whose device is gone): a failed connect, not a healthy reconnect — the points
    /// turn bad and the attempts back off.
    struct Mute {
        sessions: Arc<AtomicUsize>,
        unreachable: Arc<AtomicUsize>,
    }

    impl Device for Mute {
        type Link = ();
        type Error = String;
        fn target(&self) -> String {
            "test://mute".into()
        }
        async fn connect(&mut self) -> Result<(), String> {
            Ok(())
        }
        async fn session(&mut self, _: &mut (), _: &CancellationToken) -> Option<String> {
            self.sessions.fetch_add(1, Ordering::SeqCst);
            Some("connection reset by peer".into())
        }
        async fn close(&mut self, _: ()) {}
        fn unreachable(&mut self) {
            self.unreachable.fetch_add(1, Ordering::SeqCst);
        }
        fn linked(&mut self) {}
    }

    #[tokio::test(start_paused = true)]
    async fn a_link_on_which_nothing_answers_backs_off_and_marks_the_points_bad() {
        let (sessions, unreachable) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let dev = Mute {
            sessions: sessions.clone(),
            unreachable: unreachable.clone(),
        };
        let status = Arc::new(DriverStatus::new("mute", "test", 1));
        let cancel = CancellationToken::new();
        let (st, c) = (status.clone(), cancel.clone());
        let start = Instant::now();
        let task =
            tokio::spawn(async move { supervise(dev, &st, Duration::from_secs(1), c).await });
        while sessions.load(Ordering::SeqCst) < 4 {
            tokio::time::advance(Duration::from_millis(10)).await;
        }
        // Backed off between the sessions (≥ 50 + 100 + 200 ms), never a tight loop.
        assert!(Instant::now() - start >= Duration::from_millis(350));
        assert!(unreachable.load(Ordering::SeqCst) >= 3);
        assert!(!status.is_connected());
        assert_eq!(
            status.last_error().as_deref(),
            Some("connection reset by peer")
        );
        cancel.cancel();
        task.await.unwrap();
    }
}
