//! The `alarms:` and `notify:` sections, and alarm steps in scenarios: a full compile checked
//! field by field, every condition kind, and every error at its line and column.

use crate::scenario::{AlarmExpectation, ScenarioError, parse_scenario};
use crate::tests::show;
use crate::{ConfigError, Diagnostic, Plan, load_str};
use petra_alarms::{AlarmDef, AlarmState, Condition, EqValue, Priority};
use petra_engine::Registry;
use petra_notify::{Channel, Contact, Group, Limits, NotifyConfig, Step, TwilioConfig};
use std::path::Path;
use std::time::Duration;

const SID: &str = "AC0123456789abcdef0123456789ABCDEF";

fn env(name: &str) -> Option<String> {
    match name {
        "TWILIO_AUTH_TOKEN" => Some("secret-token".into()),
        "TWILIO_ACCOUNT_SID" => Some(SID.into()),
        "BAD_SID" => Some("ACnope".into()),
        _ => None,
    }
}

fn compile(src: &str) -> Result<Plan, ConfigError> {
    load_str(
        src,
        "plant.yaml",
        Path::new("/etc/petra"),
        &env,
        &Registry::new(),
    )
}

fn ok(src: &str) -> Plan {
    compile(src).unwrap_or_else(|e| panic!("{e}"))
}

