//! `GET /v1/audit`: reading the audit log, protected by `read` on `maos:audit`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use maos_audit::{ActionName, Actor, AuditRecord, OutcomeStatus, Timestamp};
use maos_store::AuditQuery;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::routes::decisions::{CallerHeaders, credentials};
use crate::state::AppState;

/// The admin API's resource for the audit log (`maos:audit`).
const AUDIT: &str = "audit";

/// Records per page unless `limit` says otherwise, and the most a page holds.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// Filters of `GET /v1/audit`; every given one must hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditListQuery {
    /// `type:id` or `system`.
    pub actor: Option<String>,
    /// An action (`token.create`) or a family (`policy.*`).
    pub action: Option<String>,
    pub resource: Option<String>,
    /// `success`, `failure` or `denied`.
    pub result: Option<OutcomeStatus>,
    pub request_id: Option<String>,
    /// Records at or after this time, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub since: Option<String>,
    /// Records before this time.
    pub until: Option<String>,
    /// Records after this sequence number (the `next` of the previous page).
    pub after: Option<u64>,
    /// 1 to 1000, default 100.
    pub limit: Option<u32>,
}

/// One page of records, oldest first.
#[derive(Debug, Serialize)]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    /// The `after` of the next page; `null` on the last page.
    pub next: Option<u64>,
}

fn bad_query(message: String) -> ApiError {
    ApiError::bad_request("bad_query", message)
}

fn time_filter(name: &str, text: Option<&str>) -> Result<Option<u64>, ApiError> {
    text.map(|text| {
        Timestamp::parse(text)
            .map(|time| time.unix_millis())
            .map_err(|e| bad_query(format!("`{name}`: {e}")))
    })
    .transpose()
}

impl AuditListQuery {
    /// Checks the filters and turns them into a store query.
    fn to_store_query(&self) -> Result<AuditQuery, ApiError> {
        if let Some(actor) = &self.actor {
            Actor::parse(actor).map_err(|e| bad_query(format!("`actor`: {e}")))?;
        }
        if let Some(action) = &self.action {
            let name = action.strip_suffix(".*").map_or(action.clone(), |family| {
                // A family needs one segment at least: `policy.*` checks as `policy.x`.
                format!("{family}.x")
            });
            ActionName::parse(&name).map_err(|_| {
                bad_query(format!(
                    "`action`: `{action}` is neither an action such as `token.create` nor a \
                     family such as `policy.*`"
                ))
            })?;
        }
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(bad_query(format!(
                "`limit`: must be between 1 and {MAX_LIMIT}"
            )));
        }
        Ok(AuditQuery {
            actor: self.actor.clone(),
            action: self.action.clone(),
            resource: self.resource.clone(),
            status: self.result,
            request_id: self.request_id.clone(),
            since_ms: time_filter("since", self.since.as_deref())?,
            until_ms: time_filter("until", self.until.as_deref())?,
            after_seq: self.after,
            limit,
        })
    }
}

/// Audit records matching the filters, oldest first, one page at a time.
#[utoipa::path(get, path = "/v1/audit", tag = "audit",
    params(
        ("actor" = Option<String>, Query, description = "`type:id` or `system`"),
        ("action" = Option<String>, Query, description = "an action (`token.create`) or a family (`policy.*`)"),
        ("resource" = Option<String>, Query, description = "the resource exactly"),
        ("result" = Option<String>, Query, description = "`success`, `failure` or `denied`"),
        ("request_id" = Option<String>, Query, description = "the request id exactly"),
        ("since" = Option<String>, Query, description = "records at or after this time, `YYYY-MM-DDTHH:MM:SS.mmmZ`"),
        ("until" = Option<String>, Query, description = "records before this time"),
        ("after" = Option<u64>, Query, description = "records after this sequence number (the previous page's `next`)"),
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
    ),
    responses(
        (status = 200, description = "`{records: [...], next}`; records as in docs/audit.md", body = crate::openapi::AuditPageDoc),
        (status = 400, description = "a malformed filter", body = crate::openapi::ErrorDoc),
        (status = 401, description = "no or invalid bearer token", body = crate::openapi::ErrorDoc),
        (status = 403, description = "the caller may not `read` `maos:audit`", body = crate::openapi::ErrorDoc),
    ),
    security(("bearer" = [])))]
pub async fn list_records(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiQuery(query): ApiQuery<AuditListQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    state.authorize_caller(&credentials(&headers), AUDIT, "read")?;
    let query = query.to_store_query()?;
    let records = state.store.audit_log().query(&query).await?;
    let next = (records.len() == query.limit as usize)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    Ok(Json(AuditPage { records, next }))
}
