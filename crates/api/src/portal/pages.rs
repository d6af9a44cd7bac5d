//! The signed-in customer's pages: everything held, consents, export, requests, access log.

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use steward_domain::{ConsentAction, LawfulBasis, ProfileField, RequestStatus, RequestType};
use steward_service::portal::PortalOverview;

use super::{SignedIn, Visit, checked_form, gpc, message_page, refused, set_cookie, to_start};
use crate::web::{render, with_cookies};
use crate::{AppState, Problem};

/// One purpose as the portal explains it.
struct PurposeRow {
    key: String,
    /// The purpose as people read it.
    title: String,
    notice: String,
    version: i64,
    basis: &'static str,
    retention_days: i64,
    consent_based: bool,
    granted: bool,
}

#[derive(Template)]
#[template(path = "portal/home.html")]
struct HomePage<'a> {
    signed_in: bool,
    csrf: &'a str,
    notice: Option<&'a str>,
    gpc: bool,
    profile: Vec<(&'static str, Option<String>)>,
    /// The details a correction may name: (field, label).
    correctable: Vec<(&'static str, &'static str)>,
    /// The address's parts, for its correction form: (form suffix, label).
    address_parts: Vec<(&'static str, &'static str)>,
    purchases: Vec<(String, String, String, String)>,
    interactions: Vec<(String, String, String)>,
    truncated: bool,
    purposes: Vec<PurposeRow>,
    history: Vec<(String, String, String, String)>,
    /// "Why you see these": (day, item) of the purchases personalisation uses, when agreed.
    personalisation: Option<Vec<(String, String)>>,
    personalisation_k: u32,
    /// Surveys the customer was asked to answer: (id, title, answered or token taken).
    surveys: Vec<(String, String, bool)>,
}

fn day(t: steward_domain::Timestamp) -> String {
    t.to_rfc3339_millis().chars().take(10).collect()
}

fn basis(b: LawfulBasis) -> &'static str {
    match b {
        LawfulBasis::Consent => "your consent",
        LawfulBasis::Contract => "our contract with you",
        LawfulBasis::LegalObligation => "a legal obligation",
        LawfulBasis::LegitimateInterest => "our legitimate interest",
    }
}

fn home_page(
    visit: &Visit,
    o: PortalOverview,
    surveys: Vec<(String, String, bool)>,
    notice: Option<&str>,
    gpc: bool,
) -> Response {
    let c = &o.customer;
    let page = HomePage {
        signed_in: true,
        csrf: &visit.csrf,
        notice,
        gpc,
        // Every declared profile field, then the customer's start.
        profile: c
            .texts()
            .into_iter()
            .map(|(f, v)| (f.label(), v))
            .chain([("Customer since", Some(day(c.created_at)))])
            .collect(),
        // The address is corrected in its parts, by a form of its own.
        correctable: ProfileField::ALL
            .iter()
            .filter(|f| **f != ProfileField::Address)
            .map(|f| (f.name(), f.label()))
            .collect(),
        address_parts: crate::profile_form::ADDRESS_PARTS.to_vec(),
        purchases: o
            .purchases
            .iter()
            .map(|p| {
                let amount = crate::display::money(p.amount_minor, &p.currency);
                (
                    day(p.occurred_at),
                    p.item.clone(),
                    p.category.clone(),
                    amount,
                )
            })
            .collect(),
        interactions: o
            .interactions
            .iter()
            .map(|i| {
                let channel = i.channel.as_str().to_owned();
                (day(i.occurred_at), channel, i.text.clone())
            })
            .collect(),
        truncated: o.truncated,
        personalisation: o.personalisation.as_ref().map(|inputs| {
            inputs
                .iter()
                .map(|(item, at)| (day(*at), item.clone()))
                .collect()
        }),
        personalisation_k: o.personalisation_k,
        surveys,
        purposes: o
            .purposes
            .iter()
            .map(|p| PurposeRow {
                title: crate::display::words(&p.key),
                key: p.key.clone(),
                notice: p.notice_text.clone(),
                version: p.notice_version,
                basis: basis(p.lawful_basis),
                retention_days: p.retention_days,
                consent_based: p.lawful_basis == LawfulBasis::Consent,
                granted: o.consents.granted(&p.key),
            })
            .collect(),
        history: o
            .consents
            .history
            .iter()
            .rev()
            .map(|e| {
                let t = e.occurred_at.to_rfc3339_millis();
                (t, e.purpose.clone(), e.action.clone(), e.source.clone())
            })
            .collect(),
    };
    render(page, StatusCode::OK)
}

