//! The data protection officer's workspace in the console: the request queue by deadline with
//! its actions (identity checked in person, confirm, deny with a reason), the access alerts with
//! their reasons, the consent chart, and the audit log, searched and paged.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use steward_domain::{CustomerId, RequestId, RequestReason, RequestStatus, Timestamp};
use steward_service::AuditFilter;

use super::{SignedIn, error_page, query_param, render, signed_form, to_sign_in};
use crate::display::{when, words};
use crate::{AppState, Problem};

/// A row of the request queue, with the actions its state allows.
struct RequestRow {
    id: String,
    deadline: String,
    /// Due within three days.
    soon: bool,
    kind: String,
    status: String,
    identity: String,
    customer: String,
    /// Waiting for the identity check: the DPO may record one made in person.
    may_verify: bool,
    /// A correction of a verified field waits for staff to confirm it.
    may_confirm: bool,
    /// Still open: it may be denied.
    may_deny: bool,
}

/// A row of the alerts.
struct AlertRow {
    id: String,
    at: String,
    kind: String,
    principal: String,
    purpose: String,
    detail: String,
    has_reason: bool,
}

/// A row of the audit log: what its leaf says (never a personal value).
struct EntryRow {
    index: u64,
    at: String,
    principal: String,
    action: String,
    /// The customer's id (a pseudonymous id, never a value), if the entry is about one.
    customer: String,
    outcome: String,
    purpose: String,
}

/// The audit search as asked (kept in the form).
#[derive(Default)]
struct AuditAsked {
    action: String,
    principal: String,
    customer: String,
    since: String,
    until: String,
}

/// One purpose's line of the consent chart.
struct ChartLine {
    purpose: String,
    /// Customers consenting at the end of the last day.
    today: i64,
    /// The SVG polyline's points (x from 0 to 300, y from 60 down to 0).
    points: String,
}

/// Days the consent chart covers.
const CHART_DAYS: usize = 30;

/// Scales each purpose's daily counts into a 300×60 polyline, against the largest count of all.
fn chart(series: std::collections::BTreeMap<String, Vec<i64>>) -> Vec<ChartLine> {
    let top = series.values().flatten().copied().max().unwrap_or(0).max(1) as f64;
    series
        .into_iter()
        .map(|(purpose, days)| {
            let step = 300.0 / (days.len().max(2) - 1) as f64;
            let points = days
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    format!(
                        "{:.1},{:.1}",
                        i as f64 * step,
                        60.0 - *n as f64 / top * 58.0
                    )
                })
                .collect::<Vec<_>>()
                .join(" ");
            ChartLine {
                purpose,
                today: days.last().copied().unwrap_or(0),
                points,
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "console/dpo.html")]
struct DpoPage<'a> {
    signed_in: Option<String>,
    csrf: &'a str,
    notice: Option<&'static str>,
    error: Option<String>,
    requests: Vec<RequestRow>,
    reasons: Vec<(&'static str, String)>,
    alerts: Vec<AlertRow>,
    checkpoint: String,
    entries: Vec<EntryRow>,
    asked: AuditAsked,
    /// The query string of the next (older) audit page, if any.
    older: Option<String>,
    consent: Vec<ChartLine>,
    chart_days: usize,
    /// The current confidentiality notice (version, text), if one is published.
    notice_text: Option<(i64, String)>,
    /// Staff who have not acknowledged it.
    unacknowledged: Vec<String>,
    /// Analytics budget use this window: (analyst, purpose, ε spent, budget).
    analytics: Vec<(String, String, String, String)>,
}

/// How many audit entries a page shows.
const PAGE: usize = 25;

/// A day (`YYYY-MM-DD`) as the start of that day (UTC).
fn day_start(s: &str) -> Option<Timestamp> {
    Timestamp::parse_rfc3339(&format!("{s}T00:00:00Z"))
}

