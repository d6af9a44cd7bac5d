//! The confidentiality notice staff acknowledge before reading personal data (issue 17, point
//! 8): the DPO publishes it, every caller reads it, a staff member acknowledges it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use steward_service::notice::Notice;

use crate::extract::{Auth, JsonBody};
use crate::{AppState, Problem};

/// The body of `PUT /v1/confidentiality-notice`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoticeInput {
    /// The text staff read and acknowledge.
    #[schema(format = "long-text")]
    pub text: String,
}

/// Publishes a new version of the confidentiality notice (DPO): every staff member must
/// acknowledge it before their next personal read.
#[utoipa::path(put, path = "/v1/confidentiality-notice", tag = "staff", request_body = NoticeInput,
    responses((status = 200, body = Notice), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn publish(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(input): JsonBody<NoticeInput>,
) -> Result<Json<Notice>, Problem> {
    Ok(Json(s.vault.notices().publish(&p, &input.text).await?))
}

/// The current confidentiality notice (404 while none is published).
#[utoipa::path(get, path = "/v1/confidentiality-notice", tag = "staff",
    responses((status = 200, body = Notice), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn current(State(s): State<AppState>, Auth(_p): Auth) -> Result<Json<Notice>, Problem> {
    s.vault
        .notices()
        .current()
        .map(Json)
        .ok_or_else(|| Problem::not_found("confidentiality notice"))
}

/// The body of `POST /v1/acknowledgements`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgementInput {
    /// The version acknowledged: the current one.
    #[serde(deserialize_with = "steward_domain::integral::deserialize")]
    #[schema(minimum = 1, maximum = 4_503_599_627_370_495_i64)]
    pub notice_version: i64,
}

/// Acknowledges the current confidentiality notice, with a staff member's own token or
/// session (an audit entry); 204. A service client's token acknowledges nothing (403).
#[utoipa::path(post, path = "/v1/acknowledgements", tag = "staff", request_body = AcknowledgementInput,
    responses((status = 204), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn acknowledge(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(input): JsonBody<AcknowledgementInput>,
) -> Result<StatusCode, Problem> {
    s.vault
        .notices()
        .acknowledge(&p, input.notice_version)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This module's routes, each registered with its OpenAPI path from the handler's annotation.
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(publish, current))
        .routes(utoipa_axum::routes!(acknowledge))
}
