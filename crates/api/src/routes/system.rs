//! `/healthz`, `/metrics`, `/openapi.json` and the fallbacks.

use axum::http::header;
use axum::response::IntoResponse;

use crate::Problem;

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, description = "alive")))]
pub async fn healthz() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

/// Readiness, for a load balancer: 200 while this server can serve (its database answers and its
/// audit writer records), 503 naming what is not.
#[utoipa::path(get, path = "/readyz", tag = "system", responses(
    (status = 200, description = "ready: database and audit log available"),
    (status = 503, body = crate::Problem, description = "not ready; `detail` says which part is unavailable")))]
pub async fn readyz(
    axum::extract::State(s): axum::extract::State<crate::AppState>,
) -> Result<impl IntoResponse, Problem> {
    let r = s.vault.readiness().await;
    if !r.ready() {
        let mut down = Vec::new();
        if !r.database {
            down.push("the database does not answer");
        }
        if !r.audit_log {
            down.push("the audit log's writer cannot record");
        }
        return Err(Problem::not_ready(down.join("; ")));
    }
    let body = serde_json::json!({
        "status": "ready",
        "database": "ok",
        "audit_log": "ok",
        // Whether changes made on other servers reach this one at once (always, alone on SQLite).
        "peers": if r.hearing { "hearing" } else { "not hearing; checking tokens on every request" },
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    ))
}

/// Prometheus metrics, for a token of the `monitoring` role (or the admin). `steward serve
/// --metrics-listen ADDR` serves them without a token on an address of their own.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Prometheus text format"), (status = 401, body = crate::Problem), (status = 403, body = crate::Problem)),
    security(("bearer" = [])))]
pub async fn metrics(
    axum::extract::State(s): axum::extract::State<crate::AppState>,
    crate::extract::Auth(p): crate::extract::Auth,
) -> Result<axum::response::Response, crate::Problem> {
    s.vault.records().may_read_metrics(&p).await?;
    Ok(metrics_text().await.into_response())
}

/// The metrics as Prometheus text, unauthenticated: only for the separate metrics listener.
pub async fn metrics_text() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::handle().render(),
    )
}

/// The Global Privacy Control support resource: Steward honours `Sec-GPC: 1`.
pub async fn gpc() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"gpc":true,"lastUpdate":"2026-11-23"}"#,
    )
}

/// The public key that verifies consent receipts, as a JWK Set.
pub async fn jwks(
    axum::extract::State(s): axum::extract::State<crate::AppState>,
) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/jwk-set+json")],
        s.vault.consents().receipt_jwks().to_string(),
    )
}

/// The OpenAPI 3.1 document; with a valid bearer token, the registered purposes listed in it
/// (anyone may read the shape of the API, not the installation's registry).
pub async fn openapi(
    axum::extract::State(s): axum::extract::State<crate::AppState>,
    crate::extract::ClientAddr(addr): crate::extract::ClientAddr,
    headers: axum::http::HeaderMap,
) -> Result<impl IntoResponse, Problem> {
    // A token is checked as on any route: under the brake, its failures counted.
    let caller = match crate::extract::bearer(&headers) {
        Some(t) => crate::extract::authenticate(&s, t, addr).await?,
        None => None,
    };
    let registry = caller.map(|_| s.vault.purposes().all());
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi_json(registry.as_deref()).to_string(),
    ))
}

/// The root: people land on the console.
#[utoipa::path(get, path = "/", tag = "system", responses((status = 303, description = "To the staff console")))]
pub async fn root() -> impl IntoResponse {
    axum::response::Redirect::to("/console")
}

/// Unknown route.
pub async fn no_route() -> Problem {
    Problem::no_route()
}

/// Known route, wrong method.
pub async fn method_not_allowed() -> Problem {
    Problem::method_not_allowed()
}

/// This module's routes, each registered with its OpenAPI path from the handler's annotation
/// (one place per endpoint).
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(root))
        .routes(utoipa_axum::routes!(healthz))
        .routes(utoipa_axum::routes!(readyz))
        .routes(utoipa_axum::routes!(metrics))
        // Served, not documented: the document itself and the well-known files.
        .route("/openapi.json", axum::routing::get(openapi))
        .route("/.well-known/gpc.json", axum::routing::get(gpc))
        .route("/.well-known/jwks.json", axum::routing::get(jwks))
}
