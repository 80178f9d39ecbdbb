//! The SIEM's API: `POST /v1/events` (ingestion), `GET /v1/events` (search),
//! `GET /v1/events/export` (JSON lines), `GET /v1/alerts`, `GET /v1/alerts/{id}` and
//! `POST /v1/alerts/{id}/acknowledge`. Authorized on `maos:events` and `maos:alerts`
//! (`read`, `write`).

use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maos_audit::{ActionName, Actor, Outcome, RecordDraft};
use maos_core::{SecurityEvent, SecurityEventType, Severity, Timestamp};
use maos_store::{AlertQuery, EventQuery};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::routes::decisions::{CallerHeaders, credentials};
use crate::siem::{alert_from_stored, new_id};
use crate::state::AppState;

const EVENTS: &str = "events";
const ALERTS: &str = "alerts";

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// Rows per page while exporting.
const EXPORT_PAGE: u32 = 1000;

/// How far in the future a posted event's time may lie (clock skew).
const MAX_FUTURE_SECS: i64 = 300;

/// Longest accepted text fields of a posted event.
const MAX_ID: usize = 128;
const MAX_TEXT: usize = 1024;
const MAX_TAGS: usize = 64;
const MAX_DETAILS_BYTES: usize = 16 * 1024;

/// The fields a posted event may have.
const EVENT_FIELDS: &[&str] = &[
    "id",
    "time",
    "source",
    "type",
    "severity",
    "principal",
    "source_ip",
    "source_host",
    "resource",
    "details",
    "tags",
    "correlation_id",
];

fn bad_query(message: String) -> ApiError {
    ApiError::bad_request("bad_query", message)
}

fn invalid_event(index: Option<usize>, message: impl std::fmt::Display) -> ApiError {
    let at = index.map_or_else(String::new, |i| format!("events[{i}]: "));
    ApiError::bad_request("invalid_event", format!("{at}{message}"))
}

/// Checks one posted event and completes it: a missing `id` is generated, a missing `time` is
/// now, a missing `source` is `api`.
fn validate_event(
    value: Value,
    index: Option<usize>,
    now: Timestamp,
) -> Result<SecurityEvent, ApiError> {
    let Value::Object(mut object) = value else {
        return Err(invalid_event(index, "an event is a JSON object"));
    };
    if let Some(unknown) = object.keys().find(|k| !EVENT_FIELDS.contains(&k.as_str())) {
        return Err(invalid_event(index, format!("unknown field `{unknown}`")));
    }
    object
        .entry("id")
        .or_insert_with(|| Value::String(new_id()));
    object
        .entry("time")
        .or_insert_with(|| Value::String(now.to_string()));
    object
        .entry("source")
        .or_insert_with(|| Value::String("api".into()));
    let event: SecurityEvent =
        serde_json::from_value(Value::Object(object)).map_err(|e| invalid_event(index, e))?;

    let id_ok = !event.id.is_empty()
        && event.id.chars().count() <= MAX_ID
        && !event.id.chars().any(char::is_control);
    if !id_ok {
        return Err(invalid_event(
            index,
            format!("`id` must be 1 to {MAX_ID} characters without control characters"),
        ));
    }
    if event.time > now.add_seconds(MAX_FUTURE_SECS) {
        return Err(invalid_event(
            index,
            format!("`time` {} is in the future", event.time),
        ));
    }
    let texts = [
        ("source", Some(&event.source)),
        ("principal", event.principal.as_ref()),
        ("source_host", event.source_host.as_ref()),
        ("resource", event.resource.as_ref()),
        ("correlation_id", event.correlation_id.as_ref()),
    ];
    for (name, text) in texts {
        if let Some(text) = text
            && (text.is_empty() || text.len() > MAX_TEXT)
        {
            return Err(invalid_event(
                index,
                format!("`{name}` must be 1 to {MAX_TEXT} bytes"),
            ));
        }
    }
    if event.tags.len() > MAX_TAGS || event.tags.iter().any(|t| t.is_empty() || t.len() > 128) {
        return Err(invalid_event(
            index,
            format!("`tags`: at most {MAX_TAGS}, each 1 to 128 bytes"),
        ));
    }
    let details_size = serde_json::to_vec(&event.details).map_or(usize::MAX, |d| d.len());
    if details_size > MAX_DETAILS_BYTES {
        return Err(invalid_event(
            index,
            format!("`details` is larger than {MAX_DETAILS_BYTES} bytes"),
        ));
    }
    Ok(event)
}

