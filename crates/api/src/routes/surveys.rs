//! `/v1/surveys` (issue 21): anonymous surveys. Marketing composes and sends them to a segment;
//! customers get a one-time token in the portal, signed blind, and answer here without a
//! session; analysts release the results as noisy totals. See `steward_service::surveys`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use steward_domain::SurveyId;
use steward_domain::survey::SurveyInput;
use steward_service::surveys::{SurveyResults, SurveyView};

use super::{Created, path_id};
use crate::extract::{Auth, JsonBody, ReadScope};
use crate::{AppState, Problem};

/// Composes a survey (marketing, the DPO): questions with choices or a 1–5 scale, the segment
/// it goes to and the purpose its sending is decided under. Free-text questions are refused
/// (422 naming the question) until free text can be scrubbed of personal data.
#[utoipa::path(post, path = "/v1/surveys", tag = "surveys", request_body = SurveyInput,
    responses((status = 201, body = Created), (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(input): JsonBody<SurveyInput>,
) -> Result<impl IntoResponse, Problem> {
    let survey = s.vault.surveys().create_survey(&p, input).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/v1/surveys/{}", survey.id))],
        Json(Created {
            id: survey.id.to_string(),
        }),
    ))
}

/// Every survey with how many were asked and answered (sizes under the threshold shown as
/// "fewer than N"): marketing, the DPO, analysts.
#[utoipa::path(get, path = "/v1/surveys", tag = "surveys",
    responses((status = 200, body = Vec<SurveyView>), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<Vec<SurveyView>>, Problem> {
    Ok(Json(s.vault.surveys().surveys(&p).await?))
}

/// One survey with how many were asked and answered: marketing, the DPO, analysts.
#[utoipa::path(get, path = "/v1/surveys/{id}", tag = "surveys",
    params(("id" = String, Path, format = Uuid, description = "Survey id")),
    responses((status = 200, body = SurveyView), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn one(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<SurveyView>, Problem> {
    let id: SurveyId = path_id(&id)?;
    Ok(Json(s.vault.surveys().survey(&p, id).await?))
}

/// Sends the survey to its segment, evaluated under its purpose as for a campaign: each member
/// who may be asked is invited (those invited before stay). Refused under the size threshold.
#[utoipa::path(post, path = "/v1/surveys/{id}/send", tag = "surveys",
    params(("id" = String, Path, format = Uuid, description = "Survey id")),
    responses((status = 200, body = SurveyView), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)),
    security(("bearer" = [])))]
pub async fn send(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<SurveyView>, Problem> {
    let id: SurveyId = path_id(&id)?;
    Ok(Json(s.vault.surveys().send_survey(&p, id).await?))
}

/// A survey's public blind-signature key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SurveyKeyView {
    /// The RSA modulus, base64url (big-endian).
    pub n: String,
    /// The public exponent, base64url (big-endian).
    pub e: String,
}

/// The survey's public key (no credentials): the portal's script checks that the key its page
/// gave it is the one everyone gets.
#[utoipa::path(get, path = "/v1/surveys/{id}/key", tag = "surveys",
    params(("id" = String, Path, format = Uuid, description = "Survey id")),
    responses((status = 200, body = SurveyKeyView), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn key(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SurveyKeyView>, Problem> {
    let id: SurveyId = path_id(&id)?;
    let (n, e) = s.vault.surveys().survey_public_key(id).await?;
    Ok(Json(SurveyKeyView { n, e }))
}

/// The body of `POST /v1/surveys/{id}/responses`: the token and the answers.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseInput {
    /// The token's message: 32 random bytes the customer's browser chose, base64url.
    // 32 bytes are 43 base64url characters, the last carrying 2 bits (its other 4 zero).
    #[schema(pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$")]
    pub message: String,
    /// The RFC 9474 message randomizer (32 bytes), base64url.
    #[schema(pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$")]
    pub randomizer: String,
    /// The unblinded signature (256 bytes), base64url.
    // 256 bytes are 342 characters, the last carrying 4 bits (its other 2 zero).
    #[schema(pattern = "^[A-Za-z0-9_-]{341}[AQgw]$")]
    pub signature: String,
    /// One answer per question: a choice's index from 0, or a point of the scale from 1 to 5.
    #[serde(deserialize_with = "steward_domain::integral::list")]
    pub answers: Vec<u32>,
}

/// What an answer got back: nothing that could identify it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Recorded {
    /// Always true.
    pub recorded: bool,
}

fn decode(field: &'static str, v: &str) -> Result<Vec<u8>, Problem> {
    if v.len() > 1024 {
        return Err(Problem::invalid_parameter(field, "too long"));
    }
    URL_SAFE_NO_PAD
        .decode(v.trim_end_matches('='))
        .map_err(|_| Problem::invalid_parameter(field, "not base64url"))
}

/// Answers a survey anonymously: no token, no cookie, no session; the one-time response token
/// (signed blind in the portal) proves an invitation without saying whose. A token used before
/// is a 409, a signature that is not this survey's a 403. The answers are kept with the day
/// only, and this request leaves no log line.
#[utoipa::path(post, path = "/v1/surveys/{id}/responses", tag = "surveys", request_body = ResponseInput,
    params(("id" = String, Path, format = Uuid, description = "Survey id")),
    responses((status = 201, body = Recorded), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn respond(
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ResponseInput>,
) -> Result<impl IntoResponse, Problem> {
    let id: SurveyId = path_id(&id)?;
    let message = decode("message", &input.message)?;
    let randomizer = decode("randomizer", &input.randomizer)?;
    let signature = decode("signature", &input.signature)?;
    s.vault
        .surveys()
        .submit_survey_response(id, &message, &randomizer, &signature, &input.answers)
        .await?;
    Ok((StatusCode::CREATED, Json(Recorded { recorded: true })))
}

/// The body of `POST /v1/surveys/{id}/results`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultsInput {
    /// The ε to spend.
    #[schema(minimum = 0.001, maximum = 1000.0, example = 0.5)]
    pub epsilon: f64,
}

/// Releases the survey's results as noisy counts per answer, with their 95 % intervals
/// (analysts, the DPO; under an analytics purpose; charged to the budget; the same ε again
/// returns the stored release). Refused with 409 while it has fewer than 10 answers.
#[utoipa::path(post, path = "/v1/surveys/{id}/results", tag = "surveys", request_body = ResultsInput,
    params(("id" = String, Path, format = Uuid, description = "Survey id"), ("purpose" = String, Query, description = "e.g. analytics")),
    responses((status = 200, body = SurveyResults), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn results(
    State(s): State<AppState>,
    Auth(p): Auth,
    scope: ReadScope,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ResultsInput>,
) -> Result<Json<SurveyResults>, Problem> {
    let id: SurveyId = path_id(&id)?;
    Ok(Json(
        s.vault
            .surveys()
            .survey_results(&p, &scope.purpose.key, id, input.epsilon)
            .await?,
    ))
}

/// This module's routes, each registered with its OpenAPI path from the handler's annotation.
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(create, list))
        .routes(utoipa_axum::routes!(one))
        .routes(utoipa_axum::routes!(send))
        .routes(utoipa_axum::routes!(respond))
        .routes(utoipa_axum::routes!(key))
        .routes(utoipa_axum::routes!(results))
}
