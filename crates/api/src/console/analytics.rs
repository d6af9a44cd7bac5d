//! The console's analytics dashboard (issue 21): sales by outlet, sales by month and customers
//! by tier, drawn from the analyst's released answers only, each value with its 95 % interval.
//! A chart not yet released offers a button that releases it at a chosen ε, charged to the
//! budget shown at the top. Over the same services as `/v1/analytics`.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};
use steward_domain::analytics::QueryInput;
use steward_service::analytics::{AnswerRow, ReleasedQuery};

use super::{Session, SignedIn, error_page, query_param, render, signed_form, to_sign_in};
use crate::AppState;
use crate::display::{when, words};

/// The purpose the dashboard declares.
const PURPOSE: &str = "analytics";
/// The ε each chart's button offers by default.
const DEFAULT_EPSILON: &str = "0.1";

/// A chart the dashboard draws: its key, title, and the query that feeds it (without ε).
struct ChartSpec {
    key: &'static str,
    title: &'static str,
    what: &'static str,
    query: fn() -> Value,
}

const CHARTS: [ChartSpec; 3] = [
    ChartSpec {
        key: "outlet",
        title: "Sales by outlet",
        what: "purchases at each outlet",
        query: || json!({"metric": "count", "of": "purchases", "group_by": ["outlet"]}),
    },
    ChartSpec {
        key: "month",
        title: "Sales by month",
        what: "purchases in each month (months with few sales are not shown)",
        query: || json!({"metric": "count", "of": "purchases", "group_by": ["month"]}),
    },
    ChartSpec {
        key: "tier",
        title: "Customers by tier",
        what: "customers in each purchase-history tier",
        query: || json!({"metric": "count", "of": "customers", "group_by": ["tier"]}),
    },
];

/// One bar: its label, value and interval, and where to draw them (SVG units).
struct Bar {
    label: String,
    value: i64,
    ci95: u64,
    y: u32,
    width: u32,
    low: u32,
    high: u32,
}

/// A chart as the page shows it.
struct Chart {
    key: &'static str,
    title: &'static str,
    what: &'static str,
    /// When and at what ε it was released; `None`: not yet.
    released: Option<(String, String)>,
    bars: Vec<Bar>,
    height: u32,
}

/// A survey's section: its results if released, or whether they can be.
struct SurveySection {
    id: String,
    title: String,
    responses: String,
    /// Released results per question: (question, [(answer, about, give or take)]), with when
    /// and at what ε.
    released: Option<Released>,
    /// Ten answers or more: results may be released.
    ready: bool,
}

/// A survey's released results: per question, (answer, about, give or take); when; ε.
type Released = (Vec<(String, Vec<(String, i64, u64)>)>, String, String);

#[derive(Template)]
#[template(path = "console/analytics.html")]
struct AnalyticsPage<'a> {
    signed_in: Option<String>,
    csrf: &'a str,
    notice: Option<String>,
    error: Option<String>,
    spent: String,
    left: String,
    window_ends: String,
    charts: Vec<Chart>,
    surveys: Vec<SurveySection>,
    epsilon: String,
}

/// Bar area width, label column and row height of the charts (SVG units).
const BAR_AREA: f64 = 320.0;
const ROW: u32 = 26;

/// The bars of a released answer, scaled to the largest upper end of an interval.
fn bars(rows: &[AnswerRow], label: &dyn Fn(&str) -> String) -> Vec<Bar> {
    let mut rows: Vec<&AnswerRow> = rows.iter().collect();
    rows.sort_by(|a, b| a.group.values().cmp(b.group.values()));
    let top = rows
        .iter()
        .map(|r| r.value.saturating_add(r.ci95 as i64))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let x = |v: i64| ((v.max(0) as f64 / top) * BAR_AREA).round() as u32;
    rows.into_iter()
        .enumerate()
        .map(|(i, r)| {
            let key = r.group.values().next().map(String::as_str).unwrap_or("all");
            Bar {
                label: label(key),
                value: r.value,
                ci95: r.ci95,
                y: i as u32 * ROW,
                width: x(r.value),
                low: x(r.value.saturating_sub(r.ci95 as i64)),
                high: x(r.value.saturating_add(r.ci95 as i64)),
            }
        })
        .collect()
}

/// `2026-11` as "November 2026".
fn month_label(m: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    match (m.get(..4), m.get(5..).and_then(|n| n.parse::<usize>().ok())) {
        (Some(y), Some(n @ 1..=12)) => format!("{} {y}", MONTHS[n - 1]),
        _ => m.to_owned(),
    }
}

/// Whether a release answers a chart's query (any ε).
fn answers(release: &ReleasedQuery, spec: &ChartSpec) -> bool {
    let want = (spec.query)();
    ["metric", "of", "group_by"]
        .iter()
        .all(|k| release.query[*k] == want[*k])
        && release.query["filter"]
            .as_object()
            .is_none_or(|f| f.is_empty())
        && release.query["currency"].is_null()
}