/// Shows the overview, with `notice` on top.
async fn overview(s: &AppState, visit: &Visit, notice: Option<&str>, gpc: bool) -> Response {
    let surveys = match s.vault.surveys().portal_surveys(&visit.session).await {
        Ok(list) => list
            .into_iter()
            .map(|p| (p.id.to_string(), p.title, p.issued))
            .collect(),
        Err(e) => return message_page(Some(visit), e.into()),
    };
    match s.vault.portal_overview(&visit.session).await {
        Ok(o) => home_page(visit, o, surveys, notice, gpc),
        Err(e) => message_page(Some(visit), e.into()),
    }
}

pub(super) async fn home(
    State(s): State<AppState>,
    SignedIn(visit): SignedIn,
    headers: HeaderMap,
) -> Response {
    match visit {
        Some(visit) => overview(&s, &visit, None, gpc(&headers)).await,
        None => super::sign_in_form(&s, None, StatusCode::OK),
    }
}

/// Runs a signed-in form: no session goes to the start, a bad CSRF token is refused, and a
/// `Sec-GPC: 1` request is honoured before `act`.
async fn signed_form<F, Fut>(
    s: &AppState,
    visit: Option<Visit>,
    headers: &HeaderMap,
    body: &Bytes,
    act: F,
) -> Response
where
    F: FnOnce(Visit, std::collections::HashMap<String, String>) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let Some(visit) = visit else {
        return to_start();
    };
    let Some(f) = checked_form(&visit, body) else {
        return refused(&visit);
    };
    if gpc(headers)
        && let Err(e) = s.vault.portal_honour_gpc(&visit.session).await
    {
        return message_page(Some(&visit), e.into());
    }
    act(visit, f).await
}

pub(super) async fn consent(
    State(s): State<AppState>,
    SignedIn(visit): SignedIn,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    signed_form(&s, visit, &headers, &body, async |visit, f| {
        let action = match f.get("action").map(String::as_str) {
            Some("grant") => ConsentAction::Grant,
            Some("withdraw") => ConsentAction::Withdraw,
            _ => {
                let p = Problem::invalid_parameter("action", "must be grant or withdraw");
                return message_page(Some(&visit), p);
            }
        };
        let purpose = f.get("purpose").map(String::as_str).unwrap_or("");
        let done = s
            .vault
            .portal_consent(&visit.session, purpose, action)
            .await;
        match done {
            Ok(_) => {
                let title = crate::display::words(purpose).to_lowercase();
                let notice = match action {
                    ConsentAction::Grant => format!("You agreed to {title}."),
                    ConsentAction::Withdraw => {
                        format!("You withdrew your consent to {title}. It applies at once.")
                    }
                };
                overview(&s, &visit, Some(&notice), gpc(&headers)).await
            }
            Err(e) => message_page(Some(&visit), e.into()),
        }
    })
    .await
}

pub(super) async fn export(
    State(s): State<AppState>,
    SignedIn(visit): SignedIn,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    signed_form(&s, visit, &headers, &body, async |visit, _| {
        match s.vault.portal_export(&visit.session).await {
            Ok(export) => (
                [
                    (header::CONTENT_TYPE, "application/zip"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"my-data.zip\"",
                    ),
                ],
                export.zip,
            )
                .into_response(),
            Err(e) => message_page(Some(&visit), e.into()),
        }
    })
    .await
}