/// Ingest one event (a JSON object) or a batch (a JSON array of them).
#[utoipa::path(post, path = "/v1/events", tag = "siem",
    request_body(content = String, description = "one event or an array of events (docs/siem.md, \"Event model\"); `id`, `time` and `source` may be left out", content_type = "application/json"),
    responses(
        (status = 202, description = "`{accepted, ids}`: queued for detection and storage"),
        (status = 400, description = "an invalid event (`invalid_event`, naming its index) or an empty batch", body = crate::openapi::ErrorDoc),
        (status = 403, description = "the caller may not `write` `maos:events`", body = crate::openapi::ErrorDoc),
        (status = 413, description = "more events than `siem.max_batch`, or a body over the size limit", body = crate::openapi::ErrorDoc),
        (status = 503, description = "the ingestion queue is full; retry later", body = crate::openapi::ErrorDoc),
    ),
    security(("bearer" = [])))]
pub async fn ingest_events(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    state.authorize_caller(&credentials(&headers), EVENTS, "write")?;
    let now = Timestamp::now();
    let events = match body {
        Value::Array(items) => {
            let max = state.config.siem.max_batch;
            if items.len() > max {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "batch_too_large",
                    format!("{} events in one batch; at most {max}", items.len()),
                ));
            }
            if items.is_empty() {
                return Err(ApiError::bad_request(
                    "empty_batch",
                    "the batch holds no event",
                ));
            }
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| validate_event(item, Some(i), now))
                .collect::<Result<Vec<_>, _>>()?
        }
        other => vec![validate_event(other, None, now)?],
    };
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    state.siem.try_submit(events, "api").map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "siem_busy",
            "the ingestion queue is full; retry later",
        )
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"accepted": ids.len(), "ids": ids})),
    ))
}

/// Filters of `GET /v1/events` and `GET /v1/events/export`; every given one must hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSearch {
    #[serde(rename = "type")]
    pub event_type: Option<SecurityEventType>,
    /// Events at least this severe.
    pub severity: Option<Severity>,
    pub principal: Option<String>,
    pub source_ip: Option<String>,
    pub resource: Option<String>,
    pub source: Option<String>,
    pub correlation_id: Option<String>,
    /// Text anywhere in the event (details included).
    pub q: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub after: Option<i64>,
    pub limit: Option<u32>,
}

fn time_filter(name: &str, text: Option<&str>) -> Result<Option<i64>, ApiError> {
    text.map(|text| {
        Timestamp::parse_rfc3339(text)
            .map(Timestamp::unix_micros)
            .map_err(|e| bad_query(format!("`{name}`: {e}")))
    })
    .transpose()
}

fn limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad_query(format!(
            "`limit`: must be between 1 and {MAX_LIMIT}"
        )));
    }
    Ok(limit)
}

/// An address in the form events are stored with (`::ffff:192.0.2.1` is `192.0.2.1`); a host
/// name as given.
fn address(text: &str) -> String {
    match text.trim().parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => v6
            .to_ipv4_mapped()
            .map_or_else(|| v6.to_string(), |v4| v4.to_string()),
        Ok(ip) => ip.to_string(),
        Err(_) => text.trim().to_owned(),
    }
}

impl EventSearch {
    fn to_store_query(&self) -> Result<EventQuery, ApiError> {
        Ok(EventQuery {
            event_type: self.event_type.map(|t| t.as_str().to_owned()),
            min_severity: self.severity.map(|s| i64::from(s.number())),
            principal: self.principal.clone(),
            source_address: self.source_ip.as_deref().map(address),
            resource: self.resource.clone(),
            source: self.source.clone(),
            correlation_id: self.correlation_id.clone(),
            text: self.q.clone().filter(|q| !q.is_empty()),
            since: time_filter("since", self.since.as_deref())?,
            until: time_filter("until", self.until.as_deref())?,
            after_seq: self.after,
            limit: limit(self.limit)?,
        })
    }
}

fn parse_stored(body: &str, what: &str) -> Result<Value, ApiError> {
    serde_json::from_str(body).map_err(|e| ApiError::internal(what, e))
}

