//! The escalation planner in virtual time: every `now` is a number, nothing waits.

use crate::config::spec_example;
use crate::{
    AlarmInfo, Channel, Contact, EscalationSnapshot, Escalations, Group, Limits, Notification,
    NotifyConfig, NotifyError, Step,
};
use petra_alarms::{AlarmState, Cause, Priority, Status, Transition};
use petra_core::Timestamp;
use std::sync::Arc;
use std::time::Duration;

const ORIGIN_S: i64 = 1_796_396_400; // 2026-12-04T15:00:00Z

fn t(secs: i64) -> Timestamp {
    Timestamp::from_unix_nanos((ORIGIN_S + secs) * 1_000_000_000)
}

fn min(m: u64) -> Duration {
    Duration::from_secs(60 * m)
}

fn alarm(name: &str, priority: Priority) -> AlarmInfo {
    AlarmInfo {
        name: Arc::from(name),
        priority,
        message: format!("{name} message"),
    }
}

fn tank() -> AlarmInfo {
    AlarmInfo {
        name: Arc::from("tank_high"),
        priority: Priority::High,
        message: "Tank level high: 9.3 m".into(),
    }
}

/// (contact, channel, alarms) of each notification, for compact assertions.
fn sent(ns: &[Notification]) -> Vec<(String, Channel, Vec<String>)> {
    ns.iter()
        .map(|n| {
            (
                n.contact.to_string(),
                n.channel,
                n.alarms.iter().map(|a| a.to_string()).collect(),
            )
        })
        .collect()
}

fn one(contact: &str, channel: Channel, alarm: &str) -> (String, Channel, Vec<String>) {
    (contact.into(), channel, vec![alarm.into()])
}

/// A group `solo` that pages alice by SMS once, with the given limits.
fn solo(limits: Limits) -> Escalations {
    let mut c = spec_example();
    c.groups.push(Group {
        name: "solo".into(),
        escalation: vec![Step {
            after: Duration::ZERO,
            contacts: vec!["alice".into()],
            via: vec![Channel::Sms],
        }],
        repeat: None,
    });
    c.limits = limits;
    Escalations::new(&c).unwrap()
}

#[test]
fn the_first_step_goes_out_at_once_and_the_second_after_its_delay() {
    let mut e = Escalations::new(&spec_example()).unwrap();
    assert!(e.alarm_raised(tank(), "oncall", t(0)).unwrap());
    let first = e.due(t(0));
    assert_eq!(sent(&first), [one("alice", Channel::Sms, "tank_high")]);
    assert_eq!(first[0].phone.as_ref(), "+15551230001");
    assert_eq!(first[0].text, "HIGH tank_high: Tank level high: 9.3 m");
    assert!(!first[0].is_summary());
    // Nothing more until step 2 is due, and the planner says when that is.
    assert_eq!(e.due(t(0)), []);
    assert_eq!(e.due(t(599)), []);
    assert_eq!(e.next_due(), Some(t(600)));
    let second = e.due(t(600));
    assert_eq!(
        sent(&second),
        [
            one("bob", Channel::Sms, "tank_high"),
            one("bob", Channel::Voice, "tank_high")
        ]
    );
    assert_eq!(
        second[1].text,
        "Petra alarm, priority high: tank high. Tank level high: 9.3 m. Please acknowledge."
    );
}

#[test]
fn an_ack_stops_the_escalation() {
    let mut e = Escalations::new(&spec_example()).unwrap();
    e.alarm_raised(tank(), "oncall", t(0)).unwrap();
    assert_eq!(e.due(t(0)).len(), 1);
    assert!(e.alarm_acked("tank_high"));
    assert!(!e.alarm_acked("tank_high"));
    assert!(!e.is_escalating("tank_high"));
    assert_eq!(e.next_due(), None);
    assert_eq!(e.due(t(600)), []);
    assert_eq!(e.due(t(7200)), []);
    // A new activation after the ack is a new escalation.
    assert!(e.alarm_raised(tank(), "oncall", t(8000)).unwrap());
    assert_eq!(
        sent(&e.due(t(8000))),
        [one("alice", Channel::Sms, "tank_high")]
    );
}

