//! The `alarms:` and `notify:` sections.
//!
//! `alarms:` is a list of [`AlarmDef`]s: one condition each on a declared signal (`high`,
//! `high_high`, `low`, `low_low`, `equals`, `bad_quality`), its deadband and delays, priority,
//! message template, notification group, latch and suppression signal. Everything the alarm
//! model would otherwise accept silently and get wrong at run time is refused here, with a
//! position: a limit on a bool signal, `equals` on a float, a deadband on an equality, a
//! placeholder that would show literally in an SMS, a group that does not exist.
//!
//! `notify:` is the [`NotifyConfig`]: the Twilio account, the contacts and the escalation
//! groups, and the flood limits. Values are read here; [`NotifyConfig::validate`] then checks
//! the section as a whole and each of its findings (`notify.contacts[1].phone`) is reported at
//! the line of the value it names. What validation can only say about a whole list (an unknown
//! contact, an unknown or repeated channel, a repeated name) is reported here at the item
//! itself, and validation's own finding for that place is then left out, so each mistake gives
//! one message.

use crate::blocks::lookup_signal;
use crate::compile::Signals;
use crate::diag::{Cx, Pos};
use crate::walk::{self, MapW, expect_bool, expect_f64, expect_seq, expect_str};
use crate::yaml::{Kind, Node};
use petra_alarms::{AlarmDef, Condition, EqValue, Priority};
use petra_core::ValueType;
use petra_notify::{
    Channel, Contact, Group, Limits, NotifyConfig, NotifyError, Step, TwilioConfig,
};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// The condition keys of an alarm; exactly one is required.
pub(crate) const CONDITIONS: &[&str] = &[
    "high",
    "high_high",
    "low",
    "low_low",
    "equals",
    "bad_quality",
];
/// The names of [`Priority`], lowest first.
pub(crate) const PRIORITIES: &[&str] = &["low", "medium", "high", "critical"];
/// What an alarm message may refer to (`petra_alarms::render_message`).
pub(crate) const PLACEHOLDERS: &[&str] = &["name", "value", "unit", "priority", "state", "time"];
/// The names of [`Channel`].
pub(crate) const CHANNELS: &[&str] = &["sms", "voice"];

/// What the `notify:` section gave: the compiled section, and the group names alarms may refer
/// to.
pub(crate) struct NotifyOut {
    pub config: Option<NotifyConfig>,
    /// Declared group names, also of groups with errors. `None` when the list could not be
    /// read: references to groups are then not checked (they would all look unknown).
    groups: Option<Vec<String>>,
}

/// Reads `notify:` of the top level; `None` when there is no such section.
pub(crate) fn notify(cx: &mut Cx<'_>, top: &mut MapW<'_>) -> Option<NotifyOut> {
    top.get("notify")?;
    match top.opt_map(cx, "notify") {
        Some(m) => Some(notify_section(cx, m)),
        // Not a mapping: reported by `opt_map`.
        None => Some(NotifyOut {
            config: None,
            groups: None,
        }),
    }
}

/// Where the values of the section are written, by the paths [`NotifyConfig::validate`] uses
/// (`notify.groups[0].escalation[1].after`), and the places already reported.
#[derive(Default)]
struct Places {
    at: HashMap<String, Place>,
    /// Paths at which an error was reported here: validation's findings at them (or under
    /// them) repeat it or follow from a placeholder, and are left out.
    reported: HashSet<String>,
}

struct Place {
    pos: Pos,
    /// The value in messages: "`phone` of contact `alice`".
    what: String,
    /// For a value with `${…}` references: (expanded, as written), so messages show the latter.
    written: Option<(String, String)>,
}

impl Places {
    fn add(&mut self, path: &str, pos: Pos, what: impl Into<String>) {
        self.at.insert(
            path.to_string(),
            Place {
                pos,
                what: what.into(),
                written: None,
            },
        );
    }

    fn add_node(&mut self, path: &str, n: &Node, what: impl Into<String>) {
        let written = n.written().map(|w| {
            let expanded = match n.kind() {
                Kind::Str(s) => s.to_string(),
                Kind::Int(i) => i.to_string(),
                Kind::Float(f) => f.to_string(),
                Kind::Bool(b) => b.to_string(),
                _ => String::new(),
            };
            (expanded, w.to_string())
        });
        self.at.insert(
            path.to_string(),
            Place {
                pos: n.pos,
                what: what.into(),
                written,
            },
        );
    }

