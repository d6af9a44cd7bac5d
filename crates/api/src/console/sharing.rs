//! The DPO's sharing pages (issue 22): recipients, their agreements with expiry warnings, and
//! the delivery of the notifications that follow changes to them; over the same services as
//! `/v1/recipients`, `/v1/agreements` and `/v1/notifications`.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use steward_domain::sharing::{AgreementInput, Identity, RecipientInput, RecipientKind};
use steward_domain::{DataCategory, LawfulBasis, Timestamp};
use steward_service::sharing::AgreementStatus;

use super::{Session, SignedIn, error_page, query_param, render, signed_form, to_sign_in};
use crate::display::{when, words};
use crate::web::form_all;
use crate::{AppState, Problem};

/// An agreement as the page shows it.
struct AgreementRow {
    id: String,
    version: i64,
    purposes: String,
    categories: String,
    basis: String,
    identity: &'static str,
    from: String,
    until: String,
    status: &'static str,
    expires_soon: bool,
    may_end: bool,
}

/// A recipient with its agreements.
struct RecipientRow {
    name: String,
    kind: &'static str,
    country: String,
    contact: String,
    webhook_url: String,
    agreements: Vec<AgreementRow>,
}

/// A notification as the page shows it.
struct NotificationRow {
    at: String,
    recipient: String,
    change: String,
    customer: String,
    status: String,
    attempts: i64,
    detail: String,
}

#[derive(Template)]
#[template(path = "console/sharing.html")]
struct SharingPage<'a> {
    signed_in: Option<String>,
    csrf: &'a str,
    notice: Option<String>,
    error: Option<String>,
    recipients: Vec<RecipientRow>,
    /// (id, name) for the agreement form.
    choices: Vec<(String, String)>,
    purposes: Vec<(String, String)>,
    categories: Vec<(&'static str, &'static str)>,
    bases: [(&'static str, &'static str); 4],
    notifications: Vec<NotificationRow>,
    expiring: usize,
    /// What was typed, kept on error.
    typed: HashMap<String, String>,
    /// The boxes ticked, kept on error.
    ticked: Vec<String>,
}

impl SharingPage<'_> {
    /// Whether a box was ticked in the form being shown again.
    fn is_ticked(&self, value: &str) -> bool {
        self.ticked.iter().any(|t| t == value)
    }
}

const BASES: [(&str, &str); 4] = [
    ("contract", "Contract"),
    ("consent", "Consent"),
    ("legal_obligation", "Legal obligation"),
    ("legitimate_interest", "Legitimate interest"),
];

fn kind_words(k: RecipientKind) -> &'static str {
    match k {
        RecipientKind::Processor => "Processor",
        RecipientKind::ThirdParty => "Third party",
    }
}

fn status_words(s: AgreementStatus) -> &'static str {
    match s {
        AgreementStatus::Scheduled => "Not yet in force",
        AgreementStatus::InForce => "In force",
        AgreementStatus::Expired => "Expired",
        AgreementStatus::Ended => "Ended",
    }
}

async fn page(
    s: &AppState,
    session: &Session,
    notice: Option<String>,
    error: Option<String>,
    typed: Vec<(String, String)>,
) -> Response {
    let p = &session.principal;
    let (recipients, agreements, notifications) = match (
        s.vault.sharing().recipients(p).await,
        s.vault.sharing().agreements(p, None).await,
        s.vault.webhooks().notifications(p, None, 100).await,
    ) {
        (Ok(r), Ok(a), Ok(n)) => (r, a, n),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return error_page(Some(session), e.into()),
    };
    let name_of = |id: steward_domain::RecipientId| {
        recipients
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.name.clone())
            .unwrap_or_default()
    };
    let expiring = agreements.iter().filter(|a| a.expires_soon).count();
    let rows = recipients
        .iter()
        .map(|r| RecipientRow {
            name: r.name.clone(),
            kind: kind_words(r.kind),
            country: r.country.clone(),
            contact: r.contact.clone().unwrap_or_default(),
            webhook_url: r.webhook_url.clone(),
            agreements: agreements
                .iter()
                .filter(|a| a.recipient_id == r.id)
                .map(|a| AgreementRow {
                    id: a.id.to_string(),
                    version: a.version,
                    purposes: a
                        .purposes
                        .iter()
                        .map(|k| words(k))
                        .collect::<Vec<_>>()
                        .join(", "),
                    categories: a
                        .categories
                        .iter()
                        .map(|c| c.label())
                        .collect::<Vec<_>>()
                        .join(", "),
                    basis: serde_json::to_value(a.lawful_basis)
                        .ok()
                        .and_then(|v| v.as_str().map(words))
                        .unwrap_or_default(),
                    identity: match a.identity {
                        Identity::Identified => "Identified",
                        Identity::Pseudonymous => "Pseudonyms only",
                    },
                    from: when(a.starts_at),
                    until: when(a.ended_at.unwrap_or(a.expires_at)),
                    status: status_words(a.status),
                    expires_soon: a.expires_soon,
                    may_end: matches!(
                        a.status,
                        AgreementStatus::InForce | AgreementStatus::Scheduled
                    ),
                })
                .collect(),
        })
        .collect();
    let notifications = notifications
        .into_iter()
        .map(|n| NotificationRow {
            at: when(n.created_at),
            recipient: name_of(n.recipient_id),
            change: words(&n.change.replace('.', " ")),
            customer: n.customer,
            detail: match (n.status.as_str(), &n.last_error, n.next_attempt_at) {
                ("delivered", _, _) => n.delivered_at.map(when).unwrap_or_default(),
                (_, Some(e), Some(next)) => format!("{e}; next try {}", when(next)),
                (_, Some(e), None) => e.clone(),
                _ => String::new(),
            },
            status: words(&n.status),
            attempts: n.attempts,
        })
        .collect();
    let ticked = typed
        .iter()
        .filter(|(k, _)| k == "purposes" || k == "categories")
        .map(|(_, v)| v.clone())
        .collect();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    render(
        SharingPage {
            signed_in: Some(session.label()),
            csrf: &session.csrf,
            notice,
            error,
            choices: recipients
                .iter()
                .map(|r| (r.id.to_string(), r.name.clone()))
                .collect(),
            recipients: rows,
            purposes: s
                .vault
                .purposes()
                .all()
                .into_iter()
                .map(|p| (words(&p.key), p.key))
                .collect(),
            categories: DataCategory::ALL
                .iter()
                .map(|c| (c.as_str(), c.label()))
                .collect(),
            bases: BASES,
            notifications,
            expiring,
            typed: typed.into_iter().collect(),
            ticked,
        },
        status,
    )
}

