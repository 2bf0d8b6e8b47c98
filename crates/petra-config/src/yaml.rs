//! The YAML document as a tree of nodes that remember where they were written.
//!
//! Built from `saphyr-parser` events rather than with `saphyr`'s own loader for two reasons:
//! a mapping keeps *every* entry in order, so a duplicate key is reported like any other error
//! instead of ending the load, and `${NAME}` references are expanded while each scalar's style
//! is still known (a plain `${PORT}` that expands to `502` is an int, a quoted `"${PORT}"` stays
//! a string). Scalars are typed with `saphyr`'s YAML 1.2 core-schema rules.

use crate::diag::{Cx, Pos};
use crate::env::{self, EnvError};
use saphyr::Scalar;
use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Span, SpannedEventReceiver, Tag};
use std::borrow::Cow;
use std::collections::HashMap;

/// Most nodes that aliases (`*name`) may expand to, against "billion laughs" documents.
const ALIAS_BUDGET: usize = 100_000;

/// One node of the document, borrowing from the source text `'s`.
///
/// Kept small because a configuration of 100,000 points is a tree of over a million nodes:
/// strings written as is borrow from the source instead of owning a copy, lists and mappings
/// are boxed slices without spare capacity, and what is rare (the text as written before
/// `${…}` expansion) is boxed away in [`Kind::Expanded`].
#[derive(Clone, Debug)]
pub(crate) struct Node<'s> {
    pub pos: Pos,
    /// Read with [`Node::kind`], which looks through [`Kind::Expanded`].
    kind: Kind<'s>,
}

#[derive(Clone, Debug)]
pub(crate) enum Kind<'s> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'s, str>),
    Seq(Box<[Node<'s>]>),
    /// Entries in document order, duplicates included.
    Map(Box<[(Node<'s>, Node<'s>)]>),
    /// A value already reported as an error (an unset environment variable, a bad tag): walkers
    /// skip it silently so one mistake gives one message.
    Bad,
    /// A scalar whose text had `${…}` references. Never returned by [`Node::kind`].
    Expanded(Box<Expanded<'s>>),
}

#[derive(Clone, Debug)]
pub(crate) struct Expanded<'s> {
    /// The value after expansion (a scalar kind).
    kind: Kind<'s>,
    /// The text as written. Messages show this instead of the expanded value, which may be a
    /// secret.
    written: String,
}

impl<'s> Node<'s> {
    /// What the node holds (for a scalar with `${…}` references: its expanded value).
    pub fn kind(&self) -> &Kind<'s> {
        match &self.kind {
            Kind::Expanded(e) => &e.kind,
            k => k,
        }
    }

    /// For a scalar whose text had `${…}` references: the text as written.
    pub fn written(&self) -> Option<&str> {
        match &self.kind {
            Kind::Expanded(e) => Some(&e.written),
            _ => None,
        }
    }

    /// "a string", "an int", … for messages.
    pub fn kind_name(&self) -> &'static str {
        match self.kind() {
            Kind::Null => "nothing (null)",
            Kind::Bool(_) => "a bool",
            Kind::Int(_) => "an int",
            Kind::Float(_) => "a float",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
            Kind::Bad | Kind::Expanded(_) => "an invalid value",
        }
    }

    /// The value as it may be shown in a message.
    pub fn shown(&self) -> String {
        if let Some(w) = self.written() {
            return w.to_string();
        }
        match self.kind() {
            Kind::Null => "null".into(),
            Kind::Bool(b) => b.to_string(),
            Kind::Int(i) => i.to_string(),
            Kind::Float(f) => f.to_string(),
            Kind::Str(s) => s.to_string(),
            Kind::Seq(_) => "[…]".into(),
            Kind::Map(_) => "{…}".into(),
            Kind::Bad | Kind::Expanded(_) => "?".into(),
        }
    }

    /// The text of a scalar used as a mapping key.
    pub fn key_text(&self) -> Cow<'_, str> {
        match self.kind() {
            Kind::Str(s) => Cow::Borrowed(s),
            Kind::Seq(_) | Kind::Map(_) => "<complex key>".into(),
            _ => self.shown().into(),
        }
    }

    pub fn is_bad(&self) -> bool {
        matches!(self.kind(), Kind::Bad)
    }
}

fn pos(m: Marker) -> Pos {
    Pos {
        line: m.line(),
        col: m.col() + 1,
    }
}

enum Frame<'s> {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node<'s>>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<(Node<'s>, Node<'s>)>,
        key: Option<Node<'s>>,
    },
}

/// Byte offsets in the source for the parser's character indices (they differ only after
/// non-ASCII text). Scalars come in source order, so a forward cursor makes this linear.
struct Offsets<'s> {
    src: &'s str,
    ascii: bool,
    chars: usize,
    bytes: usize,
}

