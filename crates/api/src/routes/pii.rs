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
    #[schema(example = "en", format = "pii-language")]
    pub language: String,
    /// Only these types (all if absent).
    #[serde(default)]
    pub entities: Option<Vec<EntityType>>,
    /// Only findings scored at least this (0 to 1; all if absent).
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub score_threshold: Option<f64>,
    /// Values that are not to be reported even if found (exact matches).
    #[serde(default)]
    pub allow_list: Option<Vec<String>>,
    /// Presidio's tracing id, decision-process switch, context words and ad-hoc recognisers:
    /// accepted so a client written for Presidio works unchanged, and not used.
    #[serde(default, rename = "correlation_id")]
    #[schema(value_type = Option<String>)]
    pub _correlation_id: Option<serde_json::Value>,
    /// Accepted and not used (Steward explains no decision).
    #[serde(default, rename = "return_decision_process")]
    #[schema(value_type = Option<bool>)]
    pub _return_decision_process: Option<serde_json::Value>,
    /// Accepted and not used (no finding depends on nearby words).
    #[serde(default, rename = "context")]
    #[schema(value_type = Option<Vec<String>>)]
    pub _context: Option<serde_json::Value>,
    /// Accepted and not used (Steward's recognisers are fixed).
    #[serde(default, rename = "ad_hoc_recognizers")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub _ad_hoc_recognizers: Option<serde_json::Value>,
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
        .records()
        .analyze_text(&p, &input.text, &input.language)
        .await?;
    let chars: Vec<char> = match &input.allow_list {
        Some(_) => input.text.chars().collect(),
        None => Vec::new(),
    };
    found.retain(|f| {
        input
            .entities
            .as_ref()
            .is_none_or(|e| e.contains(&f.entity_type))
            && input.score_threshold.is_none_or(|t| f.score >= t)
            && input.allow_list.as_ref().is_none_or(|allowed| {
                let value: String = chars.get(f.start..f.end).unwrap_or(&[]).iter().collect();
                !allowed.contains(&value)
            })
    });
    Ok(Json(found))
}

/// This module's routes, each registered with its OpenAPI path from the handler's annotation.
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(analyze))
        .layer(DefaultBodyLimit::max(ANALYZE_BODY_LIMIT))
}
