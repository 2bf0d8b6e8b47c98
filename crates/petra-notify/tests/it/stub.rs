//! Retries and refusals against the scripted Twilio stand-in, in virtual time.

use crate::{client, config, notification, policy};
use petra_core::Clock;
use petra_notify::{Channel, DeliveryResult, NotifyError, RetryPolicy};
use petra_test_support::free_port;
use petra_test_support::twilio::{ACCOUNT_SID, AUTH_TOKEN, FROM, Reply, TwilioStub, basic_auth};
use std::time::Duration;

fn results(d: &[petra_notify::Delivery]) -> Vec<(u32, DeliveryResult)> {
    d.iter().map(|d| (d.attempt, d.result)).collect()
}

#[test]
fn requests_carry_the_form_fields_and_basic_auth() {
    let stub = TwilioStub::start([Reply::created(), Reply::created()]);
    let (c, _) = client(&config(&stub.url()), policy());
    c.deliver(&notification(Channel::Sms, "HIGH tank_high: 9.3 m"));
    c.deliver(&notification(Channel::Voice, "level <high> & \"rising\""));
    let got = stub.requests();
    assert_eq!(got.len(), 2);
    let auth = basic_auth(ACCOUNT_SID, AUTH_TOKEN);
    let sms = &got[0];
    assert_eq!(sms.method, "POST");
    assert_eq!(
        sms.path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
    );
    assert_eq!(sms.authorization.as_deref(), Some(auth.as_str()));
    assert_eq!(
        sms.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        sms.form,
        [
            ("To".into(), "+15551230001".into()),
            ("From".into(), FROM.into()),
            ("Body".into(), "HIGH tank_high: 9.3 m".into())
        ]
    );
    let call = &got[1];
    assert_eq!(
        call.path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json")
    );
    assert_eq!(call.authorization.as_deref(), Some(auth.as_str()));
    assert_eq!(
        call.form_value("Twiml"),
        Some(
            "<Response><Say loop=\"2\">level &lt;high&gt; &amp; &quot;rising&quot;</Say></Response>"
        )
    );
    assert_eq!(call.form_value("Body"), None);
}

#[test]
fn a_429_then_success_is_one_message_after_one_retry_honouring_retry_after() {
    let stub = TwilioStub::start([Reply::too_many_requests(Some(3)), Reply::created()]);
    let (c, clock) = client(
        &config(&stub.url()),
        RetryPolicy {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            ..policy()
        },
    );
    let d = c.deliver(&notification(Channel::Sms, "x"));
    assert_eq!(
        results(&d),
        [(1, DeliveryResult::Retried), (2, DeliveryResult::Ok)]
    );
    assert!(
        matches!(
            &d[0].error,
            Some(NotifyError::Twilio {
                status: 429,
                code: Some(20429),
                ..
            })
        ),
        "{d:?}"
    );
    assert_eq!(
        d[1].sid.as_deref(),
        Some("SM0000000000000000000000000000feed")
    );
    assert_eq!(stub.requests().len(), 2, "one message: exactly one retry");
    // It waited Retry-After (3 s), not its own first backoff (1 s).
    assert_eq!(clock.mono().nanos(), 3_000_000_000);
    assert_eq!(d[1].at.unix_nanos() - d[0].at.unix_nanos(), 3_000_000_000);
    let k = c.counters();
    assert_eq!(k.get(Channel::Sms, DeliveryResult::Retried), 1);
    assert_eq!(k.get(Channel::Sms, DeliveryResult::Ok), 1);
    assert_eq!(k.get(Channel::Sms, DeliveryResult::Failed), 0);
}

#[test]
fn a_400_is_not_retried_and_carries_twilios_message() {
    let stub = TwilioStub::start([
        Reply::error(
            400,
            21211,
            "The 'To' number +1555 is not a valid phone number.",
        ),
        Reply::created(),
    ]);
    let (c, clock) = client(&config(&stub.url()), policy());
    let d = c.deliver(&notification(Channel::Voice, "x"));
    assert_eq!(results(&d), [(1, DeliveryResult::Failed)]);
    let e = d[0].error.clone().expect("an error");
    assert_eq!(
        e,
        NotifyError::Twilio {
            status: 400,
            code: Some(21211),
            message: "The 'To' number +1555 is not a valid phone number.".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "Twilio answered HTTP 400 (error 21211): The 'To' number +1555 is not a valid phone number."
    );
    assert_eq!(stub.requests().len(), 1);
    assert_eq!(stub.pending(), 1);
    assert_eq!(clock.mono().nanos(), 0);
    assert_eq!(c.counters().get(Channel::Voice, DeliveryResult::Failed), 1);
}

#[test]
fn server_errors_are_retried_with_capped_backoff_then_fail() {
    let stub = TwilioStub::start([
        Reply::error(500, 20500, "Internal Server Error"),
        Reply::error(503, 20503, "Service Unavailable"),
        Reply::error(500, 20500, "Internal Server Error"),
        Reply::error(502, 0, "Bad Gateway"),
    ]);
    let (c, clock) = client(&config(&stub.url()), policy());
    let d = c.deliver(&notification(Channel::Sms, "x"));
    assert_eq!(
        results(&d),
        [
            (1, DeliveryResult::Retried),
            (2, DeliveryResult::Retried),
            (3, DeliveryResult::Retried),
            (4, DeliveryResult::Failed)
        ]
    );
    assert!(
        matches!(d[3].error, Some(NotifyError::Twilio { status: 502, .. })),
        "{d:?}"
    );
    assert_eq!(stub.requests().len(), 4);
    // Waits of 1 s, 2 s and 3 s (4 s capped at max_backoff).
    assert_eq!(clock.mono().nanos(), 6_000_000_000);
    let k = c.counters();
    assert_eq!(k.get(Channel::Sms, DeliveryResult::Retried), 3);
    assert_eq!(k.get(Channel::Sms, DeliveryResult::Failed), 1);
}

#[test]
fn a_timeout_is_retried() {
    let stub = TwilioStub::start([Reply::Silent, Reply::created()]);
    let (c, _) = client(
        &config(&stub.url()),
        RetryPolicy {
            timeout: Duration::from_millis(300),
            ..policy()
        },
    );
    let d = c.deliver(&notification(Channel::Sms, "x"));
    assert_eq!(
        results(&d),
        [(1, DeliveryResult::Retried), (2, DeliveryResult::Ok)]
    );
    match &d[0].error {
        Some(NotifyError::Transport { reason, .. }) => {
            assert!(reason.contains("no answer within 300ms"), "{reason}")
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(stub.requests().len(), 2);
}

#[test]
fn a_dropped_connection_and_a_refused_one_are_retried() {
    let stub = TwilioStub::start([Reply::Close, Reply::created()]);
    let (c, _) = client(&config(&stub.url()), policy());
    let d = c.deliver(&notification(Channel::Sms, "x"));
    assert_eq!(
        results(&d),
        [(1, DeliveryResult::Retried), (2, DeliveryResult::Ok)]
    );

    // Nothing listens on this port.
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let (c, clock) = client(
        &config(&nobody),
        RetryPolicy {
            max_attempts: 2,
            ..policy()
        },
    );
    let d = c.deliver(&notification(Channel::Sms, "x"));
    assert_eq!(
        results(&d),
        [(1, DeliveryResult::Retried), (2, DeliveryResult::Failed)]
    );
    assert!(
        matches!(d[1].error, Some(NotifyError::Transport { .. })),
        "{d:?}"
    );
    assert_eq!(clock.mono().nanos(), 1_000_000_000);
}
