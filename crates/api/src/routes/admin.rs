//! `/v1/outlets`, `/v1/staff`, `/v1/alerts`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use steward_domain::{OutletId, Role, StaffId, TokenId, ValidationError};
use steward_service::TokenInfo;

use super::{Created, path_id};
use crate::extract::{Auth, JsonBody};
use crate::{AppState, Problem};

/// The body of `POST /v1/outlets`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutletInput {
    /// The outlet's name (unique).
    #[schema(format = "short-text")]
    pub name: String,
    /// Its country (ISO 3166-1 alpha-2, e.g. `CH`): staff there may then look customers up by
    /// phone numbers in its national format.
    #[serde(default)]
    #[schema(format = "country")]
    pub country: Option<String>,
}

/// An outlet.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OutletView {
    /// Id.
    pub id: OutletId,
    /// Name.
    pub name: String,
    /// Country (ISO 3166-1 alpha-2), if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
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
        .directory()
        .create_outlet_in(
            steward_service::Actor::Principal(&p),
            &input.name,
            input.country.as_deref(),
        )
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
            .directory()
            .list_outlets(steward_service::Actor::Principal(&p))
            .await?
            .into_iter()
            .map(|o| OutletView {
                id: o.id,
                name: o.name,
                country: o.country,
            })
            .collect(),
    ))
}

/// The body of `POST /v1/staff`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffInput {
    /// Name (sealed at rest).
    #[schema(format = "short-text")]
    pub name: String,
    /// Roles (at least one).
    #[schema(min_items = 1)]
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
    /// Disabled: neither signs in nor authenticates.
    pub disabled: bool,
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
        .directory()
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
            .directory()
            .list_staff(steward_service::Actor::Principal(&p))
            .await?
            .into_iter()
            .map(|m| StaffView {
                id: m.id,
                name: m.name,
                roles: m.roles,
                outlet_ids: m.outlet_ids,
                disabled: m.disabled,
            })
            .collect(),
    ))
}

/// The body of `PATCH /v1/staff/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffPatch {
    /// `true` disables the staff member: every token and sign-in session they hold is revoked at
    /// once, and they can neither sign in nor authenticate; `false` enables them again (old
    /// tokens stay revoked).
    #[schema(required = true, value_type = bool)]
    pub disabled: Option<bool>,
}

/// Disables (or enables again) a staff member.
#[utoipa::path(patch, path = "/v1/staff/{id}", tag = "staff", request_body = StaffPatch,
    params(("id" = String, Path, format = Uuid, description = "Staff id")),
    responses((status = 204), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_staff(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<StaffPatch>,
) -> Result<StatusCode, Problem> {
    let id: StaffId = path_id(&id)?;
    let Some(disabled) = body.disabled else {
        return Err(ValidationError::new("body", "names no field to change").into());
    };
    s.vault
        .identity()
        .set_staff_disabled(steward_service::Actor::Principal(&p), id, disabled)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every API token and sign-in session (never a secret), oldest first.
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenInfo>), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_tokens(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<Vec<TokenInfo>>, Problem> {
    Ok(Json(
        s.vault
            .identity()
            .list_tokens(steward_service::Actor::Principal(&p))
            .await?,
    ))
}

/// Revokes an API token or sign-in session: refused from the next request on.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, format = Uuid, description = "Token id")),
    responses((status = 204), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn revoke_token(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let id: TokenId = path_id(&id)?;
    s.vault
        .identity()
        .revoke_token(steward_service::Actor::Principal(&p), id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An access alert, as the DPO sees it.
pub use steward_service::Alert as AlertView;

/// Access alerts for the DPO, newest first: break-glass reads and bulk-access refusals.
#[utoipa::path(get, path = "/v1/alerts", tag = "alerts", responses((status = 200, body = Vec<AlertView>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list_alerts(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<Vec<AlertView>>, Problem> {
    Ok(Json(s.vault.alerts().list(&p, 500).await?))
}

/// One access alert with the reason the staff member gave, for the DPO. Opening the reason is an
/// audit entry about the customer.
#[utoipa::path(get, path = "/v1/alerts/{id}", tag = "alerts", params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = AlertView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_alert(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<AlertView>, Problem> {
    let id = uuid::Uuid::try_parse(&id).map_err(|_| Problem::not_found("alert"))?;
    Ok(Json(s.vault.alerts().with_reason(&p, id).await?))
}

/// This module's routes, each registered with its OpenAPI path from the handler's annotation
/// (one place per endpoint).
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list_outlets, create_outlet))
        .routes(utoipa_axum::routes!(list_staff, create_staff))
        .routes(utoipa_axum::routes!(update_staff))
        .routes(utoipa_axum::routes!(list_tokens))
        .routes(utoipa_axum::routes!(revoke_token))
        .routes(utoipa_axum::routes!(list_alerts))
        .routes(utoipa_axum::routes!(get_alert))
}
