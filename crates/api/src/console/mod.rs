//! The staff console: server-rendered pages under `/console`. A sign-in (`POST /console/sign-in`)
//! is the same as `POST /v1/sessions`, its session token kept in an HTTP-only, SameSite=Strict,
//! Secure cookie; every page then reads through the same vault, policy and audit log as the API.
//! Every form carries a CSRF token: before sign-in a random one doubled in a cookie, after it a
//! MAC of the session. No personal value ever goes into a URL: searches are POSTed.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use steward_service::Principal;
use zeroize::Zeroizing;

use crate::extract::ClientAddr;
use crate::web::{cookie, double_submit_ok, form, fresh_csrf, render, same};

mod analytics;
mod campaigns;
mod customer;
mod customers;
mod directory;
mod dpo;
mod edit;
mod messages;
mod notice;
mod purposes;
mod segments;
mod sharing;
mod surveys;
use crate::{AppState, Problem};

const SESSION_COOKIE: &str = "steward_session";
const CSRF_COOKIE: &str = "steward_csrf";

/// The console's routes (merged into the API's router).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(customers::home))
        .route("/console/sign-in", get(sign_in_page).post(sign_in))
        .route("/console/sign-out", post(sign_out))
        .route("/console/search", post(customers::search))
        .route("/console/directory", get(directory::show))
        .route("/console/directory/outlets", post(directory::add_outlet))
        .route("/console/directory/staff", post(directory::add_staff))
        .route(
            "/console/directory/staff/{id}/disabled",
            post(directory::set_disabled),
        )
        .route(
            "/console/directory/tokens/{id}/revoke",
            post(directory::revoke_token),
        )
        .route(
            "/console/purposes",
            get(purposes::show).post(purposes::register),
        )
        .route("/console/purposes/{key}", post(purposes::change))
        .route(
            "/console/notice",
            get(notice::show).post(notice::acknowledge),
        )
        .route("/console/notice/publish", post(notice::publish))
        .route(
            "/console/segments",
            get(segments::show).post(segments::define),
        )
        .route(
            "/console/campaigns",
            get(campaigns::show).post(campaigns::compose),
        )
        .route("/console/campaigns/{id}/send", post(campaigns::send))
        .route(
            "/console/surveys",
            get(surveys::show).post(surveys::compose),
        )
        .route("/console/surveys/{id}/send", post(surveys::send))
        .route(
            "/console/analytics",
            get(analytics::show).post(analytics::release),
        )
        .route("/console/sharing", get(sharing::show))
        .route("/console/sharing/recipients", post(sharing::register))
        .route("/console/sharing/agreements", post(sharing::record))
        .route("/console/sharing/agreements/{id}/end", post(sharing::end))
        .route("/console/dpo", get(dpo::page))
        .route("/console/dpo/requests/{id}/{action}", post(dpo::act))
        .route("/console/dpo/alerts/{id}", get(dpo::alert))
        .route(
            "/console/customers/new",
            get(edit::new_form).post(edit::create),
        )
        .route("/console/customers/{id}", get(customer::page))
        .route(
            "/console/customers/{id}/edit",
            get(edit::edit_form).post(edit::update),
        )
        .route(
            "/console/customers/{id}/break-glass",
            post(customer::break_glass),
        )
        .route(
            "/console/customers/{id}/interactions",
            post(customer::add_interaction),
        )
        .route(
            "/console/customers/{id}/purchases",
            post(customer::add_purchase),
        )
        .route(
            "/console/customers/{id}/consents",
            post(customer::record_consent),
        )
        .route("/console/customers/{id}/merge", post(customer::merge))
        .route("/console/customers/{id}/messages", post(messages::send))
        .route(
            "/console/customers/{id}/read",
            post(customer::read_with_reason),
        )
        .route("/console/assets/console.css", get(crate::web::css))
        .layer(axum::middleware::map_response(security_headers))
}

/// Headers on every console response: the console runs no script at all.
async fn security_headers(res: Response) -> Response {
    crate::web::secure(
        res,
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    )
}

fn set_cookie(name: &str, value: &str, max_age: Option<i64>) -> String {
    crate::web::set_cookie("/console", name, value, max_age)
}

/// A signed-in staff member and the CSRF token of their session.
struct Session {
    principal: Principal,
    csrf: String,
}

impl Session {
    /// What the header says about who is signed in: roles, never a name.
    fn label(&self) -> String {
        let roles: Vec<&str> = self.principal.roles().iter().map(|r| r.as_str()).collect();
        format!("Signed in ({})", roles.join(", "))
    }
}

/// The signed-in staff member, if any, from the session cookie: the address brake and the
/// token's rate limit apply as to a bearer token, and a cookie that is no session counts as a
/// failed attempt from its address.
struct SignedIn(Option<Session>);

