//! The data protection officer's page of the console: the request queue by deadline, the access
//! alerts, and the audit log's latest signed head with its newest entries.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::{SignedIn, error_page, render, to_sign_in};
use crate::AppState;

/// A row of the request queue.
struct RequestRow {
    deadline: String,
    kind: &'static str,
    status: &'static str,
    identity: &'static str,
    customer: String,
}

/// A row of the alerts.
struct AlertRow {
    at: String,
    kind: String,
    principal: String,
    purpose: String,
    detail: String,
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
    requests: Vec<RequestRow>,
    alerts: Vec<AlertRow>,
    checkpoint: String,
    entries: Vec<EntryRow>,
    consent: Vec<ChartLine>,
    chart_days: usize,
}

/// How many of the newest audit entries the page shows.
const NEWEST: u64 = 25;

/// `GET /console/dpo`: for the DPO only (the policy decides every part).
pub(super) async fn page(State(s): State<AppState>, SignedIn(session): SignedIn) -> Response {
    let Some(session) = session else {
        return to_sign_in();
    };
    let p = &session.principal;
    let requests = match s.vault.requests(p, None, 100).await {
        Ok(r) => r,
        Err(e) => return error_page(Some(&session), e.into()),
    };
    let alerts = match s.vault.alerts(p, 100).await {
        Ok(a) => a,
        Err(e) => return error_page(Some(&session), e.into()),
    };
    let checkpoint = match s.vault.audit_checkpoint().await {
        Ok(c) => c,
        Err(e) => return error_page(Some(&session), e.into()),
    };
    // The checkpoint's second line is the tree size (C2SP tlog-checkpoint).
    let size: u64 = checkpoint
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let entries = match s
        .vault
        .audit_entries(p, size.saturating_sub(NEWEST), size)
        .await
    {
        Ok(e) => e,
        Err(e) => return error_page(Some(&session), e.into()),
    };
    let consent = match s.vault.consent_chart(p, CHART_DAYS).await {
        Ok(c) => chart(c),
        Err(e) => return error_page(Some(&session), e.into()),
    };
    let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or("").to_owned();
    render(
        DpoPage {
            signed_in: Some(session.label()),
            csrf: &session.csrf,
            requests: requests
                .into_iter()
                .map(|r| RequestRow {
                    deadline: r.deadline.to_rfc3339(),
                    kind: r.kind.as_str(),
                    status: r.status.as_str(),
                    identity: r.identity.as_str(),
                    customer: r.customer_id.to_string(),
                })
                .collect(),
            alerts: alerts
                .into_iter()
                .map(|a| AlertRow {
                    at: a.occurred_at.to_rfc3339(),
                    kind: a.kind,
                    principal: a.principal,
                    purpose: a.purpose,
                    detail: a.detail,
                })
                .collect(),
            checkpoint,
            consent,
            chart_days: CHART_DAYS,
            entries: entries
                .into_iter()
                .rev()
                .map(|e| {
                    let leaf: serde_json::Value =
                        serde_json::from_slice(&e.row.leaf).unwrap_or_default();
                    EntryRow {
                        index: e.index,
                        at: text(&leaf, "time"),
                        principal: text(&leaf, "principal"),
                        action: e.row.action,
                        customer: text(&leaf, "customer"),
                        outcome: text(&leaf, "outcome"),
                    }
                })
                .collect(),
        },
        StatusCode::OK,
    )
}
