//! The request handlers, the error body, and authentication.

use super::{Api, ComponentState, ReloadRequest, Signals};
use crate::{AuditEvent, Principal, Role, ServerError};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use petra_core::{Quality, Sample, SignalDef, SignalId, Timestamp, Value, ValueType};
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Longest name accepted in a path (openapi `Name`).
const MAX_NAME: usize = 128;
/// Longest string value accepted in a write.
const MAX_STRING: usize = 4096;

/// An error answer: `{"error": CODE, "message": TEXT}` (docs/api.md, "Errors").
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
    extra: Option<(&'static str, serde_json::Value)>,
}

impl ApiError {
    /// The message for people, without the status.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            extra: None,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.code, "message": self.message});
        if let Some((k, v)) = self.extra {
            body[k] = v;
        }
        let mut r = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// The client's address (`0.0.0.0:0` when the server was not given connection info, as in
/// unit tests that call the router directly).
pub(crate) fn source(parts: &Parts) -> SocketAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// An authenticated request: who, and from where.
pub(crate) struct Caller {
    pub principal: Principal,
    pub source: SocketAddr,
}

impl Caller {
    pub(crate) fn require(&self, role: Role, what: &str) -> ApiResult<()> {
        if self.principal.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "{what} needs role {role}; you are {}",
                self.principal.role
            )))
        }
    }
}

impl FromRequestParts<Arc<Api>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> ApiResult<Caller> {
        let source = source(parts);
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "this endpoint needs `Authorization: Bearer TOKEN`; get a token from POST /api/v1/login",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer TOKEN`")
            })?;
        let now = (api.clocks.wall)();
        let principal = match api.sessions.lookup(token, now) {
            // A session lasts only as long as its user: removed from the users file (`petra
            // user remove` while petra runs) ends it; a lowered role applies at once.
            Some(p) => api.users.current().role_of(&p.user).map(|role| Principal {
                role: p.role.min(role),
                ..p
            }),
            None if token.starts_with("petra_") => api.users.current().verify_token(token),
            None => None,
        };
        match principal {
            Some(principal) => Ok(Caller { principal, source }),
            None => Err(ApiError::unauthorized(
                "the token is unknown or has expired; log in again (POST /api/v1/login)",
            )),
        }
    }
}

/// Appends `event` to the audit log (off the async workers; fsynced). A failure marks the
/// audit log down in `/ready` and is a 503: an action that cannot be recorded is not done.
pub(crate) async fn audit(api: &Arc<Api>, event: AuditEvent) -> ApiResult<()> {
    let Some(log) = api.audit.clone() else {
        return Ok(());
    };
    let now = (api.clocks.wall)();
    let result = tokio::task::spawn_blocking(move || log.append(&event, now)).await;
    match result {
        Ok(Ok(())) => {
            api.readiness.set("audit_log", ComponentState::Up);
            Ok(())
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot append to the audit log; changes are refused");
            api.readiness.set("audit_log", ComponentState::Down);
            Err(ApiError::unavailable(
                "the audit log cannot be written, so nothing was changed; an operator must check the server's log",
            ))
        }
        Err(e) => {
            tracing::error!(error = %e, "audit log append task failed");
            Err(ApiError::unavailable(
                "the audit log cannot be written, so nothing was changed",
            ))
        }
    }
}

pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    shape: &str,
) -> ApiResult<T> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request bodies are limited to 64 KiB",
            )
        } else {
            ApiError::bad_request("the request body could not be read")
        }
    })?;
    // serde_json's messages name the problem and position but never echo a string value.
    let bad =
        |e: serde_json::Error| ApiError::bad_request(format!("the body must be {shape}: {e}"));
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(bad)?;
    if !v.is_object() {
        // serde would take `[..]` for a struct; the API takes only objects.
        return Err(ApiError::bad_request(format!("the body must be {shape}")));
    }
    serde_json::from_value(v).map_err(bad)
}

// ---------------------------------------------------------------------------------------------
// Login

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    user: String,
    password: String,
}

