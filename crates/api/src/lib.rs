//! Steward's HTTP API: thin axum handlers over the [`steward_service::Vault`].
//!
//! Conventions (see the README): JSON under `/v1`, bearer tokens, `?purpose=` on every read of
//! personal data, RFC 9457 problem details for every error, OpenAPI 3.1 at `/openapi.json`.

mod console;
mod display;
mod extract;
pub mod limits;
mod metrics;
mod openapi;
mod portal;
mod problem;
mod profile_form;
mod routes;
mod web;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use steward_service::Vault;

pub use display::set_time_zone;
pub use extract::{BODY_LIMIT, parse_json};

/// The JSON bodies the API's own routes accept (the domain's inputs are in `steward_domain`);
/// public so that the fuzz targets parse exactly what the routes parse.
pub mod bodies {
    pub use crate::routes::admin::{OutletInput, StaffInput};
    pub use crate::routes::customers::{LookupRequest, VerifiedFields};
    pub use crate::routes::erasure::LegalHold;
}
pub use openapi::openapi_json;
pub use problem::Problem;

/// Shared state of the HTTP layer.
#[derive(Clone)]
pub struct AppState {
    /// The vault.
    pub vault: Vault,
    /// Request rates and the brake on bad tokens.
    pub limits: std::sync::Arc<limits::Limits>,
}

/// The whole API as an axum router, without request rate limits (for embedding and tests;
/// `steward serve` uses [`router_with`]).
pub fn router(vault: Vault) -> Router {
    router_with(vault, limits::Limits::none())
}

/// The router of `serve --metrics-listen`: `/metrics` alone, without a token (bind it where only
/// the monitoring system can reach it).
pub fn metrics_router() -> Router {
    Router::new().route("/metrics", get(routes::system::metrics_text))
}

/// Cuts off a request that takes longer than the limits allow, its body included.
async fn deadline(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(state.limits.request_timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) => Problem::timed_out().into_response(),
    }
}

/// The whole API as an axum router, with these abuse limits.
pub fn router_with(vault: Vault, limits: limits::Limits) -> Router {
    limits.share_through(&vault);
    let state = AppState {
        vault,
        limits: std::sync::Arc::new(limits),
    };
    let (api, _) = routes::api().split_for_parts();
    Router::new()
        .merge(api)
        .merge(console::routes())
        .merge(portal::routes())
        .fallback(routes::system::no_route)
        .method_not_allowed_fallback(routes::system::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            deadline,
        ))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}