fn audit_filter(asked: &AuditAsked) -> Result<AuditFilter, String> {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let customer = match asked.customer.as_str() {
        "" => None,
        c => Some(
            uuid::Uuid::try_parse(c)
                .map(CustomerId)
                .map_err(|_| "Customer: give a customer id, as the entries show it.".to_owned())?,
        ),
    };
    let date = |s: &str, what: &str| match s {
        "" => Ok(None),
        d => day_start(d)
            .map(Some)
            .ok_or_else(|| format!("{what}: give a date such as 2026-12-05.")),
    };
    Ok(AuditFilter {
        action: opt(&asked.action),
        principal: opt(&asked.principal),
        customer,
        since: date(&asked.since, "From")?,
        // "Until" a day includes that day.
        until: date(&asked.until, "Until")?.map(|t| Timestamp(t.millis() + 86_400_000)),
    })
}

/// `GET /console/dpo`: for the DPO only (the policy decides every part).
pub(super) async fn page(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    uri: axum::http::Uri,
) -> Response {
    let Some(session) = session else {
        return to_sign_in();
    };
    let param = |k: &str| query_param(&uri, k).unwrap_or_default();
    let asked = AuditAsked {
        action: param("action"),
        principal: param("principal"),
        customer: param("customer"),
        since: param("since"),
        until: param("until"),
    };
    let notice = match param("done").as_str() {
        "verified" => Some("The identity check is recorded and the request fulfilled."),
        "confirmed" => Some("The correction is confirmed and made."),
        "denied" => Some("The request is denied, with its reason."),
        "published" => Some(
            "The notice is published: every staff member acknowledges it before their next read.",
        ),
        _ => None,
    };
    let before = param("before").parse::<u64>().ok();
    let p = &session.principal;
    let requests = match s.vault.requests(p, None, 100).await {
        Ok(r) => r,
        Err(e) => return error_page(Some(&session), e.into()),
    };
    let alerts = match s.vault.alerts().list(p, 100).await {
        Ok(a) => a,
        Err(e) => return error_page(Some(&session), e.into()),
    };
    let checkpoint = match s.vault.audit().checkpoint().await {
        Ok(c) => c,
        Err(e) => return error_page(Some(&session), e.into()),
    };
    let (filter, error) = match audit_filter(&asked) {
        Ok(f) => (f, None),
        Err(e) => (AuditFilter::default(), Some(e)),
    };
    let (entries, next) = match s.vault.audit().search(p, &filter, before, PAGE).await {
        Ok(r) => r,
        Err(e) => return error_page(Some(&session), e.into()),
    };
    let consent = match s.vault.consents().chart(p, CHART_DAYS).await {
        Ok(c) => chart(c),
        Err(e) => return error_page(Some(&session), e.into()),
    };
    let analytics = match s.vault.analytics().analytics_budgets(p).await {
        Ok(uses) => uses
            .into_iter()
            .map(|u| {
                (
                    u.name,
                    words(&u.purpose),
                    format!("{}", u.epsilon_spent),
                    format!("{}", u.epsilon_budget),
                )
            })
            .collect(),
        Err(e) => return error_page(Some(&session), e.into()),
    };
    let unacknowledged = match s.vault.notices().unacknowledged_staff(p).await {
        Ok(list) => list.into_iter().map(|m| m.name).collect(),
        Err(e) => return error_page(Some(&session), e.into()),
    };
    let older = next.map(|n| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("action", asked.action.as_str()),
                ("principal", asked.principal.as_str()),
                ("customer", asked.customer.as_str()),
                ("since", asked.since.as_str()),
                ("until", asked.until.as_str()),
                ("before", n.to_string().as_str()),
            ])
            .finish()
    });
    let soon = Timestamp::now().millis() + 3 * 86_400_000;
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render(
        DpoPage {
            signed_in: Some(session.label()),
            csrf: &session.csrf,
            notice,
            error,
            requests: requests
                .into_iter()
                .map(|r| {
                    let open = matches!(r.status, RequestStatus::Open | RequestStatus::InProgress);
                    RequestRow {
                        id: r.id.to_string(),
                        deadline: when(r.deadline),
                        soon: open && r.deadline.millis() <= soon,
                        kind: words(r.kind.as_str()),
                        status: words(r.status.as_str()),
                        identity: words(r.identity.as_str()),
                        customer: r.customer_id.to_string(),
                        may_verify: open && r.identity == steward_domain::IdentityCheck::Unverified,
                        may_confirm: open && r.awaiting.is_some(),
                        may_deny: open,
                    }
                })
                .collect(),
            reasons: RequestReason::ALL
                .iter()
                .map(|r| (r.as_str(), words(r.as_str())))
                .collect(),
            alerts: alerts
                .into_iter()
                .map(|a| AlertRow {
                    id: a.id,
                    at: when(a.occurred_at),
                    kind: words(&a.kind),
                    principal: a.principal,
                    purpose: a.purpose,
                    detail: a.detail,
                    has_reason: a.has_reason,
                })
                .collect(),
            checkpoint,
            consent,
            chart_days: CHART_DAYS,
            entries: entries
                .into_iter()
                .map(|e| EntryRow {
                    index: e.index,
                    at: when(e.at),
                    principal: e.principal,
                    action: e.action,
                    customer: e.customer.map(|c| c.to_string()).unwrap_or_default(),
                    outcome: e.outcome,
                    purpose: e.purpose,
                })
                .collect(),
            asked,
            older,
            notice_text: s.vault.notices().current().map(|n| (n.version, n.text)),
            unacknowledged,
            analytics,
        },
        status,
    )
}

