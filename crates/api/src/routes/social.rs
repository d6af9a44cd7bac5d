//! `/v1/social/events` (issue 23): a social connector reports what people post. Steward keeps
//! an event only for a customer who consented to social listening; the answer is the same 202
//! either way, so the caller learns nothing about who is a customer.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use steward_domain::Timestamp;
use steward_domain::social::SocialEventInput;

use crate::extract::{Auth, JsonBody};
use crate::{AppState, Problem};

/// The answer to a reported event: taken (kept or dropped, not said).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Taken {
    /// Always true.
    pub accepted: bool,
}

/// Reports a post or message from a social platform (`social_connector` tokens). Kept as an
/// interaction (channel `social`) of the customer whose handle wrote it, only if exactly one
/// customer holds the handle, they are not restricted and they consented to `social_listening`;
/// otherwise dropped and only counted. The place is kept as city and country only; a repeated
/// `event_id` is ignored. 202 in every case.
#[utoipa::path(post, path = "/v1/social/events", tag = "social", request_body = SocialEventInput,
    responses((status = 202, body = Taken), (status = 400, body = Problem), (status = 403, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn report(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(input): JsonBody<SocialEventInput>,
) -> Result<(StatusCode, Json<Taken>), Problem> {
    let event = input.validate(Timestamp::now())?;
    s.vault.records().report_social(&p, event).await?;
    Ok((StatusCode::ACCEPTED, Json(Taken { accepted: true })))
}

/// This module's routes, each registered with its OpenAPI path from the handler's annotation.
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(report))
}
