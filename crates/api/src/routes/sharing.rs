//! `/v1/recipients`, `/v1/agreements`, `/v1/notifications`, `/v1/shared` and a customer's
//! disclosures (issue 22): sharing only under agreement, and changes that follow the data.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use steward_domain::sharing::{AgreementInput, RecipientInput};
use steward_domain::{AgreementId, CustomerId, RecipientId};
use steward_service::sharing::{Agreement, Disclosure, Recipient, SharedRecord};
use steward_service::webhooks::{Notification, WebhookKeys};

use super::{Created, path_id};
use crate::extract::{Auth, JsonBody, ReadScope};
use crate::{AppState, Problem};

/// A list of items.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemsOf<T> {
    /// The items.
    pub items: Vec<T>,
}

/// Query parameters as decoded pairs (errors name the parameter, never echo its value).
fn query(uri: &axum::http::Uri) -> Vec<(String, String)> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// `?recipient_id=`, if given.
fn recipient_param(uri: &axum::http::Uri) -> Result<Option<RecipientId>, Problem> {
    query(uri)
        .into_iter()
        .find(|(k, _)| k == "recipient_id")
        .map(|(_, v)| {
            v.parse()
                .map_err(|_| Problem::invalid_parameter("recipient_id", "not a recipient id"))
        })
        .transpose()
}

/// `?limit=` from 1 to `max` (default `default`).
fn limit_param(uri: &axum::http::Uri, default: u32, max: u32) -> Result<u32, Problem> {
    match query(uri).into_iter().find(|(k, _)| k == "limit") {
        None => Ok(default),
        Some((_, v)) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| Problem::invalid_parameter("limit", &format!("must be 1 to {max}"))),
    }
}

/// Registers a recipient: a processor or third party that may receive data under an agreement
/// (the DPO). Its webhook URL must be `https://`.
#[utoipa::path(post, path = "/v1/recipients", tag = "sharing", request_body = RecipientInput,
    responses((status = 201, body = Created), (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_recipient(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(input): JsonBody<RecipientInput>,
) -> Result<impl IntoResponse, Problem> {
    let id = s.vault.sharing().create_recipient(&p, &input).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/v1/recipients/{id}"))],
        Json(Created { id: id.to_string() }),
    ))
}

