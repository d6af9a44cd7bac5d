//! `/v1/customers/{id}/recommendations` and `/v1/purchase-categories` (issue 20):
//! personalisation that asks first, and the special categories that never drive it.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use steward_domain::CustomerId;
use steward_domain::recommend::Recommendation;
use steward_service::personalise::MarkedCategory;

use super::path_id;
use crate::extract::{Auth, JsonBody, ReadScope};
use crate::{AppState, Problem};

/// A customer's recommendations.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Recommendations {
    /// Best first, each with the customer's own purchases it is recommended because of.
    pub items: Vec<Recommendation>,
}

/// Most recommendations asked for at once.
const MAX_ITEMS: usize = 20;

/// Up to `?limit=` (default 5, at most 20) items for the customer, each explained by their own
/// purchases ("because you bought …"), from a co-purchase model of consenting customers' baskets
/// that holds no identity. Under a purpose resting on consent (`personalisation`), refused with
/// 403 naming the purpose unless the customer's consent is active; decided and recorded like
/// any read. Purchases in categories the DPO marked as special categories are never used.
#[utoipa::path(get, path = "/v1/customers/{id}/recommendations", tag = "personalisation",
    params(("id" = String, Path, format = Uuid, description = "Customer id"), ("purpose" = String, Query), ("limit" = Option<u32>, Query, minimum = 1, maximum = 20)),
    responses((status = 200, body = Recommendations), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn recommendations(
    State(s): State<AppState>,
    Auth(p): Auth,
    scope: ReadScope,
    Path(id): Path<String>,
    uri: axum::http::Uri,
) -> Result<Json<Recommendations>, Problem> {
    let id: CustomerId = path_id(&id)?;
    let mut n = 5;
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        if k == "limit" {
            n = v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_ITEMS).contains(n))
                .ok_or_else(|| Problem::invalid_parameter("limit", "must be 1 to 20"))?;
        }
    }
    let items = s
        .vault
        .personalisation()
        .recommendations(&scope.access(&p), id, n)
        .await?;
    scope.record("recommendation");
    Ok(Json(Recommendations { items }))
}

/// The body of `PUT /v1/purchase-categories/{category}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryMarking {
    /// The special category of data the purchase category reveals (fideslang), e.g.
    /// `user.health_and_medical`.
    #[schema(format = "special-category")]
    pub data_category: String,
}

/// Marks a purchase category as revealing a special category of data (the DPO): its purchases
/// leave personalisation's model at once and never drive a recommendation. A category no
/// purchase has is a 404; a data category that is not a special one is a 422.
#[utoipa::path(put, path = "/v1/purchase-categories/{category}", tag = "personalisation", request_body = CategoryMarking,
    params(("category" = String, Path, format = "short-text", description = "Purchase category, as purchases record it")),
    responses((status = 200, body = MarkedCategory), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn mark(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(category): Path<String>,
    JsonBody(input): JsonBody<CategoryMarking>,
) -> Result<Json<MarkedCategory>, Problem> {
    Ok(Json(
        s.vault
            .personalisation()
            .mark_purchase_category(&p, &category, &input.data_category)
            .await?,
    ))
}

/// The marked purchase categories.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MarkedCategories {
    /// By category.
    pub items: Vec<MarkedCategory>,
}

/// The purchase categories marked as special categories of data (the DPO).
#[utoipa::path(get, path = "/v1/purchase-categories", tag = "personalisation",
    responses((status = 200, body = MarkedCategories), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn marked(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<MarkedCategories>, Problem> {
    Ok(Json(MarkedCategories {
        items: s
            .vault
            .personalisation()
            .marked_purchase_categories(&p)
            .await?,
    }))
}

/// This module's routes, each registered with its OpenAPI path from the handler's annotation.
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(recommendations))
        .routes(utoipa_axum::routes!(mark))
        .routes(utoipa_axum::routes!(marked))
}
