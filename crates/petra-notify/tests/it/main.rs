//! petra-notify against Twilio peers: Prism serving Twilio's own API description (requests
//! must be valid Twilio requests), and a scripted stand-in for the failures (429, 5xx, errors,
//! timeouts). One test binary for the crate (each binary relinks everything).

mod prism;
mod stub;

use petra_core::{Timestamp, VirtualClock};
use petra_notify::{Channel, Notification, RetryPolicy, TwilioClient, TwilioConfig};
use petra_test_support::twilio::{ACCOUNT_SID, AUTH_TOKEN, FROM};
use std::sync::Arc;
use std::time::Duration;

pub fn config(api_base: &str) -> TwilioConfig {
    TwilioConfig {
        account_sid: ACCOUNT_SID.into(),
        auth_token: AUTH_TOKEN.into(),
        from: FROM.into(),
        api_base: api_base.into(),
    }
}

/// Backoff in virtual time: the client's waits move the clock instead of sleeping, and the
/// test reads how long it waited from the clock.
pub fn client(cfg: &TwilioConfig, policy: RetryPolicy) -> (TwilioClient, Arc<VirtualClock>) {
    let clock = Arc::new(VirtualClock::new(Timestamp::from_unix_nanos(
        1_796_396_400_000_000_000,
    )));
    let client = TwilioClient::new(cfg, policy, clock.clone()).expect("client");
    (client, clock)
}

pub fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(3),
        timeout: Duration::from_secs(20),
    }
}

pub fn notification(channel: Channel, text: &str) -> Notification {
    Notification {
        alarms: vec![Arc::from("tank_high")],
        contact: Arc::from("alice"),
        phone: Arc::from("+15551230001"),
        channel,
        text: text.into(),
    }
}
