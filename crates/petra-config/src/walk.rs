//! A small schema walker over [`Node`]s that reports every problem and keeps going.
//!
//! [`MapW`] wraps one mapping: typed accessors (`req_str`, `opt_f64`, …) record which keys the
//! schema knows and report a missing or mistyped value at its position; [`MapW::finish`]
//! reports every key the schema did not ask for, with a "did you mean" hint. Accessors return
//! `None` both for "absent" and for "present but wrong" (already reported), so callers only
//! decide what an absent value means.

use crate::diag::{Cx, Pos};
use crate::units::parse_duration;
use crate::yaml::{Kind, Node};
use std::borrow::Cow;
use std::time::Duration;

/// Levenshtein distance, for "did you mean" hints.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidates close to `word` (case-insensitive), closest first.
pub(crate) fn close_names<'a>(word: &str, candidates: &[&'a str]) -> Vec<&'a str> {
    let w = word.to_lowercase();
    let limit = match w.chars().count() {
        0..=3 => 1,
        4..=6 => 2,
        _ => 3,
    };
    let mut v: Vec<(usize, &'a str)> = candidates
        .iter()
        .map(|c| (edit_distance(&w, &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .collect();
    v.sort_by_key(|(d, _)| *d);
    v.dedup_by_key(|(_, c)| *c);
    // Only a difference of case: that is the one.
    if v.first().is_some_and(|(d, _)| *d == 0) {
        v.truncate(1);
    }
    v.into_iter().map(|(_, c)| c).collect()
}

/// "; did you mean `x`?" or "" when nothing is close.
pub(crate) fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    match close_names(word, candidates).first() {
        Some(c) => format!("; did you mean `{c}`?"),
        None => String::new(),
    }
}

/// "`a`, `b`, `c`".
pub(crate) fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `s` is a valid signal / block / task / plant name: `[A-Za-z_][A-Za-z0-9_.-]*`.
/// User and API token names follow the same rule.
pub fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f == '_' || f.is_ascii_alphabetic())
        && c.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Checks the name rule; reports `bad-name` at the value.
/// `shown` is the name as it may appear in messages (see [`Node::shown`]).
pub(crate) fn check_name(cx: &mut Cx<'_>, name: &str, shown: &str, at: Pos, what: &str) -> bool {
    if is_name(name) {
        return true;
    }
    cx.err(
        at,
        "bad-name",
        format!(
            "{what} name `{shown}` is not valid; names start with a letter or `_` and contain \
             only letters, digits, `_`, `.` and `-`"
        ),
    );
    false
}

fn wrong(cx: &mut Cx<'_>, n: &Node<'_>, what: &str, expected: &str) {
    if !n.is_bad() {
        cx.err(
            n.pos,
            "wrong-type",
            format!("{what} must be {expected}, found {}", n.kind_name()),
        );
    }
}

pub(crate) fn expect_str<'n>(cx: &mut Cx<'_>, n: &'n Node<'_>, what: &str) -> Option<&'n str> {
    match n.kind() {
        Kind::Str(s) => Some(s),
        _ => {
            wrong(cx, n, what, "a string");
            None
        }
    }
}

pub(crate) fn expect_bool(cx: &mut Cx<'_>, n: &Node<'_>, what: &str) -> Option<bool> {
    match *n.kind() {
        Kind::Bool(b) => Some(b),
        _ => {
            wrong(cx, n, what, "true or false");
            None
        }
    }
}

pub(crate) fn expect_i64(cx: &mut Cx<'_>, n: &Node<'_>, what: &str) -> Option<i64> {
    match *n.kind() {
        Kind::Int(i) => Some(i),
        _ => {
            wrong(cx, n, what, "an int");
            None
        }
    }
}

/// A number; an int literal is accepted.
pub(crate) fn expect_f64(cx: &mut Cx<'_>, n: &Node<'_>, what: &str) -> Option<f64> {
    match *n.kind() {
        Kind::Float(f) => Some(f),
        Kind::Int(i) => Some(i as f64),
        _ => {
            wrong(cx, n, what, "a number");
            None
        }
    }
}

