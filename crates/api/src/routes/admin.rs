//! `/v1/outlets`, `/v1/staff`, `/v1/alerts`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use steward_domain::{OutletId, Role, StaffId};

use super::Created;
use crate::extract::{Auth, JsonBody};
use crate::{AppState, Problem};

/// The body of `POST /v1/outlets`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutletInput {
    /// The outlet's name (unique).
    pub name: String,
}

/// An outlet.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OutletView {
    /// Id.
    pub id: OutletId,
    /// Name.
    pub name: String,
}

/// Adds an outlet.
#[utoipa::path(post, path = "/v1/outlets", tag = "outlets", request_body = OutletInput,
    responses((status = 201, body = Created), (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create_outlet(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(input): JsonBody<OutletInput>,
) -> Result<(StatusCode, Json<Created>), Problem> {
    let id = s
        .vault
        .create_outlet(steward_service::Actor::Principal(&p), &input.name)
        .await?;
    Ok((StatusCode::CREATED, Json(Created { id: id.to_string() })))
}

/// Lists outlets.
#[utoipa::path(get, path = "/v1/outlets", tag = "outlets", responses((status = 200, body = Vec<OutletView>)), security(("bearer" = [])))]
pub async fn list_outlets(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<Vec<OutletView>>, Problem> {
    Ok(Json(
        s.vault
            .list_outlets(steward_service::Actor::Principal(&p))
            .await?
            .into_iter()
            .map(|o| OutletView {
                id: o.id,
                name: o.name,
            })
            .collect(),
    ))
}

/// The body of `POST /v1/staff`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffInput {
    /// Name (sealed at rest).
    pub name: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Outlets the staff member works at.
    #[serde(default)]
    pub outlet_ids: Vec<OutletId>,
}

/// A staff member.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StaffView {
    /// Id.
    pub id: StaffId,
    /// Name.
    pub name: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Outlets.
    pub outlet_ids: Vec<OutletId>,
}

/// Adds a staff member.
#[utoipa::path(post, path = "/v1/staff", tag = "staff", request_body = StaffInput,
    responses((status = 201, body = Created), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create_staff(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(input): JsonBody<StaffInput>,
) -> Result<(StatusCode, Json<Created>), Problem> {
    let id = s
        .vault
        .create_staff(
            steward_service::Actor::Principal(&p),
            &input.name,
            &input.roles,
            &input.outlet_ids,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(Created { id: id.to_string() })))
}

/// Lists staff.
#[utoipa::path(get, path = "/v1/staff", tag = "staff", responses((status = 200, body = Vec<StaffView>)), security(("bearer" = [])))]
pub async fn list_staff(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<Vec<StaffView>>, Problem> {
    Ok(Json(
        s.vault
            .list_staff(steward_service::Actor::Principal(&p))
            .await?
            .into_iter()
            .map(|m| StaffView {
                id: m.id,
                name: m.name,
                roles: m.roles,
                outlet_ids: m.outlet_ids,
            })
            .collect(),
    ))
}

/// An access alert, as the DPO sees it.
pub use steward_service::Alert as AlertView;

/// Access alerts for the DPO, newest first: break-glass reads and bulk-access refusals.
#[utoipa::path(get, path = "/v1/alerts", tag = "alerts", responses((status = 200, body = Vec<AlertView>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list_alerts(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<Vec<AlertView>>, Problem> {
    Ok(Json(s.vault.alerts(&p, 500).await?))
}

/// One access alert with the reason the staff member gave, for the DPO. Opening the reason is an
/// audit entry about the customer.
#[utoipa::path(get, path = "/v1/alerts/{id}", tag = "alerts", params(("id" = String, Path)),
    responses((status = 200, body = AlertView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_alert(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<AlertView>, Problem> {
    let id = uuid::Uuid::try_parse(&id).map_err(|_| Problem::not_found("alert"))?;
    Ok(Json(s.vault.alert_with_reason(&p, id).await?))
}

/// This module's routes, each registered with its OpenAPI path from the handler's annotation
/// (one place per endpoint).
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list_outlets, create_outlet))
        .routes(utoipa_axum::routes!(list_staff, create_staff))
        .routes(utoipa_axum::routes!(list_alerts))
        .routes(utoipa_axum::routes!(get_alert))
}