/// Stored events matching the filters, in the order they were stored, one page at a time.
#[utoipa::path(get, path = "/v1/events", tag = "siem",
    params(
        ("type" = Option<String>, Query, description = "an event type, e.g. `authentication_failure`"),
        ("severity" = Option<String>, Query, description = "events at least this severe: `info`, `low`, `medium`, `high`, `critical`"),
        ("principal" = Option<String>, Query, description = "the principal exactly"),
        ("source_ip" = Option<String>, Query, description = "the source address (or host name) exactly"),
        ("resource" = Option<String>, Query, description = "the resource exactly"),
        ("source" = Option<String>, Query, description = "the reporting component or log (`identity`, `sshd`)"),
        ("correlation_id" = Option<String>, Query, description = "the correlation id exactly"),
        ("q" = Option<String>, Query, description = "text anywhere in the event, details included"),
        ("since" = Option<String>, Query, description = "event time at or after (RFC 3339)"),
        ("until" = Option<String>, Query, description = "event time before (RFC 3339)"),
        ("after" = Option<i64>, Query, description = "the previous page's `next`"),
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
    ),
    responses(
        (status = 200, description = "`{events: [...], next}`"),
        (status = 400, description = "a malformed filter", body = crate::openapi::ErrorDoc),
        (status = 403, description = "the caller may not `read` `maos:events`", body = crate::openapi::ErrorDoc),
    ),
    security(("bearer" = [])))]
pub async fn search_events(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiQuery(search): ApiQuery<EventSearch>,
) -> Result<Json<Value>, ApiError> {
    state.authorize_caller(&credentials(&headers), EVENTS, "read")?;
    let query = search.to_store_query()?;
    let found = state.store.siem_events().search(&query).await?;
    let next = (found.len() == query.limit as usize)
        .then(|| found.last().map(|e| e.seq))
        .flatten();
    let events = found
        .iter()
        .map(|e| parse_stored(&e.body, "stored event"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({"events": events, "next": next})))
}

/// Every stored event matching the filters as JSON lines (`application/x-ndjson`), streamed.
#[utoipa::path(get, path = "/v1/events/export", tag = "siem",
    params(
        ("type" = Option<String>, Query, description = "as for `GET /v1/events`; `after` and `limit` are not used"),
    ),
    responses(
        (status = 200, description = "one event per line", content_type = "application/x-ndjson"),
        (status = 400, description = "a malformed filter", body = crate::openapi::ErrorDoc),
        (status = 403, description = "the caller may not `read` `maos:events`", body = crate::openapi::ErrorDoc),
    ),
    security(("bearer" = [])))]
pub async fn export_events(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiQuery(search): ApiQuery<EventSearch>,
) -> Result<Response, ApiError> {
    state.authorize_caller(&credentials(&headers), EVENTS, "read")?;
    let mut query = EventSearch {
        limit: None,
        after: None,
        ..search
    }
    .to_store_query()?;
    query.limit = EXPORT_PAGE;

    // Page by page; the stream ends after a short page or at the first storage error (the
    // connection is then cut, so a client never mistakes a partial export for a whole one).
    let pages = futures_util::stream::unfold(Some((state, query)), |next| async move {
        let (state, mut query) = next?;
        match state.store.siem_events().search(&query).await {
            Ok(page) if page.is_empty() => None,
            Ok(page) => {
                let mut chunk = Vec::new();
                for event in &page {
                    chunk.extend_from_slice(event.body.as_bytes());
                    chunk.push(b'\n');
                }
                let full = page.len() == query.limit as usize;
                query.after_seq = page.last().map(|e| e.seq);
                let next = full.then_some((state, query));
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(chunk)), next))
            }
            Err(error) => {
                tracing::error!(%error, "siem.export.failed");
                Some((Err(std::io::Error::other("export failed")), None))
            }
        }
    });
    let mut response = Body::from_stream(pages).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

/// Filters of `GET /v1/alerts`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSearch {
    pub rule_id: Option<String>,
    pub severity: Option<Severity>,
    pub status: Option<maos_siem::AlertStatus>,
    pub source_ip: Option<String>,
    pub principal: Option<String>,
    pub resource: Option<String>,
    pub correlation_id: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub after: Option<i64>,
    pub limit: Option<u32>,
}