/// Every recipient, by name (the DPO).
#[utoipa::path(get, path = "/v1/recipients", tag = "sharing",
    responses((status = 200, body = ItemsOf<Recipient>), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn recipients(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<ItemsOf<Recipient>>, Problem> {
    Ok(Json(ItemsOf {
        items: s.vault.sharing().recipients(&p).await?,
    }))
}

/// Records an agreement (the DPO): the purposes and categories a recipient may receive, on which
/// lawful basis, from when until when, identified or under pseudonyms; with `supersedes`, a new
/// version of an agreement, which ends the old one when it starts.
#[utoipa::path(post, path = "/v1/agreements", tag = "sharing", request_body = AgreementInput,
    responses((status = 201, body = Created), (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_agreement(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(input): JsonBody<AgreementInput>,
) -> Result<impl IntoResponse, Problem> {
    let id = s.vault.sharing().create_agreement(&p, &input).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/v1/agreements/{id}"))],
        Json(Created { id: id.to_string() }),
    ))
}

/// Every agreement (of one recipient with `?recipient_id=`), oldest first, with where each
/// stands and whether it expires within 30 days (the DPO).
#[utoipa::path(get, path = "/v1/agreements", tag = "sharing",
    params(("recipient_id" = Option<String>, Query, format = Uuid)),
    responses((status = 200, body = ItemsOf<Agreement>), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn agreements(
    State(s): State<AppState>,
    Auth(p): Auth,
    uri: axum::http::Uri,
) -> Result<Json<ItemsOf<Agreement>>, Problem> {
    let recipient = recipient_param(&uri)?;
    Ok(Json(ItemsOf {
        items: s.vault.sharing().agreements(&p, recipient).await?,
    }))
}

/// Ends an agreement now (the DPO): recorded, never deleted; nothing more is disclosed under it.
#[utoipa::path(post, path = "/v1/agreements/{id}/end", tag = "sharing",
    params(("id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn end_agreement(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let id: AgreementId = path_id(&id)?;
    s.vault.sharing().end_agreement(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The newest notifications of changes to recipients (to one with `?recipient_id=`), with their
/// delivery status: pending, delivered or failed (the DPO).
#[utoipa::path(get, path = "/v1/notifications", tag = "sharing",
    params(("recipient_id" = Option<String>, Query, format = Uuid), ("limit" = Option<u32>, Query, minimum = 1, maximum = 500)),
    responses((status = 200, body = ItemsOf<Notification>), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn notifications(
    State(s): State<AppState>,
    Auth(p): Auth,
    uri: axum::http::Uri,
) -> Result<Json<ItemsOf<Notification>>, Problem> {
    let recipient = recipient_param(&uri)?;
    let limit = limit_param(&uri, 100, 500)?;
    Ok(Json(ItemsOf {
        items: s
            .vault
            .webhooks()
            .notifications(&p, recipient, limit)
            .await?,
    }))
}

/// Who outside the business received this customer's data, under which agreement, when and for
/// which purpose (the DPO and support agents, as for the access log; recorded).
#[utoipa::path(get, path = "/v1/customers/{id}/disclosures", tag = "sharing",
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = ItemsOf<Disclosure>), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn disclosures(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<ItemsOf<Disclosure>>, Problem> {
    let id: CustomerId = path_id(&id)?;
    Ok(Json(ItemsOf {
        items: s
            .vault
            .sharing()
            .disclosures(steward_service::Actor::Principal(&p), id)
            .await?,
    }))
}

/// A page of shared records.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SharedPage {
    /// The records.
    pub items: Vec<SharedRecord>,
    /// Pass as `?cursor=` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The customers a recipient under a pseudonymous agreement receives for the purpose, a page at
/// a time, each by its pseudonym: stable for this recipient, unlinkable to another's.
#[utoipa::path(get, path = "/v1/shared", tag = "sharing",
    params(("purpose" = String, Query), ("cursor" = Option<String>, Query, format = Uuid), ("limit" = Option<u32>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, body = SharedPage), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn shared(
    State(s): State<AppState>,
    Auth(p): Auth,
    scope: ReadScope,
    uri: axum::http::Uri,
) -> Result<Json<SharedPage>, Problem> {
    let limit = limit_param(&uri, 50, 100)?;
    let cursor = query(&uri)
        .into_iter()
        .find(|(k, _)| k == "cursor")
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty());
    let (items, next_cursor) = s
        .vault
        .sharing()
        .list_shared(&scope.access(&p), cursor.as_deref(), limit)
        .await?;
    scope.record("shared");
    Ok(Json(SharedPage { items, next_cursor }))
}

/// One customer by the recipient's pseudonym, as its pseudonymous agreement and the policy allow.
#[utoipa::path(get, path = "/v1/shared/{pseudonym}", tag = "sharing",
    params(("pseudonym" = String, Path, pattern = "^psn_[a-z2-7]{26}$"), ("purpose" = String, Query)),
    responses((status = 200, body = SharedRecord), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn shared_one(
    State(s): State<AppState>,
    Auth(p): Auth,
    scope: ReadScope,
    Path(pseudonym): Path<String>,
) -> Result<Json<SharedRecord>, Problem> {
    let valid = pseudonym.len() == 30
        && pseudonym.starts_with("psn_")
        && pseudonym[4..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
    if !valid {
        return Err(Problem::invalid_parameter(
            "pseudonym",
            "not a pseudonym (psn_ and 26 base32 letters)",
        ));
    }
    let record = s
        .vault
        .sharing()
        .read_shared(&scope.access(&p), &pseudonym)
        .await?;
    scope.record("shared");
    Ok(Json(record))
}

/// The public keys that verify Steward's notifications (Standard Webhooks `v1a`, Ed25519).
pub async fn webhook_keys(State(s): State<AppState>) -> Json<WebhookKeys> {
    Json(s.vault.webhooks().keys())
}

/// This module's routes, each registered with its OpenAPI path from the handler's annotation.
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(create_recipient, recipients))
        .routes(utoipa_axum::routes!(create_agreement, agreements))
        .routes(utoipa_axum::routes!(end_agreement))
        .routes(utoipa_axum::routes!(notifications))
        .routes(utoipa_axum::routes!(disclosures))
        .routes(utoipa_axum::routes!(shared))
        .routes(utoipa_axum::routes!(shared_one))
        // Served, not documented as an operation: a well-known file.
        .route(
            "/.well-known/webhook-keys.json",
            axum::routing::get(webhook_keys),
        )
}
