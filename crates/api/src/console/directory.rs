//! The console's directory: outlets, staff (roles, outlets, disable) and the API tokens and
//! sign-in sessions — for the admin, and readable by whom the policy lets read the directory.
//! Every part and form is shown only when the policy allows it; the services decide again.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use steward_domain::{OutletId, Role, StaffId, TokenId};
use steward_service::{Actor, DirectoryActions};

use super::{Session, SignedIn, error_page, query_param, render, signed_form, to_sign_in};
use crate::display::{when, words};
use crate::web::form_all;
use crate::{AppState, Problem};

struct StaffRow {
    id: String,
    name: String,
    roles: String,
    outlets: String,
    disabled: bool,
}

struct TokenRow {
    id: String,
    name: String,
    owner: String,
    created: String,
    last_used: String,
    state: &'static str,
}

#[derive(Template)]
#[template(path = "console/directory.html")]
struct DirectoryPage<'a> {
    signed_in: Option<String>,
    csrf: &'a str,
    notice: Option<&'static str>,
    error: Option<String>,
    may: DirectoryActions,
    outlets: Vec<(String, String)>,
    staff: Vec<StaffRow>,
    tokens: Vec<TokenRow>,
    roles: Vec<(&'static str, String)>,
    /// What was typed in the staff form, kept on error.
    typed_name: String,
}

