//! The console's purposes: every purpose with its title, lawful basis, categories, retention and
//! notice, for every staff member; the DPO's editor (register, change) over the same services as
//! `POST /v1/purposes` and `PATCH /v1/purposes/{key}`.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};
use steward_domain::{DataCategory, PurposeInput, PurposePatch, Role};

use super::{Session, SignedIn, error_page, query_param, render, signed_form, to_sign_in};
use crate::display::words;
use crate::web::form_all;
use crate::{AppState, Problem};

/// A purpose as the page shows it.
struct Row {
    key: String,
    title: String,
    basis: String,
    data_use: String,
    categories: Vec<&'static str>,
    retention_days: i64,
    notice: String,
    version: i64,
    roles: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "console/purposes.html")]
struct PurposesPage<'a> {
    signed_in: Option<String>,
    csrf: &'a str,
    notice: Option<String>,
    error: Option<String>,
    may_edit: bool,
    purposes: Vec<Row>,
    categories: Vec<&'static str>,
    roles: Vec<(&'static str, String)>,
    bases: [(&'static str, &'static str); 4],
    /// What was typed in the new purpose's form, kept on error.
    typed: std::collections::HashMap<String, String>,
}

const BASES: [(&str, &str); 4] = [
    ("consent", "Consent"),
    ("contract", "Contract"),
    ("legal_obligation", "Legal obligation"),
    ("legitimate_interest", "Legitimate interest"),
];

async fn page(
    s: &AppState,
    session: &Session,
    notice: Option<String>,
    error: Option<String>,
    typed: std::collections::HashMap<String, String>,
) -> Response {
    let may_edit = s
        .vault
        .records()
        .directory_actions(&session.principal)
        .await
        .purposes;
    let purposes = s
        .vault
        .purposes()
        .all()
        .into_iter()
        .map(|p| Row {
            title: words(&p.key),
            basis: serde_json::to_value(p.lawful_basis)
                .ok()
                .and_then(|v| v.as_str().map(words))
                .unwrap_or_default(),
            data_use: p.data_use.clone(),
            categories: p.categories.iter().map(|c| c.as_str()).collect(),
            retention_days: p.retention_days,
            notice: p.notice_text.clone(),
            version: p.notice_version,
            roles: p.roles.iter().map(|r| r.as_str()).collect(),
            key: p.key,
        })
        .collect();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    render(
        PurposesPage {
            signed_in: Some(session.label()),
            csrf: &session.csrf,
            notice,
            error,
            may_edit,
            purposes,
            categories: DataCategory::ALL.iter().map(|c| c.as_str()).collect(),
            roles: Role::ALL
                .iter()
                .map(|r| (r.as_str(), words(r.as_str())))
                .collect(),
            bases: BASES,
            typed,
        },
        status,
    )
}

/// `GET /console/purposes`.
pub(super) async fn show(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    uri: axum::http::Uri,
) -> Response {
    let Some(session) = session else {
        return to_sign_in();
    };
    let saved = query_param(&uri, "saved").map(|v| {
        format!(
            "“{}” is saved; customers see the new notice version.",
            words(&v)
        )
    });
    page(&s, &session, saved, None, Default::default()).await
}

/// The values of a repeated field (checkboxes).
fn all_of(all: &[(String, String)], name: &str) -> Vec<Value> {
    all.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| Value::String(v.clone()))
        .collect()
}

/// A problem as a sentence for the form.
pub(super) fn sentence(p: &Problem) -> String {
    match p.field.as_deref() {
        Some(f) => format!(
            "{}: {}",
            words(f),
            p.detail.split_once(": ").map_or(&*p.detail, |d| d.1)
        ),
        None => p.detail.clone(),
    }
}

/// Registers a purpose from the form.
pub(super) async fn register(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    body: Bytes,
) -> Response {
    let (session, f) = match signed_form(session, &body) {
        Ok(s) => s,
        Err(res) => return res,
    };
    // Refused before the input is read: a caller who may not register learns nothing of it.
    if !s
        .vault
        .records()
        .directory_actions(&session.principal)
        .await
        .purposes
    {
        return error_page(
            Some(&session),
            Problem::forbidden("Authorization", "only the DPO registers purposes".into()),
        );
    }
    let all = form_all(&body);
    let get = |k: &str| f.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let body = json!({
        "key": get("key"),
        "lawful_basis": get("lawful_basis"),
        "data_use": get("data_use"),
        "categories": all_of(&all, "categories"),
        "retention_days": get("retention_days").parse::<i64>().unwrap_or(0),
        "notice_text": get("notice_text"),
        "roles": all_of(&all, "roles"),
    });
    let result = match serde_json::from_value::<PurposeInput>(body) {
        Err(_) => Err(Problem::invalid_parameter(
            "lawful_basis",
            "choose a lawful basis",
        )),
        Ok(input) => s
            .vault
            .purposes()
            .register(&session.principal, input)
            .await
            .map_err(Problem::from),
    };
    match result {
        Ok(p) => Redirect::to(&format!("/console/purposes?saved={}", p.key)).into_response(),
        Err(p) if p.status == 403 => error_page(Some(&session), p),
        Err(p) => page(&s, &session, None, Some(sentence(&p)), f).await,
    }
}

/// Changes a purpose's notice, retention, categories and roles from its form.
pub(super) async fn change(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let (session, f) = match signed_form(session, &body) {
        Ok(s) => s,
        Err(res) => return res,
    };
    if !s
        .vault
        .records()
        .directory_actions(&session.principal)
        .await
        .purposes
    {
        return error_page(
            Some(&session),
            Problem::forbidden("Authorization", "only the DPO changes purposes".into()),
        );
    }
    let all = form_all(&body);
    let get = |k: &str| f.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let patch = json!({
        "notice_text": get("notice_text"),
        "retention_days": get("retention_days").parse::<i64>().unwrap_or(0),
        "categories": all_of(&all, "categories"),
        "roles": all_of(&all, "roles"),
    });
    let result = match serde_json::from_value::<PurposePatch>(patch) {
        Err(_) => Err(Problem::invalid_parameter(
            "categories",
            "choose from the list",
        )),
        Ok(patch) => s
            .vault
            .purposes()
            .change(&session.principal, &key, &patch)
            .await
            .map_err(Problem::from),
    };
    match result {
        Ok(p) => Redirect::to(&format!("/console/purposes?saved={}", p.key)).into_response(),
        Err(p) if p.status == 403 || p.status == 404 => error_page(Some(&session), p),
        Err(p) => {
            page(
                &s,
                &session,
                None,
                Some(format!("{}: {}", words(&key), sentence(&p))),
                Default::default(),
            )
            .await
        }
    }
}
