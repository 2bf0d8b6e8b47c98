//! The compiled `notify:` section (spec.md, section 2) and its validation.
//!
//! ```yaml
//! notify:
//!   twilio:
//!     account_sid: ${TWILIO_ACCOUNT_SID}
//!     auth_token: ${TWILIO_AUTH_TOKEN}
//!     from: "+15005550006"
//!     api_base: https://api.twilio.com  # overridable for tests
//!   contacts:
//!     - { name: alice, phone: "+15551230001" }
//!     - { name: bob, phone: "+15551230002" }
//!   groups:
//!     - name: oncall
//!       escalation:
//!         - { after: 0s, contacts: [alice], via: [sms] }
//!         - { after: 10m, contacts: [bob], via: [sms, voice] }
//!       repeat: 30m
//! ```
//!
//! The configuration crate parses the YAML (with positions for its error messages) and builds
//! these plain types; [`NotifyConfig::validate`] then checks everything that would otherwise
//! surface only when the first alarm should have paged someone — at three in the morning. The
//! single-value checks ([`is_e164`], [`is_account_sid`]) are public so the compiler can point at
//! the offending line itself.
//!
//! [`Limits`] are not in the YAML of spec.md; their defaults (5 messages per contact per 10
//! minutes, a summary when more than 3 alarms are due at once) are what keeps an alarm flood
//! from sending hundreds of messages.

use crate::error::NotifyError;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

/// How a contact is notified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A text message (`Messages.json`).
    Sms,
    /// A phone call that speaks the message (`Calls.json` with TwiML).
    Voice,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Channel::Sms, Channel::Voice];

    /// `sms` / `voice`: the configuration's `via` names and the metric's `channel` label.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Voice => "voice",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.name() == s)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The whole `notify:` section.
#[derive(Clone, Debug, PartialEq)]
pub struct NotifyConfig {
    pub twilio: TwilioConfig,
    pub contacts: Vec<Contact>,
    pub groups: Vec<Group>,
    pub limits: Limits,
}

/// `notify.twilio`. `Debug` does not show the auth token, so the config can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct TwilioConfig {
    /// `AC` and 32 hex digits.
    pub account_sid: String,
    pub auth_token: String,
    /// The Twilio number messages and calls come from (E.164).
    pub from: String,
    /// `https://api.twilio.com` in production; a mock's `http://127.0.0.1:PORT` in tests.
    pub api_base: String,
}

impl TwilioConfig {
    pub const DEFAULT_API_BASE: &'static str = "https://api.twilio.com";
}

impl fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .field("from", &self.from)
            .field("api_base", &self.api_base)
            .finish()
    }
}

/// `notify.contacts[]`: someone who can be paged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    pub name: String,
    /// E.164 (`+15551230001`).
    pub phone: String,
}

/// `notify.groups[]`: whom an alarm with `notify: NAME` pages, in which order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    /// In order of `after` (non-decreasing).
    pub escalation: Vec<Step>,
    /// Start the whole escalation again this long after the previous cycle started, until the
    /// alarm is acknowledged; `None`: one cycle only. Longer than the last step's `after`.
    pub repeat: Option<Duration>,
}

/// One escalation step: `after` the alarm was raised (within a cycle), page `contacts` `via`
/// each channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub after: Duration,
    /// Contact names.
    pub contacts: Vec<String>,
    pub via: Vec<Channel>,
}

/// Protection against paging storms (not in the YAML of spec.md yet; the defaults apply).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// At most this many messages (SMS and calls together) per contact per [`Limits::window`];
    /// what is due beyond that is held and goes out, summarized, when the window allows.
    pub max_per_contact: u32,
    pub window: Duration,
    /// More than this many alarms due for one contact and channel at once are sent as one
    /// summary message ("12 alarms: tank_high, pump_fail, … (+9 more)").
    pub flood_threshold: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_per_contact: 5,
            window: Duration::from_secs(600),
            flood_threshold: 3,
        }
    }
}