async fn page(
    s: &AppState,
    session: &Session,
    notice: Option<&'static str>,
    error: Option<(String, String)>,
) -> Response {
    let may = s
        .vault
        .records()
        .directory_actions(&session.principal)
        .await;
    if !may.read && !may.tokens {
        return error_page(
            Some(session),
            Problem::forbidden(
                "Authorization",
                "your role does not see the directory".into(),
            ),
        );
    }
    let actor = Actor::Principal(&session.principal);
    let outlets = if may.read {
        match s.vault.directory().list_outlets(actor).await {
            Ok(o) => o,
            Err(e) => return error_page(Some(session), e.into()),
        }
    } else {
        Vec::new()
    };
    let name_of = |id: &OutletId| {
        outlets
            .iter()
            .find(|o| o.id == *id)
            .map_or_else(|| id.to_string(), |o| o.name.clone())
    };
    let staff = if may.read {
        match s.vault.directory().list_staff(actor).await {
            Ok(list) => list
                .into_iter()
                .map(|m| StaffRow {
                    id: m.id.to_string(),
                    roles: m
                        .roles
                        .iter()
                        .map(|r| words(r.as_str()))
                        .collect::<Vec<_>>()
                        .join(", "),
                    outlets: m
                        .outlet_ids
                        .iter()
                        .map(name_of)
                        .collect::<Vec<_>>()
                        .join(", "),
                    name: m.name,
                    disabled: m.disabled,
                })
                .collect(),
            Err(e) => return error_page(Some(session), e.into()),
        }
    } else {
        Vec::new()
    };
    let tokens = if may.tokens {
        match s.vault.identity().list_tokens(actor).await {
            Ok(list) => list
                .into_iter()
                .map(|t| TokenRow {
                    id: t.id.to_string(),
                    name: t.name,
                    owner: t.owner,
                    created: when(t.created_at),
                    last_used: t.last_used_at.map(when).unwrap_or_else(|| "never".into()),
                    state: t.state,
                })
                .collect(),
            Err(e) => return error_page(Some(session), e.into()),
        }
    } else {
        Vec::new()
    };
    let (error, typed_name) = match error {
        Some((e, typed)) => (Some(e), typed),
        None => (None, String::new()),
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    render(
        DirectoryPage {
            signed_in: Some(session.label()),
            csrf: &session.csrf,
            notice,
            error,
            may,
            outlets: outlets
                .iter()
                .map(|o| (o.id.to_string(), o.name.clone()))
                .collect(),
            staff,
            tokens,
            roles: Role::ALL
                .iter()
                .map(|r| (r.as_str(), words(r.as_str())))
                .collect(),
            typed_name,
        },
        status,
    )
}

/// `GET /console/directory`.
pub(super) async fn show(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    uri: axum::http::Uri,
) -> Response {
    let Some(session) = session else {
        return to_sign_in();
    };
    let done = query_param(&uri, "done");
    let notice = match done.as_deref() {
        Some("outlet") => Some("The outlet is added."),
        Some("staff") => {
            Some("The staff member is added. Set their password with `steward staff password`.")
        }
        Some("disabled") => {
            Some("The staff member is disabled: their tokens and sessions are revoked.")
        }
        Some("enabled") => Some("The staff member is enabled again (old tokens stay revoked)."),
        Some("revoked") => Some("The token is revoked."),
        _ => None,
    };
    page(&s, &session, notice, None).await
}

fn done(what: &str) -> Response {
    Redirect::to(&format!("/console/directory?done={what}")).into_response()
}

/// Adds an outlet.
pub(super) async fn add_outlet(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    body: Bytes,
) -> Response {
    let (session, f) = match signed_form(session, &body) {
        Ok(s) => s,
        Err(res) => return res,
    };
    let name = f.get("name").map(|n| n.trim()).unwrap_or("");
    let country = f.get("country").map(|c| c.trim()).filter(|c| !c.is_empty());
    match s
        .vault
        .directory()
        .create_outlet_in(Actor::Principal(&session.principal), name, country)
        .await
    {
        Ok(_) => done("outlet"),
        Err(e) => {
            let p = Problem::from(e);
            if p.status == 403 {
                return error_page(Some(&session), p);
            }
            page(
                &s,
                &session,
                None,
                Some((format!("Outlet: {}", p.detail), String::new())),
            )
            .await
        }
    }
}

/// Adds a staff member with roles and outlets (checkboxes).
pub(super) async fn add_staff(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
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
        .manage
    {
        return error_page(
            Some(&session),
            Problem::forbidden(
                "Authorization",
                "your role does not change the directory".into(),
            ),
        );
    }
    let all = form_all(&body);
    let name = f
        .get("name")
        .map(|n| n.trim().to_owned())
        .unwrap_or_default();
    let roles: Vec<Role> = all
        .iter()
        .filter(|(k, _)| k == "roles")
        .filter_map(|(_, v)| Role::ALL.iter().copied().find(|r| r.as_str() == v))
        .collect();
    let outlets: Vec<OutletId> = all
        .iter()
        .filter(|(k, _)| k == "outlet_ids")
        .filter_map(|(_, v)| uuid::Uuid::try_parse(v).ok().map(OutletId))
        .collect();
    if roles.is_empty() {
        return page(
            &s,
            &session,
            None,
            Some(("Roles: choose at least one.".into(), name)),
        )
        .await;
    }
    match s
        .vault
        .directory()
        .create_staff(
            Actor::Principal(&session.principal),
            &name,
            &roles,
            &outlets,
        )
        .await
    {
        Ok(_) => done("staff"),
        Err(e) => {
            let p = Problem::from(e);
            if p.status == 403 {
                return error_page(Some(&session), p);
            }
            page(&s, &session, None, Some((p.detail, name))).await
        }
    }
}

/// Disables or enables a staff member.
pub(super) async fn set_disabled(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (session, f) = match signed_form(session, &body) {
        Ok(s) => s,
        Err(res) => return res,
    };
    let Ok(id) = uuid::Uuid::try_parse(&id).map(StaffId) else {
        return error_page(Some(&session), Problem::not_found("staff member"));
    };
    let disable = f.get("disabled").map(String::as_str) == Some("true");
    match s
        .vault
        .identity()
        .set_staff_disabled(Actor::Principal(&session.principal), id, disable)
        .await
    {
        Ok(()) => done(if disable { "disabled" } else { "enabled" }),
        Err(e) => error_page(Some(&session), e.into()),
    }
}

/// Revokes a token or sign-in session.
pub(super) async fn revoke_token(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (session, _) = match signed_form(session, &body) {
        Ok(s) => s,
        Err(res) => return res,
    };
    let Ok(id) = uuid::Uuid::try_parse(&id).map(TokenId) else {
        return error_page(Some(&session), Problem::not_found("token"));
    };
    match s
        .vault
        .identity()
        .revoke_token(Actor::Principal(&session.principal), id)
        .await
    {
        Ok(()) => done("revoked"),
        Err(e) => error_page(Some(&session), e.into()),
    }
}