#[test]
fn repeat_starts_the_cycle_again_until_acked() {
    let mut e = Escalations::new(&spec_example()).unwrap();
    e.alarm_raised(tank(), "oncall", t(0)).unwrap();
    assert_eq!(e.due(t(0)).len(), 1);
    assert_eq!(e.due(t(600)).len(), 2);
    assert_eq!(e.next_due(), Some(t(1800)));
    assert_eq!(e.due(t(1799)), []);
    let again = e.due(t(1800));
    assert_eq!(sent(&again), [one("alice", Channel::Sms, "tank_high")]);
    assert_eq!(
        again[0].text,
        "REMINDER HIGH tank_high: Tank level high: 9.3 m"
    );
    assert_eq!(e.due(t(2400)).len(), 2);
    assert_eq!(e.due(t(3600)).len(), 1);
    e.alarm_acked("tank_high");
    assert_eq!(e.due(t(4200)), []);
}

#[test]
fn a_late_call_catches_up_to_the_current_cycle_without_replaying_the_past() {
    let mut e = Escalations::new(&spec_example()).unwrap();
    e.alarm_raised(tank(), "oncall", t(0)).unwrap();
    assert_eq!(e.due(t(0)).len(), 1);
    // Down from minute 0 to minute 95: cycles at 0, 30, 60 and 90 min passed; only the
    // current cycle's due step (alice at 90 min) goes out, once.
    let late = e.due(t(95 * 60));
    assert_eq!(sent(&late), [one("alice", Channel::Sms, "tank_high")]);
    assert!(late[0].text.starts_with("REMINDER"));
    assert_eq!(e.next_due(), Some(t(100 * 60)));
    assert_eq!(e.due(t(100 * 60)).len(), 2);
}

#[test]
fn without_repeat_there_is_one_cycle_and_raising_again_changes_nothing() {
    let mut c = spec_example();
    c.groups[0].repeat = None;
    let mut e = Escalations::new(&c).unwrap();
    e.alarm_raised(tank(), "oncall", t(0)).unwrap();
    assert_eq!(e.due(t(0)).len(), 1);
    assert_eq!(e.due(t(600)).len(), 2);
    assert_eq!(e.next_due(), None);
    assert_eq!(e.due(t(100_000)), []);
    assert!(e.is_escalating("tank_high"));
    assert!(!e.alarm_raised(tank(), "oncall", t(100_000)).unwrap());
    assert_eq!(e.due(t(100_000)), []);
}

#[test]
fn raising_an_escalating_alarm_keeps_its_timing_and_takes_the_new_message() {
    let mut e = Escalations::new(&spec_example()).unwrap();
    e.alarm_raised(tank(), "oncall", t(0)).unwrap();
    assert_eq!(e.due(t(0)).len(), 1);
    let mut newer = tank();
    newer.message = "Tank level high: 9.8 m".into();
    assert!(!e.alarm_raised(newer, "oncall", t(300)).unwrap());
    assert_eq!(e.due(t(300)), []);
    let step2 = e.due(t(600));
    assert_eq!(step2[0].text, "HIGH tank_high: Tank level high: 9.8 m");
}

#[test]
fn the_rate_limit_holds_messages_back_and_releases_them_when_the_window_allows() {
    let limits = Limits {
        max_per_contact: 2,
        window: min(10),
        flood_threshold: 10,
    };
    let mut e = solo(limits);
    for (i, name) in ["a1", "a2", "a3", "a4"].into_iter().enumerate() {
        let at = t(10 * i as i64);
        e.alarm_raised(alarm(name, Priority::Low), "solo", at)
            .unwrap();
        let out = e.due(at);
        if i < 2 {
            assert_eq!(sent(&out), [one("alice", Channel::Sms, name)]);
        } else {
            assert_eq!(out, [], "{name} must be held: 2 messages in 10 min already");
        }
    }
    // The first message (t=0) leaves the window at 600 s: then one message fits, and it
    // covers both held alarms.
    assert_eq!(e.next_due(), Some(t(600)));
    assert_eq!(e.due(t(599)), []);
    let released = e.due(t(600));
    assert_eq!(released.len(), 1);
    assert!(released[0].is_summary());
    assert_eq!(released[0].alarms, [Arc::from("a3"), Arc::from("a4")]);
    assert_eq!(released[0].text, "2 alarms, highest low: a3, a4");
    assert_eq!(e.next_due(), None);
}