/// A confirmation page for a request.
fn request_page(visit: Option<&Visit>, title: &'static str, detail: String) -> Response {
    super::confirmation(visit, title, &detail)
}

pub(super) async fn correction(
    State(s): State<AppState>,
    SignedIn(visit): SignedIn,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    signed_form(&s, visit, &headers, &body, async |visit, f| {
        let field = f.get("field").map(String::as_str).unwrap_or("");
        if ProfileField::parse(field).is_none() {
            let p = Problem::invalid_parameter("field", "choose a detail to correct");
            return message_page(Some(&visit), p);
        }
        let line = f.get("value").map(String::as_str).unwrap_or("").trim();
        let value = if field == "address" {
            // In its parts (the portal's form); one line is still taken as the street.
            match crate::profile_form::address_json(&f) {
                Some(a) => a,
                None if !line.is_empty() => serde_json::Value::String(line.to_owned()),
                None => {
                    let p = Problem::invalid_parameter("address", "fill in at least one part of the address");
                    return message_page(Some(&visit), p);
                }
            }
        } else {
            serde_json::Value::String(line.to_owned())
        };
        let patch = serde_json::json!({ field: value });
        match s
            .vault
            .portal_request(&visit.session, RequestType::Rectification, Some(patch))
            .await
        {
            Ok(r) if field == "email" && r.status == RequestStatus::Fulfilled => request_page(
                Some(&visit),
                "Confirm your new address",
                "We sent a code to the new address. It replaces this one only when you confirm it on the page \"Confirm a new e-mail address\" (/portal/confirm-address); until then we keep using the address you signed in with, and we told it of the change.".to_owned(),
            ),
            Ok(r) if r.status == RequestStatus::Fulfilled => {
                overview(&s, &visit, Some("Your correction is made."), false).await
            }
            Ok(r) if r.awaiting.is_some() => request_page(
                Some(&visit),
                "Correction received",
                format!(
                    "This detail was checked when you gave it, so a member of staff confirms the correction first. Your request {} is due by {}.",
                    r.id,
                    day(r.deadline)
                ),
            ),
            Ok(r) => request_page(
                Some(&visit),
                "Correction not made",
                format!("Your request {} was {}.", r.id, r.status.as_str()),
            ),
            Err(e) => message_page(Some(&visit), e.into()),
        }
    })
    .await
}

/// An objection (Art. 21) or a restriction (Art. 18) asked from the portal: the signed-in
/// customer's identity is checked, so it takes effect at once, through the rights API.
async fn right(
    s: &AppState,
    visit: Option<Visit>,
    headers: &HeaderMap,
    body: &Bytes,
    kind: RequestType,
) -> Response {
    signed_form(s, visit, headers, body, async |visit, _| {
        match s.vault.portal_request(&visit.session, kind, None).await {
            Ok(r) if r.status == RequestStatus::Fulfilled => {
                let done = if kind == RequestType::Objection {
                    "Your objection is recorded: we no longer use your data for marketing or profiling."
                } else {
                    "Your data is restricted: we keep it, but no member of staff may use it until the restriction is lifted."
                };
                overview(s, &visit, Some(done), false).await
            }
            Ok(r) => request_page(
                Some(&visit),
                "Request received",
                format!("Your request {} is {}; it is due by {}.", r.id, r.status.as_str(), day(r.deadline)),
            ),
            Err(e) => message_page(Some(&visit), e.into()),
        }
    })
    .await
}

pub(super) async fn objection(
    State(s): State<AppState>,
    SignedIn(visit): SignedIn,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    right(&s, visit, &headers, &body, RequestType::Objection).await
}

pub(super) async fn restriction(
    State(s): State<AppState>,
    SignedIn(visit): SignedIn,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    right(&s, visit, &headers, &body, RequestType::Restriction).await
}