/// A duration string (`500ms`); a bare number is a `bad-duration` with a hint.
pub(crate) fn expect_duration(cx: &mut Cx<'_>, n: &Node<'_>, what: &str) -> Option<Duration> {
    match n.kind() {
        Kind::Str(s) => match parse_duration(s) {
            Ok(d) => Some(d),
            Err(e) => {
                let shown = n.shown();
                let e = if n.written().is_some() {
                    e.replace(&**s, &shown)
                } else {
                    e
                };
                cx.err(n.pos, "bad-duration", format!("{what}: {e}"));
                None
            }
        },
        Kind::Int(_) | Kind::Float(_) => {
            cx.err(
                n.pos,
                "bad-duration",
                format!(
                    "{what}: `{}` has no unit; write 500ms or 2s (units: ms, s, m, h, d)",
                    n.shown()
                ),
            );
            None
        }
        _ => {
            wrong(cx, n, what, "a duration such as 500ms or 2s");
            None
        }
    }
}

/// Items of a list; `null` (a key with nothing under it) is an empty list.
pub(crate) fn expect_seq<'n, 's>(
    cx: &mut Cx<'_>,
    n: &'n Node<'s>,
    what: &str,
) -> Option<&'n [Node<'s>]> {
    match n.kind() {
        Kind::Seq(v) => Some(v),
        Kind::Null => Some(&[]),
        _ => {
            wrong(cx, n, what, "a list");
            None
        }
    }
}

/// One mapping being read against a schema.
pub(crate) struct MapW<'n> {
    pub pos: Pos,
    /// (key node, key text, value)
    entries: Vec<(&'n Node<'n>, Cow<'n, str>, &'n Node<'n>)>,
    used: Vec<bool>,
    asked: Vec<&'static str>,
    /// Names the thing in messages: "signal `tank.level`", "the top level".
    pub what: String,
}

impl<'n> MapW<'n> {
    /// Wraps a mapping; reports `wrong-type` if `n` is not one and `duplicate-key` for every
    /// repeated key (the first one counts).
    pub fn new(cx: &mut Cx<'_>, n: &'n Node<'n>, what: impl Into<String>) -> Option<MapW<'n>> {
        let what = what.into();
        let Kind::Map(entries) = n.kind() else {
            wrong(cx, n, &what, "a mapping (`key: value` lines)");
            return None;
        };
        let mut out: Vec<(&'n Node<'n>, Cow<'n, str>, &'n Node<'n>)> =
            Vec::with_capacity(entries.len());
        let mut used = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let text = k.key_text();
            if let Some((first, _, _)) = out.iter().find(|(_, t, _)| *t == text) {
                cx.err(
                    k.pos,
                    "duplicate-key",
                    format!(
                        "key `{text}` appears twice in {what} (first at line {}); remove one",
                        first.pos.line
                    ),
                );
                continue;
            }
            out.push((k, text, v));
            used.push(false);
        }
        Some(MapW {
            pos: n.pos,
            entries: out,
            used,
            asked: Vec::new(),
            what,
        })
    }

    /// The key and value of `key`, marking the key as known and used.
    pub fn entry(&mut self, key: &'static str) -> Option<(&'n Node<'n>, &'n Node<'n>)> {
        if !self.asked.contains(&key) {
            self.asked.push(key);
        }
        let i = self.entries.iter().position(|(_, t, _)| t == key)?;
        self.used[i] = true;
        Some((self.entries[i].0, self.entries[i].2))
    }

    pub fn get(&mut self, key: &'static str) -> Option<&'n Node<'n>> {
        self.entry(key).map(|(_, v)| v)
    }

    /// Keys not asked for so far, with their key nodes (for maps whose keys are data, such as
    /// `inputs`). Marks them used.
    pub fn rest(&mut self) -> Vec<(&'n Node<'n>, String, &'n Node<'n>)> {
        let mut v = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            if !self.used[i] {
                self.used[i] = true;
                v.push((e.0, e.1.to_string(), e.2));
            }
        }
        v
    }