pub(crate) async fn login(
    State(api): State<Arc<Api>>,
    ConnectInfoOpt(source): ConnectInfoOpt,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let now_mono = (api.clocks.mono)();
    if let Err(ServerError::TooManyAttempts { retry_after }) =
        api.limiter.check(source.ip(), now_mono)
    {
        let secs = retry_after.as_secs().max(1);
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!("too many failed logins from this address; try again in {secs}s"),
        );
        e.retry_after = Some(secs);
        return Err(e);
    }
    let req: LoginRequest = json_body(body, "a JSON object with the fields `user` and `password`")?;
    if req.user.is_empty() || req.user.len() > 64 || req.password.len() > 1024 {
        return Err(ApiError::bad_request(
            "`user` must be 1 to 64 characters and `password` at most 1024",
        ));
    }
    let users = api.users.current();
    let (user, password) = (req.user.clone(), req.password);
    let verified = tokio::task::spawn_blocking(move || users.verify_password(&user, &password))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "login failed",
            )
        })?;
    let src = source.to_string();
    let Some(principal) = verified else {
        api.limiter.failure(source.ip(), now_mono);
        // A failed attempt is recorded; if that fails the answer is still 401.
        let _ = audit(&api, AuditEvent::login(&req.user, &src, false)).await;
        return Err(ApiError::unauthorized("wrong user name or password"));
    };
    audit(&api, AuditEvent::login(&principal.user, &src, true)).await?;
    let session = api
        .sessions
        .create(&principal.user, principal.role, (api.clocks.wall)())
        .map_err(|e| {
            tracing::error!(error = %e, "cannot create a session");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "cannot create a session",
            )
        })?;
    let expires = Timestamp::from_system_time(session.expires).to_rfc3339_millis();
    Ok(Json(json!({"token": session.token.expose(), "expires": expires})).into_response())
}

/// The client address, from the connection info when the server provides it.
pub(crate) struct ConnectInfoOpt(pub SocketAddr);

impl<S: Send + Sync> FromRequestParts<S> for ConnectInfoOpt {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ConnectInfoOpt(source(parts)))
    }
}

// ---------------------------------------------------------------------------------------------
// Signals

/// `{"name","type","value","quality","ts","unit"}` of signal `id`.
pub(crate) fn signal_json(signals: &Signals, id: SignalId) -> Option<serde_json::Value> {
    let def = signals.bus.def(id)?;
    let s = signals.bus.read(id)?;
    Some(sample_json(def, &s))
}

fn sample_json(def: &SignalDef, s: &Sample) -> serde_json::Value {
    json!({
        "name": def.name,
        "type": def.ty.name(),
        "value": value_json(&s.value),
        "quality": s.quality.name(),
        "ts": s.ts.to_rfc3339_millis(),
        "unit": def.unit,
    })
}

fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::Float(f) => json!(f),
        Value::String(s) => json!(&**s),
    }
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    #[serde(rename = "match")]
    pattern: Option<String>,
}

pub(crate) async fn list_signals(
    State(api): State<Arc<Api>>,
    _caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<serde_json::Value>>> {
    let Query(q) = query.map_err(|_| ApiError::bad_request("bad query string"))?;
    if q.pattern.as_ref().is_some_and(|p| p.chars().count() > 256) {
        return Err(ApiError::bad_request(
            "`match` is limited to 256 characters",
        ));
    }
    let signals = api.current();
    let out = signals
        .bus
        .defs()
        .iter()
        .enumerate()
        .filter(|(_, d)| q.pattern.as_deref().is_none_or(|p| glob(p, &d.name)))
        .filter_map(|(i, _)| signal_json(&signals, SignalId::from_index(i)))
        .collect();
    Ok(Json(out))
}

/// `*` matches any run of characters, `?` one; everything else itself.
pub(crate) fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The `{name}` of a path; one that is not even text is a name that does not exist (404).
pub(crate) struct NameParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for NameParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<NameParam> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(n)) => Ok(NameParam(n)),
            Err(_) => Err(ApiError::not_found(
                "no such name (names are letters, digits, `_`, `.`, `-`)",
            )),
        }
    }
}

