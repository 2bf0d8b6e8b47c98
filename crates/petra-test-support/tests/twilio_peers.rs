//! The Twilio peers work: Prism validates requests against Twilio's own API description, and
//! the stub answers as scripted and records what it got.

use petra_test_support::twilio::{
    ACCOUNT_SID, AUTH_TOKEN, FROM, Prism, Reply, TwilioStub, basic_auth, post_form,
};
use petra_test_support::{DEFAULT_TIMEOUT, wait_until};
use std::time::Duration;

fn messages(sid: &str) -> String {
    format!("/2010-04-01/Accounts/{sid}/Messages.json")
}

fn calls(sid: &str) -> String {
    format!("/2010-04-01/Accounts/{sid}/Calls.json")
}

const AUTH: Option<(&str, &str)> = Some((ACCOUNT_SID, AUTH_TOKEN));

#[test]
fn prism_accepts_valid_twilio_requests_and_refuses_invalid_ones() {
    let prism = Prism::start();
    let post = |path: &str, auth, form: &[(&str, &str)]| {
        post_form(&prism.url(), path, auth, form, DEFAULT_TIMEOUT)
            .unwrap_or_else(|e| panic!("POST {path}: {e}\n{}", prism.output().join("\n")))
    };

    let sms = post(
        &messages(ACCOUNT_SID),
        AUTH,
        &[
            ("To", "+15551230001"),
            ("From", FROM),
            ("Body", "tank high"),
        ],
    );
    assert_eq!(sms.status, 201, "{}", sms.body);
    assert!(sms.body.contains(r#""sid":"SM"#), "{}", sms.body);

    let call = post(
        &calls(ACCOUNT_SID),
        AUTH,
        &[
            ("To", "+15551230001"),
            ("From", FROM),
            ("Twiml", "<Response><Say>tank high</Say></Response>"),
        ],
    );
    assert_eq!(call.status, 201, "{}", call.body);
    assert!(call.body.contains(r#""sid":"CA"#), "{}", call.body);

    // Validation is on: what Twilio's description forbids is refused.
    let bad_sid = post(
        &messages("AC123"),
        AUTH,
        &[("To", "+15551230001"), ("From", FROM), ("Body", "x")],
    );
    assert_eq!(bad_sid.status, 422, "{}", bad_sid.body);
    assert!(
        bad_sid.body.contains("^AC[0-9a-fA-F]{32}$"),
        "{}",
        bad_sid.body
    );

    let no_to = post(
        &messages(ACCOUNT_SID),
        AUTH,
        &[("From", FROM), ("Body", "x")],
    );
    assert_eq!(no_to.status, 422, "{}", no_to.body);
    assert!(no_to.body.contains("'To'"), "{}", no_to.body);

    let call_without_from = post(&calls(ACCOUNT_SID), AUTH, &[("To", "+15551230001")]);
    assert_eq!(call_without_from.status, 422, "{}", call_without_from.body);
    assert!(
        call_without_from.body.contains("'From'"),
        "{}",
        call_without_from.body
    );

    let no_auth = post(
        &messages(ACCOUNT_SID),
        None,
        &[("To", "+15551230001"), ("From", FROM), ("Body", "x")],
    );
    assert_eq!(no_auth.status, 401, "{}", no_auth.body);
}

#[test]
fn the_stub_answers_in_script_order_and_records_the_requests() {
    let stub = TwilioStub::start([
        Reply::too_many_requests(Some(7)),
        Reply::created(),
        Reply::error(400, 21211, "The 'To' number is not a valid phone number."),
    ]);
    let form = [("To", "+15551230001"), ("From", FROM), ("Body", "a b&c")];
    let post = || {
        post_form(
            &stub.url(),
            &messages(ACCOUNT_SID),
            AUTH,
            &form,
            DEFAULT_TIMEOUT,
        )
    };

    let r = post().unwrap();
    assert_eq!(r.status, 429);
    assert!(
        r.headers.contains(&("retry-after".into(), "7".into())),
        "{r:?}"
    );
    assert!(r.body.contains(r#""code":20429"#), "{}", r.body);
    let r = post().unwrap();
    assert_eq!(r.status, 201);
    assert!(r.body.contains(r#""sid":"SM"#));
    let r = post().unwrap();
    assert_eq!(r.status, 400);
    assert!(r.body.contains(r#""code":21211"#) && r.body.contains("not a valid phone number"));
    // The script is used up: a 500 that says so.
    let r = post().unwrap();
    assert_eq!(r.status, 500);
    assert!(r.body.contains("no scripted reply left"), "{}", r.body);
    assert_eq!(stub.pending(), 0);

    let got = stub.requests();
    assert_eq!(got.len(), 4);
    let first = &got[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, messages(ACCOUNT_SID));
    assert_eq!(
        first.authorization.as_deref(),
        Some(basic_auth(ACCOUNT_SID, AUTH_TOKEN).as_str())
    );
    assert_eq!(
        first.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(first.form_value("To"), Some("+15551230001"));
    assert_eq!(first.form_value("Body"), Some("a b&c"));
    assert_eq!(stub.connections(), 4);
}

#[test]
fn the_stub_can_stay_silent_or_hang_up() {
    let stub = TwilioStub::start([Reply::Silent, Reply::Close, Reply::created()]);
    let post = |timeout| {
        post_form(
            &stub.url(),
            &calls(ACCOUNT_SID),
            AUTH,
            &[("To", "+1555"), ("From", FROM)],
            timeout,
        )
    };
    let silent = post(Duration::from_millis(300)).unwrap_err();
    assert!(silent.starts_with("read:"), "{silent}");
    let closed = post(DEFAULT_TIMEOUT).unwrap_err();
    assert!(closed.contains("no complete HTTP answer"), "{closed}");
    assert_eq!(post(DEFAULT_TIMEOUT).unwrap().status, 201);
    wait_until("three recorded requests", DEFAULT_TIMEOUT, || {
        stub.requests().len() == 3
    });
}
