//! The audit log: append-only JSON lines, each chained to the one before by a SHA-256.
//!
//! # Format
//!
//! One JSON object per line, UTF-8, each line ended by `\n`, keys in this order:
//!
//! ```json
//! {"ts":"2026-12-04T15:00:00.123Z","user":"alice","source":"192.0.2.7:51234","action":"signal.write","target":"tank.setpoint","old":5.5,"new":6.0,"prev":"9f86d0…"}
//! ```
//!
//! - `ts`: when it was recorded, RFC 3339 UTC with milliseconds;
//! - `user`: who did it (for `petra user …` on the command line: the operating-system user);
//! - `source`: where from: the client's `address:port`, or `cli`;
//! - `action`: what (`login`, `user.add`, `signal.write`, … — docs/security.md lists them);
//! - `target`: what it was done to (a signal, an alarm, a user name);
//! - `old`, `new`: the value before and after, any JSON value, `null` when it does not apply;
//!   never a secret (a login records `"success"` or `"failure"`, not the password);
//! - `prev`: lower-case hex SHA-256 of the previous line's bytes, without its `\n`; 64 zeros
//!   on the first line.
//!
//! Any edited, removed, inserted or reordered line breaks the chain at the line after it;
//! [`verify`] reports the first line where it breaks. What a chain alone cannot show: the
//! *last* line edited or removed (no line follows it), or the whole file rewritten with a new
//! chain. Against those, ship the log (or just its last `prev`) to another machine from time to
//! time.
//!
//! [`AuditLog::append`] returns only after the line is on disk (fsync), so an API that answers
//! after it never acknowledges an unrecorded action. Opening verifies the whole chain and
//! refuses a broken one: appending to it would make a tampered log look continued. Appends hold
//! an exclusive lock on the file and pick up lines other processes appended meanwhile (`petra
//! user add` while `petra run` is running), checking their chain too.

use crate::fsx::io;
use crate::secret::{hex, sha256, unhex32};
use crate::{Result, ServerError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// One thing that happened, to be recorded. `ts` and `prev` are added by [`AuditLog::append`].
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    pub user: String,
    pub source: String,
    pub action: String,
    pub target: String,
    pub old: Value,
    pub new: Value,
}

impl AuditEvent {
    /// An event with no old or new value.
    pub fn new(
        user: impl Into<String>,
        source: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
    ) -> AuditEvent {
        AuditEvent {
            user: user.into(),
            source: source.into(),
            action: action.into(),
            target: target.into(),
            old: Value::Null,
            new: Value::Null,
        }
    }

    /// With the value before and after.
    pub fn change(mut self, old: Value, new: Value) -> AuditEvent {
        self.old = old;
        self.new = new;
        self
    }

    /// A login attempt: `user` is the name that was tried, `new` is `"success"` or `"failure"`.
    /// The password is not an argument, so it cannot end up in the log.
    pub fn login(user: &str, source: &str, success: bool) -> AuditEvent {
        AuditEvent::new(user, source, "login", user).change(
            Value::Null,
            Value::from(if success { "success" } else { "failure" }),
        )
    }
}

#[derive(Serialize)]
struct LineOut<'a> {
    ts: &'a str,
    user: &'a str,
    source: &'a str,
    action: &'a str,
    target: &'a str,
    old: &'a Value,
    new: &'a Value,
    prev: &'a str,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read to check the line's shape; only `ts` and `prev` are looked at.
struct LineIn {
    ts: String,
    user: String,
    source: String,
    action: String,
    target: String,
    old: Value,
    new: Value,
    prev: String,
}

/// The state of a chain being read: the hash of the last line and how many lines were read.
#[derive(Clone, Copy)]
struct Chain {
    prev: [u8; 32],
    lines: u64,
}

impl Chain {
    const START: Chain = Chain {
        prev: [0; 32],
        lines: 0,
    };