    fn reported(&mut self, path: &str) {
        self.reported.insert(path.to_string());
    }

    /// Whether `path` or a path above it was reported.
    fn is_reported(&self, path: &str) -> bool {
        let mut p = path;
        loop {
            if self.reported.contains(p) {
                return true;
            }
            match parent(p) {
                Some(up) => p = up,
                None => return false,
            }
        }
    }

    /// The place of `path`, or of the nearest path above it that has one.
    fn find(&self, path: &str) -> Option<(&Place, bool)> {
        let mut p = path;
        let mut exact = true;
        loop {
            if let Some(place) = self.at.get(p) {
                return Some((place, exact));
            }
            p = parent(p)?;
            exact = false;
        }
    }
}

/// `a.b[1].c` → `a.b[1]` → `a.b` → `a`.
fn parent(path: &str) -> Option<&str> {
    path.rfind(['.', '[']).map(|i| &path[..i])
}

/// A string value of `key` whose place is recorded under `path`. `phone`: an unquoted number
/// gets a hint to quote it.
fn text(
    cx: &mut Cx<'_>,
    m: &mut MapW<'_>,
    key: &'static str,
    required: bool,
    path: &str,
    places: &mut Places,
    phone: bool,
) -> Option<(String, Pos)> {
    let what = format!("`{key}` of {}", m.what);
    let n = if required { m.req(cx, key) } else { m.get(key) };
    let Some(n) = n else {
        if required {
            places.reported(path);
        }
        return None;
    };
    places.add_node(path, n, what.clone());
    if phone && let Kind::Int(_) | Kind::Float(_) = n.kind() {
        cx.err(
            n.pos,
            "wrong-type",
            format!(
                "{what} must be a string; quote the number (\"+15551230001\"): unquoted, YAML \
                 reads it as a number and drops the `+`"
            ),
        );
        places.reported(path);
        return None;
    }
    match expect_str(cx, n, &what) {
        Some(s) => Some((s.to_string(), n.pos)),
        None => {
            places.reported(path);
            None
        }
    }
}

/// The prefix of the system alarms Petra raises itself (docs/alarms.md); refused for
/// configured alarms.
pub const SYSTEM_PREFIX: &str = "petra.";

/// A name of the section (contact, group): the name rule, unique. `false` when it was reported.
fn section_name(
    cx: &mut Cx<'_>,
    name: &str,
    shown: &str,
    at: Pos,
    kind: &str,
    seen: &mut HashMap<String, usize>,
) -> bool {
    if !walk::check_name(cx, name, shown, at, kind) {
        return false;
    }
    if let Some(line) = seen.get(name) {
        cx.err(
            at,
            "duplicate-name",
            format!("{kind} `{shown}` is already declared at line {line}; rename one"),
        );
        return false;
    }
    seen.insert(name.to_string(), at.line);
    true
}

