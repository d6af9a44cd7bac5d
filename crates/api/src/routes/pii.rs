//! `/v1/pii/analyze` (issue 23): the detector Steward runs on every text it stores, offered to
//! staff and service clients in the shape of Presidio's analyzer API, so a team can swap one for
//! the other. The text is neither stored nor logged.

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use serde::Deserialize;
use steward_domain::pii::{AnalyzerResult, EntityType, MAX_TEXT_BYTES};

use crate::extract::{Auth, JsonBody};
use crate::{AppState, Problem};

/// The largest body taken: the detector's limit on the text and room for its JSON escaping.
const ANALYZE_BODY_LIMIT: usize = 2 * MAX_TEXT_BYTES;

/// The body of `POST /v1/pii/analyze` (Presidio's `AnalyzerRequest`, the fields Steward uses).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeRequest {
    /// The text to examine (at most 1 MiB of UTF-8).
    #[schema(max_length = 1048576)]
    pub text: String,
    /// Its language, an ISO 639-1 code or a BCP 47 tag (`en`, `de-CH`): it selects the regions
    /// whose national telephone numbers are looked for.
    #[schema(example = "en")]
    pub language: String,
    /// Only these types (all if absent).
    #[serde(default)]
    pub entities: Option<Vec<EntityType>>,
    /// Only findings scored at least this (0 to 1; all if absent).
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub score_threshold: Option<f64>,
    /// Echoed by Presidio's own server; accepted and ignored here.
    #[serde(default, rename = "correlation_id")]
    pub _correlation_id: Option<String>,
}

/// Finds personal data in a text: e-mail addresses, telephone numbers, payment cards (Luhn),
/// IBANs (mod 97), Singapore NRIC/FIN (check letter), UK NINO, US SSN, IP addresses and URLs
/// carrying credentials. Offsets count Unicode code points, `end` exclusive, as Presidio's do.
#[utoipa::path(post, path = "/v1/pii/analyze", tag = "pii", request_body = AnalyzeRequest,
    responses((status = 200, body = Vec<AnalyzerResult>), (status = 400, body = Problem), (status = 403, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn analyze(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(input): JsonBody<AnalyzeRequest, ANALYZE_BODY_LIMIT>,
) -> Result<Json<Vec<AnalyzerResult>>, Problem> {
    if let Some(t) = input.score_threshold
        && !(0.0..=1.0).contains(&t)
    {
        return Err(Problem::invalid_field(
            &steward_domain::ValidationError::new("score_threshold", "a number from 0 to 1"),
        ));
    }
    let mut found = s
        .vault
        .analyze_text(&p, &input.text, &input.language)
        .await?;
    found.retain(|f| {
        input
            .entities
            .as_ref()
            .is_none_or(|e| e.contains(&f.entity_type))
            && input.score_threshold.is_none_or(|t| f.score >= t)
    });
    Ok(Json(found))
}

/// This module's routes, each registered with its OpenAPI path from the handler's annotation.
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(analyze))
        .layer(DefaultBodyLimit::max(ANALYZE_BODY_LIMIT))
}