/// Acts on a request from the queue: `verify` (identity checked in person), `confirm` (a
/// correction of a verified field) or `deny` (with a DRP reason); back to the queue.
pub(super) async fn act(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (session, f) = match signed_form(session, &body) {
        Ok(s) => s,
        Err(res) => return res,
    };
    let Ok(id) = uuid::Uuid::try_parse(&id).map(RequestId) else {
        return error_page(Some(&session), Problem::not_found("request"));
    };
    let p = &session.principal;
    let done = match action.as_str() {
        "verify" => s
            .vault
            .verify_request(p, id, None)
            .await
            .map(|_| "verified"),
        "confirm" => s.vault.confirm_request(p, id).await.map(|_| "confirmed"),
        "deny" => {
            let reason = f.get("reason").and_then(|r| RequestReason::parse(r));
            let Some(reason) = reason else {
                return error_page(
                    Some(&session),
                    Problem::invalid_parameter("reason", "choose why the request is denied"),
                );
            };
            s.vault.deny_request(p, id, reason).await.map(|_| "denied")
        }
        _ => return error_page(Some(&session), Problem::not_found("action")),
    };
    match done {
        Ok(what) => Redirect::to(&format!("/console/dpo?done={what}")).into_response(),
        Err(e) => error_page(Some(&session), e.into()),
    }
}

#[derive(Template)]
#[template(path = "console/alert.html")]
struct AlertPage<'a> {
    signed_in: Option<String>,
    csrf: &'a str,
    at: String,
    kind: String,
    principal: String,
    purpose: String,
    detail: String,
    customer: Option<String>,
    reason: Option<String>,
}

/// One alert with the reason the staff member gave, opened for the DPO (an audit entry about
/// the customer).
pub(super) async fn alert(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
) -> Response {
    let Some(session) = session else {
        return to_sign_in();
    };
    let Ok(id) = uuid::Uuid::try_parse(&id) else {
        return error_page(Some(&session), Problem::not_found("alert"));
    };
    match s.vault.alerts().with_reason(&session.principal, id).await {
        Ok(a) => render(
            AlertPage {
                signed_in: Some(session.label()),
                csrf: &session.csrf,
                at: when(a.occurred_at),
                kind: words(&a.kind),
                principal: a.principal,
                purpose: a.purpose,
                detail: a.detail,
                customer: a.customer_id,
                reason: a.reason,
            },
            StatusCode::OK,
        ),
        Err(e) => error_page(Some(&session), e.into()),
    }
}
