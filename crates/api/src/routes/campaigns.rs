//! `/v1/campaigns` (issue 18): marketing composes a message to a segment under a marketing
//! purpose, sends it, and sees counts, never recipients.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use steward_domain::{CampaignId, SegmentId, ValidationError};
use steward_service::CampaignView;

use super::{Created, path_id};
use crate::extract::{Auth, JsonBody};
use crate::{AppState, Problem};

/// The body of `POST /v1/campaigns`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignInput {
    /// The segment it goes to.
    #[schema(format = Uuid)]
    pub segment_id: String,
    /// A purpose of marketing by e-mail resting on consent, e.g. `marketing_email`.
    #[schema(format = "consent-purpose")]
    pub purpose: String,
    /// The subject line; placeholders such as `{{first_name}}` are filled per customer.
    #[schema(format = "template-short", max_length = 200)]
    pub subject: String,
    /// The body; placeholders `{{first_name}}`, `{{name}}`, `{{preferred_language}}`, each only
    /// where the purpose covers its data category.
    #[schema(format = "template-long")]
    pub body: String,
    /// For a body with `{{recommendations}}`: what a recipient who has not agreed to
    /// personalisation gets — `send` (the campaign without them; the default) or `skip` (nothing).
    #[serde(default)]
    pub without_recommendations: Option<WithoutRecommendations>,
}

/// What a campaign does for a recipient it has no recommendations for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WithoutRecommendations {
    /// Send the campaign without them.
    Send,
    /// Skip the recipient (counted as skipped, reason `personalisation`).
    Skip,
}

/// Composes a campaign (marketing): 201 with its id. An unknown placeholder, a field the
/// purpose does not cover, a purpose that is not marketing communication or an oversized
/// template is a 422 naming the field, and nothing is stored.
#[utoipa::path(post, path = "/v1/campaigns", tag = "campaigns", request_body = CampaignInput,
    responses((status = 201, body = Created), (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(input): JsonBody<CampaignInput>,
) -> Result<impl IntoResponse, Problem> {
    let segment = input
        .segment_id
        .parse::<SegmentId>()
        .map_err(|_| Problem::from(ValidationError::new("segment_id", "not a segment id")))?;
    let c = s
        .vault
        .outreach()
        .create_campaign(
            &p,
            segment,
            &input.purpose,
            &input.subject,
            &input.body,
            input.without_recommendations == Some(WithoutRecommendations::Skip),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/v1/campaigns/{}", c.id))],
        Json(Created {
            id: c.id.to_string(),
        }),
    ))
}

/// Every campaign, newest first (marketing).
#[utoipa::path(get, path = "/v1/campaigns", tag = "campaigns",
    responses((status = 200, body = Vec<CampaignView>), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<Vec<CampaignView>>, Problem> {
    Ok(Json(s.vault.outreach().campaigns(&p).await?))
}

/// One campaign: status, counts (never recipients), its templates and a preview rendered for a
/// fictional customer.
#[utoipa::path(get, path = "/v1/campaigns/{id}", tag = "campaigns",
    params(("id" = String, Path, format = Uuid, description = "Campaign id")),
    responses((status = 200, body = CampaignView), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_one(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, Problem> {
    let id: CampaignId = path_id(&id)?;
    Ok(Json(s.vault.outreach().campaign(&p, id).await?))
}

/// Starts sending a draft (marketing): 202 with the campaign, its counts queued. Each member
/// of the segment (as the policy lets the caller use them under the campaign's purpose) is
/// decided again when their message goes: consent as it is then, the frequency cap, an
/// address. A segment reaching fewer customers than the size threshold is a 422; a campaign
/// sent already, or an installation without mail (`serve --smtp-url`, `--public-url`), a 409.
#[utoipa::path(post, path = "/v1/campaigns/{id}/send", tag = "campaigns",
    params(("id" = String, Path, format = Uuid, description = "Campaign id")),
    responses((status = 202, body = CampaignView), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)),
    security(("bearer" = [])))]
pub async fn send(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let id: CampaignId = path_id(&id)?;
    let c = s.vault.outreach().send_campaign(&p, id).await?;
    Ok((StatusCode::ACCEPTED, Json(c)))
}

/// This module's routes, each registered with its OpenAPI path from the handler's annotation.
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(create, list))
        .routes(utoipa_axum::routes!(get_one))
        .routes(utoipa_axum::routes!(send))
}