/// Whether `s` is an E.164 phone number: `+`, a non-zero digit, at most 15 digits in all.
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Whether `s` is a Twilio account SID: `AC` and 32 hex digits (`^AC[0-9a-fA-F]{32}$`, the
/// pattern of Twilio's API description).
pub fn is_account_sid(s: &str) -> bool {
    s.len() == 34 && s.starts_with("AC") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks `api_base`: an absolute http(s) URL with a host; plain http only to a loopback host
/// (a test mock), since the request carries the auth token.
pub(crate) fn check_api_base(api_base: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(api_base)
        .map_err(|e| format!("`{api_base}` is not a URL ({e}); use https://api.twilio.com"))?;
    let Some(host) = url.host_str() else {
        return Err(format!("`{api_base}` has no host"));
    };
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(host) => {}
        "http" => {
            return Err(format!(
                "`{api_base}` is plain http to a remote host, which would send the auth token \
                 in clear; use https (plain http is for a local test mock only)"
            ));
        }
        other => return Err(format!("`{api_base}`: scheme `{other}` is not http(s)")),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "`{api_base}` has a query or fragment; give only scheme, host, port and path"
        ));
    }
    Ok(url)
}

pub(crate) fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl NotifyConfig {
    /// Every problem in the section, each naming its place (`notify.groups[0].escalation[1]`);
    /// empty when the section is usable.
    pub fn validate(&self) -> Vec<NotifyError> {
        let mut errors = Vec::new();
        let mut err = |path: String, reason: String| errors.push(NotifyError::config(path, reason));

        let t = &self.twilio;
        if !is_account_sid(&t.account_sid) {
            err(
                "notify.twilio.account_sid".into(),
                format!(
                    "`{}` is not a Twilio account SID (AC followed by 32 hex digits); copy it \
                     from the Twilio console",
                    t.account_sid
                ),
            );
        }
        if t.auth_token.is_empty() {
            err(
                "notify.twilio.auth_token".into(),
                "is empty; set it (usually from ${TWILIO_AUTH_TOKEN})".into(),
            );
        }
        if !is_e164(&t.from) {
            err(
                "notify.twilio.from".into(),
                format!(
                    "`{}` is not an E.164 phone number (like +15005550006)",
                    t.from
                ),
            );
        }
        if let Err(reason) = check_api_base(&t.api_base) {
            err("notify.twilio.api_base".into(), reason);
        }

        let mut contacts = HashSet::new();
        for (i, c) in self.contacts.iter().enumerate() {
            if c.name.is_empty() {
                err(format!("notify.contacts[{i}].name"), "is empty".into());
            } else if !contacts.insert(c.name.as_str()) {
                err(
                    format!("notify.contacts[{i}].name"),
                    format!("contact `{}` is defined twice", c.name),
                );
            }
            if !is_e164(&c.phone) {
                err(
                    format!("notify.contacts[{i}].phone"),
                    format!(
                        "`{}` is not an E.164 phone number (+, country code, number, no spaces)",
                        c.phone
                    ),
                );
            }
        }

        let mut groups = HashSet::new();
        for (g, group) in self.groups.iter().enumerate() {
            let at = format!("notify.groups[{g}]");
            if group.name.is_empty() {
                err(format!("{at}.name"), "is empty".into());
            } else if !groups.insert(group.name.as_str()) {
                err(
                    format!("{at}.name"),
                    format!("group `{}` is defined twice", group.name),
                );
            }
            if group.escalation.is_empty() {
                err(
                    format!("{at}.escalation"),
                    "has no step; a group must page someone".into(),
                );
            }
            let mut previous = Duration::ZERO;
            for (s, step) in group.escalation.iter().enumerate() {
                let at = format!("{at}.escalation[{s}]");
                if step.after < previous {
                    err(
                        format!("{at}.after"),
                        format!(
                            "{:?} is earlier than the step before it ({previous:?}); list steps in \
                             the order they fire",
                            step.after
                        ),
                    );
                }
                previous = previous.max(step.after);
                if step.contacts.is_empty() {
                    err(format!("{at}.contacts"), "is empty".into());
                }
                for name in &step.contacts {
                    if !self.contacts.iter().any(|c| &c.name == name) {
                        err(
                            format!("{at}.contacts"),
                            format!("contact `{name}` is not defined under notify.contacts"),
                        );
                    }
                }
                if step.via.is_empty() {
                    err(
                        format!("{at}.via"),
                        "is empty; give sms and/or voice".into(),
                    );
                }
                let mut seen = HashSet::new();
                for ch in &step.via {
                    if !seen.insert(ch) {
                        err(format!("{at}.via"), format!("`{ch}` is listed twice"));
                    }
                }
            }
            if let Some(repeat) = group.repeat
                && repeat <= previous
            {
                err(
                    format!("{at}.repeat"),
                    format!(
                        "{repeat:?} must be longer than the last step's `after` ({previous:?}): \
                         a cycle starts again `repeat` after the previous one started"
                    ),
                );
            }
        }

        let l = &self.limits;
        if l.max_per_contact == 0 {
            err(
                "notify.limits.max_per_contact".into(),
                "is 0, which would never page anyone".into(),
            );
        }
        if l.window.is_zero() {
            err("notify.limits.window".into(), "is 0".into());
        }
        if l.flood_threshold == 0 {
            err("notify.limits.flood_threshold".into(), "is 0".into());
        }
        errors
    }
}

