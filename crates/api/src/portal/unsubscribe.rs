//! One-click unsubscribe (RFC 8058): `GET /unsubscribe/{token}` shows what the link would do
//! and a button, and changes nothing (mail scanners follow every link); `POST` with
//! `List-Unsubscribe=One-Click` (urlencoded or multipart, as the RFC allows) withdraws the
//! consent and answers 200. The token is the only authority: it names no one, and the page
//! shows the purpose, never the customer.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use steward_service::unsubscribe::UnsubscribeLink;

use crate::web::{form, render};
use crate::{AppState, Problem};

#[derive(Template)]
#[template(path = "portal/unsubscribe.html")]
struct UnsubscribePage<'a> {
    signed_in: bool,
    csrf: &'a str,
    title: &'a str,
    what: String,
    token: &'a str,
    done: bool,
}

fn page(link: &UnsubscribeLink, token: &str) -> Response {
    let title = if link.done {
        "You are unsubscribed"
    } else {
        "Unsubscribe"
    };
    render(
        UnsubscribePage {
            signed_in: false,
            csrf: "",
            title,
            what: format!(
                "messages for {}",
                crate::display::words(&link.purpose).to_lowercase()
            ),
            token,
            done: link.done,
        },
        StatusCode::OK,
    )
}

/// A token is base64url; anything else is no link (and goes nowhere near the page).
fn plausible(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 128
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn not_a_link() -> Response {
    super::message_page(None, Problem::not_found("unsubscribe link"))
}

/// Shows what the link would do; changes nothing.
pub(super) async fn show(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    if !plausible(&token) {
        return not_a_link();
    }
    match s.vault.unsubscribe_link(&token).await {
        Ok(link) => page(&link, &token),
        Err(steward_service::ServiceError::NotFound(_)) => not_a_link(),
        Err(e) => super::message_page(None, Problem::from(e)),
    }
}

/// Whether the body says `List-Unsubscribe=One-Click`, urlencoded or as a multipart field.
async fn one_click(headers: HeaderMap, body: Bytes) -> bool {
    let multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        return form(&body)
            .get("List-Unsubscribe")
            .is_some_and(|v| v == "One-Click");
    }
    let mut req = Request::new(axum::body::Body::from(body));
    *req.headers_mut() = headers;
    let Ok(mut parts) = axum::extract::Multipart::from_request(req, &()).await else {
        return false;
    };
    while let Ok(Some(field)) = parts.next_field().await {
        if field.name() == Some("List-Unsubscribe") {
            return field.text().await.is_ok_and(|v| v.trim() == "One-Click");
        }
    }
    false
}

/// Unsubscribes: the consent for the campaign's purpose is withdrawn, as the customer.
pub(super) async fn unsubscribe(
    State(s): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !plausible(&token) {
        return not_a_link();
    }
    if !one_click(headers, body).await {
        return super::message_page(
            None,
            Problem::invalid_parameter(
                "List-Unsubscribe",
                "send List-Unsubscribe=One-Click to unsubscribe",
            ),
        );
    }
    match s.vault.unsubscribe(&token).await {
        Ok(link) => page(&link, &token),
        Err(steward_service::ServiceError::NotFound(_)) => not_a_link(),
        Err(e) => super::message_page(None, Problem::from(e)),
    }
}
