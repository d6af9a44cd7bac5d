//! Steward's HTTP API: thin axum handlers over the [`steward_service::Vault`].
//!
//! Conventions (see the README): JSON under `/v1`, bearer tokens, `?purpose=` on every read of
//! personal data, RFC 9457 problem details for every error, OpenAPI 3.1 at `/openapi.json`.

mod console;
mod extract;
pub mod limits;
mod metrics;
mod openapi;
mod portal;
mod problem;
mod routes;
mod web;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, patch, post, put};
use steward_service::Vault;

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
    let state = AppState {
        vault,
        limits: std::sync::Arc::new(limits),
    };
    let v1 = Router::new()
        .route(
            "/purposes",
            get(routes::purposes::list).post(routes::purposes::create),
        )
        .route("/purposes/{key}", patch(routes::purposes::update))
        .route("/alerts", get(routes::admin::list_alerts))
        .route("/alerts/{id}", get(routes::admin::get_alert))
        .route("/sessions", post(routes::sessions::sign_in))
        .route("/sessions/current", delete(routes::sessions::sign_out))
        .route("/audit/checkpoint", get(routes::audit::checkpoint))
        .route("/audit/public-key", get(routes::audit::public_key))
        .route("/audit/entries", get(routes::audit::entries))
        .route("/audit/proof/inclusion", get(routes::audit::inclusion))
        .route("/audit/proof/consistency", get(routes::audit::consistency))
        .route(
            "/outlets",
            get(routes::admin::list_outlets).post(routes::admin::create_outlet),
        )
        .route(
            "/staff",
            get(routes::admin::list_staff).post(routes::admin::create_staff),
        )
        .route(
            "/customers",
            get(routes::customers::list).post(routes::customers::create),
        )
        .route("/customers/lookup", post(routes::customers::lookup))
        .route(
            "/customers/{id}",
            get(routes::customers::get_one)
                .patch(routes::customers::update)
                .delete(routes::erasure::erase),
        )
        .route(
            "/requests",
            get(routes::requests::list).post(routes::requests::create),
        )
        .route("/requests/{id}", get(routes::requests::get_one))
        .route("/requests/{id}/verify", post(routes::requests::verify))
        .route("/requests/{id}/deny", post(routes::requests::deny))
        .route("/requests/{id}/confirm", post(routes::requests::confirm))
        .route(
            "/customers/{id}/verified-fields",
            put(routes::customers::set_verified_fields),
        )
        .route("/requests/{id}/revoke", post(routes::requests::revoke))
        .route("/requests/{id}/export", get(routes::requests::export))
        .route(
            "/customers/{id}/legal-hold",
            put(routes::erasure::set_hold).delete(routes::erasure::lift_hold),
        )
        .route(
            "/customers/{id}/interactions",
            get(routes::activity::list_interactions).post(routes::activity::add_interaction),
        )
        .route(
            "/customers/{id}/purchases",
            get(routes::activity::list_purchases).post(routes::activity::add_purchase),
        )
        .route("/customers/{id}/access-log", get(routes::audit::access_log))
        .route(
            "/customers/{id}/consents",
            get(routes::activity::consents).post(routes::activity::record_consent),
        );
    Router::new()
        .nest("/v1", v1)
        .merge(console::routes())
        .merge(portal::routes())
        .route("/healthz", get(routes::system::healthz))
        .route("/metrics", get(routes::system::metrics))
        .route("/openapi.json", get(routes::system::openapi))
        .route("/.well-known/gpc.json", get(routes::system::gpc))
        .route("/.well-known/jwks.json", get(routes::system::jwks))
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
