//! The alarm part of the API: `GET /api/v1/alarms`, `GET /api/v1/alarms/kpis`,
//! `POST /api/v1/alarms/{name}/{ack,shelve,unshelve,reset,service}`, over an [`AlarmSource`] the runtime's
//! alarm manager implements. This crate holds no alarm logic: it shows what the source lists,
//! checks who may act and what the request says, hands the action to the source, and writes
//! the audit line. The event stream (`event: alarm`, see `events`) and `/metrics` read the
//! same source.
//!
//! Times in an [`AlarmView`] are RFC 3339 UTC with milliseconds, as everywhere in the API:
//! make them with `petra_core::Timestamp::to_rfc3339_millis`.

use super::Api;
use super::handlers::{ApiError, ApiResult, Caller, NameParam, audit, check_name, json_body};
use crate::{AuditEvent, Role};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// The alarm priorities, lowest first: the `priority` values of [`AlarmView`] and the
/// `priority` label of `petra_alarms_active`.
pub const PRIORITIES: [&str; 4] = ["low", "medium", "high", "critical"];

/// The longest an alarm can be shelved for at once.
pub const MAX_SHELVE: Duration = Duration::from_secs(30 * 86_400);

/// Longest shelve reason accepted (characters).
pub const MAX_REASON: usize = 500;

/// One alarm as the API, the event stream and MQTT show it (docs/openapi.yaml `Alarm`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AlarmView {
    pub name: String,
    pub signal: String,
    /// `normal`, `active_unacked`, `active_acked` or `rtn_unacked`.
    pub state: &'static str,
    /// One of [`PRIORITIES`].
    pub priority: &'static str,
    pub message: String,
    /// The value the condition last looked at; `null` when nothing was evaluated yet.
    pub value: serde_json::Value,
    /// RFC 3339 UTC with milliseconds (`Timestamp::to_rfc3339_millis`), as all times below.
    pub active_since: Option<String>,
    pub acked_at: Option<String>,
    pub acked_by: Option<String>,
    pub cleared_at: Option<String>,
    pub shelved_until: Option<String>,
    pub shelved_by: Option<String>,
    pub shelve_reason: Option<String>,
    pub suppressed: bool,
    pub out_of_service: bool,
    /// A latching alarm: after an acknowledgement before its return it needs a reset.
    pub latch: bool,
    /// The alarm's condition (after its delays) holds now, whatever the state: a latched alarm
    /// can be reset once this is false.
    pub condition_active: bool,
    /// Time of the last transition.
    pub changed_at: Option<String>,
}

/// What an operator asks of an alarm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlarmAction {
    Ack,
    /// Shelve for `duration` from now (0 < duration ≤ [`MAX_SHELVE`], checked by the API);
    /// shelving a shelved alarm shelves it again for the new duration. `reason` is not empty.
    Shelve {
        duration: Duration,
        reason: String,
    },
    Unshelve,
    /// Return a latched alarm whose condition has cleared to normal (implies the
    /// acknowledgement); refused (422) for an alarm that does not latch or is not latched, or
    /// whose condition is still active.
    Reset,
    /// Take the alarm out of service (maintenance: tracked, not shown, not notified) or put it
    /// back; idempotent.
    OutOfService(bool),
}

/// Why an action was refused; nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlarmActionError {
    /// No alarm of that name (404).
    NotFound,
    /// The alarm exists but the action is not possible now (422); the text says why, for people.
    Unprocessable(String),
}

/// An accepted action: the alarm afterwards, and the before/after text for the audit line
/// (e.g. "active_unacked" → "active_acked"; "in service" → "shelved until 2026-…Z: reason").
#[derive(Clone, Debug, PartialEq)]
pub struct AlarmActed {
    pub alarm: AlarmView,
    pub old: String,
    pub new: String,
}

