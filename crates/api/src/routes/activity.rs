//! `/v1/customers/{id}/interactions`, `/purchases` and `/consents`.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use steward_domain::{
    ConsentEvent, ConsentInput, ConsentState, CustomerId, DecisionSummary, Interaction,
    InteractionInput, Purchase, PurchaseInput, PurchaseSummary, Timestamp,
};

use super::{Created, PageOf, path_id};
use crate::extract::{Auth, JsonBody, Page, ReadScope};
use crate::{AppState, Problem};

/// `?purpose=` of a write, decoded.
fn purpose_of(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "purpose")
        .map(|(_, v)| v.into_owned())
}

/// Records an interaction (message, note, call, ticket, social post). Personal data in its text
/// is found before it is sealed; the kinds found are recorded with it (`pii_types`), and the
/// declared purpose's rule keeps, masks or redacts it.
#[utoipa::path(post, path = "/v1/customers/{id}/interactions", tag = "interactions", request_body = InteractionInput,
    params(("id" = String, Path, format = Uuid), ("purpose" = Option<String>, Query, description = "The purpose the text is recorded for: its rule keeps, masks or redacts the personal data found in it (kept if absent)")),
    responses((status = 201, body = Created), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn add_interaction(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    JsonBody(input): JsonBody<InteractionInput>,
) -> Result<(StatusCode, Json<Created>), Problem> {
    let id: CustomerId = path_id(&id)?;
    let new = input.validate(Timestamp::now())?;
    let iid = s
        .vault
        .records()
        .add_interaction_for(
            steward_service::Actor::Principal(&p),
            id,
            &new,
            purpose_of(q.as_deref()).as_deref(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            id: iid.to_string(),
        }),
    ))
}

/// Lists a customer's interactions, oldest first, if the policy shows communications.
#[utoipa::path(get, path = "/v1/customers/{id}/interactions", tag = "interactions",
    params(("id" = String, Path, format = Uuid), ("purpose" = String, Query), ("reason" = Option<String>, Query), ("cursor" = Option<String>, Query, format = Uuid), ("limit" = Option<u32>, Query, minimum = 1, maximum = 500)),
    responses((status = 200, body = PageOf<Interaction>), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_interactions(
    State(s): State<AppState>,
    Auth(p): Auth,
    scope: ReadScope,
    Path(id): Path<String>,
    page: Page,
) -> Result<Json<PageOf<Interaction>>, Problem> {
    let id: CustomerId = path_id(&id)?;
    let items = s
        .vault
        .records()
        .read_interactions(&scope.access(&p), id, page.after, page.limit)
        .await?;
    scope.record("interaction");
    Ok(Json(PageOf::new(items, page.limit, |i| i.id.to_string())))
}

/// Records a purchase.
#[utoipa::path(post, path = "/v1/customers/{id}/purchases", tag = "purchases", request_body = PurchaseInput,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 201, body = Created), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn add_purchase(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<PurchaseInput>,
) -> Result<(StatusCode, Json<Created>), Problem> {
    let id: CustomerId = path_id(&id)?;
    let new = input.validate(Timestamp::now())?;
    let pid = s
        .vault
        .add_purchase(steward_service::Actor::Principal(&p), id, &new)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            id: pid.to_string(),
        }),
    ))
}

/// A customer's purchases as the policy allows: the items, or only derived facts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PurchasePage {
    /// The purchases (empty when only the abstraction is allowed).
    pub items: Vec<Purchase>,
    /// Pass as `?cursor=` for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Tier, count band and eligibility, when the history itself is abstracted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<PurchaseSummary>,
    /// What the policy decided.
    pub decision: DecisionSummary,
}

/// Lists a customer's purchases, oldest first; or, where the policy abstracts the history, the
/// derived facts only.
#[utoipa::path(get, path = "/v1/customers/{id}/purchases", tag = "purchases",
    params(("id" = String, Path, format = Uuid), ("purpose" = String, Query), ("reason" = Option<String>, Query), ("cursor" = Option<String>, Query, format = Uuid), ("limit" = Option<u32>, Query, minimum = 1, maximum = 500)),
    responses((status = 200, body = PurchasePage), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_purchases(
    State(s): State<AppState>,
    Auth(p): Auth,
    scope: ReadScope,
    Path(id): Path<String>,
    page: Page,
) -> Result<Json<PurchasePage>, Problem> {
    let id: CustomerId = path_id(&id)?;
    let view = s
        .vault
        .records()
        .read_purchases(&scope.access(&p), id, page.after, page.limit)
        .await?;
    scope.record("purchase");
    let next_cursor = PageOf::new(view.items, page.limit, |p: &Purchase| p.id.to_string());
    Ok(Json(PurchasePage {
        items: next_cursor.items,
        next_cursor: next_cursor.next_cursor,
        summary: view.summary,
        decision: view.decision,
    }))
}

/// One recorded ledger event with its consent receipt.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordedConsent {
    /// The event.
    #[serde(flatten)]
    pub event: ConsentEvent,
    /// A Kantara Consent Receipt v1.1 as a compact JWS (EdDSA), verifiable offline with the key
    /// at `/.well-known/jwks.json`.
    pub receipt: String,
}

/// The answer to a consent change: the events recorded.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsentRecorded {
    /// The events, in order (a `Sec-GPC: 1` request adds its withdrawals after the posted one).
    pub events: Vec<RecordedConsent>,
}

/// Grants or withdraws consent for a purpose. A request carrying `Sec-GPC: 1` (the Global
/// Privacy Control signal) also withdraws the sale/sharing and targeted-marketing purposes.
#[utoipa::path(post, path = "/v1/customers/{id}/consents", tag = "consents", request_body = ConsentInput,
    params(("id" = String, Path, format = Uuid)),
    responses((status = 201, body = ConsentRecorded), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn record_consent(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ConsentInput>,
) -> Result<(StatusCode, Json<ConsentRecorded>), Problem> {
    let id: CustomerId = path_id(&id)?;
    let mut events = vec![s.vault.record_consent(&p, id, &input).await?];
    if headers.get("sec-gpc").is_some_and(|v| v.as_bytes() == b"1") {
        events.extend(s.vault.record_gpc(&p, id).await?);
    }
    let events = events
        .into_iter()
        .map(|(event, receipt)| RecordedConsent { event, receipt })
        .collect();
    Ok((StatusCode::CREATED, Json(ConsentRecorded { events })))
}

/// The customer's current consent per purpose, and the whole ledger.
#[utoipa::path(get, path = "/v1/customers/{id}/consents", tag = "consents",
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = ConsentState), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn consents(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<ConsentState>, Problem> {
    let id: CustomerId = path_id(&id)?;
    Ok(Json(s.vault.consent_state(&p, id).await?))
}

/// This module's routes, each registered with its OpenAPI path from the handler's annotation
/// (one place per endpoint).
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list_interactions, add_interaction))
        .routes(utoipa_axum::routes!(list_purchases, add_purchase))
        .routes(utoipa_axum::routes!(consents, record_consent))
}
