//! The customer privacy portal: server-rendered pages under `/portal`. A customer signs in with
//! a one-time code sent to the e-mail address on record (`POST /portal/code`, then
//! `POST /portal/sign-in`); the session lives in an HTTP-only, SameSite=Strict, Secure cookie.
//! The portal never says whether an address is known, no personal value goes into a URL, and
//! every form carries a CSRF token (doubled in a cookie before sign-in, a MAC of the session
//! after). A request carrying `Sec-GPC: 1` is honoured at sign-in and with every form.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use steward_service::portal::PortalSession;

use crate::extract::ClientAddr;
use crate::web::{cookie, double_submit_ok, form, fresh_csrf, render, same, with_cookies};
use crate::{AppState, Problem};

mod pages;
mod surveys;
mod unsubscribe;

const SESSION_COOKIE: &str = "steward_portal";
const CSRF_COOKIE: &str = "steward_portal_csrf";
const CHALLENGE_COOKIE: &str = "steward_portal_code";

/// The proof checker, the portal's only script.
const JS: &str = include_str!("../../assets/portal.js");

/// The portal's routes (merged into the API's router).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/portal", get(pages::home))
        .route("/portal/code", post(send_code))
        .route("/portal/sign-in", post(sign_in))
        .route("/portal/sign-out", post(sign_out))
        .route(
            "/portal/confirm-address",
            get(confirm_address_form).post(confirm_address),
        )
        .route("/portal/consents", post(pages::consent))
        .route("/portal/export", post(pages::export))
        .route("/portal/requests/correction", post(pages::correction))
        .route("/portal/requests/erasure", post(pages::erasure))
        .route("/portal/requests/objection", post(pages::objection))
        .route("/portal/requests/restriction", post(pages::restriction))
        .route("/portal/access-log", get(pages::access_log))
        .route("/portal/surveys/{id}", get(surveys::page))
        .route("/portal/surveys/{id}/token", post(surveys::token))
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe::show).post(unsubscribe::unsubscribe),
        )
        .route("/portal/assets/portal.css", get(crate::web::css))
        .route("/portal/assets/portal.js", get(js))
        .route("/portal/assets/survey.js", get(survey_js))
        .layer(axum::middleware::map_response(security_headers))
}

/// The console's headers, with this origin's one script allowed (the proof checker).
async fn security_headers(res: Response) -> Response {
    crate::web::secure(
        res,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    )
}

/// The survey page's script: RFC 9474 blinding in the customer's browser.
const SURVEY_JS: &str = include_str!("../../assets/survey.js");

async fn survey_js() -> Response {
    crate::web::asset("text/javascript; charset=utf-8", SURVEY_JS)
}

async fn js() -> Response {
    crate::web::asset("text/javascript; charset=utf-8", JS)
}

fn set_cookie(name: &str, value: &str, max_age: Option<i64>) -> String {
    crate::web::set_cookie("/portal", name, value, max_age)
}

/// Whether the browser sends the Global Privacy Control signal.
fn gpc(headers: &HeaderMap) -> bool {
    headers
        .get("sec-gpc")
        .is_some_and(|v| v.as_bytes().trim_ascii() == b"1")
}

/// A signed-in customer and the CSRF token of their session.
struct Visit {
    session: PortalSession,
    csrf: String,
}

/// The signed-in customer, if any. A cookie that opens no session counts as a failed attempt
/// from its address, and a braked address gets no further.
struct SignedIn(Option<Visit>);

impl axum::extract::FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        s: &AppState,
    ) -> Result<Self, Response> {
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE).filter(|t| !t.is_empty()) else {
            return Ok(SignedIn(None));
        };
        let ip = crate::extract::client_ip(parts);
        let session =
            crate::extract::under_brake(s, ip, s.vault.portal_access().portal_session(token))
                .await
                .map_err(|p| message_page(None, p))?;
        Ok(SignedIn(session.map(|session| {
            let csrf = s.vault.portal_access().portal_csrf(&session);
            Visit { session, csrf }
        })))
    }
}

#[derive(Template)]
#[template(path = "portal/message.html")]
struct MessagePage<'a> {
    signed_in: bool,
    csrf: &'a str,
    title: &'a str,
    detail: &'a str,
}