pub(super) async fn erasure(
    State(s): State<AppState>,
    SignedIn(visit): SignedIn,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    signed_form(&s, visit, &headers, &body, async |visit, f| {
        if f.get("confirm").map(String::as_str) != Some("yes") {
            let p = Problem::invalid_parameter("confirm", "tick the box to confirm the erasure");
            return message_page(Some(&visit), p);
        }
        let challenge = f
            .get("challenge")
            .and_then(|c| uuid::Uuid::try_parse(c).ok());
        let fresh = challenge.zip(f.get("code").map(String::as_str));
        // Soon after a contact change, the erasure waits for a fresh code to the address on record.
        if fresh.is_none() {
            match s.vault.portal_access().erasure_needs_fresh_code(&visit.session).await {
                Ok(false) => {}
                Ok(true) => return erasure_code_page(&s, &visit, None, None).await,
                Err(e) => return message_page(Some(&visit), e.into()),
            }
        }
        match s.vault.portal_erase(&visit.session, fresh).await {
            Ok(r) if r.status == RequestStatus::Fulfilled => with_cookies(
                request_page(
                    None,
                    "Your data is erased",
                    format!(
                        "We erased your data (request {}). The audit log keeps only a record that it was disposed of, without your details. You are signed out.",
                        r.id
                    ),
                ),
                &[set_cookie(super::SESSION_COOKIE, "", Some(0))],
            ),
            Ok(r) => request_page(
                Some(&visit),
                "Erasure not made",
                format!(
                    "Your request {} was {}{}. The data protection officer can tell you more.",
                    r.id,
                    r.status.as_str(),
                    r.reason
                        .map(|x| format!(" ({})", x.as_str()))
                        .unwrap_or_default()
                ),
            ),
            Err(steward_service::ServiceError::Validation(v)) if v.field == "code" => {
                // The same challenge again (no new mail for a mistyped code); its five tries bound
                // the guesses, and a new one is sent only when it is spent.
                let msg = "That code is wrong or has expired. Check it and try again, or go back and start over for a new one.";
                erasure_code_page(&s, &visit, Some(msg), challenge).await
            }
            Err(e) => message_page(Some(&visit), e.into()),
        }
    })
    .await
}

#[derive(Template)]
#[template(path = "portal/erasure_code.html")]
struct ErasureCodePage<'a> {
    signed_in: bool,
    csrf: &'a str,
    challenge: String,
    error: Option<&'a str>,
}

/// Asks for the fresh code of `challenge`, or sends one (to the address on record before the
/// latest contact change) when there is none yet.
async fn erasure_code_page(
    s: &AppState,
    visit: &Visit,
    error: Option<&str>,
    challenge: Option<uuid::Uuid>,
) -> Response {
    let issued = match challenge {
        Some(c) => Ok(c),
        None => {
            s.vault
                .portal_access()
                .portal_fresh_code(&visit.session)
                .await
        }
    };
    match issued {
        Ok(challenge) => render(
            ErasureCodePage {
                signed_in: true,
                csrf: &visit.csrf,
                challenge: challenge.to_string(),
                error,
            },
            if error.is_some() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            },
        ),
        Err(e) => message_page(Some(visit), e.into()),
    }
}

/// One access-log row, ready for the page and the proof checker.
struct LogRow {
    index: u64,
    leaf: String,
    proof: String,
    time: String,
    who: String,
    action: String,
    purpose: String,
    categories: String,
    outcome: String,
}

#[derive(Template)]
#[template(path = "portal/access_log.html")]
struct AccessLogPage<'a> {
    signed_in: bool,
    csrf: &'a str,
    checkpoint_b64: String,
    head: String,
    verifier_key: &'a str,
    entries: Vec<LogRow>,
    /// The index to continue below, if there may be older entries.
    older: Option<u64>,
    /// Who outside the business received their data (issue 22).
    disclosures: Vec<DisclosureRow>,
}

/// One disclosure, as the portal lists it.
struct DisclosureRow {
    recipient: String,
    kind: &'static str,
    country: String,
    purpose: String,
    categories: String,
    first: String,
    last: String,
    times: i64,
    agreement: String,
}

