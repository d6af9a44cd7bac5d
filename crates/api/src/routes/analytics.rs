//! `/v1/analytics` (issue 21): aggregate questions answered with differentially private noise,
//! charged to the caller's privacy budget. See `steward_domain::analytics` for the query
//! language and `steward_service::analytics` for how it is decided and recorded.

use axum::Json;
use axum::extract::State;
use steward_domain::analytics::QueryInput;
use steward_service::analytics::{Answer, BudgetUse, BudgetView, ReleasedQuery};

use crate::extract::{Auth, JsonBody, ReadScope};
use crate::{AppState, Problem};

/// Answers a count or a sum over customers, purchases or interactions, grouped and filtered,
/// with discrete Laplace noise of the requested ε (analysts, the DPO; under a purpose whose data
/// use is analytics). Each customer contributes at most `contributions` rows; groups keyed by
/// the data (category, month) are released only past a threshold set by δ. The same body again
/// in the same 30-day window returns the stored answer with `epsilon_spent: 0`. A release that
/// would exceed the budget is a 403 naming `epsilon`, and nothing is released.
#[utoipa::path(post, path = "/v1/analytics/queries", tag = "analytics", request_body = QueryInput,
    params(("purpose" = String, Query, description = "A purpose whose data use is analytics, e.g. analytics")),
    responses((status = 200, body = Answer), (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn query(
    State(s): State<AppState>,
    Auth(p): Auth,
    scope: ReadScope,
    JsonBody(input): JsonBody<QueryInput>,
) -> Result<Json<Answer>, Problem> {
    Ok(Json(
        s.vault
            .analytics()
            .analytics_query(&p, &scope.purpose.key, input)
            .await?,
    ))
}

/// The caller's privacy budget under the purpose: spent and left in the current window.
#[utoipa::path(get, path = "/v1/analytics/budget", tag = "analytics",
    params(("purpose" = String, Query, description = "e.g. analytics")),
    responses((status = 200, body = BudgetView), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn budget(
    State(s): State<AppState>,
    Auth(p): Auth,
    scope: ReadScope,
) -> Result<Json<BudgetView>, Problem> {
    Ok(Json(
        s.vault
            .analytics()
            .analytics_budget(&p, &scope.purpose.key)
            .await?,
    ))
}

/// The caller's releases under the purpose in the current window, newest first: everything the
/// dashboard draws.
#[utoipa::path(get, path = "/v1/analytics/releases", tag = "analytics",
    params(("purpose" = String, Query, description = "e.g. analytics")),
    responses((status = 200, body = Vec<ReleasedQuery>), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn releases(
    State(s): State<AppState>,
    Auth(p): Auth,
    scope: ReadScope,
) -> Result<Json<Vec<ReleasedQuery>>, Problem> {
    Ok(Json(
        s.vault
            .analytics()
            .analytics_releases(&p, &scope.purpose.key)
            .await?,
    ))
}

/// Every analyst's budget use in the current window (the DPO).
#[utoipa::path(get, path = "/v1/analytics/budgets", tag = "analytics",
    responses((status = 200, body = Vec<BudgetUse>), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn budgets(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<Vec<BudgetUse>>, Problem> {
    Ok(Json(s.vault.analytics().analytics_budgets(&p).await?))
}

/// This module's routes, each registered with its OpenAPI path from the handler's annotation.
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(query))
        .routes(utoipa_axum::routes!(budget))
        .routes(utoipa_axum::routes!(releases))
        .routes(utoipa_axum::routes!(budgets))
}