fn notify_section(cx: &mut Cx<'_>, mut m: MapW<'_>) -> NotifyOut {
    m.what = "`notify`".into();
    let mut places = Places::default();
    places.add("notify", m.pos, "`notify`");

    let twilio = twilio(cx, &mut m, &mut places);

    // Contacts: the names steps may page (`None`: the list could not be read).
    let mut contacts = Vec::new();
    let mut contact_names: Option<Vec<String>> = None;
    if let Some(n) = m.req(cx, "contacts") {
        places.add("notify.contacts", n.pos, "`contacts` of `notify`");
        if let Some(items) = expect_seq(cx, n, "`contacts` of `notify`") {
            if items.is_empty() {
                cx.err(
                    n.pos,
                    "missing-key",
                    "`contacts` of `notify` is empty; add the people to page, e.g. \
                     `- { name: alice, phone: \"+15551230001\" }`",
                );
            }
            let mut names = Vec::new();
            let mut seen = HashMap::new();
            for (i, it) in items.iter().enumerate() {
                let (c, named) = contact(cx, it, i, &mut places, &mut seen);
                if named {
                    names.push(c.name.clone());
                }
                contacts.push(c);
            }
            contact_names = Some(names);
        }
    }

    let mut groups = Vec::new();
    let mut group_names: Option<Vec<String>> = None;
    if let Some(n) = m.req(cx, "groups") {
        places.add("notify.groups", n.pos, "`groups` of `notify`");
        if let Some(items) = expect_seq(cx, n, "`groups` of `notify`") {
            if items.is_empty() {
                cx.err(
                    n.pos,
                    "missing-key",
                    "`groups` of `notify` is empty; add a group with its escalation, or remove \
                     `notify`",
                );
            }
            let mut names = Vec::new();
            let mut seen = HashMap::new();
            for (g, it) in items.iter().enumerate() {
                let (group, name) =
                    group(cx, it, g, contact_names.as_deref(), &mut places, &mut seen);
                if let Some(name) = name {
                    names.push(name);
                }
                groups.push(group);
            }
            group_names = Some(names);
        }
    }

    let limits = limits(cx, &mut m, &mut places);
    let section = m.pos;
    m.finish(cx);

    let config = NotifyConfig {
        twilio,
        contacts,
        groups,
        limits,
    };
    for e in config.validate() {
        let NotifyError::Config { path, reason } = e else {
            cx.err(section, "bad-value", format!("`notify`: {e}"));
            continue;
        };
        if places.is_reported(&path) {
            continue;
        }
        let (pos, msg) = match places.find(&path) {
            Some((place, exact)) => {
                let reason = match &place.written {
                    Some((expanded, written)) if !expanded.is_empty() => {
                        reason.replace(expanded.as_str(), written)
                    }
                    _ => reason,
                };
                let what = if exact {
                    place.what.clone()
                } else {
                    format!("`{path}`")
                };
                (place.pos, joined(&what, &reason))
            }
            None => (section, joined(&format!("`{path}`"), &reason)),
        };
        cx.err(pos, validate_code(&path), msg);
    }
    NotifyOut {
        config: Some(config),
        groups: group_names,
    }
}

/// "`x` is empty", "`x`: `y` is not …".
fn joined(what: &str, reason: &str) -> String {
    if reason.starts_with("is ") || reason.starts_with("has ") {
        format!("{what} {reason}")
    } else {
        format!("{what}: {reason}")
    }
}

/// The diagnostic code of a finding of [`NotifyConfig::validate`], by the place it names.
fn validate_code(path: &str) -> &'static str {
    if path.ends_with(".after") || path.ends_with(".repeat") || path.starts_with("notify.limits.") {
        "out-of-range"
    } else if path.ends_with(".escalation") {
        "missing-key"
    } else {
        "bad-value"
    }
}

fn twilio(cx: &mut Cx<'_>, m: &mut MapW<'_>, places: &mut Places) -> TwilioConfig {
    let mut out = TwilioConfig {
        account_sid: String::new(),
        auth_token: String::new(),
        from: String::new(),
        api_base: TwilioConfig::DEFAULT_API_BASE.to_string(),
    };
    let Some(n) = m.req(cx, "twilio") else {
        places.reported("notify.twilio");
        return out;
    };
    let Some(mut t) = MapW::new(cx, n, "`twilio` of `notify`") else {
        places.reported("notify.twilio");
        return out;
    };
    t.what = "`twilio`".into();
    places.add("notify.twilio", t.pos, "`twilio` of `notify`");
    let p = places;
    out.account_sid = text(
        cx,
        &mut t,
        "account_sid",
        true,
        "notify.twilio.account_sid",
        p,
        false,
    )
    .map(|v| v.0)
    .unwrap_or_default();
    out.auth_token = text(
        cx,
        &mut t,
        "auth_token",
        true,
        "notify.twilio.auth_token",
        p,
        false,
    )
    .map(|v| v.0)
    .unwrap_or_default();
    out.from = text(cx, &mut t, "from", true, "notify.twilio.from", p, true)
        .map(|v| v.0)
        .unwrap_or_default();
    if let Some((base, _)) = text(
        cx,
        &mut t,
        "api_base",
        false,
        "notify.twilio.api_base",
        p,
        false,
    ) {
        out.api_base = base;
    }
    t.finish(cx);
    out
}

