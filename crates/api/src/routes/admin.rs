//! `/v1/outlets`, `/v1/staff`, `/v1/alerts`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use steward_domain::{OutletId, Role, StaffId};
use steward_policy::Action;

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
    s.vault.authorize(&p, Action::ManageDirectory, None).await?;
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
    s.vault.authorize(&p, Action::ReadDirectory, None).await?;
    Ok(Json(
        s.vault
            .list_outlets()
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
    s.vault.authorize(&p, Action::ManageDirectory, None).await?;
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
    s.vault.authorize(&p, Action::ReadDirectory, None).await?;
    Ok(Json(
        s.vault
            .list_staff()
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

/// An access alert.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertView {
    /// Id.
    pub id: String,
    /// When.
    pub occurred_at: steward_domain::Timestamp,
    /// `break_glass`, `fraud_review` or `bulk_access`.
    pub kind: String,
    /// The principal's pseudonym (staff id, or `token-<id>` for a service client).
    pub principal: String,
    /// The customer concerned, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// The declared purpose.
    pub purpose: String,
    /// What happened.
    pub detail: String,
    /// Whether a reason was given (read it with `GET /v1/alerts/{id}`).
    pub has_reason: bool,
    /// The reason, on `GET /v1/alerts/{id}` only (absent once the customer is erased).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl AlertView {
    fn new(a: steward_store::AlertRow, reason: Option<String>) -> Self {
        AlertView {
            id: uuid::Uuid::from_slice(&a.id)
                .map(|u| u.to_string())
                .unwrap_or_default(),
            occurred_at: steward_domain::Timestamp(a.occurred_at),
            kind: a.kind,
            principal: a.principal,
            customer_id: a.customer_id.map(|c| c.to_string()),
            purpose: a.purpose,
            detail: a.detail,
            has_reason: a.reason.is_some(),
            reason,
        }
    }
}

/// Access alerts for the DPO, newest first: break-glass reads and bulk-access refusals.
#[utoipa::path(get, path = "/v1/alerts", tag = "alerts", responses((status = 200, body = Vec<AlertView>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list_alerts(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<Vec<AlertView>>, Problem> {
    let rows = s.vault.alerts(&p, 500).await?;
    Ok(Json(
        rows.into_iter().map(|a| AlertView::new(a, None)).collect(),
    ))
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
    let (row, reason) = s.vault.alert_with_reason(&p, id).await?;
    Ok(Json(AlertView::new(row, reason)))
}
