//! Operator messages from templates such as `"Tank level high: {value} {unit}"`.
//!
//! Placeholders: `{name}`, `{value}`, `{unit}`, `{priority}`, `{state}`, `{time}`. Anything
//! else in braces — a typo, a placeholder of a later version, a literal brace — is copied as
//! written, so a message never fails to render and a mistake shows up in the text where someone
//! will notice it. The configuration crate may warn about unknown placeholders at load time.

use crate::alarm::AlarmState;
use crate::def::Priority;
use petra_core::{Timestamp, Value};
use std::fmt::Write;

/// What a message can refer to.
#[derive(Clone, Copy, Debug)]
pub struct MessageArgs<'a> {
    pub name: &'a str,
    /// `None` (nothing evaluated yet) renders as `?`.
    pub value: Option<&'a Value>,
    pub unit: &'a str,
    pub priority: Priority,
    pub state: AlarmState,
    /// RFC 3339 with milliseconds; `None` renders as `?`.
    pub time: Option<Timestamp>,
}

/// Renders `template`, replacing known placeholders and leaving everything else as it is.
pub fn render_message(template: &str, args: &MessageArgs<'_>) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            rest = &rest[open..];
            break;
        };
        let key = &after[..close];
        if !substitute(&mut out, key, args) {
            // Unknown: keep the opening brace and continue right after it, so `{{value}` still
            // renders its inner placeholder.
            out.push('{');
            rest = after;
            continue;
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

fn substitute(out: &mut String, key: &str, a: &MessageArgs<'_>) -> bool {
    match key {
        "name" => out.push_str(a.name),
        "unit" => out.push_str(a.unit),
        "priority" => out.push_str(a.priority.name()),
        "state" => out.push_str(a.state.name()),
        "value" => match a.value {
            // Strings without the quotes `Value`'s Display adds.
            Some(Value::String(s)) => out.push_str(s),
            // A float as an operator reads it: at most 3 decimals, no trailing zeros
            // (9.319999999999995 → 9.32), for messages, SMS and calls.
            Some(Value::Float(f)) if f.is_finite() => {
                let text = format!("{f:.3}");
                let text = text.trim_end_matches('0').trim_end_matches('.');
                out.push_str(if text == "-0" { "0" } else { text });
            }
            Some(v) => {
                let _ = write!(out, "{v}");
            }
            None => out.push('?'),
        },
        "time" => match a.time {
            Some(t) => out.push_str(&t.to_rfc3339_millis()),
            None => out.push('?'),
        },
        _ => return false,
    }
    true
}
