//! Registering a customer and correcting one from the console: the same validation and
//! messages as the API, the form keeping what was typed on any error, a duplicate named with a
//! way to open the existing customer (or to save anyway), and a confirmation after saving.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use steward_domain::{CustomerId, CustomerInput, CustomerPatch, ProfileField};
use steward_service::{Access, Actor};

use super::{Session, SignedIn, error_page, query_param, render, signed_form, to_sign_in};
use crate::profile_form::{self, Input};
use crate::{AppState, Problem};

/// A duplicate found on saving.
struct Duplicate {
    message: String,
    /// The existing customer's page, if the reader may work on them.
    link: Option<String>,
}

#[derive(Template)]
#[template(path = "console/profile_form.html")]
struct ProfileFormPage<'a> {
    signed_in: Option<String>,
    csrf: &'a str,
    title: &'static str,
    action: String,
    submit: &'static str,
    back: String,
    purpose: String,
    editing: bool,
    inputs: Vec<Input>,
    /// Outlets to register at, as (id, name); empty on an edit.
    outlets: Vec<(String, String)>,
    outlet: String,
    error: Option<String>,
    duplicate: Option<Duplicate>,
}

/// The purpose a form returns to the customer's page under (`service` unless the form says).
fn purpose_of(f: &std::collections::HashMap<String, String>) -> String {
    f.get("purpose")
        .filter(|p| !p.is_empty())
        .cloned()
        .unwrap_or_else(|| "service".into())
}

/// A validation or service error as a sentence naming the field by its label.
fn sentence(p: &Problem) -> String {
    let label = p
        .field
        .as_deref()
        .and_then(|f| {
            let f = f.strip_prefix("address.").map_or(f, |_| "address");
            ProfileField::parse(f)
        })
        .map(ProfileField::label);
    match label {
        Some(l) => format!(
            "{l}: {}",
            p.detail.split_once(": ").map_or(&*p.detail, |d| d.1)
        ),
        None => p.detail.clone(),
    }
}

async fn outlets(s: &AppState, session: &Session) -> Vec<(String, String)> {
    s.vault
        .directory()
        .registration_outlets(&session.principal)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|o| (o.id.to_string(), o.name))
        .collect()
}

/// The registration form, empty; offered to whom the policy lets register customers.
pub(super) async fn new_form(State(s): State<AppState>, SignedIn(session): SignedIn) -> Response {
    let Some(session) = session else {
        return to_sign_in();
    };
    if !s
        .vault
        .records()
        .may_create_customer(&session.principal)
        .await
    {
        return error_page(
            Some(&session),
            Problem::forbidden(
                "Authorization",
                "your role does not register customers".into(),
            ),
        );
    }
    let outlet = session
        .principal
        .outlets()
        .first()
        .map(ToString::to_string)
        .unwrap_or_default();
    let page = ProfileFormPage {
        signed_in: Some(session.label()),
        csrf: &session.csrf,
        title: "New customer",
        action: "/console/customers/new".into(),
        submit: "Register the customer",
        back: "/console".into(),
        purpose: "service".into(),
        editing: false,
        inputs: profile_form::typed(&Default::default()),
        outlets: outlets(&s, &session).await,
        outlet,
        error: None,
        duplicate: None,
    };
    render(page, StatusCode::OK)
}

/// Registers a customer from the form.
pub(super) async fn create(
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
        .may_create_customer(&session.principal)
        .await
    {
        return error_page(
            Some(&session),
            Problem::forbidden(
                "Authorization",
                "your role does not register customers".into(),
            ),
        );
    }
    // A registry key (safe in the redirect), checked before anything is written.
    let purpose = match s.vault.purposes().get("purpose", &purpose_of(&f)) {
        Ok(p) => p.key.clone(),
        Err(e) => return error_page(Some(&session), e.into()),
    };
    let mut json = profile_form::typed_json(&f);
    if let Some(o) = f.get("outlet_id").filter(|o| !o.is_empty()) {
        json.insert("outlet_id".into(), serde_json::Value::String(o.clone()));
    }
    let allow = f.get("allow_duplicate").map(String::as_str) == Some("yes");
    let result = match serde_json::from_value::<CustomerInput>(serde_json::Value::Object(json)) {
        Err(_) => Err(Problem::invalid_parameter(
            "outlet_id",
            "choose an outlet from the list",
        )),
        Ok(input) => match input.validate() {
            Err(e) => Err(e.into()),
            Ok(new) => {
                let actor = Actor::Principal(&session.principal);
                let created = if allow {
                    s.vault
                        .records()
                        .create_customer_allowing_duplicate(actor, &new)
                        .await
                } else {
                    s.vault.records().create_customer(actor, &new).await
                };
                created.map_err(Problem::from)
            }
        },
    };
    match result {
        Ok(id) => saved(id, &purpose, "created"),
        Err(p) if p.status == 403 => error_page(Some(&session), p),
        Err(p) => {
            let duplicate = duplicate_of(&p, &purpose);
            let page = ProfileFormPage {
                signed_in: Some(session.label()),
                csrf: &session.csrf,
                title: "New customer",
                action: "/console/customers/new".into(),
                submit: "Register the customer",
                back: "/console".into(),
                error: duplicate.is_none().then(|| sentence(&p)),
                duplicate,
                purpose,
                editing: false,
                inputs: profile_form::typed(&f),
                outlets: outlets(&s, &session).await,
                outlet: f.get("outlet_id").cloned().unwrap_or_default(),
            };
            render(page, status_of(&p))
        }
    }
}