    /// Takes one line (without its `\n`); on a problem, the description of it.
    fn push(&mut self, line: &[u8]) -> Result<(), String> {
        let n = self.lines + 1;
        if line.is_empty() {
            return Err("the line is empty".into());
        }
        let entry: LineIn = serde_json::from_slice(line)
            .map_err(|e| format!("not a JSON audit entry ({e}); the line was edited"))?;
        let Some(prev) = unhex32(&entry.prev) else {
            return Err("`prev` is not 64 lower-case hex digits; the line was edited".into());
        };
        if prev != self.prev {
            return Err(if n == 1 {
                "`prev` of the first line is not 64 zeros: lines before it were removed".into()
            } else {
                format!(
                    "`prev` is not the SHA-256 of line {}: line {} was edited, or lines were \
                     removed, inserted or reordered here",
                    n - 1,
                    n - 1
                )
            });
        }
        if humantime::parse_rfc3339(&entry.ts).is_err() {
            return Err(format!(
                "`ts` is `{}`, not an RFC 3339 time; the line was edited",
                entry.ts
            ));
        }
        self.prev = sha256(line);
        self.lines = n;
        Ok(())
    }

    /// Reads lines from `r` until its end. Err: (line number, problem).
    fn read(&mut self, r: impl Read) -> std::io::Result<Result<(), (u64, String)>> {
        let mut r = BufReader::new(r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if r.read_until(b'\n', &mut buf)? == 0 {
                return Ok(Ok(()));
            }
            let line_no = self.lines + 1;
            let Some(line) = buf.strip_suffix(b"\n") else {
                return Ok(Err((
                    line_no,
                    "the last line has no end: the file was cut short or a write was \
                     interrupted"
                        .into(),
                )));
            };
            if let Err(problem) = self.push(line) {
                return Ok(Err((line_no, problem)));
            }
        }
    }
}

/// Checks the hash chain of the audit log at `path`: the number of lines when intact, else
/// [`ServerError::AuditBroken`] with the first bad line (1-based) and what is wrong with it.
pub fn verify(path: &Path) -> Result<u64> {
    let file = File::open(path).map_err(io("open", path))?;
    let mut chain = Chain::START;
    match chain.read(file).map_err(io("read", path))? {
        Ok(()) => Ok(chain.lines),
        Err((line, problem)) => Err(ServerError::AuditBroken {
            path: path.to_path_buf(),
            line,
            problem,
        }),
    }
}

/// An audit log open for appending. Shared by request handlers (`&self`); appends are
/// serialised inside and each one blocks until its line is on disk, so call it off the async
/// workers.
pub struct AuditLog {
    path: PathBuf,
    inner: Mutex<Tail>,
}

struct Tail {
    file: File,
    /// Bytes of the file covered by `chain`.
    len: u64,
    chain: Chain,
}

impl AuditLog {
    /// Opens (or creates, mode 0600, with its directory) the audit log at `path`, verifies its
    /// chain and continues it. A broken chain is [`ServerError::AuditBroken`].
    pub fn open(path: &Path) -> Result<AuditLog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io("create the directory", dir))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(io("open", path))?;
        let mut tail = Tail {
            file,
            len: 0,
            chain: Chain::START,
        };
        tail.file.lock().map_err(io("lock", path))?;
        let caught_up = tail.catch_up(path);
        let _ = tail.file.unlock();
        caught_up?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            inner: Mutex::new(tail),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lines in the log (as of the last append or open).
    pub fn len(&self) -> u64 {
        self.inner.lock().expect("audit lock").chain.lines
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends one line for `event` at time `now` and returns once it is on disk.
    pub fn append(&self, event: &AuditEvent, now: SystemTime) -> Result<()> {
        let mut tail = self.inner.lock().expect("audit lock");
        tail.file.lock().map_err(io("lock", &self.path))?;
        let result = tail.append(&self.path, event, now);
        let _ = tail.file.unlock();
        result
    }
}