/// Alarm KPIs (ISA-18.2 performance figures) for `GET /api/v1/alarms/kpis` and `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct AlarmKpis {
    /// Activations in the last 10 minutes.
    pub rate_10min: u64,
    /// More than 10 activations in 10 minutes.
    pub flood: bool,
    /// Alarm names active longer than the standing threshold.
    pub standing: Vec<String>,
    /// Alarm names that chatter.
    pub chattering: Vec<String>,
    /// Active alarms per priority name. The API and `/metrics` show all four [`PRIORITIES`]
    /// whatever the source lists (a missing one is 0); in JSON an object
    /// `{"low":0,"medium":0,"high":0,"critical":0}`.
    #[serde(serialize_with = "active_as_object")]
    pub active: Vec<(String, u64)>,
    /// Transitions the manager could not take (its queue was full): missing from the journal.
    pub dropped_transitions: u64,
}

impl AlarmKpis {
    /// The count of active alarms of `priority` (0 when not listed).
    pub fn active_of(&self, priority: &str) -> u64 {
        self.active
            .iter()
            .filter(|(p, _)| p == priority)
            .map(|(_, n)| *n)
            .sum()
    }

    /// `active` as exactly the four [`PRIORITIES`], lowest first.
    pub(crate) fn normalized(mut self) -> AlarmKpis {
        self.active = PRIORITIES
            .iter()
            .map(|p| (p.to_string(), self.active_of(p)))
            .collect();
        self
    }
}

fn active_as_object<S: serde::Serializer>(
    active: &[(String, u64)],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(active.len()))?;
    for (k, v) in active {
        m.serialize_entry(k, v)?;
    }
    m.end()
}

/// The runtime's alarm manager, as the API sees it. Set with [`Api::set_alarms`]; the manager
/// also calls [`Api::publish_alarm`] on every transition (including those an [`act`] causes).
///
/// [`act`]: AlarmSource::act
pub trait AlarmSource: Send + Sync {
    /// Every configured alarm, sorted as the manager likes (priority desc, time). Called on the
    /// async workers (list, event stream, before an action): return a snapshot, do not wait for
    /// the scan.
    fn list(&self) -> Vec<AlarmView>;
    /// Whether an alarm of that name exists (checked before a request body is read). The
    /// default lists every alarm; a source with an index answers without building views.
    fn exists(&self, name: &str) -> bool {
        self.list().iter().any(|a| a.name == name)
    }
    /// May block for a moment (takes the scan's lock); called from a blocking thread.
    /// `user` is who asks (for `acked_by`/`shelved_by`).
    fn act(
        &self,
        name: &str,
        action: AlarmAction,
        user: &str,
    ) -> Result<AlarmActed, AlarmActionError>;
    /// The KPIs now. Called on the async workers (`/metrics`, the KPI endpoint): do not wait
    /// for the scan.
    fn kpis(&self) -> AlarmKpis;
    /// `petra_notifications_total{channel,result}` rows: (channel, result, count). Called on the
    /// async workers.
    fn notifications(&self) -> Vec<(&'static str, &'static str, u64)>;
    /// The last `limit` journal entries (transitions and notification attempts), oldest first.
    /// Called on the async workers.
    fn journal(&self, limit: usize) -> Vec<serde_json::Value> {
        let _ = limit;
        Vec::new()
    }
}

/// The shelve duration of a request: a Petra duration as in the configuration (`30m`, `1h`,
/// `8h`, `1.5h`, `7d`), more than 0 and at most [`MAX_SHELVE`].
pub(crate) fn shelve_duration(text: &str) -> Result<Duration, String> {
    let d = petra_config::parse_duration(text).map_err(|e| format!("`duration`: {e}"))?;
    if d.is_zero() || d > MAX_SHELVE {
        return Err(format!(
            "`duration` must be more than 0 and at most 30d; got `{}`",
            text.trim()
        ));
    }
    Ok(d)
}

// ---------------------------------------------------------------------------------------------
// Handlers

fn no_alarm(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no alarm `{name}`"),
    )
}

pub(crate) async fn list_alarms(
    State(api): State<Arc<Api>>,
    _caller: Caller,
) -> Json<Vec<AlarmView>> {
    Json(api.alarm_source().map(|s| s.list()).unwrap_or_default())
}

