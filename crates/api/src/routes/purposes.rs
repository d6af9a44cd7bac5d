//! `/v1/purposes`: the purpose registry, read by every caller and managed by the DPO.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use steward_domain::{Purpose, PurposeInput, PurposePatch, ValidationError};

use crate::extract::{Auth, JsonBody};
use crate::{AppState, Problem};

/// The registered purposes.
#[utoipa::path(get, path = "/v1/purposes", tag = "purposes", responses((status = 200, body = Vec<Purpose>)), security(("bearer" = [])))]
pub async fn list(State(s): State<AppState>, Auth(_p): Auth) -> Json<Vec<Purpose>> {
    Json(s.vault.purposes().all())
}

/// Registers a purpose (DPO): its lawful basis, data use, categories, retention and notice.
#[utoipa::path(post, path = "/v1/purposes", tag = "purposes", request_body = PurposeInput,
    responses((status = 201, body = Purpose), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(input): JsonBody<PurposeInput>,
) -> Result<(StatusCode, Json<Purpose>), Problem> {
    let purpose = s.vault.purposes().register(&p, input).await?;
    Ok((StatusCode::CREATED, Json(purpose)))
}

/// Changes a purpose (DPO; JSON Merge Patch). A change customers should know of raises the
/// notice version; consents keep naming the version they were given for.
#[utoipa::path(patch, path = "/v1/purposes/{key}", tag = "purposes", request_body = PurposePatch,
    params(("key" = String, Path)),
    responses((status = 200, body = Purpose), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn update(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(key): Path<String>,
    JsonBody(patch): JsonBody<PurposePatch>,
) -> Result<Json<Purpose>, Problem> {
    if patch.is_empty() {
        return Err(ValidationError::new("body", "names no field to change").into());
    }
    Ok(Json(s.vault.purposes().change(&p, &key, &patch).await?))
}

/// This module's routes, each registered with its OpenAPI path from the handler's annotation
/// (one place per endpoint).
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list, create))
        .routes(utoipa_axum::routes!(update))
}
