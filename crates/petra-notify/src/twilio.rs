//! Delivery through Twilio's REST API (2010-04-01).
//!
//! | channel | request |
//! |---|---|
//! | SMS | `POST {api_base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, form `To`, `From`, `Body` |
//! | voice | `POST {api_base}/2010-04-01/Accounts/{AccountSid}/Calls.json`, form `To`, `From`, `Twiml` (`<Response><Say loop="2">text</Say></Response>`, XML-escaped) |
//!
//! Both with HTTP basic auth `AccountSid:AuthToken`; Twilio answers `201` with the created
//! resource (its `sid` goes into the journal) or an error body `{"code", "message", "status",
//! "more_info"}`.
//!
//! # Retries
//!
//! | outcome | meaning | what happens |
//! |---|---|---|
//! | 2xx | accepted | [`DeliveryResult::Ok`] |
//! | 429 | Twilio's rate limit (or concurrency limit) | retried after `Retry-After` seconds when given, else after the backoff |
//! | 5xx, timeout, connection refused/reset | Twilio or the network is unwell | retried after the backoff |
//! | other 4xx (400 invalid number, 401 bad credentials, 404, 422 …) | the request is wrong | **not retried**: [`DeliveryResult::Failed`] with Twilio's `code` and `message` |
//!
//! The backoff doubles from [`RetryPolicy::initial_backoff`] up to [`RetryPolicy::max_backoff`]
//! (which also caps `Retry-After`), for at most [`RetryPolicy::max_attempts`] attempts. A
//! timeout is retried even though Twilio may have accepted the request: a duplicate page is
//! better than a missing one. Waiting happens on the client's [`Clock`], so tests run backoff
//! in virtual time and production sleeps on the notifier's own thread.
//!
//! Every attempt is a [`Delivery`] for the journal, and is counted in [`NotifyCounters`]
//! (`petra_notifications_total{channel, result}` with `result` ∈ `ok`, `retried`, `failed`:
//! `ok + failed` is the number of notifications, `retried` the extra attempts).
//!
//! The client respects the usual `HTTPS_PROXY`/`NO_PROXY` variables: Twilio is on the internet,
//! and a plant network often reaches it only through a proxy. An `api_base` on loopback (a test
//! mock) is reached directly.

use crate::config::{Channel, TwilioConfig, check_api_base, is_loopback};
use crate::error::NotifyError;
use crate::planner::Notification;
use crate::text;
use petra_core::{Clock, Timestamp};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The metric [`NotifyCounters`] feeds.
pub const METRIC_NAME: &str = "petra_notifications_total";

/// How hard to try one notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Wait before the first retry; doubled for each further one.
    pub initial_backoff: Duration,
    /// Longest wait between attempts, also for a `Retry-After` that asks for more.
    pub max_backoff: Duration,
    /// Per request (connect and answer).
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(15),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the wait after the first attempt):
    /// `Retry-After` if the server sent one, else `initial_backoff · 2^(retry−1)`; both capped
    /// at `max_backoff`.
    pub fn backoff(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let exponential = self
            .initial_backoff
            .checked_mul(1u32 << retry.saturating_sub(1).min(31))
            .unwrap_or(Duration::MAX);
        retry_after.unwrap_or(exponential).min(self.max_backoff)
    }
}

/// The outcome of one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryResult {
    /// Twilio accepted it.
    Ok,
    /// It failed and will be tried again.
    Retried,
    /// It failed for good (a refusal, or the last attempt).
    Failed,
}

impl DeliveryResult {
    pub const ALL: [DeliveryResult; 3] = [
        DeliveryResult::Ok,
        DeliveryResult::Retried,
        DeliveryResult::Failed,
    ];

    /// `ok`, `retried`, `failed`: the metric's `result` label.
    pub fn name(self) -> &'static str {
        match self {
            DeliveryResult::Ok => "ok",
            DeliveryResult::Retried => "retried",
            DeliveryResult::Failed => "failed",
        }
    }
}

/// One delivery attempt, for the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub alarms: Vec<Arc<str>>,
    pub contact: Arc<str>,
    pub channel: Channel,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub result: DeliveryResult,
    /// When the attempt ended (wall clock of the client's [`Clock`]).
    pub at: Timestamp,
    /// The message or call SID Twilio created (`SM…`, `CA…`), when accepted.
    pub sid: Option<String>,
    /// Why it did not succeed.
    pub error: Option<NotifyError>,
}

/// Counts for `petra_notifications_total{channel, result}` (bounded labels: 2 × 3).
#[derive(Debug, Default)]
pub struct NotifyCounters {
    counts: [[AtomicU64; 3]; 2],
}