fn errors(src: &str) -> Vec<Diagnostic> {
    match compile(src) {
        Ok(_) => panic!("expected errors, the configuration compiled"),
        Err(ConfigError::Invalid(d)) => d.0,
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// The one error of `src`: its code, line and column.
#[track_caller]
fn one_error(src: &str, code: &str, line: usize, col: usize) -> Diagnostic {
    let errs = errors(src);
    assert_eq!(errs.len(), 1, "expected one error, got:\n{}", show(&errs));
    let d = errs.into_iter().next().unwrap();
    assert_eq!((d.code, d.line, d.col), (code, line, col), "got: {d}");
    d
}

#[track_caller]
fn codes(src: &str) -> Vec<(&'static str, usize, usize)> {
    errors(src)
        .iter()
        .map(|d| (d.code, d.line, d.col))
        .collect()
}

/// Lines 1–7.
const SIGNALS: &str = "plant: demo
signals:
  - { name: tank.level, type: float, unit: m }
  - { name: tank.count, type: int }
  - { name: pump.run, type: bool }
  - { name: pump.stopped, type: bool }
  - { name: batch, type: string }
";

/// Lines 8–23 after [`SIGNALS`].
const NOTIFY: &str = "notify:
  twilio:
    account_sid: ${TWILIO_ACCOUNT_SID}
    auth_token: ${TWILIO_AUTH_TOKEN}
    from: \"+15005550006\"
    api_base: http://127.0.0.1:4010
  contacts:
    - { name: alice, phone: \"+15551230001\" }
    - { name: bob, phone: \"+15551230002\" }
  groups:
    - name: oncall
      escalation:
        - { after: 0s, contacts: [alice], via: [sms] }
        - { after: 10m, contacts: [bob, alice], via: [sms, voice] }
      repeat: 30m
  limits: { max_per_contact: 10, window: 1h, flood_threshold: 5 }
";

/// `SIGNALS`, then `alarms` from line 8.
fn with_alarms(alarms: &str) -> String {
    format!("{SIGNALS}alarms:\n{alarms}")
}

/// `SIGNALS`, `NOTIFY`, then `alarms` from line 24.
fn with_notify(alarms: &str) -> String {
    format!("{SIGNALS}{NOTIFY}alarms:\n{alarms}")
}

#[test]
fn a_full_alarms_and_notify_section_compiles() {
    let plan = ok(&with_notify(
        "  - name: tank_high
    signal: tank.level
    high: 9.0
    deadband: 0.2
    on_delay: 5s
    off_delay: 2s
    priority: high
    message: \"Tank level high: {value} {unit}\"
    notify: oncall
    latch: true
    suppress_by: pump.stopped
  - { name: pump_bad, signal: pump.run, bad_quality: true }
",
    ));
    let id = |n: &str| plan.signal(n).unwrap();
    assert_eq!(
        plan.alarms[0],
        AlarmDef {
            name: "tank_high".into(),
            signal: id("tank.level"),
            condition: Condition::High(9.0),
            deadband: 0.2,
            on_delay: Duration::from_secs(5),
            off_delay: Duration::from_secs(2),
            priority: Priority::High,
            message: "Tank level high: {value} {unit}".into(),
            notify: Some("oncall".into()),
            latch: true,
            suppress_by: Some(id("pump.stopped")),
        }
    );
    // Everything left out takes `AlarmDef::new`'s default.
    assert_eq!(
        plan.alarms[1],
        AlarmDef::new("pump_bad", id("pump.run"), Condition::BadQuality)
    );
    assert_eq!(plan.alarms.len(), 2);
    assert_eq!(
        plan.notify,
        Some(NotifyConfig {
            twilio: TwilioConfig {
                account_sid: SID.into(),
                auth_token: "secret-token".into(),
                from: "+15005550006".into(),
                api_base: "http://127.0.0.1:4010".into(),
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
                        contacts: vec!["bob".into(), "alice".into()],
                        via: vec![Channel::Sms, Channel::Voice],
                    },
                ],
                repeat: Some(Duration::from_secs(1800)),
            }],
            limits: Limits {
                max_per_contact: 10,
                window: Duration::from_secs(3600),
                flood_threshold: 5,
            },
        })
    );
    // The plan can be logged: the token does not show.
    let shown = format!("{plan:?}");
    assert!(
        shown.contains("tank_high") && !shown.contains("secret-token"),
        "{shown}"
    );
}

#[test]
fn defaults_no_sections_and_empty_alarms() {
    let plan = ok(SIGNALS);
    assert!(plan.alarms.is_empty() && plan.notify.is_none());
    let plan = ok(&format!("{SIGNALS}alarms:\n"));
    assert!(plan.alarms.is_empty());
    // The default api_base and limits.
    let src = with_notify("")
        .replace("    api_base: http://127.0.0.1:4010\n", "")
        .replace(
            "  limits: { max_per_contact: 10, window: 1h, flood_threshold: 5 }\n",
            "",
        );
    let n = ok(&src).notify.unwrap();
    assert_eq!(n.twilio.api_base, "https://api.twilio.com");
    assert_eq!(n.limits, Limits::default());
}

#[test]
fn every_condition_kind() {
    let plan = ok(&with_alarms(
        "  - { name: a, signal: tank.level, high: 9 }
  - { name: b, signal: tank.level, high_high: 9.5, deadband: 0 }
  - { name: c, signal: tank.count, low: 2, deadband: 1 }
  - { name: d, signal: tank.level, low_low: -1.5 }
  - { name: e, signal: pump.run, equals: false }
  - { name: f, signal: tank.count, equals: -3 }
  - { name: g, signal: batch, bad_quality: true }
",
    ));
    let got: Vec<(&str, Condition, f64)> = plan
        .alarms
        .iter()
        .map(|a| (&*a.name, a.condition, a.deadband))
        .collect();
    assert_eq!(
        got,
        [
            ("a", Condition::High(9.0), 0.0),
            ("b", Condition::HighHigh(9.5), 0.0),
            ("c", Condition::Low(2.0), 1.0),
            ("d", Condition::LowLow(-1.5), 0.0),
            ("e", Condition::Equals(EqValue::Bool(false)), 0.0),
            ("f", Condition::Equals(EqValue::Int(-3)), 0.0),
            ("g", Condition::BadQuality, 0.0),
        ]
    );
}

#[test]
fn an_alarm_needs_exactly_one_condition() {
    let d = one_error(
        &with_alarms("  - { name: a, signal: tank.level }\n"),
        "missing-key",
        9,
        5,
    );
    assert_eq!(
        d.message,
        "alarm `a` needs a condition: one of `high`, `high_high`, `low`, `low_low`, `equals`, \
         `bad_quality`"
    );
    let errs = errors(&with_alarms(
        "  - { name: a, signal: tank.level, high: 9, low: 1, bad_quality: true }\n",
    ));
    let got: Vec<_> = errs.iter().map(|d| (d.code, d.line, d.col)).collect();
    assert_eq!(
        got,
        [("bad-value", 9, 45), ("bad-value", 9, 53)],
        "{}",
        show(&errs)
    );
    assert!(
        errs[0]
            .message
            .contains("alarm `a` has both `high` and `low`; an alarm watches one condition"),
        "{}",
        errs[0]
    );
    let d = one_error(
        &with_alarms("  - { name: a, signal: pump.run, bad_quality: false }\n"),
        "bad-value",
        9,
        47,
    );
    assert!(d.message.contains("can only be `true`"), "{d}");
}

#[test]
fn conditions_must_fit_the_signal_type() {
    // A deadband on an equality.
    let d = one_error(
        &with_alarms("  - { name: a, signal: pump.run, equals: true, deadband: 1 }\n"),
        "bad-value",
        9,
        58,
    );
    assert!(
        d.message.contains(
            "`deadband` of alarm `a` applies to `high`, `high_high`, `low` and `low_low` only"
        ),
        "{d}"
    );
    one_error(
        &with_alarms("  - { name: a, signal: tank.level, high: 1, deadband: -0.5 }\n"),
        "out-of-range",
        9,
        55,
    );
    // equals: the literal must have the signal's type; floats and strings are refused.
    let d = one_error(
        &with_alarms("  - { name: a, signal: pump.run, equals: 1 }\n"),
        "wrong-type",
        9,
        42,
    );
    assert!(
        d.message
            .contains("`equals` of alarm `a` must be a bool (true or false) like signal `pump.run`, found an int"),
        "{d}"
    );
    let d = one_error(
        &with_alarms("  - { name: a, signal: tank.count, equals: 1.5 }\n"),
        "wrong-type",
        9,
        44,
    );
    assert!(d.message.contains("use `high` or `low`"), "{d}");
    let d = one_error(
        &with_alarms("  - { name: a, signal: tank.level, equals: 1.5 }\n"),
        "type-mismatch",
        9,
        44,
    );
    assert!(
        d.message.contains(
            "signal `tank.level` is float; equality on floats is unreliable — use `high` or `low`"
        ),
        "{d}"
    );
    one_error(
        &with_alarms("  - { name: a, signal: batch, equals: idle }\n"),
        "type-mismatch",
        9,
        39,
    );
    // Limits on a bool or a string signal.
    let d = one_error(
        &with_alarms("  - { name: a, signal: pump.run, high: 1 }\n"),
        "type-mismatch",
        9,
        40,
    );
    assert!(
        d.message.contains(
            "`high` of alarm `a` is a limit for int and float signals, but signal `pump.run` is bool; for a bool signal use `equals: true`"
        ),
        "{d}"
    );
    one_error(
        &with_alarms("  - { name: a, signal: batch, low_low: 0 }\n"),
        "type-mismatch",
        9,
        40,
    );
    one_error(
        &with_alarms("  - { name: a, signal: tank.level, high: .inf }\n"),
        "out-of-range",
        9,
        42,
    );
    one_error(
        &with_alarms("  - { name: a, signal: tank.level, high: lots }\n"),
        "wrong-type",
        9,
        42,
    );
}

#[test]
fn signals_priorities_and_messages_are_checked() {
    let d = one_error(
        &with_alarms("  - { name: a, signal: tank.levle, high: 1 }\n"),
        "unknown-signal",
        9,
        24,
    );
    assert!(d.message.contains("did you mean `tank.level`?"), "{d}");
    let d = one_error(
        &with_alarms("  - { name: a, signal: tank.level, high: 1, suppress_by: tank.count }\n"),
        "type-mismatch",
        9,
        58,
    );
    assert!(
        d.message
            .contains("`suppress_by` of alarm `a` takes a bool signal"),
        "{d}"
    );
    one_error(
        &with_alarms("  - { name: a, signal: tank.level, high: 1, suppress_by: pump.stoped }\n"),
        "unknown-signal",
        9,
        58,
    );
    let d = one_error(
        &with_alarms("  - { name: a, signal: tank.level, high: 1, priority: hihg }\n"),
        "bad-value",
        9,
        55,
    );
    assert_eq!(
        d.message,
        "`priority` of alarm `a` is `hihg`; use `low`, `medium`, `high`, `critical`; did you \
         mean `high`?"
    );
    let d = one_error(
        &with_alarms(
            "  - { name: a, signal: tank.level, high: 1, message: \"Level {vlaue} {unit}\" }\n",
        ),
        "bad-value",
        9,
        54,
    );
    assert!(
        d.message.contains("unknown placeholder `{vlaue}`")
            && d.message.ends_with("did you mean `{value}`?"),
        "{d}"
    );
    // Every alarm problem at once, sorted: a duplicate and a bad name, an unknown key,
    // a bare number as a delay.
    let src = with_alarms(
        "  - { name: a, signal: tank.level, high: 1 }
  - { name: a, signal: tank.level, low: 0 }
  - { name: 1a, signal: tank.level, low: 0 }
  - { name: b, signal: tank.level, low: 0, on_dealy: 1s }
  - { name: c, signal: tank.level, low: 0, off_delay: 5 }
",
    );
    let errs = errors(&src);
    let got: Vec<_> = errs.iter().map(|d| (d.code, d.line, d.col)).collect();
    assert_eq!(
        got,
        [
            ("duplicate-name", 10, 13),
            ("bad-name", 11, 13),
            ("unknown-key", 12, 44),
            ("bad-duration", 13, 55),
        ],
        "{}",
        show(&errs)
    );
    assert!(
        errs[0]
            .message
            .contains("alarm `a` is already declared at line 9")
    );
    assert!(errs[2].message.contains("did you mean `on_delay`?"));
}

#[test]
fn an_alarm_notifies_a_declared_group() {
    let d = one_error(
        &with_notify("  - { name: a, signal: tank.level, high: 1, notify: oncal }\n"),
        "unknown-group",
        25,
        53,
    );
    assert_eq!(
        d.message,
        "alarm `a` notifies group `oncal`, which is not declared under `notify.groups`; did \
         you mean `oncall`?"
    );
    let d = one_error(
        &with_alarms("  - { name: a, signal: tank.level, high: 1, notify: oncall }\n"),
        "unknown-group",
        9,
        53,
    );
    assert!(d.message.contains("there is no `notify` section"), "{d}");
    // A broken `notify` is reported once; its groups are not second-guessed.
    let src = format!(
        "{SIGNALS}notify: 3\nalarms:\n  - {{ name: a, signal: tank.level, high: 1, notify: oncall }}\n"
    );
    one_error(&src, "wrong-type", 8, 9);
}

#[test]
fn notify_values_are_checked_at_their_line() {
    // Validation's findings land on the value they name.
    let d = one_error(
        &with_notify("").replace("${TWILIO_ACCOUNT_SID}", "ACnope"),
        "bad-value",
        10,
        18,
    );
    assert!(
        d.message
            .starts_with("`account_sid` of `twilio`: `ACnope` is not a Twilio account SID"),
        "{d}"
    );
    let d = one_error(
        &with_notify("").replace("\"+15551230002\"", "\"+1 555 123\""),
        "bad-value",
        16,
        27,
    );
    assert!(
        d.message
            .starts_with("`phone` of contact `bob`: `+1 555 123` is not an E.164 phone number"),
        "{d}"
    );
    // An unquoted phone number is a number to YAML.
    let d = one_error(
        &with_notify("").replace("\"+15005550006\"", "+15005550006"),
        "wrong-type",
        12,
        11,
    );
    assert!(d.message.contains("quote the number"), "{d}");
    one_error(
        &with_notify("").replace("http://127.0.0.1:4010", "http://api.example.com"),
        "bad-value",
        13,
        15,
    );
    let d = one_error(
        &with_notify("").replace("max_per_contact: 10", "max_per_contact: 0"),
        "out-of-range",
        23,
        30,
    );
    assert_eq!(
        d.message,
        "`max_per_contact` of `limits` is 0, which would never page anyone"
    );
    let d = one_error(
        &with_notify("")
            .replace("after: 10m", "after: 30s")
            .replace("after: 0s", "after: 1m"),
        "out-of-range",
        21,
        20,
    );
    assert_eq!(
        d.message,
        "`after` of escalation step 2 of group `oncall`: 30s is earlier than the step before \
         it (60s); list steps in the order they fire"
    );
    let src = with_notify("").replace(
        "window: 1h, flood_threshold: 5",
        "window: 0s, flood_threshold: 0",
    );
    let errs = errors(&src);
    let got: Vec<_> = errs.iter().map(|d| (d.code, d.line, d.col)).collect();
    assert_eq!(got, [("out-of-range", 23, 42), ("out-of-range", 23, 63)]);
    assert!(errs[0].message.contains("e.g. 10m"), "{}", errs[0]);
    one_error(
        &with_notify("").replace("repeat: 30m", "repeat: 5m"),
        "out-of-range",
        22,
        15,
    );
}

#[test]
fn notify_names_contacts_and_channels_are_checked_where_written() {
    let d = one_error(
        &with_notify("").replace("contacts: [bob, alice]", "contacts: [bob, alcie]"),
        "unknown-contact",
        21,
        41,
    );
    assert_eq!(
        d.message,
        "`contacts` of escalation step 2 of group `oncall`: no contact `alcie` is declared \
         under `notify.contacts`; did you mean `alice`?"
    );
    let d = one_error(
        &with_notify("").replace("via: [sms, voice]", "via: [sms, voise]"),
        "bad-value",
        21,
        60,
    );
    assert_eq!(
        d.message,
        "unknown channel `voise` in `via` of escalation step 2 of group `oncall`; channels are \
         `sms`, `voice`; did you mean `voice`?"
    );
    // An unknown channel alone: not also "via is empty".
    one_error(
        &with_notify("").replace("via: [sms] }", "via: [fax] }"),
        "bad-value",
        20,
        49,
    );
    one_error(
        &with_notify("").replace("via: [sms, voice]", "via: [sms, sms]"),
        "bad-value",
        21,
        60,
    );
    // Repeated names: one message each, not also validation's.
    let src = with_notify("").replace("name: bob,", "name: alice,");
    let errs = errors(&src);
    let got: Vec<_> = errs.iter().map(|d| (d.code, d.line, d.col)).collect();
    // The step naming `bob` now names an unknown contact.
    assert_eq!(
        got,
        [("duplicate-name", 16, 15), ("unknown-contact", 21, 36)],
        "{}",
        show(&errs)
    );
    let src = with_notify("").replace(
        "  limits:",
        "    - { name: oncall, escalation: [{ after: 0s, contacts: [bob], via: [voice] }] }\n  limits:",
    );
    let d = one_error(&src, "duplicate-name", 23, 15);
    assert_eq!(
        d.message,
        "group `oncall` is already declared at line 18; rename one"
    );
    // A bad name is reported once, not again where it is used.
    one_error(
        &with_notify("  - { name: a, signal: tank.level, high: 1, notify: on call }\n")
            .replace("name: oncall", "name: on call"),
        "bad-name",
        18,
        13,
    );
    one_error(
        &with_notify("").replace("alice", "al ice"),
        "bad-name",
        15,
        15,
    );
    // An empty escalation, and a step without contacts.
    let src = with_notify("").replace(
        "  limits:",
        "    - { name: night, escalation: [] }\n    - { name: day, escalation: [{ after: 0s, contacts: [], via: [sms] }] }\n  limits:",
    );
    assert_eq!(
        codes(&src),
        [("missing-key", 23, 34), ("missing-key", 24, 56)]
    );
}

#[test]
fn notify_structure_errors_are_reported_once() {
    // A missing `twilio` is one error, not one per value validation would find empty.
    let src = format!(
        "{SIGNALS}notify:\n  contacts: [{{ name: a, phone: \"+15551230001\" }}]\n  groups: [{{ name: g, escalation: [{{ after: 0s, contacts: [a], via: [sms] }}] }}]\n"
    );
    let d = one_error(&src, "missing-key", 9, 3);
    assert_eq!(d.message, "`notify` needs `twilio`; add it");
    assert_eq!(
        codes(&format!("{SIGNALS}notify:\n")),
        [
            ("missing-key", 8, 7),
            ("missing-key", 8, 7),
            ("missing-key", 8, 7)
        ]
    );
    assert_eq!(
        codes(&format!("{SIGNALS}notify: {{}}\n")),
        [
            ("missing-key", 8, 9),
            ("missing-key", 8, 9),
            ("missing-key", 8, 9)
        ]
    );
    // A contact without a phone, a step without `after`, unknown keys.
    let src = with_notify("")
        .replace(
            "{ name: bob, phone: \"+15551230002\" }",
            "{ name: bob, phon: \"+15551230002\" }",
        )
        .replace("{ after: 0s, contacts: [alice]", "{ contacts: [alice]")
        .replace(
            "  limits: { max_per_contact: 10,",
            "  limits: { max_per_contact: -1, burst: 2,",
        );
    assert_eq!(
        codes(&src),
        [
            ("missing-key", 16, 7),
            ("unknown-key", 16, 20),
            ("missing-key", 20, 11),
            ("out-of-range", 23, 30),
            ("unknown-key", 23, 34),
        ],
    );
}

#[test]
fn environment_references_expand_and_stay_hidden_in_messages() {
    let plan = ok(&with_notify(""));
    let t = plan.notify.unwrap().twilio;
    assert_eq!(
        (t.account_sid.as_str(), t.auth_token.as_str()),
        (SID, "secret-token")
    );
    // A bad value from the environment is shown as written.
    let d = one_error(
        &with_notify("").replace("${TWILIO_ACCOUNT_SID}", "${BAD_SID}"),
        "bad-value",
        10,
        18,
    );
    assert!(
        d.message
            .contains("`${BAD_SID}` is not a Twilio account SID")
            && !d.message.contains("ACnope"),
        "{d}"
    );
    let d = one_error(
        &with_notify("").replace("${TWILIO_AUTH_TOKEN}", "${TWILIO_TOKEN}"),
        "env-unset",
        11,
        17,
    );
    assert!(d.message.contains("`TWILIO_TOKEN`"), "{d}");
}

/// A scenario over `SIGNALS` + `NOTIFY` + two alarms.
fn scenario(steps: &str) -> Result<crate::Scenario, ScenarioError> {
    let config = with_notify(
        "  - { name: tank_high, signal: tank.level, high: 9, notify: oncall }
  - { name: pump_bad, signal: pump.run, bad_quality: true }
",
    );
    let load = |p: &Path| match p.to_str() {
        Some("/s/plant.yaml") => compile(&config),
        Some("/s/bare.yaml") => compile(SIGNALS),
        _ => unreachable!("{p:?}"),
    };
    parse_scenario(steps, "t.test.yaml", Path::new("/s"), &env, &load)
}

fn scenario_errors(src: &str) -> Vec<Diagnostic> {
    match scenario(src) {
        Ok(_) => panic!("expected errors, the scenario loaded"),
        Err(ScenarioError::Invalid {
            config: None,
            scenario,
        }) => scenario.0,
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn scenario_steps_ack_and_expect_alarms() {
    let sc = scenario(
        "config: plant.yaml
steps:
  - at: 0s
    set: { tank.level: 9.5 }
    alarms: { tank_high: active_unacked, pump_bad: normal }
  - at: 6s
    ack: [tank_high, pump_bad]
    alarms: { tank_high: active_acked }
  - at: 7s
    set: { tank.level: 1 }
    alarms:
      tank_high: normal
  - { at: 8s, ack: [] }
  - { at: 9s, alarms: { pump_bad: rtn_unacked } }
",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let expect = |name: &str, state| AlarmExpectation {
        name: name.into(),
        state,
    };
    let s = &sc.steps;
    assert_eq!(s.len(), 5);
    assert!(s[0].ack.is_empty());
    assert_eq!(
        s[0].alarms,
        [
            expect("tank_high", AlarmState::ActiveUnacked),
            expect("pump_bad", AlarmState::Normal)
        ]
    );
    assert_eq!(s[1].ack, ["tank_high", "pump_bad"]);
    assert_eq!(s[1].alarms, [expect("tank_high", AlarmState::ActiveAcked)]);
    assert!(s[1].set.is_empty() && s[1].expect.is_empty());
    assert_eq!(s[2].alarms, [expect("tank_high", AlarmState::Normal)]);
    assert_eq!(s[2].set.len(), 1);
    assert!(s[3].ack.is_empty() && s[3].alarms.is_empty());
    assert_eq!(s[4].alarms, [expect("pump_bad", AlarmState::RtnUnacked)]);
}

#[test]
fn scenario_alarm_names_and_states_are_checked() {
    let errs = scenario_errors(
        "config: plant.yaml
steps:
  - at: 0s
    ack: [tank_hihg, pump_bad, pump_bad]
    alarms: { tank_hgh: normal, pump_bad: activ_unacked, tank_high: 1 }
  - { at: 1s, ack: tank_high, alarm: {} }
",
    );
    let got: Vec<_> = errs.iter().map(|d| (d.code, d.line, d.col)).collect();
    assert_eq!(
        got,
        [
            ("unknown-alarm", 4, 11),
            ("bad-value", 4, 32),
            ("unknown-alarm", 5, 15),
            ("bad-value", 5, 43),
            ("wrong-type", 5, 69),
            ("wrong-type", 6, 20),
            ("unknown-key", 6, 31),
        ],
        "{}",
        show(&errs)
    );
    assert_eq!(
        errs[0].message,
        "`ack` of step 1: no alarm `tank_hihg` is declared in plant.yaml; did you mean \
         `tank_high`?"
    );
    assert_eq!(
        errs[1].message,
        "`ack` of step 1 acknowledges alarm `pump_bad` twice; remove one"
    );
    assert!(
        errs[2].message.contains("did you mean `tank_high`?"),
        "{}",
        errs[2]
    );
    assert_eq!(
        errs[3].message,
        "`pump_bad` in `alarms` of step 1 is `activ_unacked`; alarm states are `normal`, \
         `active_unacked`, `active_acked`, `rtn_unacked`; did you mean `active_unacked`?"
    );
    assert!(
        errs[6].message.contains("did you mean `alarms`?"),
        "{}",
        errs[6]
    );
    // A configuration without alarms says so.
    let d = scenario_errors("config: bare.yaml\nsteps:\n  - { at: 0s, alarms: { a: normal } }\n");
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].code, d[0].line, d[0].col), ("unknown-alarm", 3, 25));
    assert!(
        d[0].message.ends_with("(it has no `alarms` section)"),
        "{}",
        d[0]
    );
}

#[test]
fn scenario_state_names_match_the_model() {
    let names: Vec<&str> = AlarmState::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(names, crate::scenario::ALARM_STATES);
}

#[test]
fn the_system_alarm_prefix_is_reserved() {
    let src = with_alarms("  - { name: petra.wal_full, signal: tank.level, high: 1 }\n");
    let d = one_error(&src, "bad-name", 9, 13);
    assert!(d.message.contains("Petra's own system alarms"), "{d}");
}