pub(crate) fn check_name<'a>(name: &'a str, what: &str) -> ApiResult<&'a str> {
    if name.len() <= MAX_NAME && petra_config::is_name(name) {
        Ok(name)
    } else {
        Err(ApiError::not_found(format!(
            "no {what} of that name (names are letters, digits, `_`, `.`, `-`)"
        )))
    }
}

pub(crate) async fn get_signal(
    State(api): State<Arc<Api>>,
    _caller: Caller,
    NameParam(name): NameParam,
) -> ApiResult<Json<serde_json::Value>> {
    let name = check_name(&name, "signal")?;
    let signals = api.current();
    let (id, _) = signals
        .find(name)
        .ok_or_else(|| ApiError::not_found(format!("no signal `{name}`")))?;
    signal_json(&signals, id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no signal `{name}`")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteRequest {
    value: serde_json::Value,
}

pub(crate) async fn write_signal(
    State(api): State<Arc<Api>>,
    caller: Caller,
    NameParam(name): NameParam,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let name = check_name(&name, "signal")?;
    let signals = api.current();
    let (id, meta) = signals
        .find(name)
        .ok_or_else(|| ApiError::not_found(format!("no signal `{name}`")))?;
    if !meta.may_write(caller.principal.role) {
        let who = if meta.write.is_empty() {
            "nobody from outside (it has no `write` list)".to_string()
        } else {
            meta.write
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(ApiError::forbidden(format!(
            "signal `{name}` may be written by {who}; you are {}",
            caller.principal.role
        )));
    }
    let req: WriteRequest = json_body(body, "a JSON object with the field `value`")?;
    let value = checked_value(name, meta, &req.value)?;
    let source = caller.source.to_string();
    apply_write(&api, &signals, id, value, &caller.principal.user, &source).await?;
    tracing::info!(user = %caller.principal.user, source = %caller.source, signal = name,
        "signal written through the API");
    signal_json(&signals, id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no signal `{name}`")))
}

/// Writes a checked value from outside: audit-logged first (an action that cannot be recorded
/// is not done), serialised so the old value in the audit line is the one replaced.
async fn apply_write(
    api: &Arc<Api>,
    signals: &Signals,
    id: SignalId,
    value: Value,
    user: &str,
    source: &str,
) -> ApiResult<()> {
    let name = signals.bus.def(id).map_or("", |d| d.name.as_str());
    let _guard = api.write_lock.lock().await;
    let old = signals
        .bus
        .read(id)
        .map(|s| value_json(&s.value))
        .unwrap_or(serde_json::Value::Null);
    let event = AuditEvent::new(user, source, "signal.write", name).change(old, value_json(&value));
    audit(api, event).await?;
    let ts = Timestamp::from_system_time((api.clocks.wall)());
    signals
        .bus
        .write(id, value, Quality::Good, ts)
        .map_err(|e| ApiError::unprocessable("wrong_type", e.to_string()))?;
    Ok(())
}

/// A command from MQTT (`{prefix}/write/{signal}`, `source` the topic): allowed when the
/// signal's `write` list names `mqtt`; checked and audit-logged (user `mqtt`) like an API write.
pub(crate) async fn mqtt_write(
    api: &Arc<Api>,
    name: &str,
    value: &serde_json::Value,
    source: &str,
) -> Result<(), String> {
    let signals = api.current();
    let (id, meta) = signals
        .find(name)
        .ok_or_else(|| format!("no signal `{name}`"))?;
    if !meta.mqtt {
        return Err(format!(
            "signal `{name}` may not be written over MQTT (its `write` list does not name `mqtt`)"
        ));
    }
    let value = checked_value(name, meta, value).map_err(|e| e.message().to_string())?;
    apply_write(api, &signals, id, value, "mqtt", source)
        .await
        .map_err(|e| e.message().to_string())?;
    tracing::info!(source, signal = name, "signal written by an MQTT command");
    Ok(())
}

/// The JSON value as a value of signal `name`'s type, within its range; 422 otherwise.
pub(crate) fn checked_value(
    name: &str,
    meta: &super::SignalMeta,
    v: &serde_json::Value,
) -> ApiResult<Value> {
    let got = match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => "int",
        serde_json::Value::Number(_) => "float",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    };
    let wrong = || {
        ApiError::unprocessable(
            "wrong_type",
            format!(
                "signal `{name}` is a{} {}; got a{} {got}",
                article(meta.ty.name()),
                meta.ty.name(),
                article(got)
            ),
        )
    };
    let value = match (meta.ty, v) {
        (ValueType::Bool, serde_json::Value::Bool(b)) => Value::Bool(*b),
        (ValueType::Int, serde_json::Value::Number(n)) if got == "int" => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => {
                return Err(ApiError::unprocessable(
                    "out_of_range",
                    format!("{n} does not fit signal `{name}` (a 64-bit int)"),
                ));
            }
        },
        (ValueType::Float, serde_json::Value::Number(n)) => match n.as_f64() {
            Some(f) if f.is_finite() => Value::Float(f),
            _ => return Err(wrong()),
        },
        (ValueType::String, serde_json::Value::String(s)) => {
            if s.chars().count() > MAX_STRING {
                return Err(ApiError::unprocessable(
                    "invalid_value",
                    format!("string values are limited to {MAX_STRING} characters"),
                ));
            }
            Value::String(s.as_str().into())
        }
        _ => return Err(wrong()),
    };
    if let Some(x) = value.as_f64() {
        let below = meta.min.is_some_and(|m| x < m);
        let above = meta.max.is_some_and(|m| x > m);
        if below || above {
            let range = match (meta.min, meta.max) {
                (Some(lo), Some(hi)) => format!("{lo} to {hi}"),
                (Some(lo), None) => format!("at least {lo}"),
                (None, Some(hi)) => format!("at most {hi}"),
                (None, None) => String::new(),
            };
            return Err(ApiError::unprocessable(
                "out_of_range",
                format!("{v} is outside the range of `{name}` ({range})"),
            ));
        }
    }
    Ok(value)
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'i', 'o', 'u', 'e']) {
        "n"
    } else {
        ""
    }
}

