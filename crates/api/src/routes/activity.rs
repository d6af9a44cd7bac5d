//! `/v1/customers/{id}/interactions` and `/v1/customers/{id}/purchases`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use steward_domain::{
    CustomerId, Interaction, InteractionInput, Purchase, PurchaseInput, Timestamp,
};

use super::{Created, PageOf, path_id};
use crate::extract::{Auth, DeclaredPurpose, JsonBody, Page};
use crate::{AppState, Problem};

/// Records an interaction (message, note, call, ticket, social post).
#[utoipa::path(post, path = "/v1/customers/{id}/interactions", tag = "interactions", request_body = InteractionInput,
    params(("id" = String, Path)),
    responses((status = 201, body = Created), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn add_interaction(
    State(s): State<AppState>,
    Auth(_p): Auth,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<InteractionInput>,
) -> Result<(StatusCode, Json<Created>), Problem> {
    let id: CustomerId = path_id(&id)?;
    let new = input.validate(Timestamp::now())?;
    let iid = s.vault.add_interaction(id, &new).await?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            id: iid.to_string(),
        }),
    ))
}

/// Lists a customer's interactions, oldest first.
#[utoipa::path(get, path = "/v1/customers/{id}/interactions", tag = "interactions",
    params(("id" = String, Path), ("purpose" = String, Query), ("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = PageOf<Interaction>), (status = 400, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_interactions(
    State(s): State<AppState>,
    Auth(_p): Auth,
    purpose: DeclaredPurpose,
    Path(id): Path<String>,
    page: Page,
) -> Result<Json<PageOf<Interaction>>, Problem> {
    let id: CustomerId = path_id(&id)?;
    purpose.record("interaction");
    let items = s
        .vault
        .list_interactions(id, page.after, page.limit)
        .await?;
    Ok(Json(PageOf::new(items, page.limit, |i| i.id.to_string())))
}

/// Records a purchase.
#[utoipa::path(post, path = "/v1/customers/{id}/purchases", tag = "purchases", request_body = PurchaseInput,
    params(("id" = String, Path)),
    responses((status = 201, body = Created), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn add_purchase(
    State(s): State<AppState>,
    Auth(_p): Auth,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<PurchaseInput>,
) -> Result<(StatusCode, Json<Created>), Problem> {
    let id: CustomerId = path_id(&id)?;
    let new = input.validate(Timestamp::now())?;
    let pid = s.vault.add_purchase(id, &new).await?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            id: pid.to_string(),
        }),
    ))
}

/// Lists a customer's purchases, oldest first.
#[utoipa::path(get, path = "/v1/customers/{id}/purchases", tag = "purchases",
    params(("id" = String, Path), ("purpose" = String, Query), ("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = PageOf<Purchase>), (status = 400, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_purchases(
    State(s): State<AppState>,
    Auth(_p): Auth,
    purpose: DeclaredPurpose,
    Path(id): Path<String>,
    page: Page,
) -> Result<Json<PageOf<Purchase>>, Problem> {
    let id: CustomerId = path_id(&id)?;
    purpose.record("purchase");
    let items = s.vault.list_purchases(id, page.after, page.limit).await?;
    Ok(Json(PageOf::new(items, page.limit, |p| p.id.to_string())))
}
