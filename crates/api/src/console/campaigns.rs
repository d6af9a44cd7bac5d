//! The console's campaigns (issue 18, point 8): marketing composes a message to a segment,
//! reads its preview rendered for a fictional customer, sends it, and follows its results as
//! counts and a small chart: never a recipient. Over the same services as `/v1/campaigns`.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use steward_domain::{CampaignId, SegmentId};
use steward_service::CampaignView;

use super::purposes::sentence;
use super::{Session, SignedIn, error_page, query_param, render, signed_form, to_sign_in};
use crate::display::words;
use crate::{AppState, Problem};

/// One bar of a campaign's chart.
struct Bar {
    label: &'static str,
    y: u32,
    width: u32,
}

/// A campaign as the page shows it.
struct Row {
    id: String,
    subject: String,
    segment: String,
    purpose: String,
    state: String,
    draft: bool,
    preview_subject: String,
    preview_body: String,
    counts: Vec<(&'static str, u64)>,
    bars: Vec<Bar>,
    chart_label: String,
    chart_height: u32,
}

#[derive(Template)]
#[template(path = "console/campaigns.html")]
struct CampaignsPage<'a> {
    signed_in: Option<String>,
    csrf: &'a str,
    notice: Option<String>,
    error: Option<String>,
    campaigns: Vec<Row>,
    /// (id, name).
    segments: Vec<(String, String)>,
    /// Purposes a campaign may go under that the caller may declare: (key, title).
    purposes: Vec<(String, String)>,
    cap: String,
    typed: HashMap<String, String>,
}

/// The counts people read, in order, and the bars of the chart (widths out of 200 pixels).
fn outcome(c: &CampaignView) -> (Vec<(&'static str, u64)>, Vec<Bar>, String) {
    let n = &c.counts;
    let counts = vec![
        ("Waiting", n.queued + n.sending),
        ("Sent", n.sent),
        ("Not sent (no consent, limit, no address)", n.skipped),
        ("Refused by the mail server", n.failed),
        ("Interrupted (not sent again)", n.uncertain),
        ("Unsubscribed", n.unsubscribed),
    ];
    let most = counts.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let short = [
        "Waiting",
        "Sent",
        "Not sent",
        "Refused",
        "Interrupted",
        "Unsubscribed",
    ];
    let bars = counts
        .iter()
        .zip(short)
        .enumerate()
        .map(|(i, ((_, v), label))| Bar {
            label,
            y: i as u32 * 20,
            // At least a sliver for a non-zero count, so it shows.
            width: if *v == 0 {
                0
            } else {
                ((*v * 200) / most).max(2) as u32
            },
        })
        .collect();
    let label = counts
        .iter()
        .zip(short)
        .map(|((_, v), l)| format!("{l} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    (counts, bars, label)
}

fn state_of(c: &CampaignView) -> String {
    match c.status.as_str() {
        "draft" => "Draft, not sent".into(),
        "sending" => format!(
            "Sending since {}",
            c.started_at.map(crate::display::when).unwrap_or_default()
        ),
        _ => format!(
            "Sent {}",
            c.finished_at.map(crate::display::when).unwrap_or_default()
        ),
    }
}

async fn page(
    s: &AppState,
    session: &Session,
    notice: Option<String>,
    error: Option<(StatusCode, String)>,
    typed: HashMap<String, String>,
) -> Response {
    let p = &session.principal;
    let (campaigns, segments) = match (
        s.vault.outreach().campaigns(p).await,
        s.vault.segments().segments(p).await,
    ) {
        (Ok(c), Ok(seg)) => (c, seg),
        (Err(e), _) | (_, Err(e)) => return error_page(Some(session), e.into()),
    };
    let names: HashMap<SegmentId, String> =
        segments.iter().map(|g| (g.id, g.name.clone())).collect();
    let rows = campaigns
        .iter()
        .map(|c| {
            let (counts, bars, chart_label) = outcome(c);
            Row {
                id: c.id.to_string(),
                subject: c.subject.clone(),
                segment: names
                    .get(&c.segment_id)
                    .cloned()
                    .unwrap_or_else(|| "a segment".into()),
                purpose: words(&c.purpose).to_lowercase(),
                state: state_of(c),
                draft: c.status == "draft",
                preview_subject: c.preview.subject.clone(),
                preview_body: c.preview.body.clone(),
                chart_height: bars.len() as u32 * 20,
                counts,
                bars,
                chart_label: format!("Messages of “{}”: {chart_label}", c.subject),
            }
        })
        .collect();
    let purposes = s
        .vault
        .records()
        .declarable_purposes(p)
        .into_iter()
        .filter(|purpose| steward_domain::campaign::check_purpose(purpose).is_ok())
        .map(|purpose| (purpose.key.clone(), words(&purpose.key)))
        .collect();
    let (status, error) = match error {
        Some((status, e)) => (status, Some(e)),
        None => (StatusCode::OK, None),
    };
    let cap = s.vault.outreach().marketing_cap();
    render(
        CampaignsPage {
            signed_in: Some(session.label()),
            csrf: &session.csrf,
            notice,
            error,
            campaigns: rows,
            segments: segments
                .into_iter()
                .map(|g| (g.id.to_string(), g.name))
                .collect(),
            purposes,
            cap: format!(
                "{} message{} per customer and purpose in {} days",
                cap.messages,
                if cap.messages == 1 { "" } else { "s" },
                cap.days
            ),
            typed,
        },
        status,
    )
}

pub(super) async fn show(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    uri: axum::http::Uri,
) -> Response {
    let Some(session) = session else {
        return to_sign_in();
    };
    let notice = if query_param(&uri, "saved").is_some() {
        Some("The campaign is saved as a draft. Read its preview, then send it.".to_owned())
    } else if query_param(&uri, "sending").is_some() {
        Some("Sending has started. The counts below follow it; reload to see them grow.".to_owned())
    } else {
        None
    };
    page(&s, &session, notice, None, HashMap::new()).await
}

/// Composes a draft from the form; on a refusal the form comes back as typed.
pub(super) async fn compose(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    body: Bytes,
) -> Response {
    let (session, f) = match signed_form(session, &body) {
        Ok(v) => v,
        Err(res) => return res,
    };
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    let result = match get("segment_id").parse::<SegmentId>() {
        Err(_) => Err(Problem::invalid_parameter("segment_id", "choose a segment")),
        Ok(segment) => s
            .vault
            .outreach()
            .create_campaign(
                &session.principal,
                segment,
                get("purpose"),
                get("subject"),
                get("body"),
                get("without_recommendations") == "skip",
            )
            .await
            .map_err(Problem::from),
    };
    match result {
        Ok(_) => Redirect::to("/console/campaigns?saved=1").into_response(),
        Err(p) => {
            let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            page(&s, &session, None, Some((status, sentence(&p))), f).await
        }
    }
}

/// Starts sending a draft.
pub(super) async fn send(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (session, _) = match signed_form(session, &body) {
        Ok(v) => v,
        Err(res) => return res,
    };
    let Ok(id) = id.parse::<CampaignId>() else {
        return error_page(Some(&session), Problem::not_found("campaign"));
    };
    match s
        .vault
        .outreach()
        .send_campaign(&session.principal, id)
        .await
    {
        Ok(_) => Redirect::to("/console/campaigns?sending=1").into_response(),
        Err(e) => {
            let p = Problem::from(e);
            if p.status == 404 || p.status == 401 {
                return error_page(Some(&session), p);
            }
            let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::CONFLICT);
            page(
                &s,
                &session,
                None,
                Some((status, sentence(&p))),
                HashMap::new(),
            )
            .await
        }
    }
}