#[test]
fn an_acked_alarm_is_taken_out_of_the_held_messages() {
    let limits = Limits {
        max_per_contact: 1,
        window: min(10),
        flood_threshold: 10,
    };
    let mut e = solo(limits);
    for name in ["a1", "a2", "a3"] {
        e.alarm_raised(alarm(name, Priority::Low), "solo", t(0))
            .unwrap();
    }
    // Three due at once with room for one: a summary.
    let out = e.due(t(0));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].alarms.len(), 3);
    e.alarm_raised(alarm("a4", Priority::Low), "solo", t(1))
        .unwrap();
    e.alarm_raised(alarm("a5", Priority::Low), "solo", t(1))
        .unwrap();
    assert_eq!(e.due(t(1)), []);
    e.alarm_acked("a4");
    assert_eq!(sent(&e.due(t(600))), [one("alice", Channel::Sms, "a5")]);
}

#[test]
fn a_flood_is_one_summary_per_contact_and_channel() {
    let mut e = solo(Limits::default());
    let names = [
        ("tank_high", Priority::Critical),
        ("pump_fail", Priority::High),
        ("door_open", Priority::High),
    ];
    for (name, p) in names {
        e.alarm_raised(alarm(name, p), "solo", t(0)).unwrap();
    }
    for i in 0..9 {
        e.alarm_raised(alarm(&format!("aux_{i}"), Priority::Low), "solo", t(0))
            .unwrap();
    }
    let out = e.due(t(0));
    assert_eq!(out.len(), 1, "{out:?}");
    let n = &out[0];
    assert!(n.is_summary());
    assert_eq!(n.alarms.len(), 12);
    assert_eq!(
        n.text,
        "12 alarms, highest critical: tank_high, door_open, pump_fail, … (+9 more)"
    );
    // Up to the threshold (3), alarms due together still go out one by one.
    let mut e = solo(Limits::default());
    for (name, p) in names {
        e.alarm_raised(alarm(name, p), "solo", t(0)).unwrap();
    }
    let out = e.due(t(0));
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|n| !n.is_summary()));
}

#[test]
fn a_flood_never_sends_more_than_the_rate_limit() {
    // 200 alarms, one every 3 s for 10 minutes, through the spec's group (alice, then bob by
    // SMS and voice): each contact gets at most 5 messages per 10 minutes.
    let mut e = Escalations::new(&spec_example()).unwrap();
    let mut all = Vec::new();
    for i in 0..200 {
        let now = t(3 * i);
        e.alarm_raised(alarm(&format!("a{i:03}"), Priority::Medium), "oncall", now)
            .unwrap();
        all.extend(e.due(now).into_iter().map(|n| (now, n)));
    }
    for s in (600..=1800).step_by(5) {
        all.extend(e.due(t(s)).into_iter().map(|n| (t(s), n)));
    }
    for contact in ["alice", "bob"] {
        let times: Vec<Timestamp> = all
            .iter()
            .filter(|(_, n)| &*n.contact == contact)
            .map(|(at, _)| *at)
            .collect();
        assert!(!times.is_empty());
        for (i, &start) in times.iter().enumerate() {
            let end = Timestamp::from_unix_nanos(start.unix_nanos() + 600 * 1_000_000_000);
            let in_window = times[i..].iter().take_while(|&&x| x < end).count();
            assert!(in_window <= 5, "{contact}: {in_window} messages in 10 min");
        }
    }
    // And every alarm was reported to alice, individually or in a summary.
    let mut covered: Vec<&str> = all
        .iter()
        .filter(|(_, n)| &*n.contact == "alice")
        .flat_map(|(_, n)| n.alarms.iter().map(|a| &**a))
        .collect();
    covered.sort();
    covered.dedup();
    assert_eq!(covered.len(), 200);
}

#[test]
fn a_restored_snapshot_sends_nothing_twice() {
    let limits = Limits {
        max_per_contact: 2,
        window: min(10),
        flood_threshold: 3,
    };
    let mut c = spec_example();
    c.limits = limits;
    let mut e = Escalations::new(&c).unwrap();
    e.alarm_raised(tank(), "oncall", t(0)).unwrap();
    e.alarm_raised(alarm("pump_fail", Priority::Low), "oncall", t(0))
        .unwrap();
    e.alarm_raised(alarm("door_open", Priority::Low), "oncall", t(5))
        .unwrap();
    assert_eq!(e.due(t(0)).len(), 2);
    assert_eq!(e.due(t(5)), []); // door_open held: alice had 2 in 10 min
    let json = serde_json::to_string(&e.snapshot()).unwrap();

    // "Restart": a new planner from the same config and the saved state.
    let snap: EscalationSnapshot = serde_json::from_str(&json).unwrap();
    let mut r = Escalations::new(&c).unwrap();
    r.restore(&snap).unwrap();
    assert_eq!(r.snapshot(), snap);
    assert_eq!(r.due(t(5)), []);
    // The alarm manager raises its unacknowledged alarms again: still nothing.
    assert!(!r.alarm_raised(tank(), "oncall", t(6)).unwrap());
    assert_eq!(
        r.escalating().collect::<Vec<_>>(),
        ["door_open", "pump_fail", "tank_high"]
    );
    assert_eq!(r.due(t(6)), []);
    // The held message and the rate limit survived; step 2 comes as planned.
    assert_eq!(r.next_due(), Some(t(600)));
    let at_600 = r.due(t(600));
    assert!(
        sent(&at_600).contains(&one("alice", Channel::Sms, "door_open")),
        "{at_600:?}"
    );
    assert!(at_600.iter().any(|n| &*n.contact == "bob"));
}

