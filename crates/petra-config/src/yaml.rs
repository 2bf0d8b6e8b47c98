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

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub pos: Pos,
    pub kind: Kind,
    /// For a scalar whose text had `${…}` references: the text as written. Messages show this
    /// instead of the expanded value, which may be a secret.
    pub written: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in document order, duplicates included.
    Map(Vec<(Node, Node)>),
    /// A value already reported as an error (an unset environment variable, a bad tag): walkers
    /// skip it silently so one mistake gives one message.
    Bad,
}

impl Node {
    /// "a string", "an int", … for messages.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "nothing (null)",
            Kind::Bool(_) => "a bool",
            Kind::Int(_) => "an int",
            Kind::Float(_) => "a float",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
            Kind::Bad => "an invalid value",
        }
    }

    /// The value as it may be shown in a message.
    pub fn shown(&self) -> String {
        if let Some(w) = &self.written {
            return w.clone();
        }
        match &self.kind {
            Kind::Null => "null".into(),
            Kind::Bool(b) => b.to_string(),
            Kind::Int(i) => i.to_string(),
            Kind::Float(f) => f.to_string(),
            Kind::Str(s) => s.clone(),
            Kind::Seq(_) => "[…]".into(),
            Kind::Map(_) => "{…}".into(),
            Kind::Bad => "?".into(),
        }
    }

    /// The text of a scalar used as a mapping key.
    pub fn key_text(&self) -> String {
        match &self.kind {
            Kind::Str(s) => s.clone(),
            Kind::Seq(_) | Kind::Map(_) => "<complex key>".into(),
            _ => self.shown(),
        }
    }

    pub fn is_bad(&self) -> bool {
        matches!(self.kind, Kind::Bad)
    }
}

fn pos(m: Marker) -> Pos {
    Pos {
        line: m.line(),
        col: m.col() + 1,
    }
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

struct Builder<'e, 'c, 'f> {
    cx: &'c mut Cx<'f>,
    env: &'e dyn Fn(&str) -> Option<String>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    docs: Vec<Node>,
    budget: usize,
    /// Set when the document cannot be trusted any more (alias budget exceeded).
    fatal: bool,
}

fn move_to(n: &mut Node, at: Pos) {
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

fn count(n: &Node) -> usize {
    1 + match &n.kind {
        Kind::Seq(v) => v.iter().map(count).sum(),
        Kind::Map(e) => e.iter().map(|(k, v)| count(k) + count(v)).sum(),
        _ => 0,
    }
}

impl Builder<'_, '_, '_> {
    fn is_key_next(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }

    fn insert(&mut self, node: Node, anchor: usize) {
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
        text: Cow<'_, str>,
        style: ScalarStyle,
        tag: Option<Cow<'_, Tag>>,
        at: Pos,
    ) -> Node {
        let mut written = None;
        let mut text = text.into_owned();
        if !self.is_key_next() {
            match env::expand(&text, self.env) {
                Ok(None) => {}
                Ok(Some(expanded)) => {
                    written = Some(std::mem::replace(&mut text, expanded));
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
        let kind = match Scalar::parse_from_cow_and_metadata(Cow::Owned(text), style, tag.as_ref())
        {
            Some(Scalar::Null) => Kind::Null,
            Some(Scalar::Boolean(b)) => Kind::Bool(b),
            Some(Scalar::Integer(i)) => Kind::Int(i),
            Some(Scalar::FloatingPoint(f)) => Kind::Float(f.into_inner()),
            Some(Scalar::String(s)) => Kind::Str(s.into_owned()),
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
        Node {
            pos: at,
            kind,
            written,
        }
    }
}

fn bad(at: Pos) -> Node {
    Node {
        pos: at,
        kind: Kind::Bad,
        written: None,
    }
}

impl<'input> SpannedEventReceiver<'input> for Builder<'_, '_, '_> {
    fn on_event(&mut self, ev: Event<'input>, span: Span) {
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
                            kind: Kind::Seq(items),
                            written: None,
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
                            kind: Kind::Map(entries),
                            written: None,
                        },
                        anchor,
                    ),
                    None => return,
                };
                self.insert(node, anchor);
            }
            Event::Scalar(text, style, anchor, tag) => {
                let node = self.scalar(text, style, tag, at);
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
pub(crate) fn parse(
    src: &str,
    env: &dyn Fn(&str) -> Option<String>,
    cx: &mut Cx<'_>,
) -> Option<Node> {
    let mut b = Builder {
        cx,
        env,
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
        written: None,
    }))
}