impl axum::extract::FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        s: &AppState,
    ) -> Result<Self, Response> {
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE).filter(|t| !t.is_empty()) else {
            return Ok(SignedIn(None));
        };
        let principal = crate::extract::authenticate(s, token, crate::extract::client_ip(parts))
            .await
            .map_err(|p| error_page(None, p))?;
        // The console is the staff's: a recipient's token is no session here (it reads through
        // `/v1` alone).
        Ok(SignedIn(principal.filter(|p| p.recipient().is_none()).map(
            |principal| {
                let csrf = s.vault.identity().session_csrf(&principal);
                Session { principal, csrf }
            },
        )))
    }
}

fn to_sign_in() -> Response {
    Redirect::to("/console/sign-in").into_response()
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    signed_in: Option<String>,
    csrf: &'a str,
    title: &'a str,
    detail: &'a str,
}

fn error_page(session: Option<&Session>, p: Problem) -> Response {
    let page = ErrorPage {
        signed_in: session.map(Session::label),
        csrf: session.map(|s| s.csrf.as_str()).unwrap_or(""),
        title: p.title,
        detail: &p.detail,
    };
    crate::web::problem_page(page, &p)
}

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage<'a> {
    signed_in: Option<String>,
    csrf: &'a str,
    error: Option<&'a str>,
}

fn sign_in_form(error: Option<&str>, status: StatusCode) -> Response {
    let csrf = fresh_csrf();
    let mut res = render(
        SignInPage {
            signed_in: None,
            csrf: &csrf,
            error,
        },
        status,
    );
    if let Ok(v) = HeaderValue::from_str(&set_cookie(CSRF_COOKIE, &csrf, None)) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

async fn sign_in_page() -> Response {
    sign_in_form(None, StatusCode::OK)
}

async fn sign_in(
    State(s): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = form(&body);
    let field = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    if !double_submit_ok(&headers, CSRF_COOKIE, field("csrf")) {
        return sign_in_form(
            Some("The form expired; please sign in again."),
            StatusCode::FORBIDDEN,
        );
    }
    let password = Zeroizing::new(field("password").to_owned());
    match crate::routes::sessions::limited_sign_in(&s, ip, field("login"), password).await {
        Ok(Some(session)) => {
            let ttl =
                (session.expires_at.millis() - steward_domain::Timestamp::now().millis()) / 1000;
            let mut res = Redirect::to("/console").into_response();
            let h = res.headers_mut();
            for c in [
                set_cookie(SESSION_COOKIE, session.token.as_str(), Some(ttl.max(1))),
                set_cookie(CSRF_COOKIE, "", Some(0)),
            ] {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    h.append(header::SET_COOKIE, v);
                }
            }
            res
        }
        Ok(None) => sign_in_form(
            Some("The login or the password is wrong."),
            StatusCode::UNAUTHORIZED,
        ),
        Err(p) => error_page(None, p),
    }
}

/// Checks a signed-in form's CSRF token.
fn csrf_ok(session: &Session, body: &std::collections::HashMap<String, String>) -> bool {
    body.get("csrf").is_some_and(|c| same(c, &session.csrf))
}

fn refused_form(session: &Session) -> Response {
    error_page(
        Some(session),
        Problem::forbidden("csrf", "the form did not come from this console".into()),
    )
}

/// A parsed urlencoded form.
type Form = std::collections::HashMap<String, String>;

/// The value of the query parameter `name` of a page's URL (ids, purpose keys, cursors, dates:
/// never a personal value), trimmed; `None` if absent.
/// The purposes `session`'s roles may declare, as (key, title) for a form's choice.
fn declarable_purposes(s: &AppState, session: &Session) -> Vec<(String, String)> {
    s.vault
        .records()
        .declarable_purposes(&session.principal)
        .into_iter()
        .map(|purpose| (purpose.key.clone(), crate::display::words(&purpose.key)))
        .collect()
}

fn query_param(uri: &axum::http::Uri, name: &str) -> Option<String> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_owned())
}

/// What every console form starts with: a signed-in session (else the sign-in page) and a form
/// token that matches it (else a refusal); then the parsed form.
// The error is the response to send, built once per request: boxing it would only add a step.
#[allow(clippy::result_large_err)]
fn signed_form(session: Option<Session>, body: &Bytes) -> Result<(Session, Form), Response> {
    let Some(session) = session else {
        return Err(to_sign_in());
    };
    let f = form(body);
    if !csrf_ok(&session, &f) {
        return Err(refused_form(&session));
    }
    Ok((session, f))
}

async fn sign_out(State(s): State<AppState>, SignedIn(session): SignedIn, body: Bytes) -> Response {
    let Some(session) = session else {
        return to_sign_in();
    };
    if !csrf_ok(&session, &form(&body)) {
        return refused_form(&session);
    }
    if let Err(e) = s.vault.identity().sign_out(&session.principal).await {
        return error_page(Some(&session), e.into());
    }
    let mut res = to_sign_in();
    if let Ok(v) = HeaderValue::from_str(&set_cookie(SESSION_COOKIE, "", Some(0))) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}