#[test]
fn restore_drops_what_is_no_longer_configured_and_refuses_other_versions() {
    let mut e = solo(Limits::default());
    e.alarm_raised(tank(), "solo", t(0)).unwrap();
    e.alarm_raised(alarm("x", Priority::Low), "oncall", t(0))
        .unwrap();
    e.due(t(0));
    let snap = e.snapshot();
    let mut r = Escalations::new(&spec_example()).unwrap(); // no group `solo`
    r.restore(&snap).unwrap();
    assert_eq!(r.escalating().collect::<Vec<_>>(), ["x"]);

    let mut old = snap.clone();
    old.version = 99;
    let err = r.restore(&old).unwrap_err();
    assert!(matches!(err, NotifyError::Snapshot { .. }), "{err}");
}

#[test]
fn an_unknown_group_and_an_invalid_config_are_refused() {
    let mut e = Escalations::new(&spec_example()).unwrap();
    assert_eq!(
        e.alarm_raised(tank(), "nobody", t(0)).unwrap_err(),
        NotifyError::UnknownGroup {
            group: "nobody".into()
        }
    );
    let mut c: NotifyConfig = spec_example();
    c.contacts.push(Contact {
        name: "carol".into(),
        phone: "555".into(),
    });
    assert!(matches!(
        Escalations::new(&c),
        Err(NotifyError::Config { path, .. }) if path == "notify.contacts[2].phone"
    ));
}

fn transition(from: AlarmState, to: Status, at: Timestamp) -> Transition {
    Transition {
        alarm: Arc::from("tank_high"),
        priority: Priority::High,
        from: status(from),
        to,
        at,
        cause: Cause::Condition,
        value: None,
        user: None,
        reason: None,
    }
}

fn status(state: AlarmState) -> Status {
    Status {
        state,
        shelved: false,
        suppressed: false,
        out_of_service: false,
    }
}

#[test]
fn transitions_raise_keep_and_stop_escalations() {
    use AlarmState::*;
    let msg = "Tank level high: 9.3 m";
    let mut e = Escalations::new(&spec_example()).unwrap();
    let raise = transition(Normal, status(ActiveUnacked), t(0));
    e.on_transition(&raise, msg, "oncall").unwrap();
    assert_eq!(
        sent(&e.due(t(0))),
        [one("alice", Channel::Sms, "tank_high")]
    );
    // Returned to normal unacknowledged: someone still has to acknowledge it.
    e.on_transition(
        &transition(ActiveUnacked, status(RtnUnacked), t(60)),
        msg,
        "oncall",
    )
    .unwrap();
    assert!(e.is_escalating("tank_high"));
    // Active again before the ack: the same escalation, not a new one.
    e.on_transition(
        &transition(RtnUnacked, status(ActiveUnacked), t(120)),
        msg,
        "oncall",
    )
    .unwrap();
    assert_eq!(e.due(t(120)), []);
    assert_eq!(e.due(t(600)).len(), 2);
    // Acknowledged: stopped.
    e.on_transition(
        &transition(ActiveUnacked, status(ActiveAcked), t(700)),
        msg,
        "oncall",
    )
    .unwrap();
    assert!(!e.is_escalating("tank_high"));
    assert_eq!(e.due(t(1800)), []);

    // Shelving (hidden) stops it too, even while unacknowledged.
    e.on_transition(
        &transition(Normal, status(ActiveUnacked), t(2000)),
        msg,
        "oncall",
    )
    .unwrap();
    let shelved = Status {
        shelved: true,
        ..status(ActiveUnacked)
    };
    e.on_transition(&transition(ActiveUnacked, shelved, t(2001)), msg, "oncall")
        .unwrap();
    assert!(!e.is_escalating("tank_high"));
    assert_eq!(e.due(t(2001)), []);
}