async fn page(
    s: &AppState,
    session: &Session,
    notice: Option<String>,
    error: Option<(StatusCode, String)>,
    epsilon: String,
) -> Response {
    let p = &session.principal;
    let (budget, releases, outlets, surveys) = match (
        s.vault.analytics().analytics_budget(p, PURPOSE).await,
        s.vault.analytics().analytics_releases(p, PURPOSE).await,
        s.vault.analytics().analytics_outlets(p, PURPOSE).await,
        s.vault.surveys().surveys(p).await,
    ) {
        (Ok(b), Ok(r), Ok(o), Ok(v)) => (b, r, o, v),
        (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => {
            return error_page(Some(session), e.into());
        }
    };
    let surveys = surveys
        .into_iter()
        .map(|v| {
            let id = v.id.to_string();
            let released = releases
                .iter()
                .find(|r| r.query["survey"].as_str() == Some(id.as_str()))
                .and_then(|r| {
                    let questions = r.survey.as_ref()?.iter().map(|q| {
                        let rows = q
                            .rows
                            .iter()
                            .map(|a| (a.answer.clone(), a.value, a.ci95))
                            .collect();
                        (q.question.clone(), rows)
                    });
                    Some((
                        questions.collect(),
                        when(r.released_at),
                        format!("{}", r.epsilon),
                    ))
                });
            SurveySection {
                ready: matches!(v.responses, steward_domain::SegmentSize::Exact(_)),
                responses: v.responses.to_string(),
                title: v.title,
                id,
                released,
            }
        })
        .collect();
    let outlets: HashMap<String, String> = outlets.into_iter().collect();
    let charts = CHARTS
        .iter()
        .map(|spec| {
            // Newest first: the latest release of this chart's query.
            let release = releases.iter().find(|r| answers(r, spec));
            let label = |k: &str| match spec.key {
                "outlet" => outlets
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| "No outlet".to_owned()),
                "month" => month_label(k),
                _ => words(k),
            };
            let bars = release.map(|r| bars(&r.rows, &label)).unwrap_or_default();
            Chart {
                key: spec.key,
                title: spec.title,
                what: spec.what,
                released: release.map(|r| (when(r.released_at), format!("{}", r.epsilon))),
                height: (bars.len() as u32).max(1) * ROW,
                bars,
            }
        })
        .collect();
    let (status, error) = match error {
        Some((status, e)) => (status, Some(e)),
        None => (StatusCode::OK, None),
    };
    render(
        AnalyticsPage {
            signed_in: Some(session.label()),
            csrf: &session.csrf,
            notice,
            error,
            spent: format!("{}", budget.epsilon_spent),
            left: format!("{}", budget.epsilon_left),
            window_ends: when(budget.window_ends_at),
            charts,
            surveys,
            epsilon,
        },
        status,
    )
}

/// `GET /console/analytics`: the budget and the charts released so far.
pub(super) async fn show(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    uri: axum::http::Uri,
) -> Response {
    let Some(session) = session else {
        return to_sign_in();
    };
    let released = query_param(&uri, "released");
    let notice = match released.as_deref() {
        Some("survey") => {
            Some("The survey's results are released and charged to your budget.".to_owned())
        }
        k => k
            .and_then(|k| CHARTS.iter().find(|c| c.key == k))
            .map(|c| format!("“{}” is released and charged to your budget.", c.title)),
    };
    page(&s, &session, notice, None, DEFAULT_EPSILON.to_owned()).await
}

/// `POST /console/analytics`: releases one chart's query at the ε given.
pub(super) async fn release(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    body: Bytes,
) -> Response {
    let (session, f) = match signed_form(session, &body) {
        Ok(s) => s,
        Err(res) => return res,
    };
    let typed = f
        .get("epsilon")
        .map(|e| e.trim().to_owned())
        .unwrap_or_default();
    let refused = |detail: &str| Some((StatusCode::UNPROCESSABLE_ENTITY, detail.to_owned()));
    let Ok(epsilon) = typed.parse::<f64>() else {
        return page(
            &s,
            &session,
            None,
            refused("ε: a number such as 0.1"),
            typed,
        )
        .await;
    };
    let chart = f.get("chart").map(String::as_str).unwrap_or("");
    // A survey's results, or one of the charts' queries: released the same way.
    let released = if let Some(survey) = chart.strip_prefix("survey:") {
        let Ok(id) = survey.parse::<steward_domain::SurveyId>() else {
            return page(&s, &session, None, refused("Choose a survey."), typed).await;
        };
        s.vault
            .surveys()
            .survey_results(&session.principal, PURPOSE, id, epsilon)
            .await
            .map(|_| "survey")
    } else {
        let Some(spec) = CHARTS.iter().find(|c| c.key == chart) else {
            return page(
                &s,
                &session,
                None,
                refused("Choose a chart to release."),
                typed,
            )
            .await;
        };
        let mut body = (spec.query)();
        body["epsilon"] = json!(epsilon);
        let Ok(input) = serde_json::from_value::<QueryInput>(body) else {
            return page(
                &s,
                &session,
                None,
                refused("ε: a number such as 0.1"),
                typed,
            )
            .await;
        };
        s.vault
            .analytics()
            .analytics_query(&session.principal, PURPOSE, input)
            .await
            .map(|_| spec.key)
    };
    match released {
        Ok(key) => Redirect::to(&format!("/console/analytics?released={key}")).into_response(),
        Err(e) => {
            let p: crate::Problem = e.into();
            if p.status == 401 || p.status == 404 {
                return error_page(Some(&session), p);
            }
            let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::FORBIDDEN);
            let message = match p.field.as_deref() {
                Some("epsilon") => format!("ε: {}", p.detail),
                _ => p.detail.clone(),
            };
            page(&s, &session, None, Some((status, message)), typed).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_widest_interval_and_months_read_as_words() {
        let row = |g: &str, value, ci95| AnswerRow {
            group: [("tier".to_owned(), g.to_owned())].into_iter().collect(),
            value,
            ci95,
        };
        let b = bars(&[row("gold", 90, 10), row("bronze", -3, 10)], &|k| {
            k.to_owned()
        });
        assert_eq!(b[0].label, "bronze");
        assert_eq!(
            (b[0].width, b[0].low),
            (0, 0),
            "negative noise draws no bar"
        );
        assert_eq!((b[1].width, b[1].high), (288, 320));
        assert_eq!(month_label("2026-11"), "November 2026");
        assert_eq!(month_label("nonsense"), "nonsense");
    }
}
