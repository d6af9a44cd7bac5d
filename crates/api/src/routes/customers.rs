//! `/v1/customers`: create, read, list, update, look up.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use steward_domain::{
    Customer, CustomerId, CustomerInput, CustomerPatch, ValidationError, normalize,
};

use super::{Created, PageOf, path_id};
use crate::extract::{Auth, DeclaredPurpose, JsonBody, Page};
use crate::{AppState, Problem};

/// Creates a customer. Personal values are sealed before they are stored.
#[utoipa::path(post, path = "/v1/customers", tag = "customers", request_body = CustomerInput,
    responses((status = 201, body = Created), (status = 400, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Auth(_p): Auth,
    JsonBody(input): JsonBody<CustomerInput>,
) -> Result<impl IntoResponse, Problem> {
    let new = input.validate()?;
    let id = s.vault.create_customer(&new).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/v1/customers/{id}"))],
        Json(Created { id: id.to_string() }),
    ))
}

/// Reads one customer for the declared purpose.
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "Customer id"), ("purpose" = String, Query, description = "Why the data is read")),
    responses((status = 200, body = Customer), (status = 400, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_one(
    State(s): State<AppState>,
    Auth(_p): Auth,
    purpose: DeclaredPurpose,
    Path(id): Path<String>,
) -> Result<Json<Customer>, Problem> {
    let id: CustomerId = path_id(&id)?;
    purpose.record("customer");
    Ok(Json(s.vault.get_customer(id).await?))
}

/// Lists customers in creation order, a page at a time.
#[utoipa::path(get, path = "/v1/customers", tag = "customers",
    params(("purpose" = String, Query), ("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = PageOf<Customer>), (status = 400, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Auth(_p): Auth,
    purpose: DeclaredPurpose,
    page: Page,
) -> Result<Json<PageOf<Customer>>, Problem> {
    purpose.record("customer");
    let items = s
        .vault
        .list_customers(page.after.map(CustomerId), page.limit)
        .await?;
    Ok(Json(PageOf::new(items, page.limit, |c| c.id.to_string())))
}

/// Changes a customer's profile (JSON Merge Patch: `null` removes a field).
#[utoipa::path(patch, path = "/v1/customers/{id}", tag = "customers", request_body = CustomerPatch,
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn update(
    State(s): State<AppState>,
    Auth(_p): Auth,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<CustomerPatch>,
) -> Result<StatusCode, Problem> {
    let id: CustomerId = path_id(&id)?;
    if patch.is_empty() {
        return Err(ValidationError::new("body", "names no field to change").into());
    }
    s.vault.update_customer(id, &patch).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of `POST /v1/customers/lookup`: exactly one of `email` or `phone`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupRequest {
    /// An e-mail address (matched after normalisation).
    #[serde(default)]
    pub email: Option<String>,
    /// A phone number in international format (matched after normalisation).
    #[serde(default)]
    pub phone: Option<String>,
}

/// Finds customers by e-mail or phone through the blind indexes. The value travels in the body,
/// never in the URL, which proxies and access logs keep.
#[utoipa::path(post, path = "/v1/customers/lookup", tag = "customers", request_body = LookupRequest,
    params(("purpose" = String, Query)),
    responses((status = 200, body = PageOf<Customer>), (status = 400, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn lookup(
    State(s): State<AppState>,
    Auth(_p): Auth,
    purpose: DeclaredPurpose,
    JsonBody(req): JsonBody<LookupRequest>,
) -> Result<Json<PageOf<Customer>>, Problem> {
    let (kind, value) = match (&req.email, &req.phone) {
        (Some(e), None) => ("email", normalize::email("email", e)?),
        (None, Some(p)) => ("phone", normalize::phone("phone", p)?),
        _ => {
            return Err(ValidationError::new("email", "give exactly one of email or phone").into());
        }
    };
    purpose.record("customer");
    let items = s.vault.lookup(kind, &value).await?;
    Ok(Json(PageOf {
        items,
        next_cursor: None,
    }))
}
