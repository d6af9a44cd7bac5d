//! `/v1/customers`: create, read, list, update, look up — each decided by the access policy.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use steward_domain::{
    CustomerId, CustomerInput, CustomerPatch, CustomerView, ValidationError, normalize,
};

use super::{Created, PageOf, path_id};
use crate::extract::{Auth, Filter, JsonBody, Page, ReadScope};
use crate::{AppState, Problem};

/// Creates a customer. Personal values are sealed before they are stored.
#[utoipa::path(post, path = "/v1/customers", tag = "customers", request_body = CustomerInput,
    responses((status = 201, body = Created), (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(input): JsonBody<CustomerInput>,
) -> Result<impl IntoResponse, Problem> {
    let new = input.validate()?;
    let actor = steward_service::Actor::Principal(&p);
    let id = if input.allow_duplicate {
        s.vault
            .records()
            .create_customer_allowing_duplicate(actor, &new)
            .await?
    } else {
        s.vault.records().create_customer(actor, &new).await?
    };
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/v1/customers/{id}"))],
        Json(Created { id: id.to_string() }),
    ))
}

/// Reads one customer for the declared purpose: only the fields the policy allows, some masked,
/// with the decision.
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, format = Uuid, description = "Customer id"), ("purpose" = String, Query, description = "Why the data is read"),
           ("reason" = Option<String>, Query, description = "A stated reason, where the policy needs one")),
    responses((status = 200, body = CustomerView), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_one(
    State(s): State<AppState>,
    Auth(p): Auth,
    scope: ReadScope,
    Path(id): Path<String>,
) -> Result<Json<CustomerView>, Problem> {
    let id: CustomerId = path_id(&id)?;
    let view = s
        .vault
        .records()
        .read_customer(&scope.access(&p), id)
        .await?;
    scope.record("customer");
    Ok(Json(view))
}

/// Lists customers in creation order, a page at a time, optionally searched by name (`q`: the
/// beginning of each word, case and accents ignored) and filtered by outlet and tier; customers
/// the caller may see nothing of are left out. A page may hold fewer items than `limit` and still
/// have a `next_cursor`: a search looks at a bounded number of candidates per page.
#[utoipa::path(get, path = "/v1/customers", tag = "customers",
    params(("purpose" = String, Query), ("reason" = Option<String>, Query), ("cursor" = Option<String>, Query, format = Uuid), ("limit" = Option<u32>, Query, minimum = 1, maximum = 500),
           ("q" = Option<String>, Query, description = "The beginning of the name's words (at least one of two letters or more), e.g. `ada lov`"),
           ("outlet_id" = Option<String>, Query, format = Uuid, description = "Only customers of this outlet"),
           ("tier" = Option<String>, Query, description = "Only customers in this tier, where the caller may know it: none, bronze, silver or gold"),
           ("consent" = Option<String>, Query, description = "Only customers with an active consent to this consent-based purpose, where the caller may read consents"),
           ("active_since" = Option<String>, Query, description = "Only customers with a purchase or interaction on or after this date (YYYY-MM-DD), where the caller is shown them")),
    responses((status = 200, body = PageOf<CustomerView>), (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    scope: ReadScope,
    page: Page,
    Filter(filter): Filter,
) -> Result<Json<PageOf<CustomerView>>, Problem> {
    let (items, last) = s
        .vault
        .records()
        .read_customers(
            &scope.access(&p),
            &filter,
            page.after.map(CustomerId),
            page.limit,
        )
        .await?;
    scope.record("customer");
    Ok(Json(PageOf {
        items,
        next_cursor: last.map(|l| l.to_string()),
    }))
}

/// The body of a merge.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeInput {
    /// The duplicate to merge into the customer of the path: its purchases, interactions and
    /// consents move there, and it is erased (crypto-shredded, with a disposal record).
    #[schema(format = Uuid)]
    pub other_id: String,
}

/// Merges a duplicate into this customer (support agents and the DPO): the other's purchases,
/// interactions and consents move here, re-sealed under this customer's key, and the other is
/// crypto-shredded. This customer's profile stays as it is. 200 with the survivor's id.
#[utoipa::path(post, path = "/v1/customers/{id}/merge", tag = "customers", request_body = MergeInput,
    params(("id" = String, Path, format = Uuid, description = "The customer who stays")),
    responses((status = 200, body = Created), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn merge(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<MergeInput>,
) -> Result<Json<Created>, Problem> {
    let id: CustomerId = path_id(&id)?;
    let other = uuid::Uuid::try_parse(&input.other_id)
        .map(CustomerId)
        .map_err(|_| Problem::from(ValidationError::new("other_id", "not a customer id")))?;
    let survivor = s
        .vault
        .merge_customers(steward_service::Actor::Principal(&p), id, other)
        .await?;
    Ok(Json(Created {
        id: survivor.to_string(),
    }))
}

/// What a profile change left waiting for the customer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PendingChange {
    /// Fields that take effect only when the customer confirms them (`email`: with the code sent
    /// to the new address, on the portal's "Confirm a new e-mail address" page).
    pub pending: Vec<&'static str>,
}

/// Changes a customer's profile (JSON Merge Patch: `null` removes a field). 204 when every
/// field applied; 202 when a new e-mail address waits for the customer's confirmation from that
/// address (the rest applied); 409 naming `email` if another customer holds that address.
#[utoipa::path(patch, path = "/v1/customers/{id}", tag = "customers",
    request_body(content((CustomerPatch = "application/json"), (CustomerPatch = "application/merge-patch+json"))),
    params(("id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 202, body = PendingChange), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn update(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<CustomerPatch>,
) -> Result<axum::response::Response, Problem> {
    let id: CustomerId = path_id(&id)?;
    let updated = s
        .vault
        .update_customer(steward_service::Actor::Principal(&p), id, &patch)
        .await?;
    use axum::response::IntoResponse;
    Ok(if updated.pending.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            StatusCode::ACCEPTED,
            Json(PendingChange {
                pending: updated.pending,
            }),
        )
            .into_response()
    })
}