impl<'s> Offsets<'s> {
    fn new(src: &'s str) -> Offsets<'s> {
        Offsets {
            src,
            ascii: src.is_ascii(),
            chars: 0,
            bytes: 0,
        }
    }

    fn byte(&mut self, char_index: usize) -> Option<usize> {
        if self.ascii {
            return (char_index <= self.src.len()).then_some(char_index);
        }
        if char_index < self.chars {
            (self.chars, self.bytes) = (0, 0);
        }
        for c in self.src[self.bytes..].chars() {
            if self.chars == char_index {
                break;
            }
            self.chars += 1;
            self.bytes += c.len_utf8();
        }
        (self.chars == char_index).then_some(self.bytes)
    }

    /// `text` as a slice of the source when it is written there as is (plain, or quoted without
    /// escapes and on one line): most scalars are, and borrowing them keeps the tree small.
    fn find(&mut self, text: &str, span: Span) -> Option<&'s str> {
        let (start, end) = (self.byte(span.start.index())?, self.byte(span.end.index())?);
        let written = self.src.get(start..end)?;
        if written == text {
            return Some(written);
        }
        let quoted = written.get(1..written.len().checked_sub(1)?)?;
        (quoted == text).then_some(quoted)
    }
}

struct Builder<'s, 'e, 'c, 'f> {
    cx: &'c mut Cx<'f>,
    env: &'e dyn Fn(&str) -> Option<String>,
    offsets: Offsets<'s>,
    stack: Vec<Frame<'s>>,
    anchors: HashMap<usize, Node<'s>>,
    docs: Vec<Node<'s>>,
    budget: usize,
    /// Set when the document cannot be trusted any more (alias budget exceeded).
    fatal: bool,
}

fn move_to(n: &mut Node<'_>, at: Pos) {
    n.pos = at;
    match &mut n.kind {
        Kind::Seq(v) => v.iter_mut().for_each(|c| move_to(c, at)),
        Kind::Map(e) => e.iter_mut().for_each(|(k, v)| {
            move_to(k, at);
            move_to(v, at);
        }),
        _ => {}
    }
}

fn count(n: &Node<'_>) -> usize {
    1 + match &n.kind {
        Kind::Seq(v) => v.iter().map(count).sum(),
        Kind::Map(e) => e.iter().map(|(k, v)| count(k) + count(v)).sum(),
        _ => 0,
    }
}

impl<'s> Builder<'s, '_, '_, '_> {
    fn is_key_next(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }

    fn insert(&mut self, node: Node<'s>, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }

    fn scalar(
        &mut self,
        text: Cow<'s, str>,
        style: ScalarStyle,
        tag: Option<Cow<'s, Tag>>,
        span: Span,
    ) -> Node<'s> {
        let at = pos(span.start);
        let mut written = None;
        let mut text = match self.offsets.find(&text, span) {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(shrunk(text.into_owned())),
        };
        if !self.is_key_next() {
            match env::expand(&text, self.env) {
                Ok(None) => {}
                Ok(Some(expanded)) => {
                    written = Some(std::mem::replace(&mut text, Cow::Owned(expanded)).into_owned());
                }
                Err(EnvError::Unset(names)) => {
                    let list = names
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let (what, it) = if names.len() == 1 {
                        ("variable", "it")
                    } else {
                        ("variables", "them")
                    };
                    self.cx.err(
                        at,
                        "env-unset",
                        format!(
                            "environment {what} {list} not set; set {it} before starting Petra, \
                             or write $${{ for a literal `${{`"
                        ),
                    );
                    return bad(at);
                }
                Err(EnvError::Malformed(m)) => {
                    self.cx.err(at, "bad-value", m);
                    return bad(at);
                }
            }
        }
        let kind = match Scalar::parse_from_cow_and_metadata(text, style, tag.as_ref()) {
            Some(Scalar::Null) => Kind::Null,
            Some(Scalar::Boolean(b)) => Kind::Bool(b),
            Some(Scalar::Integer(i)) => Kind::Int(i),
            Some(Scalar::FloatingPoint(f)) => Kind::Float(f.into_inner()),
            Some(Scalar::String(s)) => Kind::Str(s),
            None => {
                let tag = tag
                    .map(|t| format!("{}{}", t.handle, t.suffix))
                    .unwrap_or_default();
                self.cx.err(
                    at,
                    "wrong-type",
                    format!(
                        "this value cannot be read as tag `{tag}`; remove the tag or fix the value"
                    ),
                );
                Kind::Bad
            }
        };
        let kind = match written {
            Some(written) => Kind::Expanded(Box::new(Expanded { kind, written })),
            None => kind,
        };
        Node { pos: at, kind }
    }
}

/// `s` without spare capacity (the parser reserves generously for each scalar).
fn shrunk(mut s: String) -> String {
    s.shrink_to_fit();
    s
}

fn bad(at: Pos) -> Node<'static> {
    Node {
        pos: at,
        kind: Kind::Bad,
    }
}

