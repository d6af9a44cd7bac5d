//! What the two server-rendered faces (the staff console and the customer portal) share:
//! cookies, urlencoded forms, CSRF values, rendering and security headers.

use askama::Template;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use subtle::ConstantTimeEq;

/// The faces' stylesheet, embedded: no CDN, nothing fetched at run time.
pub(crate) const CSS: &str = include_str!("../assets/console.css");

/// Sets the headers every page carries: the given Content-Security-Policy (own origin only, no
/// framing), no referrer, no sniffing, no caching of pages holding personal data.
pub(crate) fn secure(mut res: Response, csp: &'static str) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

/// The stylesheet (both faces serve it).
pub(crate) async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

/// An embedded asset, cacheable for an hour.
pub(crate) fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// The value of cookie `name` (a small parser: `a=b; c=d`).
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HTTP-only, Secure, SameSite=Strict, under `path`.
pub(crate) fn set_cookie(path: &str, name: &str, value: &str, max_age: Option<i64>) -> String {
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    format!("{name}={value}; Path={path}; HttpOnly; Secure; SameSite=Strict{age}")
}

/// Appends `Set-Cookie` headers to a response.
pub(crate) fn with_cookies(mut res: Response, cookies: &[String]) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

/// An urlencoded form body.
pub(crate) fn form(body: &Bytes) -> std::collections::HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// A form as parsed, from its pairs (for tests).
#[cfg(test)]
pub(crate) fn form_of(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A urlencoded form with every value of a repeated field (checkboxes), in order.
pub(crate) fn form_all(body: &Bytes) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// Constant-time string equality.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Renders a template with a status.
pub(crate) fn render(t: impl Template, status: StatusCode) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A page answering a problem: its status, and `Retry-After` when the problem says when.
pub(crate) fn problem_page(t: impl Template, p: &crate::Problem) -> Response {
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut res = render(t, status);
    if let Some(secs) = p.retry_after {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}

/// A fresh random CSRF value for a form shown before sign-in (doubled in a cookie).
pub(crate) fn fresh_csrf() -> String {
    let mut b = [0u8; 16];
    // A failed random source leaves the form unusable (an empty value never passes the check),
    // never guessable.
    if getrandom::fill(&mut b).is_err() {
        return String::new();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Whether a pre-sign-in form's CSRF value matches its cookie.
pub(crate) fn double_submit_ok(headers: &HeaderMap, cookie_name: &str, sent: &str) -> bool {
    let expected = cookie(headers, cookie_name).unwrap_or("");
    !expected.is_empty() && same(expected, sent)
}
