//! `/v1/segments` (issue 18): marketing defines who a campaign reaches and sees how many, never
//! who. The rule language is documented in `steward_domain::segment` and the README.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use steward_domain::SegmentId;
use steward_service::{Segment, SegmentSizeView};

use super::{Created, path_id};
use crate::extract::{Auth, JsonBody, ReadScope};
use crate::{AppState, Problem};

/// The body of `POST /v1/segments`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentInput {
    /// What marketing calls it, e.g. `Watch buyers this year`.
    #[schema(format = "short-text", max_length = 200)]
    pub name: String,
    /// The rules: `{"all": [...]}`, `{"any": [...]}`, `{"not": rule}`, and the leaves
    /// `purchased`, `spent`, `last_purchase`, `tier`, `outlet`, `interacted`, `consent`,
    /// `language` (see the README). `{"all": []}` is every customer.
    #[schema(value_type = Object, example = json!({"purchased": {"category": "watch", "within_days": 365}}))]
    pub rules: serde_json::Value,
}

/// Defines a segment (marketing, the DPO). 201 with its id; a rule that does not validate is a
/// 422 naming it (e.g. `rules.all[1].purchased.within_days`), and nothing is stored.
#[utoipa::path(post, path = "/v1/segments", tag = "segments", request_body = SegmentInput,
    responses((status = 201, body = Created), (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(input): JsonBody<SegmentInput>,
) -> Result<impl IntoResponse, Problem> {
    let segment = s
        .vault
        .segments()
        .create_segment(&p, &input.name, &input.rules)
        .await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/v1/segments/{}", segment.id))],
        Json(Created {
            id: segment.id.to_string(),
        }),
    ))
}

/// Every segment: names and rules, newest first (marketing, the DPO).
#[utoipa::path(get, path = "/v1/segments", tag = "segments",
    responses((status = 200, body = Vec<Segment>), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(State(s): State<AppState>, Auth(p): Auth) -> Result<Json<Vec<Segment>>, Problem> {
    Ok(Json(s.vault.segments().segments(&p).await?))
}

/// How many customers the segment reaches under the declared purpose, and only that: customers
/// the policy does not let the caller use for it (no consent where the purpose needs it,
/// restricted) are not counted, and a size under the installation's threshold is
/// `"fewer than 10"`. One audit entry per evaluation.
#[utoipa::path(get, path = "/v1/segments/{id}", tag = "segments",
    params(("id" = String, Path, format = Uuid, description = "Segment id"), ("purpose" = String, Query, description = "The purpose the segment would be used for, e.g. marketing_email")),
    responses((status = 200, body = SegmentSizeView), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn size(
    State(s): State<AppState>,
    Auth(p): Auth,
    scope: ReadScope,
    Path(id): Path<String>,
) -> Result<Json<SegmentSizeView>, Problem> {
    let id: SegmentId = path_id(&id)?;
    Ok(Json(
        s.vault
            .segments()
            .segment_size(&p, id, &scope.purpose.key)
            .await?,
    ))
}

/// This module's routes, each registered with its OpenAPI path from the handler's annotation.
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(create, list))
        .routes(utoipa_axum::routes!(size))
}