impl<'s> SpannedEventReceiver<'s> for Builder<'s, '_, '_, '_> {
    fn on_event(&mut self, ev: Event<'s>, span: Span) {
        if self.fatal {
            return;
        }
        let at = pos(span.start);
        match ev {
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => {}
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq {
                pos: at,
                anchor,
                items: Vec::new(),
            }),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map {
                pos: at,
                anchor,
                entries: Vec::new(),
                key: None,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { pos, anchor, items }) => (
                        Node {
                            pos,
                            kind: Kind::Seq(items.into_boxed_slice()),
                        },
                        anchor,
                    ),
                    Some(Frame::Map {
                        pos,
                        anchor,
                        entries,
                        ..
                    }) => (
                        Node {
                            pos,
                            kind: Kind::Map(entries.into_boxed_slice()),
                        },
                        anchor,
                    ),
                    None => return,
                };
                self.insert(node, anchor);
            }
            Event::Scalar(text, style, anchor, tag) => {
                let node = self.scalar(text, style, tag, span);
                self.insert(node, anchor);
            }
            Event::Alias(id) => {
                let node = match self.anchors.get(&id) {
                    Some(n) => {
                        let size = count(n);
                        if size > self.budget {
                            self.cx.err(
                                at,
                                "yaml",
                                "aliases expand to too many nodes; write the values out",
                            );
                            self.fatal = true;
                            return;
                        }
                        self.budget -= size;
                        // Every node of the copy points at the alias: an error in it is an
                        // error where the alias is used.
                        let mut n = n.clone();
                        move_to(&mut n, at);
                        n
                    }
                    None => {
                        self.cx.err(at, "yaml", "alias to an unknown anchor");
                        bad(at)
                    }
                };
                self.insert(node, 0);
            }
        }
    }
}

/// Parses `src` into its one document. Syntax errors (code `yaml`) and environment errors are
/// added to `cx`; `None` means nothing more can be checked.
pub(crate) fn parse<'s>(
    src: &'s str,
    env: &dyn Fn(&str) -> Option<String>,
    cx: &mut Cx<'_>,
) -> Option<Node<'s>> {
    let mut b = Builder {
        cx,
        env,
        offsets: Offsets::new(src),
        stack: Vec::new(),
        anchors: HashMap::new(),
        docs: Vec::new(),
        budget: ALIAS_BUDGET,
        fatal: false,
    };
    let mut parser = Parser::new_from_str(src);
    if let Err(e) = parser.load(&mut b, true) {
        let at = pos(*e.marker());
        b.cx.err(at, "yaml", format!("YAML syntax error: {}", e.info()));
        return None;
    }
    if b.fatal {
        return None;
    }
    let mut docs = b.docs.into_iter();
    let first = docs.next();
    if let Some(second) = docs.next() {
        b.cx.err(
            second.pos,
            "yaml",
            "the file holds more than one YAML document (`---`); keep one",
        );
        return None;
    }
    Some(first.unwrap_or(Node {
        pos: Pos { line: 1, col: 1 },
        kind: Kind::Null,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(src: &str) -> Node<'_> {
        let mut cx = Cx::new("t.yaml");
        let n = parse(src, &|_| Some("v".into()), &mut cx).expect("parses");
        assert!(cx.diags.is_empty(), "{:?}", cx.diags);
        n
    }

    fn entries<'n>(n: &'n Node<'n>) -> &'n [(Node<'n>, Node<'n>)] {
        match n.kind() {
            Kind::Map(e) => e,
            k => panic!("not a mapping: {k:?}"),
        }
    }

    /// A 100,000-point configuration is over a million nodes: every byte here is a megabyte.
    #[test]
    fn nodes_stay_small() {
        assert!(size_of::<Node<'_>>() <= 40, "{}", size_of::<Node<'_>>());
        assert!(size_of::<Kind<'_>>() <= 24, "{}", size_of::<Kind<'_>>());
    }

    #[test]
    fn strings_written_as_is_borrow_from_the_source() {
        let src =
            "é: ünïcode\nplain: p.00001\nsq: 'quoted'\ndq: \"a\\tb\"\nfolded: a\n  b\nenv: ${X}\n";
        let root = parse_ok(src);
        let got: Vec<(String, String, bool, Pos)> = entries(&root)
            .iter()
            .map(|(k, v)| {
                let Kind::Str(s) = v.kind() else {
                    panic!("{v:?}")
                };
                let borrowed = matches!(s, Cow::Borrowed(_));
                assert!(matches!(k.kind(), Kind::Str(Cow::Borrowed(_))), "{k:?}");
                (k.key_text().into_owned(), s.to_string(), borrowed, v.pos)
            })
            .collect();
        let want = [
            ("é", "ünïcode", true, (1, 4)),
            ("plain", "p.00001", true, (2, 8)),
            ("sq", "quoted", true, (3, 5)),
            ("dq", "a\tb", false, (4, 5)),
            ("folded", "a b", false, (5, 9)),
            ("env", "v", false, (7, 6)),
        ]
        .map(|(k, v, b, (line, col))| (k.to_string(), v.to_string(), b, Pos { line, col }));
        assert_eq!(got, want);
        let env = &entries(&root)[5].1;
        assert_eq!(env.written(), Some("${X}"));
        assert_eq!(env.shown(), "${X}");
    }
}