/// A page with one message: an error (from a problem) or a confirmation.
fn message_page(visit: Option<&Visit>, p: Problem) -> Response {
    let page = MessagePage {
        signed_in: visit.is_some(),
        csrf: visit.map(|v| v.csrf.as_str()).unwrap_or(""),
        title: p.title,
        detail: &p.detail,
    };
    crate::web::problem_page(page, &p)
}

/// A page confirming what was done.
fn confirmation(visit: Option<&Visit>, title: &str, detail: &str) -> Response {
    let page = MessagePage {
        signed_in: visit.is_some(),
        csrf: visit.map(|v| v.csrf.as_str()).unwrap_or(""),
        title,
        detail,
    };
    render(page, StatusCode::OK)
}

#[derive(Template)]
#[template(path = "portal/sign_in.html")]
struct SignInPage<'a> {
    signed_in: bool,
    csrf: &'a str,
    can_send: bool,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "portal/code.html")]
struct CodePage<'a> {
    signed_in: bool,
    csrf: &'a str,
    error: Option<&'a str>,
}

/// The sign-in form, with a fresh double-submit CSRF cookie.
fn sign_in_form(s: &AppState, error: Option<&str>, status: StatusCode) -> Response {
    let csrf = fresh_csrf();
    let page = SignInPage {
        signed_in: false,
        csrf: &csrf,
        can_send: s.vault.portal_access().portal_can_send(),
        error,
    };
    with_cookies(
        render(page, status),
        &[set_cookie(CSRF_COOKIE, &csrf, None)],
    )
}

/// The code form (the CSRF cookie set with the sign-in form stays).
fn code_form(headers: &HeaderMap, error: Option<&str>, status: StatusCode) -> Response {
    let csrf = cookie(headers, CSRF_COOKIE).unwrap_or("");
    let page = CodePage {
        signed_in: false,
        csrf,
        error,
    };
    render(page, status)
}

/// Why a sign-in form (`POST /portal/code`, `/portal/sign-in`) is refused before it is read,
/// if it is: no matching CSRF cookie (`expired` is the message), or a braked address.
fn refused_sign_in(
    s: &AppState,
    ip: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    f: &std::collections::HashMap<String, String>,
    expired: &str,
) -> Option<Response> {
    let sent = f.get("csrf").map(String::as_str).unwrap_or("");
    if !double_submit_ok(headers, CSRF_COOKIE, sent) {
        return Some(sign_in_form(s, Some(expired), StatusCode::FORBIDDEN));
    }
    let ip = ip?;
    s.limits
        .check_address(ip, std::time::Instant::now())
        .err()
        .map(|d| message_page(None, Problem::auth_brake(d)))
}