/// Alerts matching the filters, in the order they were raised, one page at a time.
#[utoipa::path(get, path = "/v1/alerts", tag = "siem",
    params(
        ("rule_id" = Option<String>, Query, description = "the rule's id"),
        ("severity" = Option<String>, Query, description = "alerts at least this severe"),
        ("status" = Option<String>, Query, description = "`open` or `acknowledged`"),
        ("source_ip" = Option<String>, Query, description = "the group's source address"),
        ("principal" = Option<String>, Query, description = "the group's principal"),
        ("resource" = Option<String>, Query, description = "the group's resource"),
        ("correlation_id" = Option<String>, Query, description = "the correlation id"),
        ("since" = Option<String>, Query, description = "last seen at or after (RFC 3339)"),
        ("until" = Option<String>, Query, description = "last seen before (RFC 3339)"),
        ("after" = Option<i64>, Query, description = "the previous page's `next`"),
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
    ),
    responses(
        (status = 200, description = "`{alerts: [...], next}`"),
        (status = 400, description = "a malformed filter", body = crate::openapi::ErrorDoc),
        (status = 403, description = "the caller may not `read` `maos:alerts`", body = crate::openapi::ErrorDoc),
    ),
    security(("bearer" = [])))]
pub async fn list_alerts(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiQuery(search): ApiQuery<AlertSearch>,
) -> Result<Json<Value>, ApiError> {
    state.authorize_caller(&credentials(&headers), ALERTS, "read")?;
    let query = AlertQuery {
        rule_id: search.rule_id.clone(),
        min_severity: search.severity.map(|s| i64::from(s.number())),
        status: search.status.map(|s| s.as_str().to_owned()),
        principal: search.principal.clone(),
        source_address: search.source_ip.as_deref().map(address),
        resource: search.resource.clone(),
        correlation_id: search.correlation_id.clone(),
        since: time_filter("since", search.since.as_deref())?,
        until: time_filter("until", search.until.as_deref())?,
        after_seq: search.after,
        limit: limit(search.limit)?,
    };
    let found = state.store.siem_alerts().search(&query).await?;
    let next = (found.len() == query.limit as usize)
        .then(|| found.last().map(|a| a.seq))
        .flatten();
    let alerts = found
        .iter()
        .map(|stored| alert_from_stored(stored).map_err(ApiError::from))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({"alerts": alerts, "next": next})))
}

/// One alert with its related events.
#[utoipa::path(get, path = "/v1/alerts/{id}", tag = "siem",
    params(("id" = String, Path, description = "the alert's id")),
    responses(
        (status = 200, description = "`{alert, events}`"),
        (status = 404, body = crate::openapi::ErrorDoc),
    ),
    security(("bearer" = [])))]
pub async fn get_alert(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    state.authorize_caller(&credentials(&headers), ALERTS, "read")?;
    let stored = state
        .store
        .siem_alerts()
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("alert `{id}` not found")))?;
    let alert = alert_from_stored(&stored)?;
    let events = state
        .store
        .siem_events()
        .by_ids(&alert.event_ids)
        .await?
        .iter()
        .map(|e| parse_stored(&e.body, "stored event"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({"alert": alert, "events": events})))
}

/// Marks an alert acknowledged (audited); acknowledging again changes nothing.
#[utoipa::path(post, path = "/v1/alerts/{id}/acknowledge", tag = "siem",
    params(("id" = String, Path, description = "the alert's id")),
    responses(
        (status = 200, description = "the alert"),
        (status = 403, description = "the caller may not `write` `maos:alerts`", body = crate::openapi::ErrorDoc),
        (status = 404, body = crate::openapi::ErrorDoc),
    ),
    security(("bearer" = [])))]
pub async fn acknowledge_alert(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize_caller(&credentials(&headers), ALERTS, "write")?;
    if state.store.siem_alerts().get(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("alert `{id}` not found")));
    }
    let actor = Actor::principal(&caller.subject.kind, &caller.subject.id).unwrap_or(Actor::System);
    let action = ActionName::parse("siem.alert.acknowledge")
        .map_err(|e| ApiError::internal("audit action", e))?;
    let mut draft = RecordDraft::new(
        maos_audit::Timestamp::now(),
        actor,
        action,
        format!("alert:{id}"),
        Outcome::Success,
    );
    draft.details = Map::new();
    state.audit(draft).await?;

    let at = Timestamp::now().unix_micros() / 1000;
    state
        .store
        .siem_alerts()
        .acknowledge(&id, &caller.subject.qualified(), at)
        .await?;
    let stored = state
        .store
        .siem_alerts()
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("alert `{id}` not found")))?;
    Ok(Json(json!(alert_from_stored(&stored)?)))
}