/// A duplicate problem as the form shows it.
fn duplicate_of(p: &Problem, purpose: &str) -> Option<Duplicate> {
    if p.kind != "/problems/duplicate" {
        return None;
    }
    let what = match p.field.as_deref() {
        Some("phone") => "phone number",
        _ => "e-mail address",
    };
    Some(Duplicate {
        message: format!("Another customer already has this {what}: nothing was saved."),
        link: p
            .existing_id
            .as_ref()
            .map(|id| format!("/console/customers/{id}?purpose={purpose}")),
    })
}

fn status_of(p: &Problem) -> StatusCode {
    StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST)
}

/// After saving: the customer's page, with a confirmation (Post/Redirect/Get).
fn saved(id: CustomerId, purpose: &str, what: &str) -> Response {
    Redirect::to(&format!(
        "/console/customers/{id}?purpose={purpose}&saved={what}"
    ))
    .into_response()
}

/// The correction form, filled with the customer as the reader may see them.
pub(super) async fn edit_form(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    uri: axum::http::Uri,
) -> Response {
    let Some(session) = session else {
        return to_sign_in();
    };
    let Ok(id) = uuid::Uuid::try_parse(&id).map(CustomerId) else {
        return error_page(Some(&session), Problem::not_found("customer"));
    };
    let purpose_key = query_param(&uri, "purpose").unwrap_or_else(|| "service".into());
    let purpose = match s.vault.purposes().get("purpose", &purpose_key) {
        Ok(p) => p,
        Err(e) => return error_page(Some(&session), e.into()),
    };
    let may = s
        .vault
        .records()
        .customer_actions(&session.principal, id)
        .await
        .unwrap_or_default();
    if !may.update {
        return error_page(
            Some(&session),
            Problem::forbidden(
                "Authorization",
                "you may not change this customer's details".into(),
            ),
        );
    }
    let access = Access {
        principal: &session.principal,
        purpose: &purpose,
        reason: None,
        break_glass: false,
    };
    let view = match s.vault.records().read_customer(&access, id).await {
        Ok(v) => v,
        Err(e) => return error_page(Some(&session), e.into()),
    };
    let page = edit_page(
        &session,
        id,
        purpose.key.clone(),
        profile_form::current(&view),
        None,
    );
    render(page, StatusCode::OK)
}

fn edit_page<'a>(
    session: &'a Session,
    id: CustomerId,
    purpose: String,
    inputs: Vec<Input>,
    error: Option<String>,
) -> ProfileFormPage<'a> {
    ProfileFormPage {
        signed_in: Some(session.label()),
        csrf: &session.csrf,
        title: "Correct the customer's details",
        action: format!("/console/customers/{id}/edit"),
        submit: "Save the changes",
        back: format!("/console/customers/{id}?purpose={purpose}"),
        purpose,
        editing: true,
        inputs,
        outlets: Vec::new(),
        outlet: String::new(),
        error,
        duplicate: None,
    }
}

/// Saves a correction: only the fields changed on the form, as a merge patch.
pub(super) async fn update(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (session, f) = match signed_form(session, &body) {
        Ok(s) => s,
        Err(res) => return res,
    };
    let Ok(id) = uuid::Uuid::try_parse(&id).map(CustomerId) else {
        return error_page(Some(&session), Problem::not_found("customer"));
    };
    // A registry key (safe in the redirect), checked before anything is written.
    let purpose = match s.vault.purposes().get("purpose", &purpose_of(&f)) {
        Ok(p) => p.key.clone(),
        Err(e) => return error_page(Some(&session), e.into()),
    };
    let patch = profile_form::patch_json(&f);
    if patch.is_empty() {
        return saved(id, &purpose, "unchanged");
    }
    let result = match serde_json::from_value::<CustomerPatch>(serde_json::Value::Object(patch)) {
        Err(_) => Err(Problem::invalid_parameter(
            "name",
            "a value could not be read",
        )),
        Ok(patch) => s
            .vault
            .update_customer(Actor::Principal(&session.principal), id, &patch)
            .await
            .map_err(Problem::from),
    };
    match result {
        Ok(u) if !u.pending.is_empty() => saved(id, &purpose, "pending"),
        Ok(_) => saved(id, &purpose, "updated"),
        Err(p) if p.status == 403 || p.status == 404 => error_page(Some(&session), p),
        Err(p) => {
            let page = edit_page(
                &session,
                id,
                purpose,
                profile_form::typed(&f),
                Some(sentence(&p)),
            );
            render(page, status_of(&p))
        }
    }
}