pub(crate) async fn alarm_kpis(State(api): State<Arc<Api>>, _caller: Caller) -> Json<AlarmKpis> {
    Json(api.alarm_kpis())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JournalParams {
    limit: Option<usize>,
}

/// Most journal entries one request returns (the manager keeps about this many in memory).
pub const JOURNAL_LIMIT: usize = 1000;

/// `GET /api/v1/alarms/journal?limit=N`: the newest entries, oldest first.
pub(crate) async fn alarm_journal(
    State(api): State<Arc<Api>>,
    _caller: Caller,
    query: Result<axum::extract::Query<JournalParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<serde_json::Value>>> {
    let axum::extract::Query(q) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "{}; use ?limit=N (1..={JOURNAL_LIMIT})",
            e.body_text()
        ))
    })?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=JOURNAL_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "out_of_range",
            format!("limit {limit} is outside 1..={JOURNAL_LIMIT}"),
        ));
    }
    Ok(Json(
        api.alarm_source()
            .map(|s| s.journal(limit))
            .unwrap_or_default(),
    ))
}

/// The source and the checked name of an existing alarm; 404 otherwise.
fn find(api: &Api, name: &str) -> ApiResult<(Arc<dyn AlarmSource>, String)> {
    let name = check_name(name, "alarm")?;
    let Some(source) = api.alarm_source() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no alarm `{name}`: the configuration has no `alarms` section"),
        ));
    };
    if !source.exists(name) {
        return Err(no_alarm(name));
    }
    Ok((source, name.to_string()))
}

pub(crate) async fn ack_alarm(
    State(api): State<Arc<Api>>,
    caller: Caller,
    NameParam(name): NameParam,
) -> ApiResult<Json<AlarmView>> {
    without_body(
        &api,
        &caller,
        &name,
        AlarmAction::Ack,
        "alarm.ack",
        "acknowledging alarms",
    )
    .await
}

pub(crate) async fn unshelve_alarm(
    State(api): State<Arc<Api>>,
    caller: Caller,
    NameParam(name): NameParam,
) -> ApiResult<Json<AlarmView>> {
    let action = AlarmAction::Unshelve;
    without_body(
        &api,
        &caller,
        &name,
        action,
        "alarm.unshelve",
        "unshelving alarms",
    )
    .await
}

pub(crate) async fn reset_alarm(
    State(api): State<Arc<Api>>,
    caller: Caller,
    NameParam(name): NameParam,
) -> ApiResult<Json<AlarmView>> {
    let action = AlarmAction::Reset;
    without_body(
        &api,
        &caller,
        &name,
        action,
        "alarm.reset",
        "resetting latched alarms",
    )
    .await
}