impl Tail {
    /// Reads what was appended after `len` (by this process before, or by another), checking
    /// the chain. Called with the file lock held.
    fn catch_up(&mut self, path: &Path) -> Result<()> {
        let size = self.file.metadata().map_err(io("read", path))?.len();
        if size == self.len {
            return Ok(());
        }
        let broken = |line, problem| ServerError::AuditBroken {
            path: path.to_path_buf(),
            line,
            problem,
        };
        if size < self.len {
            return Err(broken(
                self.chain.lines,
                format!(
                    "the file shrank from {} to {size} bytes while it was open",
                    self.len
                ),
            ));
        }
        self.file
            .seek(SeekFrom::Start(self.len))
            .map_err(io("read", path))?;
        let mut chain = self.chain;
        let r = (&self.file).take(size - self.len);
        match chain.read(r).map_err(io("read", path))? {
            Ok(()) => {
                self.chain = chain;
                self.len = size;
                Ok(())
            }
            Err((line, problem)) => Err(broken(line, problem)),
        }
    }

    fn append(&mut self, path: &Path, event: &AuditEvent, now: SystemTime) -> Result<()> {
        self.catch_up(path)?;
        let ts = humantime::format_rfc3339_millis(now).to_string();
        let prev = hex(&self.chain.prev);
        let out = LineOut {
            ts: &ts,
            user: &event.user,
            source: &event.source,
            action: &event.action,
            target: &event.target,
            old: &event.old,
            new: &event.new,
            prev: &prev,
        };
        let mut line = serde_json::to_vec(&out).expect("plain data serializes");
        let hash = sha256(&line);
        line.push(b'\n');
        let written = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Take back a partial line so the chain stays whole; if even that fails, the next
            // append finds the damage and refuses.
            let _ = self.file.set_len(self.len);
            return Err(io("append to", path)(e));
        }
        self.len += line.len() as u64;
        self.chain = Chain {
            prev: hash,
            lines: self.chain.lines + 1,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    fn t(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_800_000_000_000 + ms)
    }

    /// A log of `n` lines in a temp dir.
    fn log_with(n: u64) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        for i in 0..n {
            let ev = AuditEvent::new("alice", "192.0.2.7:5000", "signal.write", format!("s{i}"))
                .change(Value::from(i), Value::from(i + 1));
            log.append(&ev, t(i)).unwrap();
        }
        (dir, path)
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    fn write_lines(path: &Path, lines: &[String]) {
        let mut s = lines.join("\n");
        s.push('\n');
        std::fs::write(path, s).unwrap();
    }

    #[track_caller]
    fn broken_at(path: &Path, line: u64, needle: &str) {
        match verify(path) {
            Err(ServerError::AuditBroken {
                line: l, problem, ..
            }) => {
                assert_eq!(l, line, "{problem}");
                assert!(problem.contains(needle), "{problem}");
            }
            r => panic!("expected a broken chain, got {r:?}"),
        }
    }