/// The example of spec.md, for tests.
#[cfg(test)]
pub(crate) fn spec_example() -> NotifyConfig {
    NotifyConfig {
        twilio: TwilioConfig {
            account_sid: "AC0123456789abcdef0123456789ABCDEF".into(),
            auth_token: "secret-token".into(),
            from: "+15005550006".into(),
            api_base: TwilioConfig::DEFAULT_API_BASE.into(),
        },
        contacts: vec![
            Contact {
                name: "alice".into(),
                phone: "+15551230001".into(),
            },
            Contact {
                name: "bob".into(),
                phone: "+15551230002".into(),
            },
        ],
        groups: vec![Group {
            name: "oncall".into(),
            escalation: vec![
                Step {
                    after: Duration::ZERO,
                    contacts: vec!["alice".into()],
                    via: vec![Channel::Sms],
                },
                Step {
                    after: Duration::from_secs(600),
                    contacts: vec!["bob".into()],
                    via: vec![Channel::Sms, Channel::Voice],
                },
            ],
            repeat: Some(Duration::from_secs(1800)),
        }],
        limits: Limits::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(c: &NotifyConfig) -> Vec<String> {
        c.validate()
            .into_iter()
            .map(|e| match e {
                NotifyError::Config { path, .. } => path,
                other => panic!("unexpected {other}"),
            })
            .collect()
    }

    #[test]
    fn the_spec_example_is_valid() {
        assert_eq!(spec_example().validate(), vec![]);
    }

    #[test]
    fn phone_numbers_and_sids() {
        for ok in ["+15551230001", "+491701234567", "+12"] {
            assert!(is_e164(ok), "{ok}");
        }
        for bad in [
            "15551230001",
            "+0555123",
            "+1 555 123",
            "+1234567890123456",
            "+",
            "+1",
            "",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
        assert!(is_account_sid("AC0123456789abcdef0123456789ABCDEF"));
        for bad in [
            "AC0123456789abcdef0123456789abcde",
            "AC0123456789abcdef0123456789abcdeg",
            "SK0123456789abcdef0123456789abcdef",
            "ac0123456789abcdef0123456789abcdef",
            "",
        ] {
            assert!(!is_account_sid(bad), "{bad}");
        }
    }

    #[test]
    fn api_base_must_be_https_except_to_loopback() {
        for ok in [
            "https://api.twilio.com",
            "http://127.0.0.1:4010",
            "http://localhost:1",
            "http://[::1]:8080",
        ] {
            assert!(check_api_base(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.twilio.com",
            "api.twilio.com",
            "ftp://x",
            "https://x/?a=b",
        ] {
            assert!(check_api_base(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let mut c = spec_example();
        c.twilio.account_sid = "ACnope".into();
        c.twilio.auth_token.clear();
        c.twilio.from = "5005550006".into();
        c.twilio.api_base = "http://api.twilio.com".into();
        c.contacts[1].phone = "+1 555".into();
        c.contacts.push(Contact {
            name: "alice".into(),
            phone: "+15551230003".into(),
        });
        let g = &mut c.groups[0];
        g.escalation[1].contacts.push("carol".into());
        g.escalation[1].via.push(Channel::Sms);
        g.escalation[0].after = Duration::from_secs(700);
        g.repeat = Some(Duration::from_secs(600));
        c.limits.max_per_contact = 0;
        assert_eq!(
            paths(&c),
            [
                "notify.twilio.account_sid",
                "notify.twilio.auth_token",
                "notify.twilio.from",
                "notify.twilio.api_base",
                "notify.contacts[1].phone",
                "notify.contacts[2].name",
                "notify.groups[0].escalation[1].after",
                "notify.groups[0].escalation[1].contacts",
                "notify.groups[0].escalation[1].via",
                "notify.groups[0].repeat",
                "notify.limits.max_per_contact",
            ]
        );
        let msg = c.validate()[7].to_string();
        assert!(msg.contains("`carol` is not defined"), "{msg}");
    }

    #[test]
    fn debug_output_hides_the_auth_token() {
        let c = spec_example();
        let shown = format!("{c:?}");
        assert!(!shown.contains("secret-token"), "{shown}");
        assert!(shown.contains("<redacted>") && shown.contains(&c.twilio.account_sid));
    }
}