    /// The value of `key` as it may appear in messages: as written when it came from the
    /// environment, which may hold secrets.
    pub fn shown(&self, key: &str) -> String {
        self.entries
            .iter()
            .find(|(_, t, _)| t == key)
            .map(|(_, _, v)| v.shown())
            .unwrap_or_default()
    }

    fn desc(&self, key: &str) -> String {
        format!("`{key}` of {}", self.what)
    }

    pub fn req(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<&'n Node<'n>> {
        let v = self.get(key);
        if v.is_none() {
            cx.err(
                self.pos,
                "missing-key",
                format!("{} needs `{key}`; add it", self.what),
            );
        }
        v
    }

    pub fn req_str(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<(&'n str, Pos)> {
        let n = self.req(cx, key)?;
        expect_str(cx, n, &self.desc(key)).map(|s| (s, n.pos))
    }

    pub fn opt_str(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<(&'n str, Pos)> {
        let n = self.get(key)?;
        expect_str(cx, n, &self.desc(key)).map(|s| (s, n.pos))
    }

    pub fn opt_bool(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<bool> {
        let n = self.get(key)?;
        expect_bool(cx, n, &self.desc(key))
    }

    pub fn opt_i64(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<(i64, Pos)> {
        let n = self.get(key)?;
        expect_i64(cx, n, &self.desc(key)).map(|i| (i, n.pos))
    }

    pub fn opt_f64(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<(f64, Pos)> {
        let n = self.get(key)?;
        expect_f64(cx, n, &self.desc(key)).map(|f| (f, n.pos))
    }

    pub fn opt_duration(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<(Duration, Pos)> {
        let n = self.get(key)?;
        expect_duration(cx, n, &self.desc(key)).map(|d| (d, n.pos))
    }

    pub fn req_duration(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<(Duration, Pos)> {
        let n = self.req(cx, key)?;
        expect_duration(cx, n, &self.desc(key)).map(|d| (d, n.pos))
    }

    pub fn opt_map(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<MapW<'n>> {
        let n = self.get(key)?;
        if matches!(n.kind(), Kind::Null) {
            return Some(MapW {
                pos: n.pos,
                entries: Vec::new(),
                used: Vec::new(),
                asked: Vec::new(),
                what: self.desc(key),
            });
        }
        MapW::new(cx, n, self.desc(key))
    }

    /// Reports every key that was not asked for as `unknown-key`, at the key.
    pub fn finish(self, cx: &mut Cx<'_>) {
        self.finish_with(cx, &[]);
    }

    /// Like [`MapW::finish`], with extra words to draw hints from.
    pub fn finish_with(self, cx: &mut Cx<'_>, extra: &[&str]) {
        let mut known: Vec<&str> = self.asked.clone();
        known.extend_from_slice(extra);
        for (i, (k, text, _)) in self.entries.iter().enumerate() {
            if self.used[i] {
                continue;
            }
            let hint = match close_names(text, &known).first() {
                Some(c) => format!("did you mean `{c}`?"),
                None => format!("known keys: {}", list(&known)),
            };
            cx.err(
                k.pos,
                "unknown-key",
                format!("unknown key `{text}` in {}; {hint}", self.what),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_hints() {
        assert_eq!(edit_distance("signal", "signals"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            close_names("singals", &["signals", "tasks", "blocks"]),
            ["signals"]
        );
        assert_eq!(close_names("ton", &["TON", "TOF", "CTU"]), ["TON"]);
        assert_eq!(close_names("TOM", &["TON", "TOF", "CTU"]), ["TON", "TOF"]);
        assert!(close_names("PID", &["AND", "ADD"]).is_empty());
        assert!(close_names("zzzzzz", &["signals"]).is_empty());
    }

    #[test]
    fn name_rule() {
        for ok in ["a", "_x", "tank.level", "pump-1.speed_2", "A"] {
            assert!(is_name(ok), "{ok}");
        }
        for bad in ["", "1a", ".a", "a b", "a/b", "é", "-a", "a:b"] {
            assert!(!is_name(bad), "{bad}");
        }
    }
}
