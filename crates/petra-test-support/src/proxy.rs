//! A TCP proxy between Petra and a peer that can cut, stall and slow the traffic: the
//! fault-injection tests put it in front of a PLC, a Modbus device, the broker or ClickHouse and
//! change its [`Mode`] while the plant runs.
//!
//! * [`Mode::Pass`] — bytes go through as they come.
//! * [`Mode::Pause`] — connections stay open but nothing goes through in either direction
//!   (a cable pulled without the link going down: what makes request timeouts fire); what was
//!   read is held and delivered, in order, when the mode changes back.
//! * [`Mode::Slow`] — every chunk waits the given delay before it is forwarded (a congested or
//!   long-distance link).
//! * [`Mode::Drop`] — every open connection is closed at once, and new ones are accepted and
//!   closed straight away (a peer that resets everything), until the mode changes.
//!
//! Plain std threads: two pumps per connection, each reading with a short timeout so it sees a
//! mode change within [`TICK`]. Dropping the proxy stops everything.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a pump looks at the mode while its socket is quiet.
pub const TICK: Duration = Duration::from_millis(20);

/// What the proxy does with the traffic (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Pause,
    Slow(Duration),
    Drop,
}

struct State {
    mode: Mutex<Mode>,
    changed: Condvar,
    /// Bumped by every change to `Drop`: pumps of older connections close.
    generation: AtomicUsize,
    stop: AtomicBool,
    accepted: AtomicUsize,
}

impl State {
    fn mode(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running proxy on a free loopback port (see the module docs).
pub struct Proxy {
    port: u16,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = Arc::new(State {
            mode: Mutex::new(Mode::Pass),
            changed: Condvar::new(),
            generation: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            accepted: AtomicUsize::new(0),
        });
        let s = state.clone();
        let accept = std::thread::Builder::new()
            .name("test-proxy".into())
            .spawn(move || accept_loop(listener, target, s))
            .expect("spawn the proxy");
        Proxy {
            port,
            state,
            accept: Some(accept),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Changes the mode for every connection, open or future.
    pub fn set(&self, mode: Mode) {
        let mut m = self.state.mode.lock().unwrap_or_else(|e| e.into_inner());
        if mode == Mode::Drop {
            self.state.generation.fetch_add(1, Ordering::AcqRel);
        }
        *m = mode;
        self.state.changed.notify_all();
    }

    /// Connections accepted so far (also those closed at once in `Drop` mode).
    pub fn accepted(&self) -> usize {
        self.state.accepted.load(Ordering::Acquire)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Release);
        self.set(Mode::Drop);
        // Wake the accept loop with a connection of our own.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, target: SocketAddr, state: Arc<State>) {
    for conn in listener.incoming() {
        if state.stop.load(Ordering::Acquire) {
            return;
        }
        let Ok(client) = conn else { continue };
        state.accepted.fetch_add(1, Ordering::AcqRel);
        if state.mode() == Mode::Drop {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(server) = TcpStream::connect(target) else {
            // The peer is down: the client sees what it would see without the proxy.
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let generation = state.generation.load(Ordering::Acquire);
        for (from, to) in [
            (client.try_clone(), server.try_clone()),
            (server.try_clone(), client.try_clone()),
        ] {
            let (Ok(from), Ok(to)) = (from, to) else {
                continue;
            };
            let s = state.clone();
            let _ = std::thread::Builder::new()
                .name("test-proxy-pump".into())
                .spawn(move || pump(from, to, s, generation));
        }
    }
}

/// Moves bytes from `from` to `to` as the mode says, until either side closes, the proxy
/// stops, or a `Drop` newer than the connection.
fn pump(mut from: TcpStream, mut to: TcpStream, state: Arc<State>, generation: usize) {
    let _ = from.set_read_timeout(Some(TICK));
    let mut buf = vec![0u8; 64 * 1024];
    let mut held: Vec<u8> = Vec::new();
    let dropped = |s: &State| {
        s.stop.load(Ordering::Acquire) || s.generation.load(Ordering::Acquire) != generation
    };
    loop {
        if dropped(&state) {
            break;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => held.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        if held.is_empty() {
            continue;
        }
        match state.mode() {
            Mode::Pass => {}
            Mode::Pause => {
                // Keep reading (into `held`) so the sender is not blocked by a full window
                // sooner than it would be on a real stalled link; deliver later.
                let m = state.mode.lock().unwrap_or_else(|e| e.into_inner());
                let _ = state.changed.wait_timeout(m, TICK);
                continue;
            }
            Mode::Slow(d) => std::thread::sleep(d),
            Mode::Drop => break,
        }
        if to.write_all(&held).is_err() {
            break;
        }
        held.clear();
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// An echo server; returns its address.
    fn echo() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { return };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = c.read(&mut buf) {
                        if n == 0 || c.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    fn roundtrip(c: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
        c.write_all(msg)?;
        let mut got = vec![0u8; msg.len()];
        c.read_exact(&mut got)?;
        Ok(got)
    }

    #[test]
    fn pass_pause_slow_and_drop() {
        let p = Proxy::start(echo());
        let mut c = TcpStream::connect(p.addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert_eq!(roundtrip(&mut c, b"one").unwrap(), b"one");

        // Paused: nothing comes back within a few ticks; all of it after the resume.
        p.set(Mode::Pause);
        c.write_all(b"two").unwrap();
        c.set_read_timeout(Some(TICK * 5)).unwrap();
        let mut buf = [0u8; 3];
        let err = c.read(&mut buf).unwrap_err();
        assert!(matches!(
            err.kind(),
            ErrorKind::WouldBlock | ErrorKind::TimedOut
        ));
        p.set(Mode::Pass);
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"two");

        // Slow: each direction waits the delay.
        p.set(Mode::Slow(Duration::from_millis(100)));
        let t = Instant::now();
        assert_eq!(roundtrip(&mut c, b"three").unwrap(), b"three");
        assert!(
            t.elapsed() >= Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );

        // Drop: the open connection is closed, a new one too.
        p.set(Mode::Drop);
        let mut rest = Vec::new();
        assert!(matches!(c.read_to_end(&mut rest), Ok(0) | Err(_)));
        let mut c2 = TcpStream::connect(p.addr()).unwrap();
        c2.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert!(matches!(c2.read(&mut [0u8; 1]), Ok(0) | Err(_)));

        // Back to pass: new connections work again.
        p.set(Mode::Pass);
        let mut c3 = TcpStream::connect(p.addr()).unwrap();
        c3.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert_eq!(roundtrip(&mut c3, b"four").unwrap(), b"four");
        assert_eq!(p.accepted(), 3);
    }
}
