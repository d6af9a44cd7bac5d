//! `/v1/requests`: data-subject requests, with DRP states.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use steward_domain::{RequestId, RequestInput, RequestReason, Timestamp, ValidationError};
use steward_service::RequestView;

use super::path_id;
use crate::extract::{Auth, JsonBody};
use crate::{AppState, Problem};

/// Takes a data-subject request (access, export, rectification, erasure, restriction,
/// objection). Unless the DPO records the identity as checked in person, a one-time code goes to
/// the customer's recorded e-mail and the request waits for it.
#[utoipa::path(post, path = "/v1/requests", tag = "requests", request_body = RequestInput,
    responses((status = 201, body = RequestView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(input): JsonBody<RequestInput>,
) -> Result<(StatusCode, Json<RequestView>), Problem> {
    Ok((
        StatusCode::CREATED,
        Json(s.vault.create_request(&p, &input).await?),
    ))
}

/// Requests.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Requests {
    /// Open and in-progress requests, soonest deadline first.
    pub items: Vec<RequestView>,
}

/// Open and in-progress requests due before `due_before` (RFC 3339), soonest deadline first.
#[utoipa::path(get, path = "/v1/requests", tag = "requests",
    params(("due_before" = Option<String>, Query, format = DateTime), ("limit" = Option<u32>, Query, minimum = 1, maximum = 500)),
    responses((status = 200, body = Requests), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    RawQuery(q): RawQuery,
) -> Result<Json<Requests>, Problem> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let due_before = get("due_before")
        .map(|v| {
            Timestamp::parse_rfc3339(v).ok_or_else(|| {
                Problem::invalid_parameter("due_before", "must be an RFC 3339 date-time")
            })
        })
        .transpose()?;
    let limit = get("limit")
        .map(|v| {
            v.parse::<u32>()
                .ok()
                .filter(|n| (1..=500).contains(n))
                .ok_or_else(|| Problem::invalid_parameter("limit", "must be 1 to 500"))
        })
        .transpose()?
        .unwrap_or(100);
    Ok(Json(Requests {
        items: s.vault.requests(&p, due_before, limit).await?,
    }))
}

/// One request.
#[utoipa::path(get, path = "/v1/requests/{id}", tag = "requests", params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = RequestView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_one(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, Problem> {
    let id: RequestId = path_id(&id)?;
    Ok(Json(s.vault.request(&p, id).await?))
}

/// The body of `POST /v1/requests/{id}/verify`: the code the customer received, or (the DPO)
/// `"identity_verified": "in_person"`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    /// The one-time code sent to the customer's e-mail.
    #[serde(default)]
    pub code: Option<String>,
    /// `in_person`: the DPO checked the customer's identity in person.
    #[serde(default)]
    pub identity_verified: Option<steward_domain::IdentityCheck>,
}

/// Verifies the customer's identity (a code, or in person by the DPO); the request is then
/// fulfilled at once.
#[utoipa::path(post, path = "/v1/requests/{id}/verify", tag = "requests", request_body = Verification,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = RequestView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn verify(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    JsonBody(v): JsonBody<Verification>,
) -> Result<Json<RequestView>, Problem> {
    let id: RequestId = path_id(&id)?;
    let code = match (&v.code, v.identity_verified) {
        (Some(c), None) => Some(c.as_str()),
        (None, Some(steward_domain::IdentityCheck::InPerson)) => None,
        _ => {
            return Err(ValidationError::new(
                "code",
                "give either the code or \"identity_verified\": \"in_person\"",
            )
            .into());
        }
    };
    Ok(Json(s.vault.verify_request(&p, id, code).await?))
}

/// The body of `POST /v1/requests/{id}/deny`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Denial {
    /// The DRP reason.
    pub reason: RequestReason,
}

/// Denies a request with a DRP reason (the DPO).
#[utoipa::path(post, path = "/v1/requests/{id}/deny", tag = "requests", request_body = Denial,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = RequestView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn deny(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    JsonBody(d): JsonBody<Denial>,
) -> Result<Json<RequestView>, Problem> {
    let id: RequestId = path_id(&id)?;
    Ok(Json(s.vault.deny_request(&p, id, d.reason).await?))
}

/// Revokes a request at the customer's wish.
#[utoipa::path(post, path = "/v1/requests/{id}/revoke", tag = "requests",
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = RequestView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn revoke(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, Problem> {
    let id: RequestId = path_id(&id)?;
    Ok(Json(s.vault.revoke_request(&p, id).await?))
}

/// The export of a fulfilled access or export request: a ZIP with JSON, a CSV per entity and
/// `manifest.json` (SHA-256 of every file), built now.
#[utoipa::path(get, path = "/v1/requests/{id}/export", tag = "requests",
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, description = "application/zip", content_type = "application/zip"),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn export(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let rid: RequestId = path_id(&id)?;
    let export = s.vault.request_export(&p, rid).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"steward-export-{rid}.zip\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        export.zip,
    ))
}

/// Confirms a customer's correction of verified fields (staff who may change the profile); the
/// correction is applied and the request fulfilled.
#[utoipa::path(post, path = "/v1/requests/{id}/confirm", tag = "requests",
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = RequestView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn confirm(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, Problem> {
    let id: RequestId = path_id(&id)?;
    Ok(Json(s.vault.confirm_request(&p, id).await?))
}

/// This module's routes, each registered with its OpenAPI path from the handler's annotation
/// (one place per endpoint).
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list, create))
        .routes(utoipa_axum::routes!(get_one))
        .routes(utoipa_axum::routes!(verify))
        .routes(utoipa_axum::routes!(deny))
        .routes(utoipa_axum::routes!(revoke))
        .routes(utoipa_axum::routes!(export))
        .routes(utoipa_axum::routes!(confirm))
}
