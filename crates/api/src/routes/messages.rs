//! `/v1/customers/{id}/messages` (issue 18): staff write to a customer by id and read the
//! thread; `/v1/inbound/email`: the mail gateway hands replies and bounces in.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use steward_domain::{CustomerId, MessageInput, Thread};
use steward_service::inbound::{MAX_MESSAGE_BYTES, Received};

use super::path_id;
use crate::extract::{Auth, JsonBody, ReadScope};
use crate::{AppState, Problem};

/// A message accepted for sending.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageAccepted {
    /// The message.
    #[schema(format = Uuid)]
    pub id: String,
    /// Its thread (pass as `thread_id` to write again in it).
    #[schema(format = Uuid)]
    pub thread_id: String,
}

/// Writes to a customer by e-mail (202): decided like a read of their contact details under
/// `?purpose=` (a sales associate or store manager writes to their own outlet's customers,
/// support agents to any; marketing to no one individually). Steward opens the address and
/// sends; the caller never sees it. Replies to the thread's address come back into the thread.
/// Without mail (`serve --smtp-url`, `--public-url`) a 409.
#[utoipa::path(post, path = "/v1/customers/{id}/messages", tag = "messages", request_body = MessageInput,
    params(("id" = String, Path, format = Uuid, description = "Customer id"), ("purpose" = String, Query)),
    responses((status = 202, body = MessageAccepted), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)),
    security(("bearer" = [])))]
pub async fn send(
    State(s): State<AppState>,
    Auth(p): Auth,
    scope: ReadScope,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<MessageInput>,
) -> Result<impl IntoResponse, Problem> {
    let id: CustomerId = path_id(&id)?;
    let m = input.validate()?;
    let (message, thread) = s
        .vault
        .outreach()
        .send_message(&scope.access(&p), id, &m)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(MessageAccepted {
            id: message.to_string(),
            thread_id: thread.to_string(),
        }),
    ))
}

/// A customer's message threads.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Threads {
    /// Oldest first, each with its messages and replies.
    pub items: Vec<Thread>,
}

/// A customer's message threads with their replies, if the policy shows their communications
/// for `?purpose=` (decided and recorded like `GET …/interactions`). No address appears.
#[utoipa::path(get, path = "/v1/customers/{id}/messages", tag = "messages",
    params(("id" = String, Path, format = Uuid, description = "Customer id"), ("purpose" = String, Query), ("reason" = Option<String>, Query)),
    responses((status = 200, body = Threads), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn threads(
    State(s): State<AppState>,
    Auth(p): Auth,
    scope: ReadScope,
    Path(id): Path<String>,
) -> Result<Json<Threads>, Problem> {
    let id: CustomerId = path_id(&id)?;
    let items = s
        .vault
        .outreach()
        .read_threads(&scope.access(&p), id)
        .await?;
    scope.record("message");
    Ok(Json(Threads { items }))
}

/// What became of an inbound message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InboundOutcome {
    /// `reply` (stored in its thread), `bounce` (the address is marked undeliverable) or
    /// `notice` (a delivery report that changes nothing).
    pub outcome: &'static str,
    /// The thread a reply was filed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = Uuid)]
    pub thread_id: Option<String>,
}

/// Takes one inbound RFC 5322 message (the body, as `message/rfc822`) from the mail gateway (a
/// token of role `mail_gateway`), the shape of mail providers' inbound webhooks. A reply to a
/// live reply address is stored in its thread with the customer's own address and phone number
/// removed; a delivery status notification to a bounce address marks the address
/// undeliverable. Anything else (an unknown or expired address, not a message) is a 422, and
/// nothing is stored. `?recipient=` may give the envelope recipient.
#[utoipa::path(post, path = "/v1/inbound/email", tag = "messages",
    request_body(content = String, content_type = "message/rfc822", description = "One RFC 5322 message, at most 2 MiB"),
    params(("recipient" = Option<String>, Query, max_length = 320, description = "The envelope recipient, if the headers do not name it")),
    responses((status = 202, body = InboundOutcome), (status = 400, body = Problem), (status = 403, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn inbound(
    State(s): State<AppState>,
    Auth(p): Auth,
    query: axum::extract::RawQuery,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<impl IntoResponse, Problem> {
    s.vault.outreach().check_mail_gateway(&p).await?;
    let is_message = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("message/rfc822"));
    if !is_message {
        return Err(Problem::unsupported_media_type_of("message/rfc822"));
    }
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::too_large(MAX_MESSAGE_BYTES)
        } else {
            Problem::invalid_parameter("body", "the message could not be read")
        }
    })?;
    let mut recipients = Vec::new();
    for (k, v) in form_urlencoded::parse(query.0.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            // Characters, as the document's maxLength counts them (JSON Schema counts code points).
            "recipient" if v.chars().count() <= 320 => recipients.push(v.into_owned()),
            "recipient" => {
                return Err(Problem::invalid_parameter(
                    "recipient",
                    "must be an address of at most 320 characters",
                ));
            }
            _ => {
                return Err(Problem::invalid_parameter(
                    "query",
                    "unknown parameter; the only one is recipient",
                ));
            }
        }
    }
    let received = s
        .vault
        .outreach()
        .receive_mail(steward_service::Actor::Principal(&p), &body, &recipients)
        .await?;
    let (outcome, thread_id) = match received {
        Received::Reply { thread, .. } => ("reply", Some(thread.to_string())),
        Received::Bounce => ("bounce", None),
        Received::Notice => ("notice", None),
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(InboundOutcome { outcome, thread_id }),
    ))
}

/// This module's routes, each registered with its OpenAPI path from the handler's annotation.
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(send, threads))
        .merge(
            utoipa_axum::router::OpenApiRouter::new()
                .routes(utoipa_axum::routes!(inbound))
                // A message with its quoted history is larger than any JSON body.
                .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES)),
        )
}