// ---------------------------------------------------------------------------------------------
// History (the alarm endpoints are in `alarms`)

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryParams {
    signal: String,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
}

const HISTORY_LIMIT: usize = 100_000;

pub(crate) async fn history(
    State(api): State<Arc<Api>>,
    _caller: Caller,
    query: Result<Query<HistoryParams>, QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Query(q) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "{}; use ?signal=NAME&from=RFC3339&to=RFC3339&limit=N",
            e.body_text()
        ))
    })?;
    let Some(source) = api.history_query() else {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_implemented",
            "this Petra keeps no history: its configuration has no `history` section",
        ));
    };
    let name = check_name(&q.signal, "signal")?.to_string();
    let signals = api.current();
    let (_, meta) = signals
        .find(&name)
        .ok_or_else(|| ApiError::not_found(format!("no signal `{name}`")))?;
    let ty = meta.ty;
    let time = |key: &str, s: &str| -> ApiResult<i64> {
        humantime::parse_rfc3339_weak(s)
            .map(|t| {
                Timestamp::from_system_time(t)
                    .unix_nanos()
                    .div_euclid(1_000_000)
            })
            .map_err(|e| {
                ApiError::bad_request(format!(
                    "`{key}` is `{s}`: {e}; write an RFC 3339 time such as 2026-12-04T14:00:00Z"
                ))
            })
    };
    let to = match &q.to {
        Some(t) => time("to", t)?,
        None => Timestamp::from_system_time((api.clocks.wall)())
            .unix_nanos()
            .div_euclid(1_000_000),
    };
    let from = match &q.from {
        Some(f) => time("from", f)?,
        None => to - 3_600_000,
    };
    let limit = q.limit.unwrap_or(1000);
    if !(1..=HISTORY_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "`limit` must be between 1 and {HISTORY_LIMIT}"
        )));
    }
    let who = name.clone();
    let rows = tokio::task::spawn_blocking(move || source(&who, from, to, limit + 1))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "history_unavailable",
                format!("cannot read the history: {e}"),
            )
        })?;
    let truncated = rows.len() > limit;
    let samples: Vec<serde_json::Value> = rows
        .iter()
        .take(limit)
        .map(|r| {
            let value = match (ty, r.value, &r.text) {
                (ValueType::Bool, Some(v), _) => json!(v != 0.0),
                (ValueType::Int, Some(v), _) => json!(v as i64),
                (ValueType::String, _, Some(t)) => json!(t),
                (_, Some(v), _) if v.is_finite() => json!(v),
                _ => serde_json::Value::Null,
            };
            let ts = Timestamp::from_unix_nanos(r.ts_ms.saturating_mul(1_000_000));
            json!({"ts": ts.to_rfc3339_millis(), "value": value, "quality": r.quality})
        })
        .collect();
    Ok(Json(
        json!({"signal": name, "samples": samples, "truncated": truncated}),
    ))
}

