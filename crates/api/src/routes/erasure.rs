//! Erasure by crypto-shredding and the legal holds that block it (the DPO's).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use steward_domain::CustomerId;
use steward_service::{Actor, ErasureReport};

use super::path_id;
use crate::extract::{Auth, JsonBody};
use crate::{AppState, Problem};

/// Erases a customer: their data key and look-up entries are destroyed in one transaction (the
/// customer is unreadable and unfindable when this answers), the remaining ciphertext purged,
/// and a disposal record appended to the audit log. A legal hold blocks it (409).
#[utoipa::path(delete, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = ErasureReport), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn erase(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<ErasureReport>, Problem> {
    let id: CustomerId = path_id(&id)?;
    Ok(Json(
        s.vault.erase_customer(Actor::Principal(&p), id).await?,
    ))
}

/// The body of `PUT /v1/customers/{id}/legal-hold`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LegalHold {
    /// The case reference (1–64 letters, digits, `-_./`, at least one digit; never a name).
    #[schema(pattern = "^(?=[^0-9]*[0-9])[A-Za-z0-9._/-]{1,64}$")]
    pub reference: String,
}

/// Places a customer under legal hold: erasure is refused until it is lifted.
#[utoipa::path(put, path = "/v1/customers/{id}/legal-hold", tag = "customers",
    request_body = LegalHold, params(("id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn set_hold(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    JsonBody(hold): JsonBody<LegalHold>,
) -> Result<StatusCode, Problem> {
    let id: CustomerId = path_id(&id)?;
    s.vault
        .erasures()
        .set_legal_hold(Actor::Principal(&p), id, Some(&hold.reference))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts a customer's legal hold.
#[utoipa::path(delete, path = "/v1/customers/{id}/legal-hold", tag = "customers",
    params(("id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn lift_hold(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let id: CustomerId = path_id(&id)?;
    s.vault
        .erasures()
        .set_legal_hold(Actor::Principal(&p), id, None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This module's routes, each registered with its OpenAPI path from the handler's annotation
/// (one place per endpoint).
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(erase))
        .routes(utoipa_axum::routes!(set_hold, lift_hold))
}
