//! The confidentiality notice in the console: a staff member who must acknowledge it is shown it
//! first (at sign-in, when it changes, after 12 months); the DPO publishes it and sees who has
//! not acknowledged it.

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::{SignedIn, error_page, render, signed_form, to_sign_in};
use crate::display::when;
use crate::{AppState, Problem};

#[derive(Template)]
#[template(path = "console/notice.html")]
struct NoticePage<'a> {
    signed_in: Option<String>,
    csrf: &'a str,
    version: i64,
    published: String,
    text: String,
    /// Already acknowledged (the page is shown for reading again).
    done: bool,
}

/// `GET /console/notice`: the current notice, with the button to acknowledge it.
pub(super) async fn show(State(s): State<AppState>, SignedIn(session): SignedIn) -> Response {
    let Some(session) = session else {
        return to_sign_in();
    };
    let Some(n) = s.vault.notices().current() else {
        return Redirect::to("/console").into_response();
    };
    render(
        NoticePage {
            signed_in: Some(session.label()),
            csrf: &session.csrf,
            version: n.version,
            published: when(n.published_at),
            text: n.text,
            done: !s.vault.notices().must_acknowledge(&session.principal),
        },
        StatusCode::OK,
    )
}

/// `POST /console/notice`: acknowledges the version shown; on to the customers.
pub(super) async fn acknowledge(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    body: Bytes,
) -> Response {
    let (session, f) = match signed_form(session, &body) {
        Ok(s) => s,
        Err(res) => return res,
    };
    let Some(version) = f.get("version").and_then(|v| v.parse::<i64>().ok()) else {
        return error_page(
            Some(&session),
            Problem::invalid_parameter("version", "acknowledge the notice shown"),
        );
    };
    match s
        .vault
        .notices()
        .acknowledge(&session.principal, version)
        .await
    {
        Ok(()) => Redirect::to("/console").into_response(),
        Err(e) => error_page(Some(&session), e.into()),
    }
}

/// `POST /console/notice/publish`: the DPO publishes a new version.
pub(super) async fn publish(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    body: Bytes,
) -> Response {
    let (session, f) = match signed_form(session, &body) {
        Ok(s) => s,
        Err(res) => return res,
    };
    let text = f.get("text").map(String::as_str).unwrap_or("");
    match s.vault.notices().publish(&session.principal, text).await {
        Ok(_) => Redirect::to("/console/dpo?done=published").into_response(),
        Err(e) => error_page(Some(&session), e.into()),
    }
}