/// An operator action without a body: role check, then the alarm, then the action.
async fn without_body(
    api: &Arc<Api>,
    caller: &Caller,
    name: &str,
    action: AlarmAction,
    verb: &'static str,
    what: &str,
) -> ApiResult<Json<AlarmView>> {
    caller.require(Role::Operator, what)?;
    let (source, name) = find(api, name)?;
    perform(api, caller, source, name, action, verb).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceRequest {
    out_of_service: bool,
}

/// `POST /api/v1/alarms/{name}/service {"out_of_service": true|false}` (engineer):
/// maintenance, not an operator's decision.
pub(crate) async fn service_alarm(
    State(api): State<Arc<Api>>,
    caller: Caller,
    NameParam(name): NameParam,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<AlarmView>> {
    caller.require(Role::Engineer, "taking alarms out of service")?;
    let (source, name) = find(&api, &name)?;
    let req: ServiceRequest = json_body(body, "a JSON object with the field `out_of_service`")?;
    let action = AlarmAction::OutOfService(req.out_of_service);
    perform(&api, &caller, source, name, action, "alarm.service").await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShelveRequest {
    duration: String,
    /// Optional in the shape so that a missing reason is a 422 that says it is required.
    reason: Option<String>,
}

pub(crate) async fn shelve_alarm(
    State(api): State<Arc<Api>>,
    caller: Caller,
    NameParam(name): NameParam,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<AlarmView>> {
    caller.require(Role::Operator, "shelving alarms")?;
    let (source, name) = find(&api, &name)?;
    let req: ShelveRequest = json_body(
        body,
        "a JSON object with the fields `duration` and `reason`",
    )?;
    let invalid = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_value", m);
    let duration = shelve_duration(&req.duration).map_err(invalid)?;
    let reason = req.reason.unwrap_or_default();
    if reason.trim().is_empty() {
        return Err(invalid(
            "a reason is required to shelve an alarm: say why in `reason` (it goes into the audit log)"
                .into(),
        ));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(invalid(format!(
            "`reason` is limited to {MAX_REASON} characters"
        )));
    }
    let action = AlarmAction::Shelve { duration, reason };
    perform(&api, &caller, source, name, action, "alarm.shelve").await
}

/// Hands `action` to the source on a blocking thread; an accepted action is audit-logged
/// (`verb` is the audit action) and answered with the alarm as it is now. A refused one changes
/// nothing and is not audit-logged, like a refused signal write.
async fn perform(
    api: &Arc<Api>,
    caller: &Caller,
    source: Arc<dyn AlarmSource>,
    name: String,
    action: AlarmAction,
    verb: &'static str,
) -> ApiResult<Json<AlarmView>> {
    let user = caller.principal.user.clone();
    let (who, target) = (user.clone(), name.clone());
    let result = tokio::task::spawn_blocking(move || source.act(&target, action, &who))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, alarm = %name, "the alarm action failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error; please report it",
            )
        })?;
    let acted = match result {
        Ok(acted) => acted,
        Err(AlarmActionError::NotFound) => return Err(no_alarm(&name)),
        Err(AlarmActionError::Unprocessable(message)) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_state",
                message,
            ));
        }
    };
    // The manager applies and reports the action in one step, so the line is written after it
    // (not before, as for a signal write). If it cannot be written the answer is 503 and says so.
    let event = AuditEvent::new(user.clone(), caller.source.to_string(), verb, name.clone())
        .change(acted.old.into(), acted.new.into());
    audit(api, event).await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!(
                "`{verb}` of alarm `{name}` was done, but the audit log cannot be written; an \
                 operator must check the server's log"
            ),
        )
    })?;
    tracing::info!(user = %user, source = %caller.source, alarm = %name, action = verb,
        "alarm action through the API");
    Ok(Json(acted.alarm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarm_shelve_durations_are_petra_durations_within_30_days() {
        let h = Duration::from_secs(3600);
        assert_eq!(shelve_duration("1h"), Ok(h));
        assert_eq!(shelve_duration("90m"), Ok(h * 3 / 2));
        assert_eq!(shelve_duration("1.5h"), Ok(h * 3 / 2));
        assert_eq!(shelve_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(shelve_duration("30d"), Ok(MAX_SHELVE));
        assert_eq!(shelve_duration("720h"), Ok(MAX_SHELVE));
        for bad in ["0s", "0ms", "0.0000001ms", "31d", "30.001d"] {
            let e = shelve_duration(bad).unwrap_err();
            assert!(e.contains("more than 0 and at most 30d"), "{bad}: {e}");
        }
        for bad in [
            "", "1", "h", "-1h", "1w", "1h30m", "720h1ms", "forever", "1 hour",
        ] {
            let e = shelve_duration(bad).unwrap_err();
            assert!(e.starts_with("`duration`: "), "{bad}: {e}");
        }
    }

    #[test]
    fn alarm_kpis_always_show_the_four_priorities() {
        let k = AlarmKpis {
            active: vec![("high".into(), 2), ("bogus".into(), 9)],
            ..AlarmKpis::default()
        }
        .normalized();
        assert_eq!(
            serde_json::to_value(&k).unwrap(),
            serde_json::json!({
                "rate_10min": 0, "flood": false, "standing": [], "chattering": [],
                "active": {"low": 0, "medium": 0, "high": 2, "critical": 0},
                "dropped_transitions": 0,
            })
        );
    }
}