    #[test]
    fn lines_have_the_documented_shape_and_chain() {
        let (_d, path) = log_with(2);
        let l = lines(&path);
        assert_eq!(
            l[0],
            format!(
                "{{\"ts\":\"2027-01-15T08:00:00.000Z\",\"user\":\"alice\",\"source\":\"192.0.2.7:5000\",\
                 \"action\":\"signal.write\",\"target\":\"s0\",\"old\":0,\"new\":1,\"prev\":\"{}\"}}",
                "0".repeat(64)
            )
        );
        let v: Value = serde_json::from_str(&l[1]).unwrap();
        assert_eq!(v["ts"], "2027-01-15T08:00:00.001Z");
        assert_eq!(v["prev"], hex(&sha256(l[0].as_bytes())));
        assert_eq!(verify(&path).unwrap(), 2);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn an_intact_log_and_an_empty_one_verify() {
        let (_d, path) = log_with(5);
        assert_eq!(verify(&path).unwrap(), 5);
        let (_d, path) = log_with(0);
        assert_eq!(verify(&path).unwrap(), 0);
        assert!(matches!(
            verify(&path.with_file_name("missing")),
            Err(ServerError::Io { .. })
        ));
    }

    #[test]
    fn an_edited_line_is_found_at_the_line_after_it() {
        let (_d, path) = log_with(5);
        let mut l = lines(&path);
        l[2] = l[2].replace("\"new\":3", "\"new\":300");
        write_lines(&path, &l);
        broken_at(&path, 4, "line 3 was edited");
    }

    #[test]
    fn a_removed_line_is_found() {
        let (_d, path) = log_with(5);
        let mut l = lines(&path);
        l.remove(1);
        write_lines(&path, &l);
        broken_at(&path, 2, "not the SHA-256 of line 1");
        // The first line removed: the new first line does not start the chain.
        let (_d, path) = log_with(3);
        let mut l = lines(&path);
        l.remove(0);
        write_lines(&path, &l);
        broken_at(&path, 1, "lines before it were removed");
    }

    #[test]
    fn reordered_lines_are_found() {
        let (_d, path) = log_with(5);
        let mut l = lines(&path);
        l.swap(2, 3);
        write_lines(&path, &l);
        broken_at(&path, 3, "reordered");
    }

    #[test]
    fn a_truncated_file_and_a_line_that_is_not_json_are_found() {
        let (_d, path) = log_with(3);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        broken_at(&path, 3, "cut short");

        let (_d, path) = log_with(3);
        let mut l = lines(&path);
        l[1] = "hello".into();
        write_lines(&path, &l);
        broken_at(&path, 2, "not a JSON audit entry");

        let (_d, path) = log_with(3);
        let mut l = lines(&path);
        l.insert(1, String::new());
        write_lines(&path, &l);
        broken_at(&path, 2, "empty");

        // An extra key is an edit even if the hashes were fixed up after it.
        let (_d, path) = log_with(1);
        let l = lines(&path);
        write_lines(&path, &[l[0].replace("\"user\"", "\"x\":1,\"user\"")]);
        broken_at(&path, 1, "unknown field");
    }

    #[test]
    fn appending_after_reopen_continues_the_chain() {
        let (_d, path) = log_with(3);
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(log.len(), 3);
        log.append(&AuditEvent::login("bob", "cli", false), t(10))
            .unwrap();
        drop(log);
        assert_eq!(verify(&path).unwrap(), 4);
        let last: Value = serde_json::from_str(&lines(&path)[3]).unwrap();
        assert_eq!(last["action"], "login");
        assert_eq!(last["new"], "failure");
        assert_eq!(last["old"], Value::Null);
    }

    #[test]
    fn two_writers_on_one_file_keep_one_chain() {
        let (_d, path) = log_with(1);
        let a = AuditLog::open(&path).unwrap();
        let b = AuditLog::open(&path).unwrap();
        for i in 0..3 {
            a.append(&AuditEvent::new("a", "cli", "x", "y"), t(i))
                .unwrap();
            b.append(&AuditEvent::new("b", "cli", "x", "y"), t(i))
                .unwrap();
        }
        assert_eq!(verify(&path).unwrap(), 7);
        assert_eq!(a.len(), 6);
        assert_eq!(b.len(), 7);
    }

    #[test]
    fn a_broken_log_is_not_appended_to() {
        let (_d, path) = log_with(3);
        let mut l = lines(&path);
        l[0] = l[0].replace("alice", "mallory");
        write_lines(&path, &l);
        let before = std::fs::read(&path).unwrap();
        let e = AuditLog::open(&path).err().expect("refused");
        let msg = e.to_string();
        assert!(msg.contains("broken at line 2"), "{msg}");
        assert!(msg.contains("move it aside"), "{msg}");
        assert_eq!(std::fs::read(&path).unwrap(), before);

        // Broken while open (edited by someone else): the next append refuses.
        let (_d, path) = log_with(2);
        let log = AuditLog::open(&path).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"forged\":true}\n").unwrap();
        let e = log
            .append(&AuditEvent::new("a", "cli", "x", "y"), t(5))
            .unwrap_err();
        assert!(matches!(e, ServerError::AuditBroken { line: 3, .. }), "{e}");
        // Shrunk while open.
        let (_d, path) = log_with(2);
        let log = AuditLog::open(&path).unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 5)
            .unwrap();
        let e = log
            .append(&AuditEvent::new("a", "cli", "x", "y"), t(5))
            .unwrap_err();
        assert!(e.to_string().contains("shrank"), "{e}");
    }
}
