//! What a notification says.
//!
//! The alarm's own message comes from its `message:` template, rendered by the alarm model
//! ([`petra_alarms::render_message`]: `{name}`, `{value}`, `{unit}`, `{priority}`, `{state}`,
//! `{time}`). This module only frames it for a phone: priority and alarm name first (a lock
//! screen shows the first line), "REMINDER" on repeated cycles, a bounded length (a long SMS is
//! billed per 153-character segment and a voice call must stay short), and one summary text for
//! a flood. Voice text spells identifiers as words (`tank_high` → "tank high") because a
//! text-to-speech engine reads underscores aloud.

use crate::planner::AlarmInfo;
use petra_alarms::Priority;
use std::fmt::Write;

/// Longest SMS body, in characters (three segments at most).
pub const SMS_MAX_CHARS: usize = 459;
/// Longest spoken text, in characters (well under Twilio's 4000-character TwiML limit, and
/// about a minute of speech).
pub const VOICE_MAX_CHARS: usize = 800;
/// How many alarm names a summary lists before "(+N more)".
pub const SUMMARY_NAMES: usize = 3;

/// The SMS for one alarm: `HIGH tank_high: Tank level high: 9.3 m`, with `REMINDER ` in front
/// from the second cycle on.
pub fn sms_text(alarm: &AlarmInfo, cycle: u32) -> String {
    let mut s = String::new();
    if cycle > 0 {
        s.push_str("REMINDER ");
    }
    let _ = write!(
        s,
        "{} {}: {}",
        alarm.priority.name().to_uppercase(),
        alarm.name,
        alarm.message
    );
    truncate(s, SMS_MAX_CHARS)
}

/// The spoken text for one alarm: `Petra alarm, priority high: tank high. Tank level high: 9.3
/// m. Please acknowledge.`
pub fn voice_text(alarm: &AlarmInfo, cycle: u32) -> String {
    let mut s = String::new();
    if cycle > 0 {
        s.push_str("Reminder. ");
    }
    let _ = write!(
        s,
        "Petra alarm, priority {}: {}. {}. Please acknowledge.",
        alarm.priority.name(),
        speakable(&alarm.name),
        alarm.message.trim_end_matches('.')
    );
    truncate(s, VOICE_MAX_CHARS)
}

/// One message for many alarms, highest priority first:
/// `12 alarms, highest critical: tank_high, pump_fail, door_open, … (+9 more)`.
/// `alarms` is in the order to list them; it must not be empty.
pub fn summary_text(alarms: &[(&str, Priority)], channel: crate::Channel) -> String {
    let highest = alarms
        .iter()
        .map(|(_, p)| *p)
        .max()
        .unwrap_or(Priority::Low);
    let shown: Vec<&str> = alarms.iter().take(SUMMARY_NAMES).map(|(n, _)| *n).collect();
    let more = alarms.len().saturating_sub(SUMMARY_NAMES);
    match channel {
        crate::Channel::Sms => {
            let mut s = format!(
                "{} alarms, highest {}: {}",
                alarms.len(),
                highest.name(),
                shown.join(", ")
            );
            if more > 0 {
                let _ = write!(s, ", … (+{more} more)");
            }
            truncate(s, SMS_MAX_CHARS)
        }
        crate::Channel::Voice => {
            let names: Vec<String> = shown.iter().map(|n| speakable(n)).collect();
            let mut s = format!(
                "Petra: {} alarms, highest priority {}: {}",
                alarms.len(),
                highest.name(),
                names.join(", ")
            );
            if more > 0 {
                let _ = write!(s, ", and {more} more");
            }
            s.push_str(". Please check the alarm list.");
            truncate(s, VOICE_MAX_CHARS)
        }
    }
}

/// TwiML that speaks `text` twice (whoever answers often misses the start).
pub fn twiml(text: &str) -> String {
    format!(
        "<Response><Say loop=\"2\">{}</Say></Response>",
        xml_escape(text)
    )
}

/// Escapes the five XML special characters; drops control characters XML 1.0 does not allow.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// `tank.level_high` → `tank level high`.
fn speakable(name: &str) -> String {
    name.replace(['_', '.', '-'], " ")
}

/// Cuts `s` to at most `max` characters, ending in `…` when cut.
fn truncate(mut s: String, max: usize) -> String {
    if let Some((cut, _)) = s.char_indices().nth(max.saturating_sub(1))
        && s[cut..].chars().nth(1).is_some()
    {
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Channel;
    use std::sync::Arc;

    fn info(name: &str, message: &str) -> AlarmInfo {
        AlarmInfo {
            name: Arc::from(name),
            priority: Priority::High,
            message: message.into(),
        }
    }

    #[test]
    fn sms_and_voice_texts() {
        let a = info("tank_high", "Tank level high: 9.3 m");
        assert_eq!(sms_text(&a, 0), "HIGH tank_high: Tank level high: 9.3 m");
        assert_eq!(
            sms_text(&a, 2),
            "REMINDER HIGH tank_high: Tank level high: 9.3 m"
        );
        assert_eq!(
            voice_text(&a, 0),
            "Petra alarm, priority high: tank high. Tank level high: 9.3 m. Please acknowledge."
        );
        assert!(voice_text(&a, 1).starts_with("Reminder. Petra alarm"));
    }

    #[test]
    fn long_texts_are_cut_on_a_character_boundary() {
        let a = info("x", &"ü".repeat(1000));
        let s = sms_text(&a, 0);
        assert_eq!(s.chars().count(), SMS_MAX_CHARS);
        assert!(s.ends_with('…'));
        assert_eq!(truncate("abc".into(), 3), "abc");
        assert_eq!(truncate("abcd".into(), 3), "ab…");
    }

    #[test]
    fn summaries_list_a_few_names_and_count_the_rest() {
        let alarms = [
            ("tank_high", Priority::Critical),
            ("pump_fail", Priority::High),
            ("door_open", Priority::Low),
            ("a", Priority::Low),
            ("b", Priority::Low),
        ];
        assert_eq!(
            summary_text(&alarms, Channel::Sms),
            "5 alarms, highest critical: tank_high, pump_fail, door_open, … (+2 more)"
        );
        assert_eq!(
            summary_text(&alarms[..2], Channel::Sms),
            "2 alarms, highest critical: tank_high, pump_fail"
        );
        assert_eq!(
            summary_text(&alarms, Channel::Voice),
            "Petra: 5 alarms, highest priority critical: tank high, pump fail, door open, and 2 \
             more. Please check the alarm list."
        );
    }

    #[test]
    fn twiml_escapes_the_text() {
        assert_eq!(
            twiml("a<b & \"c\" 'd'>\u{7}"),
            "<Response><Say loop=\"2\">a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;</Say></Response>"
        );
    }
}