/// Contact `i`; `true` when it has a name (steps naming it are not reported again, even when
/// the name itself was).
fn contact(
    cx: &mut Cx<'_>,
    n: &Node,
    i: usize,
    places: &mut Places,
    seen: &mut HashMap<String, usize>,
) -> (Contact, bool) {
    let path = format!("notify.contacts[{i}]");
    let mut out = Contact {
        name: String::new(),
        phone: String::new(),
    };
    let Some(mut c) = MapW::new(cx, n, format!("contact {}", i + 1)) else {
        places.reported(&path);
        return (out, false);
    };
    places.add(&path, c.pos, c.what.clone());
    let mut named = false;
    let name_path = format!("{path}.name");
    if let Some((name, at)) = text(cx, &mut c, "name", true, &name_path, places, false) {
        let shown = c.shown("name");
        c.what = format!("contact `{shown}`");
        if !section_name(cx, &name, &shown, at, "contact", seen) {
            places.reported(&name_path);
        }
        out.name = name;
        named = true;
    }
    let phone_path = format!("{path}.phone");
    if let Some((phone, _)) = text(cx, &mut c, "phone", true, &phone_path, places, true) {
        out.phone = phone;
    }
    c.finish(cx);
    (out, named)
}

/// Group `g`, and its name when it has one (alarms naming it are not reported again, even when
/// the name itself was).
fn group(
    cx: &mut Cx<'_>,
    n: &Node,
    g: usize,
    contacts: Option<&[String]>,
    places: &mut Places,
    seen: &mut HashMap<String, usize>,
) -> (Group, Option<String>) {
    let path = format!("notify.groups[{g}]");
    let mut out = Group {
        name: String::new(),
        escalation: Vec::new(),
        repeat: None,
    };
    let Some(mut m) = MapW::new(cx, n, format!("group {}", g + 1)) else {
        places.reported(&path);
        return (out, None);
    };
    places.add(&path, m.pos, m.what.clone());
    let mut named = None;
    let name_path = format!("{path}.name");
    if let Some((name, at)) = text(cx, &mut m, "name", true, &name_path, places, false) {
        let shown = m.shown("name");
        m.what = format!("group `{shown}`");
        named = Some(name.clone());
        if !section_name(cx, &name, &shown, at, "group", seen) {
            places.reported(&name_path);
        }
        out.name = name;
    }
    let what = m.what.clone();
    let esc_path = format!("{path}.escalation");
    if let Some(e) = m.req(cx, "escalation") {
        places.add(&esc_path, e.pos, format!("`escalation` of {what}"));
        match expect_seq(cx, e, &format!("`escalation` of {what}")) {
            Some([]) => {
                cx.err(
                    e.pos,
                    "missing-key",
                    format!(
                        "`escalation` of {what} has no step; add one, e.g. \
                         `- {{ after: 0s, contacts: [alice], via: [sms] }}`"
                    ),
                );
                places.reported(&esc_path);
            }
            Some(items) => {
                for (s, it) in items.iter().enumerate() {
                    let step_path = format!("{esc_path}[{s}]");
                    let step_what = format!("escalation step {} of {what}", s + 1);
                    out.escalation
                        .push(step(cx, it, &step_path, step_what, contacts, places));
                }
            }
            None => places.reported(&esc_path),
        }
    } else {
        places.reported(&esc_path);
    }
    let repeat_path = format!("{path}.repeat");
    if let Some(r) = m.get("repeat") {
        places.add_node(&repeat_path, r, format!("`repeat` of {what}"));
        match walk::expect_duration(cx, r, &format!("`repeat` of {what}")) {
            Some(d) => out.repeat = Some(d),
            None => places.reported(&repeat_path),
        }
    }
    m.finish(cx);
    (out, named)
}