/// Access-log entries a page shows.
const LOG_PAGE: u32 = 200;

pub(super) async fn access_log(
    State(s): State<AppState>,
    SignedIn(visit): SignedIn,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let Some(visit) = visit else {
        return Redirect::to("/portal").into_response();
    };
    // `before`: an entry index (not personal), for the page of older entries.
    let before = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "before")
        .map(|(_, v)| v.parse::<u64>());
    let before = match before {
        Some(Ok(b)) => Some(b),
        Some(Err(_)) => {
            let p = Problem::invalid_parameter("before", "must be an entry index");
            return message_page(Some(&visit), p);
        }
        None => None,
    };
    let (log, disclosures) = match s
        .vault
        .portal_access_log(&visit.session, before, LOG_PAGE)
        .await
    {
        Ok(p) => (p.log, p.disclosures),
        Err(e) => return message_page(Some(&visit), e.into()),
    };
    let disclosures = disclosures
        .into_iter()
        .map(|d| DisclosureRow {
            recipient: d.recipient,
            kind: match d.kind {
                steward_domain::sharing::RecipientKind::Processor => {
                    "processor (acts on the business's instructions)"
                }
                steward_domain::sharing::RecipientKind::ThirdParty => "third party",
            },
            country: d.country,
            purpose: crate::display::words(&d.purpose),
            categories: d
                .categories
                .iter()
                .map(|c| c.label())
                .collect::<Vec<_>>()
                .join(", "),
            first: crate::display::when(d.first_at),
            last: crate::display::when(d.last_at),
            times: d.times,
            agreement: d.agreement_id.to_string(),
        })
        .collect::<Vec<_>>();
    let entries = log
        .entries
        .iter()
        .map(|e| {
            let leaf = e.entry.decoded();
            let who = leaf.as_ref().map_or_else(String::new, |l| {
                let roles: Vec<&str> = l.roles.iter().map(|r| r.as_str()).collect();
                let at: Vec<String> = l.outlets.iter().map(|o| o.to_string()).collect();
                match (roles.is_empty(), at.is_empty()) {
                    (true, _) => l.principal.clone(),
                    (false, true) => format!("{} ({})", roles.join(", "), l.principal),
                    (false, false) => format!(
                        "{} at outlet {} ({})",
                        roles.join(", "),
                        at.join(", "),
                        l.principal
                    ),
                }
            });
            LogRow {
                index: e.entry.index,
                leaf: STANDARD.encode(&e.entry.leaf),
                proof: e
                    .proof
                    .iter()
                    .map(|h| STANDARD.encode(h))
                    .collect::<Vec<_>>()
                    .join(","),
                time: leaf
                    .as_ref()
                    .map(|l| l.time.to_rfc3339_millis())
                    .unwrap_or_default(),
                who,
                action: leaf.as_ref().map(|l| l.action.clone()).unwrap_or_default(),
                purpose: leaf
                    .as_ref()
                    .and_then(|l| l.purpose.clone())
                    .unwrap_or_default(),
                categories: leaf
                    .as_ref()
                    .map(|l| {
                        l.categories
                            .iter()
                            .map(|(k, v)| format!("{k}: {v}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default(),
                outcome: leaf.as_ref().map(|l| l.outcome.clone()).unwrap_or_default(),
            }
        })
        .collect();
    let head = log
        .checkpoint
        .lines()
        .take(3)
        .collect::<Vec<_>>()
        .join(" · ");
    // A full page may have older entries after it.
    let older = (log.entries.len() == LOG_PAGE as usize)
        .then(|| log.entries.last().map(|e| e.entry.index))
        .flatten();
    render(
        AccessLogPage {
            disclosures,
            signed_in: true,
            csrf: &visit.csrf,
            checkpoint_b64: STANDARD.encode(log.checkpoint.as_bytes()),
            head,
            verifier_key: s.vault.audit().verifier_key(),
            entries,
            older,
        },
        StatusCode::OK,
    )
}