impl NotifyCounters {
    pub fn add(&self, channel: Channel, result: DeliveryResult) {
        self.counts[channel.index()][result as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, channel: Channel, result: DeliveryResult) -> u64 {
        self.counts[channel.index()][result as usize].load(Ordering::Relaxed)
    }

    /// Every (channel, result, count), zeros included, for the metrics exporter.
    pub fn all(&self) -> Vec<(Channel, DeliveryResult, u64)> {
        Channel::ALL
            .into_iter()
            .flat_map(|ch| {
                DeliveryResult::ALL
                    .into_iter()
                    .map(move |r| (ch, r, self.get(ch, r)))
            })
            .collect()
    }
}

/// Sends notifications through Twilio (see the module docs). Blocking: use it from a thread
/// of its own.
pub struct TwilioClient {
    account_sid: String,
    auth_token: String,
    from: String,
    api_base: String,
    policy: RetryPolicy,
    http: reqwest::blocking::Client,
    clock: Arc<dyn Clock>,
    counters: Arc<NotifyCounters>,
}

/// Why one attempt did not succeed, and whether another may.
struct AttemptError {
    error: NotifyError,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl TwilioClient {
    /// A client for `config` (validated by [`crate::NotifyConfig::validate`]; only `api_base`
    /// is checked again here, as the client cannot work without it). `clock` times the journal
    /// entries and the waits between attempts.
    pub fn new(
        config: &TwilioConfig,
        policy: RetryPolicy,
        clock: Arc<dyn Clock>,
    ) -> Result<TwilioClient, NotifyError> {
        let url = check_api_base(&config.api_base).map_err(|reason| NotifyError::Config {
            path: "notify.twilio.api_base".into(),
            reason,
        })?;
        let mut builder = reqwest::blocking::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .user_agent(concat!("petra/", env!("CARGO_PKG_VERSION")));
        if url.host_str().is_some_and(is_loopback) {
            // A local mock: no proxy can (or should) reach this machine's loopback.
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| NotifyError::Client {
            reason: describe(&e),
        })?;
        Ok(TwilioClient {
            account_sid: config.account_sid.clone(),
            auth_token: config.auth_token.clone(),
            from: config.from.clone(),
            api_base: config.api_base.trim_end_matches('/').to_string(),
            policy,
            http,
            clock,
            counters: Arc::new(NotifyCounters::default()),
        })
    }

    /// The counters behind `petra_notifications_total` (shared with the metrics exporter).
    pub fn counters(&self) -> &Arc<NotifyCounters> {
        &self.counters
    }

    /// Delivers `n`, retrying as the module docs say. Returns one [`Delivery`] per attempt;
    /// the last one is the outcome ([`DeliveryResult::Ok`] or [`DeliveryResult::Failed`]).
    pub fn deliver(&self, n: &Notification) -> Vec<Delivery> {
        let mut journal = Vec::new();
        let max = self.policy.max_attempts.max(1);
        for attempt in 1..=max {
            let outcome = self.attempt(n);
            let (result, sid, error, wait) = match outcome {
                Ok(sid) => (DeliveryResult::Ok, sid, None, None),
                Err(e) if e.retryable && attempt < max => {
                    let wait = self.policy.backoff(attempt, e.retry_after);
                    (DeliveryResult::Retried, None, Some(e.error), Some(wait))
                }
                Err(e) => (DeliveryResult::Failed, None, Some(e.error), None),
            };
            self.counters.add(n.channel, result);
            match (&error, result) {
                (Some(e), DeliveryResult::Failed) => tracing::warn!(
                    contact = %n.contact, channel = %n.channel, attempt, error = %e,
                    "notification not delivered"),
                (Some(e), _) => tracing::info!(
                    contact = %n.contact, channel = %n.channel, attempt, error = %e, ?wait,
                    "notification attempt failed; retrying"),
                (None, _) => tracing::debug!(
                    contact = %n.contact, channel = %n.channel, attempt, sid = ?sid,
                    "notification delivered"),
            }
            journal.push(Delivery {
                alarms: n.alarms.clone(),
                contact: n.contact.clone(),
                channel: n.channel,
                attempt,
                result,
                at: self.clock.wall(),
                sid,
                error,
            });
            match wait {
                Some(wait) => self
                    .clock
                    .sleep_until(self.clock.mono().saturating_add(wait)),
                None => break,
            }
        }
        journal
    }

    fn attempt(&self, n: &Notification) -> Result<Option<String>, AttemptError> {
        let (resource, content_key, content) = match n.channel {
            Channel::Sms => ("Messages", "Body", n.text.clone()),
            Channel::Voice => ("Calls", "Twiml", text::twiml(&n.text)),
        };
        let url = format!(
            "{}/2010-04-01/Accounts/{}/{resource}.json",
            self.api_base, self.account_sid
        );
        let form = [
            ("To", &*n.phone),
            ("From", self.from.as_str()),
            (content_key, content.as_str()),
        ];
        let transport = |e: reqwest::Error| AttemptError {
            error: NotifyError::Transport {
                api_base: self.api_base.clone(),
                reason: if e.is_timeout() {
                    format!("no answer within {:?}", self.policy.timeout)
                } else {
                    describe(&e)
                },
            },
            retryable: true,
            retry_after: None,
        };
        let resp = self
            .http
            .post(&url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&form)
            .send()
            .map_err(transport)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = resp.bytes().map_err(transport)?;
        let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        if (200..300).contains(&status) {
            let sid = json
                .as_ref()
                .and_then(|j| j.get("sid"))
                .and_then(|s| s.as_str())
                .map(str::to_string);
            return Ok(sid);
        }
        let (code, message) = twilio_error(json.as_ref(), &body);
        Err(AttemptError {
            error: NotifyError::Twilio {
                status,
                code,
                message,
            },
            retryable: status == 429 || status >= 500,
            retry_after: if status == 429 { retry_after } else { None },
        })
    }
}

/// Twilio's `code` and `message` from an error body; for anything else that answers at
/// `api_base` (a mock, a proxy), its `title`/`detail` or the start of the text.
fn twilio_error(json: Option<&serde_json::Value>, body: &[u8]) -> (Option<i64>, String) {
    let field = |k: &str| json.and_then(|j| j.get(k)).and_then(|v| v.as_str());
    let code = json.and_then(|j| j.get("code")).and_then(|c| c.as_i64());
    // Problem details (RFC 7807) as a mock or gateway sends them, with Prism's list of
    // validation failures when there is one: it says which field was wrong.
    let validation: Vec<&str> = json
        .and_then(|j| j.get("validation"))
        .and_then(|v| v.as_array())
        .map(|v| {
            v.iter()
                .filter_map(|e| e.get("message").and_then(|m| m.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let message = match (field("message"), field("title"), field("detail")) {
        (Some(m), _, _) => m.to_string(),
        (None, Some(t), _) if !validation.is_empty() => format!("{t}: {}", validation.join("; ")),
        (None, Some(t), Some(d)) => format!("{t}: {d}"),
        (None, Some(t), None) => t.to_string(),
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            match text.char_indices().nth(300) {
                Some((cut, _)) => format!("{}…", &text[..cut]),
                None if text.is_empty() => "(empty answer)".to_string(),
                None => text.to_string(),
            }
        }
    };
    (code, message)
}

/// A reqwest error by its causes: the top one only says "error sending request for url".
fn describe(e: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    if causes.is_empty() {
        e.to_string()
    } else {
        causes.join(": ")
    }
}

/// rustls with the ring provider and the system's trust store.
fn tls_config() -> Result<rustls::ClientConfig, NotifyError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client_err = |e: rustls::Error| NotifyError::Client {
        reason: format!("TLS: {e}"),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(client_err)?
        .with_platform_verifier()
        .map_err(client_err)?
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_honours_retry_after() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
        };
        let waits: Vec<u64> = (1..=5).map(|r| p.backoff(r, None).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        assert_eq!(p.backoff(1, Some(Duration::from_secs(3))).as_secs(), 3);
        assert_eq!(p.backoff(1, Some(Duration::from_secs(300))).as_secs(), 5);
        assert_eq!(p.backoff(1, Some(Duration::ZERO)), Duration::ZERO);
        assert_eq!(p.backoff(u32::MAX, None).as_secs(), 5);
    }

    #[test]
    fn error_bodies_of_twilio_and_of_others() {
        let j = serde_json::json!({"code": 21211, "message": "The 'To' number 5 is not a valid phone number.", "status": 400});
        assert_eq!(
            twilio_error(Some(&j), b""),
            (
                Some(21211),
                "The 'To' number 5 is not a valid phone number.".into()
            )
        );
        let j = serde_json::json!({"title": "Invalid request", "detail": "bad", "status": 422});
        assert_eq!(
            twilio_error(Some(&j), b""),
            (None, "Invalid request: bad".into())
        );
        let j = serde_json::json!({"title": "Invalid request", "detail": "long", "status": 422,
            "validation": [{"message": "a must match"}, {"message": "b is required"}]});
        assert_eq!(
            twilio_error(Some(&j), b""),
            (None, "Invalid request: a must match; b is required".into())
        );
        assert_eq!(
            twilio_error(None, b" Bad Gateway\n"),
            (None, "Bad Gateway".into())
        );
        assert_eq!(twilio_error(None, b""), (None, "(empty answer)".into()));
    }

    #[test]
    fn counters_by_channel_and_result() {
        let c = NotifyCounters::default();
        c.add(Channel::Voice, DeliveryResult::Retried);
        c.add(Channel::Voice, DeliveryResult::Retried);
        c.add(Channel::Sms, DeliveryResult::Ok);
        assert_eq!(c.get(Channel::Voice, DeliveryResult::Retried), 2);
        assert_eq!(c.get(Channel::Sms, DeliveryResult::Ok), 1);
        let all = c.all();
        assert_eq!(all.len(), 6);
        assert_eq!(all.iter().map(|(_, _, n)| n).sum::<u64>(), 3);
    }

    #[test]
    fn a_bad_api_base_is_refused() {
        let cfg = TwilioConfig {
            account_sid: "AC0123456789abcdef0123456789abcdef".into(),
            auth_token: "t".into(),
            from: "+15005550006".into(),
            api_base: "http://api.twilio.com".into(),
        };
        let clock = Arc::new(petra_core::VirtualClock::new(Timestamp::default()));
        let e = TwilioClient::new(&cfg, RetryPolicy::default(), clock)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("notify.twilio.api_base"), "{e}");
    }
}