fn step(
    cx: &mut Cx<'_>,
    n: &Node,
    path: &str,
    what: String,
    contacts: Option<&[String]>,
    places: &mut Places,
) -> Step {
    let mut out = Step {
        after: Duration::ZERO,
        contacts: Vec::new(),
        via: Vec::new(),
    };
    let Some(mut m) = MapW::new(cx, n, what) else {
        places.reported(path);
        return out;
    };
    places.add(path, m.pos, m.what.clone());
    let what = m.what.clone();

    let after_path = format!("{path}.after");
    match m.req(cx, "after") {
        Some(a) => {
            places.add_node(&after_path, a, format!("`after` of {what}"));
            match walk::expect_duration(cx, a, &format!("`after` of {what}")) {
                Some(d) => out.after = d,
                None => places.reported(&after_path),
            }
        }
        None => places.reported(&after_path),
    }

    let contacts_path = format!("{path}.contacts");
    let list_what = format!("`contacts` of {what}");
    match m.req(cx, "contacts") {
        Some(c) => {
            places.add(&contacts_path, c.pos, list_what.clone());
            let before = cx.diags.len();
            if let Some(items) = expect_seq(cx, c, &list_what) {
                if items.is_empty() {
                    cx.err(
                        c.pos,
                        "missing-key",
                        format!("{list_what} is empty; name at least one contact"),
                    );
                }
                for it in items {
                    let Some(name) = expect_str(cx, it, &format!("a contact in {list_what}"))
                    else {
                        continue;
                    };
                    if let Some(known) = contacts
                        && !known.iter().any(|k| k == name)
                    {
                        let names: Vec<&str> = known.iter().map(String::as_str).collect();
                        cx.err(
                            it.pos,
                            "unknown-contact",
                            format!(
                                "{list_what}: no contact `{}` is declared under \
                                 `notify.contacts`{}",
                                it.shown(),
                                match walk::close_names(name, &names).first() {
                                    Some(c) => format!("; did you mean `{c}`?"),
                                    None => "; add it there".into(),
                                }
                            ),
                        );
                    }
                    out.contacts.push(name.to_string());
                }
            }
            if cx.diags.len() != before {
                places.reported(&contacts_path);
            }
        }
        None => places.reported(&contacts_path),
    }

    let via_path = format!("{path}.via");
    let via_what = format!("`via` of {what}");
    match m.req(cx, "via") {
        Some(v) => {
            places.add(&via_path, v.pos, via_what.clone());
            let before = cx.diags.len();
            if let Some(items) = expect_seq(cx, v, &via_what) {
                if items.is_empty() {
                    cx.err(
                        v.pos,
                        "missing-key",
                        format!("{via_what} is empty; give `sms`, `voice` or both"),
                    );
                }
                for it in items {
                    let Some(name) = expect_str(cx, it, &format!("a channel in {via_what}")) else {
                        continue;
                    };
                    match Channel::parse(name) {
                        Some(ch) if out.via.contains(&ch) => cx.err(
                            it.pos,
                            "bad-value",
                            format!("{via_what} lists `{ch}` twice; remove one"),
                        ),
                        Some(ch) => out.via.push(ch),
                        None => cx.err(
                            it.pos,
                            "bad-value",
                            format!(
                                "unknown channel `{}` in {via_what}; channels are {}{}",
                                it.shown(),
                                walk::list(CHANNELS),
                                walk::did_you_mean(name, CHANNELS)
                            ),
                        ),
                    }
                }
            }
            if cx.diags.len() != before {
                places.reported(&via_path);
            }
        }
        None => places.reported(&via_path),
    }
    m.finish(cx);
    out
}

fn limits(cx: &mut Cx<'_>, m: &mut MapW<'_>, places: &mut Places) -> Limits {
    let mut out = Limits::default();
    let present = m.get("limits").is_some();
    let Some(mut l) = m.opt_map(cx, "limits") else {
        if present {
            places.reported("notify.limits");
        }
        return out;
    };
    l.what = "`limits`".into();
    places.add("notify.limits", l.pos, "`limits` of `notify`");
    let mut count = |cx: &mut Cx<'_>, l: &mut MapW<'_>, key: &'static str| -> Option<u32> {
        let path = format!("notify.limits.{key}");
        let (v, at) = l.opt_i64(cx, key)?;
        places.add(&path, at, format!("`{key}` of `limits`"));
        match u32::try_from(v) {
            Ok(v) => Some(v),
            Err(_) => {
                cx.err(
                    at,
                    "out-of-range",
                    format!(
                        "`{key}` of `limits` is {v}; it must be between 1 and {}",
                        u32::MAX
                    ),
                );
                places.reported(&path);
                None
            }
        }
    };
    if let Some(v) = count(cx, &mut l, "max_per_contact") {
        out.max_per_contact = v;
    }
    match count(cx, &mut l, "flood_threshold") {
        Some(0) => {
            let at = l.get("flood_threshold").map_or(l.pos, |n| n.pos);
            cx.err(
                at,
                "out-of-range",
                "`flood_threshold` of `limits` is 0; it must be at least 1 (more alarms than \
                 this due at once for one contact go out as one summary)",
            );
            places.reported("notify.limits.flood_threshold");
        }
        Some(v) => out.flood_threshold = v as usize,
        None => {}
    }
    if let Some((w, at)) = l.opt_duration(cx, "window") {
        places.add("notify.limits.window", at, "`window` of `limits`");
        if w.is_zero() {
            cx.err(
                at,
                "out-of-range",
                "`window` of `limits` is 0; give the period `max_per_contact` counts over, \
                 e.g. 10m",
            );
            places.reported("notify.limits.window");
        }
        out.window = w;
    }
    l.finish(cx);
    out
}