/// `GET /console/sharing`: the DPO's recipients, agreements and notifications.
pub(super) async fn show(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    uri: axum::http::Uri,
) -> Response {
    let Some(session) = session else {
        return to_sign_in();
    };
    let notice = query_param(&uri, "done").map(|d| match d.as_str() {
        "recipient" => {
            "The recipient is registered. Record an agreement before it receives anything."
                .to_owned()
        }
        "agreement" => {
            "The agreement is recorded; the recipient reads under it from its start.".to_owned()
        }
        "ended" => "The agreement has ended: nothing more is disclosed under it.".to_owned(),
        _ => "Saved.".to_owned(),
    });
    page(&s, &session, notice, None, Vec::new()).await
}

/// A date typed in a form (`YYYY-MM-DD`), as the start of that day (UTC).
fn day(field: &'static str, raw: &str) -> Result<Timestamp, Problem> {
    Timestamp::parse_rfc3339(&format!("{}T00:00:00Z", raw.trim()))
        .ok_or_else(|| Problem::invalid_parameter(field, "a date, e.g. 2027-01-31"))
}

/// `POST /console/sharing/recipients`: registers a recipient; what was typed stays on refusal.
pub(super) async fn register(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    body: Bytes,
) -> Response {
    let (session, f) = match signed_form(session, &body) {
        Ok(s) => s,
        Err(res) => return res,
    };
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let input = RecipientInput {
        name: get("name"),
        kind: RecipientKind::parse(&get("kind")).unwrap_or(RecipientKind::Processor),
        country: get("country"),
        contact: Some(get("contact")),
        webhook_url: get("webhook_url"),
    };
    match s
        .vault
        .sharing()
        .create_recipient(&session.principal, &input)
        .await
    {
        Ok(_) => Redirect::to("/console/sharing?done=recipient").into_response(),
        Err(e) => {
            let p: Problem = e.into();
            if p.status == 403 {
                return error_page(Some(&session), p);
            }
            page(&s, &session, None, Some(p.detail), form_all(&body)).await
        }
    }
}

/// `POST /console/sharing/agreements`: records an agreement; what was typed stays on refusal.
pub(super) async fn record(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    body: Bytes,
) -> Response {
    let (session, f) = match signed_form(session, &body) {
        Ok(s) => s,
        Err(res) => return res,
    };
    let all = form_all(&body);
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let input = (|| {
        let many = |k: &str| {
            all.iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        let categories = many("categories")
            .iter()
            .map(|c| {
                DataCategory::parse(c)
                    .ok_or_else(|| Problem::invalid_parameter("categories", "not a data category"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let lawful_basis: LawfulBasis =
            serde_json::from_value(serde_json::Value::String(get("lawful_basis")))
                .map_err(|_| Problem::invalid_parameter("lawful_basis", "choose a lawful basis"))?;
        Ok::<_, Problem>(AgreementInput {
            recipient_id: get("recipient_id"),
            purposes: many("purposes"),
            categories,
            lawful_basis,
            document_sha256: get("document_sha256"),
            starts_at: day("starts_at", &get("starts_at"))?,
            expires_at: day("expires_at", &get("expires_at"))?,
            identity: Identity::parse(&get("identity")).unwrap_or(Identity::Identified),
            supersedes: None,
        })
    })();
    let result = match input {
        Ok(input) => s
            .vault
            .sharing()
            .create_agreement(&session.principal, &input)
            .await
            .map_err(Problem::from),
        Err(p) => Err(p),
    };
    match result {
        Ok(_) => Redirect::to("/console/sharing?done=agreement").into_response(),
        Err(p) if p.status == 403 => error_page(Some(&session), p),
        Err(p) => page(&s, &session, None, Some(p.detail), all).await,
    }
}

/// `POST /console/sharing/agreements/{id}/end`: ends an agreement now.
pub(super) async fn end(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (session, _) = match signed_form(session, &body) {
        Ok(s) => s,
        Err(res) => return res,
    };
    let Ok(id) = id.parse() else {
        return error_page(
            Some(&session),
            Problem::invalid_parameter("id", "not an agreement id"),
        );
    };
    match s
        .vault
        .sharing()
        .end_agreement(&session.principal, id)
        .await
    {
        Ok(()) => Redirect::to("/console/sharing?done=ended").into_response(),
        Err(e) => error_page(Some(&session), e.into()),
    }
}
