//! Requests Twilio's own API description accepts (and one it refuses).

use crate::{client, config, notification, policy};
use petra_alarms::Priority;
use petra_core::{Clock, Timestamp};
use petra_notify::{
    AlarmInfo, Channel, DeliveryResult, Escalations, NotifyConfig, NotifyError, config as cfg,
};
use petra_test_support::twilio::Prism;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn an_sms_and_a_voice_call_are_accepted() {
    let prism = Prism::start();
    let (c, _) = client(&config(&prism.url()), policy());

    let sms = c.deliver(&notification(
        Channel::Sms,
        "HIGH tank_high: Tank level high: 9.3 m",
    ));
    assert_eq!(sms.len(), 1, "{sms:?}\n{}", prism.output().join("\n"));
    assert_eq!(sms[0].result, DeliveryResult::Ok, "{sms:?}");
    assert!(
        sms[0].sid.as_deref().is_some_and(|s| s.starts_with("SM")),
        "{sms:?}"
    );

    let call = c.deliver(&notification(
        Channel::Voice,
        "Petra alarm: level <high> & \"rising\". Please acknowledge.",
    ));
    assert_eq!(call.len(), 1, "{call:?}\n{}", prism.output().join("\n"));
    assert_eq!(call[0].result, DeliveryResult::Ok, "{call:?}");
    assert!(
        call[0].sid.as_deref().is_some_and(|s| s.starts_with("CA")),
        "{call:?}"
    );

    let counters = c.counters();
    assert_eq!(counters.get(Channel::Sms, DeliveryResult::Ok), 1);
    assert_eq!(counters.get(Channel::Voice, DeliveryResult::Ok), 1);
}

#[test]
fn a_request_twilio_refuses_fails_at_once_with_its_reason() {
    let prism = Prism::start();
    let mut bad = config(&prism.url());
    bad.account_sid = "AC123".into(); // not AC + 32 hex digits
    let (c, clock) = client(&bad, policy());
    let d = c.deliver(&notification(Channel::Sms, "x"));
    assert_eq!(d.len(), 1, "a 4xx is not retried: {d:?}");
    assert_eq!(d[0].result, DeliveryResult::Failed);
    match &d[0].error {
        Some(NotifyError::Twilio {
            status: 422,
            message,
            ..
        }) => {
            assert!(message.contains("^AC[0-9a-fA-F]{32}$"), "{message}")
        }
        other => panic!("expected Prism's 422, got {other:?}"),
    }
    assert_eq!(clock.mono().nanos(), 0, "no backoff for a refusal");
    assert_eq!(c.counters().get(Channel::Sms, DeliveryResult::Failed), 1);
}

#[test]
fn an_escalation_is_delivered_step_by_step() {
    let prism = Prism::start();
    let notify = NotifyConfig {
        twilio: config(&prism.url()),
        contacts: vec![
            cfg::Contact {
                name: "alice".into(),
                phone: "+15551230001".into(),
            },
            cfg::Contact {
                name: "bob".into(),
                phone: "+15551230002".into(),
            },
        ],
        groups: vec![cfg::Group {
            name: "oncall".into(),
            escalation: vec![
                cfg::Step {
                    after: Duration::ZERO,
                    contacts: vec!["alice".into()],
                    via: vec![Channel::Sms],
                },
                cfg::Step {
                    after: Duration::from_secs(600),
                    contacts: vec!["bob".into()],
                    via: vec![Channel::Sms, Channel::Voice],
                },
            ],
            repeat: Some(Duration::from_secs(1800)),
        }],
        limits: cfg::Limits::default(),
    };
    assert_eq!(notify.validate(), vec![]);
    let mut e = Escalations::new(&notify).unwrap();
    let (c, _) = client(&notify.twilio, policy());
    let t0 = 1_796_396_400_000_000_000;
    let at = |s: i64| Timestamp::from_unix_nanos(t0 + s * 1_000_000_000);
    let tank = AlarmInfo {
        name: Arc::from("tank_high"),
        priority: Priority::High,
        message: "Tank level high: 9.3 m & <rising>".into(),
    };
    e.alarm_raised(tank, "oncall", at(0)).unwrap();
    let mut journal = Vec::new();
    for s in [0, 600] {
        for n in e.due(at(s)) {
            journal.extend(c.deliver(&n));
        }
    }
    let outcome: Vec<(&str, Channel, DeliveryResult)> = journal
        .iter()
        .map(|d| (&*d.contact, d.channel, d.result))
        .collect();
    assert_eq!(
        outcome,
        [
            ("alice", Channel::Sms, DeliveryResult::Ok),
            ("bob", Channel::Sms, DeliveryResult::Ok),
            ("bob", Channel::Voice, DeliveryResult::Ok),
        ],
        "{journal:?}\n{}",
        prism.output().join("\n")
    );
    assert!(
        journal
            .iter()
            .all(|d| &*d.alarms[0] == "tank_high" && d.attempt == 1)
    );
}