/// Reads `alarms:` of the top level, in declaration order.
pub(crate) fn alarms(
    cx: &mut Cx<'_>,
    top: &mut MapW<'_>,
    sigs: &Signals,
    notify: Option<&NotifyOut>,
) -> Vec<AlarmDef> {
    let Some(n) = top.get("alarms") else {
        return Vec::new();
    };
    let Some(items) = expect_seq(cx, n, "`alarms`") else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    let mut seen = HashMap::new();
    for (i, it) in items.iter().enumerate() {
        if let Some(a) = alarm(cx, it, i, sigs, notify, &mut seen) {
            out.push(a);
        }
    }
    out
}

fn alarm(
    cx: &mut Cx<'_>,
    n: &Node,
    i: usize,
    sigs: &Signals,
    notify: Option<&NotifyOut>,
    seen: &mut HashMap<String, usize>,
) -> Option<AlarmDef> {
    let errors_before = cx.diags.len();
    let mut m = MapW::new(cx, n, format!("alarms item {}", i + 1))?;
    let pos = m.pos;
    let name = m.req_str(cx, "name");
    let shown = m.shown("name");
    if name.is_some() {
        m.what = format!("alarm `{shown}`");
    }
    let what = m.what.clone();
    if let Some((nm, at)) = name
        && section_name(cx, nm, &shown, at, "alarm", seen)
        && nm.starts_with(SYSTEM_PREFIX)
    {
        cx.err(
            at,
            "bad-name",
            format!(
                "alarm names starting with `{SYSTEM_PREFIX}` are Petra's own system alarms; rename `{shown}`"
            ),
        );
    }
    let signal = m
        .req(cx, "signal")
        .and_then(|s| lookup_signal(cx, sigs, s, &format!("`signal` of {what}")));
    let sig = signal.map(|(id, ty)| (ty, sigs.list[id.index()].plan.def.name.as_str()));

    let given: Vec<(&'static str, &Node, &Node)> = CONDITIONS
        .iter()
        .filter_map(|c| m.entry(c).map(|(k, v)| (*c, k, v)))
        .collect();
    let condition = match given.as_slice() {
        [] => {
            cx.err(
                pos,
                "missing-key",
                format!(
                    "{what} needs a condition: one of {}",
                    walk::list(CONDITIONS)
                ),
            );
            None
        }
        [(key, _, v), rest @ ..] => {
            for (other, k, _) in rest {
                cx.err(
                    k.pos,
                    "bad-value",
                    format!(
                        "{what} has both `{key}` and `{other}`; an alarm watches one condition \
                         — declare a second alarm for `{other}`"
                    ),
                );
            }
            condition(cx, key, v, sig, &what)
        }
    };

    let deadband = match m.opt_f64(cx, "deadband") {
        None => 0.0,
        Some((d, at)) => {
            match given.first() {
                Some((key @ ("equals" | "bad_quality"), _, _)) => cx.err(
                    at,
                    "bad-value",
                    format!(
                        "`deadband` of {what} applies to `high`, `high_high`, `low` and \
                         `low_low` only; an `{key}` condition has no hysteresis — remove it"
                    ),
                ),
                _ if !(d.is_finite() && d >= 0.0) => cx.err(
                    at,
                    "out-of-range",
                    format!("`deadband` of {what} is {d}; it must be a finite number ≥ 0"),
                ),
                _ => {}
            }
            d
        }
    };
    let on_delay = m.opt_duration(cx, "on_delay").map(|d| d.0);
    let off_delay = m.opt_duration(cx, "off_delay").map(|d| d.0);
    let priority = match m.opt_str(cx, "priority") {
        None => Some(Priority::Medium),
        Some((p, at)) => {
            let parsed = Priority::parse(p);
            if parsed.is_none() {
                cx.err(
                    at,
                    "bad-value",
                    format!(
                        "`priority` of {what} is `{}`; use {}{}",
                        m.shown("priority"),
                        walk::list(PRIORITIES),
                        walk::did_you_mean(p, PRIORITIES)
                    ),
                );
            }
            parsed
        }
    };
    let message = m.opt_str(cx, "message").map(|(text, at)| {
        for p in unknown_placeholders(text) {
            let hint = match walk::close_names(p.trim(), PLACEHOLDERS).first() {
                Some(c) => format!("; did you mean `{{{c}}}`?"),
                None => String::new(),
            };
            let known: Vec<String> = PLACEHOLDERS.iter().map(|k| format!("{{{k}}}")).collect();
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            cx.err(
                at,
                "bad-value",
                format!(
                    "`message` of {what} has the unknown placeholder `{{{p}}}`, which would be \
                     sent as written; placeholders are {}{hint}",
                    walk::list(&known)
                ),
            );
        }
        text.to_string()
    });
    let group = m.get("notify").and_then(|g| {
        let group = expect_str(cx, g, &format!("`notify` of {what}"))?;
        let msg = match notify {
            None => Some(format!(
                "{what} notifies group `{}`, but there is no `notify` section; add one with \
                 this group under `groups`, or remove `notify` from the alarm",
                g.shown()
            )),
            Some(NotifyOut {
                groups: Some(groups),
                ..
            }) if !groups.iter().any(|x| x == group) => {
                let names: Vec<&str> = groups.iter().map(String::as_str).collect();
                Some(format!(
                    "{what} notifies group `{}`, which is not declared under `notify.groups`{}",
                    g.shown(),
                    match walk::close_names(group, &names).first() {
                        Some(c) => format!("; did you mean `{c}`?"),
                        None if names.is_empty() => String::new(),
                        None => format!("; groups are {}", walk::list(&names)),
                    }
                ))
            }
            Some(_) => None,
        };
        if let Some(msg) = msg {
            cx.err(g.pos, "unknown-group", msg);
        }
        Some(group.to_string())
    });
    let latch = m.opt_bool(cx, "latch").unwrap_or(false);
    let suppress_by = m.get("suppress_by").and_then(|s| {
        let (id, ty) = lookup_signal(cx, sigs, s, &format!("`suppress_by` of {what}"))?;
        if ty != ValueType::Bool {
            cx.err(
                s.pos,
                "type-mismatch",
                format!(
                    "`suppress_by` of {what} takes a bool signal (true suppresses the alarm), \
                     but signal `{}` is {ty}; use a bool signal such as `pump.stopped`",
                    s.shown()
                ),
            );
            return None;
        }
        Some(id)
    });
    m.finish(cx);

    if cx.diags.len() != errors_before {
        return None;
    }
    let (Some((name, _)), Some((signal, _)), Some(condition), Some(priority)) =
        (name, signal, condition, priority)
    else {
        return None;
    };
    let mut def = AlarmDef::new(name, signal, condition);
    def.deadband = deadband;
    def.on_delay = on_delay.unwrap_or_default();
    def.off_delay = off_delay.unwrap_or_default();
    def.priority = priority;
    if let Some(message) = message {
        def.message = message;
    }
    def.notify = group;
    def.latch = latch;
    def.suppress_by = suppress_by;
    if let Err(e) = def.validate() {
        cx.err(pos, "bad-value", e.to_string());
        return None;
    }
    Some(def)
}

/// The condition under `key` (one of [`CONDITIONS`]) on a signal of type `sig.0` named
/// `sig.1` (`None`: the signal was not found, only the value is checked).
fn condition(
    cx: &mut Cx<'_>,
    key: &str,
    v: &Node,
    sig: Option<(ValueType, &str)>,
    what: &str,
) -> Option<Condition> {
    let desc = format!("`{key}` of {what}");
    match key {
        "bad_quality" => {
            if expect_bool(cx, v, &desc)? {
                Some(Condition::BadQuality)
            } else {
                cx.err(
                    v.pos,
                    "bad-value",
                    format!("{desc} can only be `true`; write `bad_quality: true` or remove it"),
                );
                None
            }
        }
        "equals" => {
            let (ty, sig) = sig?;
            equals(cx, v, ty, sig, &desc).map(Condition::Equals)
        }
        _ => {
            let limit = expect_f64(cx, v, &desc)?;
            if !limit.is_finite() {
                cx.err(
                    v.pos,
                    "out-of-range",
                    format!("{desc} is {limit}; give a finite number"),
                );
                return None;
            }
            let (ty, sig) = sig?;
            if !ty.is_numeric() {
                let hint = match ty {
                    ValueType::Bool => "for a bool signal use `equals: true` (or `false`)",
                    _ => "a string signal can only have a `bad_quality: true` alarm",
                };
                cx.err(
                    v.pos,
                    "type-mismatch",
                    format!("{desc} is a limit for int and float signals, but signal `{sig}` is {ty}; {hint}"),
                );
                return None;
            }
            Some(match key {
                "high" => Condition::High(limit),
                "high_high" => Condition::HighHigh(limit),
                "low" => Condition::Low(limit),
                _ => Condition::LowLow(limit),
            })
        }
    }
}

/// The target of `equals`: a bool for a bool signal, an int for an int signal.
fn equals(cx: &mut Cx<'_>, v: &Node, ty: ValueType, sig: &str, desc: &str) -> Option<EqValue> {
    const FLOATS: &str = "equality on floats is unreliable — use `high` or `low` (with a deadband)";
    match (ty, v.kind()) {
        (ValueType::Bool, Kind::Bool(b)) => return Some(EqValue::Bool(*b)),
        (ValueType::Int, Kind::Int(i)) => return Some(EqValue::Int(*i)),
        (_, Kind::Bad) => {}
        (ValueType::Float, _) => cx.err(
            v.pos,
            "type-mismatch",
            format!("{desc} compares bool and int signals, but signal `{sig}` is float; {FLOATS}"),
        ),
        (ValueType::String, _) => cx.err(
            v.pos,
            "type-mismatch",
            format!(
                "{desc} compares bool and int signals, but signal `{sig}` is string; alarms on \
                 strings are not supported — compare in a block and alarm on its bool output"
            ),
        ),
        (ty, k) => {
            let hint = match k {
                Kind::Float(_) => format!("; {FLOATS}"),
                _ => String::new(),
            };
            cx.err(
                v.pos,
                "wrong-type",
                format!(
                    "{desc} must be {} like signal `{sig}`, found {}{hint}",
                    if ty == ValueType::Bool {
                        "a bool (true or false)"
                    } else {
                        "an int"
                    },
                    v.kind_name()
                ),
            );
        }
    }
    None
}

/// The `{…}` in `template` that look like placeholders (letters, digits and `_`, maybe with
/// spaces around) but are not known ones, as written between the braces. Read the way
/// `render_message` reads it, so `{{value}` is a literal `{` and a placeholder; braces around
/// anything else are text.
pub(crate) fn unknown_placeholders(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        let key = &after[..close];
        let word = key.trim();
        if PLACEHOLDERS.contains(&key) {
            rest = &after[close + 1..];
        } else if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push(key);
            rest = &after[close + 1..];
        } else {
            rest = after;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_read_like_the_renderer() {
        assert!(
            unknown_placeholders("{name}: {value} {unit} {priority} {state} {time}").is_empty()
        );
        assert_eq!(
            unknown_placeholders("{vlaue} {unit} {x_1}"),
            ["vlaue", "x_1"]
        );
        assert_eq!(unknown_placeholders("{ value }"), [" value "]);
        // A literal brace before a placeholder, JSON-ish text, empty and unclosed braces.
        assert!(unknown_placeholders("{{value}").is_empty());
        assert!(unknown_placeholders("{\"a\": 1} {} {value").is_empty());
    }

    #[test]
    fn names_match_the_models() {
        let p: Vec<&str> = Priority::ALL.iter().map(|p| p.name()).collect();
        assert_eq!(p, PRIORITIES);
        let c: Vec<&str> = Channel::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(c, CHANNELS);
        assert_eq!(
            parent("notify.groups[0].escalation[1].after"),
            Some("notify.groups[0].escalation[1]")
        );
        assert_eq!(parent("notify.groups[0]"), Some("notify.groups"));
        assert_eq!(parent("notify"), None);
    }
}