async fn send_code(
    State(s): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = form(&body);
    let field = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let expired = "The form expired; please try again.";
    if let Some(res) = refused_sign_in(&s, ip, &headers, &f, expired) {
        return res;
    }
    // Every code sent counts against the address, so nobody can flood a customer's inbox.
    if let Some(ip) = ip {
        let _ = s.limits.failed(ip, std::time::Instant::now()).await;
    }
    match s
        .vault
        .portal_access()
        .portal_send_code(field("email"))
        .await
    {
        Ok(challenge) => with_cookies(
            code_form(&headers, None, StatusCode::OK),
            &[set_cookie(
                CHALLENGE_COOKIE,
                &challenge.to_string(),
                Some(15 * 60),
            )],
        ),
        Err(steward_service::ServiceError::Validation(_)) => {
            let msg = "Enter the e-mail address you gave us, like name@example.com.";
            sign_in_form(&s, Some(msg), StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => message_page(None, e.into()),
    }
}

async fn sign_in(
    State(s): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = form(&body);
    let field = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let expired = "The form expired; please ask for a new code.";
    if let Some(res) = refused_sign_in(&s, ip, &headers, &f, expired) {
        return res;
    }
    let challenge = cookie(&headers, CHALLENGE_COOKIE).and_then(|c| uuid::Uuid::try_parse(c).ok());
    let Some(challenge) = challenge else {
        let msg = "Your code request expired; please ask for a new code.";
        return sign_in_form(&s, Some(msg), StatusCode::BAD_REQUEST);
    };
    match s
        .vault
        .portal_access()
        .portal_sign_in(challenge, field("code"))
        .await
    {
        Ok((token, session)) => {
            if gpc(&headers)
                && let Err(e) = s.vault.portal_honour_gpc(&session).await
            {
                return message_page(None, e.into());
            }
            let ttl =
                (session.expires_at().millis() - steward_domain::Timestamp::now().millis()) / 1000;
            with_cookies(
                Redirect::to("/portal").into_response(),
                &[
                    set_cookie(SESSION_COOKIE, token.as_str(), Some(ttl.max(1))),
                    set_cookie(CHALLENGE_COOKIE, "", Some(0)),
                    set_cookie(CSRF_COOKIE, "", Some(0)),
                ],
            )
        }
        Err(steward_service::ServiceError::Validation(_)) => {
            if let Some(ip) = ip {
                let _ = s.limits.failed(ip, std::time::Instant::now()).await;
            }
            let msg = "That code is wrong or has expired. Check it, or start again for a new one.";
            code_form(&headers, Some(msg), StatusCode::UNAUTHORIZED)
        }
        Err(e) => message_page(None, e.into()),
    }
}

#[derive(Template)]
#[template(path = "portal/confirm_address.html")]
struct ConfirmAddressPage<'a> {
    signed_in: bool,
    csrf: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

/// The form that confirms a new e-mail address, keeping what was typed, with a fresh
/// double-submit CSRF cookie.
fn confirm_address_page(email: &str, error: Option<&str>, status: StatusCode) -> Response {
    let csrf = fresh_csrf();
    let page = ConfirmAddressPage {
        signed_in: false,
        csrf: &csrf,
        email,
        error,
    };
    with_cookies(
        render(page, status),
        &[set_cookie(CSRF_COOKIE, &csrf, None)],
    )
}

async fn confirm_address_form() -> Response {
    confirm_address_page("", None, StatusCode::OK)
}

/// Confirms a new e-mail address with the code sent to it. Wrong codes count against the
/// asking address, like wrong sign-in codes.
async fn confirm_address(
    State(s): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = form(&body);
    let field = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let sent = field("csrf");
    if !double_submit_ok(&headers, CSRF_COOKIE, sent) {
        let msg = "The form expired; please try again.";
        return confirm_address_page(field("email"), Some(msg), StatusCode::FORBIDDEN);
    }
    if let Some(ip) = ip
        && let Err(d) = s.limits.check_address(ip, std::time::Instant::now())
    {
        return message_page(None, Problem::auth_brake(d));
    }
    match s
        .vault
        .portal_access()
        .confirm_email_change(field("email"), field("code"))
        .await
    {
        Ok(()) => confirmation(
            None,
            "Your new address is confirmed",
            "From now on we use the new address, and your privacy portal signs in with it. We told both addresses of the change.",
        ),
        Err(steward_service::ServiceError::Validation(v)) => {
            if let Some(ip) = ip {
                let _ = s.limits.failed(ip, std::time::Instant::now()).await;
            }
            let msg = if v.field == "email" {
                "Enter the new address, like name@example.com."
            } else {
                "That code is wrong or has expired. Check it, or ask for the change again."
            };
            confirm_address_page(field("email"), Some(msg), StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => message_page(None, e.into()),
    }
}

/// A signed-in form's fields, if its CSRF token is the session's.
fn checked_form(visit: &Visit, body: &Bytes) -> Option<std::collections::HashMap<String, String>> {
    let f = form(body);
    f.get("csrf")
        .is_some_and(|c| same(c, &visit.csrf))
        .then_some(f)
}

/// The answer to a form that did not come from the portal.
fn refused(visit: &Visit) -> Response {
    message_page(
        Some(visit),
        Problem::forbidden("csrf", "the form did not come from this portal".into()),
    )
}

fn to_start() -> Response {
    Redirect::to("/portal").into_response()
}

async fn sign_out(State(s): State<AppState>, SignedIn(visit): SignedIn, body: Bytes) -> Response {
    let Some(visit) = visit else {
        return to_start();
    };
    if checked_form(&visit, &body).is_none() {
        return refused(&visit);
    }
    if let Err(e) = s
        .vault
        .portal_access()
        .portal_sign_out(&visit.session)
        .await
    {
        return message_page(Some(&visit), e.into());
    }
    with_cookies(to_start(), &[set_cookie(SESSION_COOKIE, "", Some(0))])
}