// ---------------------------------------------------------------------------------------------
// Reload

pub(crate) async fn reload(State(api): State<Arc<Api>>, caller: Caller) -> ApiResult<Response> {
    caller.require(Role::Engineer, "reloading the configuration")?;
    let (tx, rx) = oneshot::channel();
    let gone =
        || ApiError::unavailable("petra is shutting down; the configuration was not reloaded");
    api.reload
        .send(ReloadRequest { reply: tx })
        .await
        .map_err(|_| gone())?;
    let outcome = rx.await.map_err(|_| gone())?;
    let event = AuditEvent::new(
        caller.principal.user.clone(),
        caller.source.to_string(),
        "config.reload",
        api.config_name.clone(),
    );
    match outcome {
        Ok(r) => {
            audit(
                &api,
                event.change(serde_json::Value::Null, json!("applied")),
            )
            .await?;
            Ok(Json(json!({
                "kept": r.kept, "fresh": r.fresh, "dropped": r.dropped,
                "signals_copied": r.signals_copied,
            }))
            .into_response())
        }
        Err(refused) => {
            audit(
                &api,
                event.change(serde_json::Value::Null, json!("refused")),
            )
            .await?;
            let mut e = ApiError::unprocessable("invalid_config", refused.message);
            e.extra = Some(("diagnostics", json!(refused.diagnostics)));
            Err(e)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Operations

pub(crate) async fn metrics(State(api): State<Arc<Api>>, _caller: Caller) -> Response {
    let stats = api.stats.load().get();
    let signals = api.current();
    let history = api.history_metrics();
    let alarms = api.alarm_metrics();
    let text =
        crate::metrics::render_all(&stats, &signals.bus, &api.drivers.load(), history, &alarms);
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
}

pub(crate) async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

pub(crate) async fn ready(State(api): State<Arc<Api>>) -> Response {
    let mut components = api.readiness.snapshot();
    // A driver is up while its device answers; `starting` until its first connect or failure.
    for d in api.drivers.load().iter() {
        let state = if d.is_connected() {
            ComponentState::Up
        } else if d.connects() == 0 && d.last_error().is_none() {
            ComponentState::Starting
        } else {
            ComponentState::Down
        };
        components.insert(format!("driver.{}", d.name()), state);
    }
    let all_up = components.values().all(|s| *s == ComponentState::Up);
    let body = json!({
        "status": if all_up { "ready" } else { "not_ready" },
        "components": components.iter().map(|(k, v)| (k.clone(), json!(v.as_str())))
            .collect::<serde_json::Map<_, _>>(),
    });
    let status = if all_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; docs/api.md lists them")
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "bad_request",
        "this method is not allowed here; docs/api.md lists the endpoints",
    )
}