/// The body of `POST /v1/customers/lookup`: exactly one of `email` or `phone`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupRequest {
    /// An e-mail address (matched after normalisation).
    #[serde(default)]
    #[schema(format = "email")]
    pub email: Option<String>,
    /// A phone number in international format, or in the national format of the caller's outlet's
    /// country when it is known (matched after normalisation).
    #[serde(default)]
    #[schema(format = "phone")]
    pub phone: Option<String>,
}

/// Finds customers by e-mail or phone through the blind indexes. The value travels in the body,
/// never in the URL, which proxies and access logs keep.
#[utoipa::path(post, path = "/v1/customers/lookup", tag = "customers", request_body = LookupRequest,
    params(("purpose" = String, Query), ("reason" = Option<String>, Query)),
    responses((status = 200, body = PageOf<CustomerView>), (status = 400, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn lookup(
    State(s): State<AppState>,
    Auth(p): Auth,
    scope: ReadScope,
    JsonBody(req): JsonBody<LookupRequest>,
) -> Result<Json<PageOf<CustomerView>>, Problem> {
    let (kind, value) = match (&req.email, &req.phone) {
        (Some(e), None) => ("email", normalize::email("email", e)?),
        (None, Some(ph)) => {
            let country = s.vault.directory().phone_country(&p).await;
            (
                "phone",
                normalize::phone_in("phone", ph, country.as_deref())?,
            )
        }
        _ => {
            return Err(ValidationError::new("email", "give exactly one of email or phone").into());
        }
    };
    let items = s
        .vault
        .records()
        .lookup_customers(&scope.access(&p), kind, &value)
        .await?;
    scope.record("customer");
    Ok(Json(PageOf {
        items,
        next_cursor: None,
    }))
}

/// The body of `PUT /v1/customers/{id}/verified-fields`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifiedFields {
    /// The profile fields checked against evidence (`name`, `email`, `phone`, `address`,
    /// `date_of_birth`); a customer's correction of one waits for staff confirmation.
    #[schema(format = "profile-fields")]
    pub fields: Vec<String>,
}

/// Marks which profile fields are verified (replacing the previous set).
#[utoipa::path(put, path = "/v1/customers/{id}/verified-fields", tag = "customers",
    request_body = VerifiedFields, params(("id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn set_verified_fields(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<VerifiedFields>,
) -> Result<StatusCode, Problem> {
    let id: CustomerId = path_id(&id)?;
    s.vault
        .records()
        .set_verified_fields(steward_service::Actor::Principal(&p), id, &body.fields)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This module's routes, each registered with its OpenAPI path from the handler's annotation
/// (one place per endpoint).
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list, create))
        .routes(utoipa_axum::routes!(lookup))
        .routes(utoipa_axum::routes!(get_one, update))
        .routes(utoipa_axum::routes!(set_verified_fields))
        .routes(utoipa_axum::routes!(merge))
}
