//! The console's segments (issue 18): marketing and the DPO define who a campaign would reach
//! from a form of conditions (all of them must hold), see each segment in words, and ask how
//! many customers it reaches under a purpose they may declare: a number, or "fewer than 10",
//! never a name. Over the same services as `/v1/segments`.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};
use steward_domain::{OutletId, SegmentId};

use super::purposes::sentence;
use super::{Session, SignedIn, error_page, query_param, render, signed_form, to_sign_in};
use crate::display::{minor_units, money, when, words};
use crate::{AppState, Problem};

/// A segment as the page shows it.
struct Row {
    id: String,
    name: String,
    description: String,
    defined: String,
}

#[derive(Template)]
#[template(path = "console/segments.html")]
struct SegmentsPage<'a> {
    signed_in: Option<String>,
    csrf: &'a str,
    notice: Option<String>,
    error: Option<String>,
    segments: Vec<Row>,
    /// Purposes the caller may declare, as (key, title).
    purposes: Vec<(String, String)>,
    outlets: Vec<(String, String)>,
    tiers: &'static [&'static str],
    channels: Vec<(&'static str, String)>,
    /// What was typed in the form, kept on error.
    typed: HashMap<String, String>,
}

/// The conditions of the form, in the order they are combined: (field names, label).
const CONDITIONS: [(&str, &str); 9] = [
    ("category", "Bought"),
    ("min_count", "Number of purchases"),
    ("spent_min", "Spent at least"),
    ("last_within", "Last purchase"),
    ("tier", "Tier"),
    ("outlet", "Registered at"),
    ("channel", "In touch"),
    ("consent_purpose", "Consent"),
    ("language", "Preferred language"),
];

async fn page(
    s: &AppState,
    session: &Session,
    notice: Option<String>,
    error: Option<(StatusCode, String)>,
    typed: HashMap<String, String>,
) -> Response {
    let p = &session.principal;
    let (segments, outlets) = match (
        s.vault.segments().segments_with_rules(p).await,
        s.vault.segments().segment_outlets(p).await,
    ) {
        (Ok(seg), Ok(out)) => (seg, out),
        (Err(e), _) | (_, Err(e)) => return error_page(Some(session), e.into()),
    };
    let names: HashMap<OutletId, String> = outlets.iter().map(|o| (o.id, o.name.clone())).collect();
    let mut rows = Vec::with_capacity(segments.len());
    for (seg, rule) in segments {
        let description = match rule {
            Some(r) => r.describe(
                &|o| names.get(&o).cloned().unwrap_or_else(|| "an outlet".into()),
                &money,
            ),
            None => "refers to something removed since; define it again".into(),
        };
        rows.push(Row {
            id: seg.id.to_string(),
            name: seg.name,
            description,
            defined: when(seg.created_at),
        });
    }
    let purposes = super::declarable_purposes(s, session);
    let (status, error) = match error {
        Some((status, e)) => (status, Some(e)),
        None => (StatusCode::OK, None),
    };
    render(
        SegmentsPage {
            signed_in: Some(session.label()),
            csrf: &session.csrf,
            notice,
            error,
            segments: rows,
            purposes,
            outlets: outlets
                .into_iter()
                .map(|o| (o.id.to_string(), o.name))
                .collect(),
            tiers: &steward_domain::search::TIERS,
            channels: steward_domain::Channel::ALL
                .iter()
                .map(|c| (c.as_str(), words(c.as_str())))
                .collect(),
            typed,
        },
        status,
    )
}

/// `GET /console/segments`, and with `?size=ID&purpose=P` a segment's size under a purpose.
pub(super) async fn show(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    uri: axum::http::Uri,
) -> Response {
    let Some(session) = session else {
        return to_sign_in();
    };
    let mut notice = query_param(&uri, "saved").map(|_| "The segment is saved.".to_owned());
    if let Some(id) = query_param(&uri, "size") {
        let Ok(id) = id.parse::<SegmentId>() else {
            return error_page(
                Some(&session),
                Problem::invalid_parameter("size", "not a segment"),
            );
        };
        let purpose = query_param(&uri, "purpose").unwrap_or_default();
        let segment = s.vault.segments().segment(&session.principal, id).await;
        let size = s
            .vault
            .segments()
            .segment_size(&session.principal, id, &purpose)
            .await;
        match (segment, size) {
            (Ok(seg), Ok(v)) => {
                let n = match v.size {
                    steward_domain::SegmentSize::Exact(1) => "1 customer".to_owned(),
                    other => format!("{other} customers"),
                };
                notice = Some(format!(
                    "“{}” reaches {n} for {} ({}).",
                    seg.name,
                    words(&v.purpose),
                    when(v.evaluated_at)
                ));
            }
            (Err(e), _) | (_, Err(e)) => {
                let p: Problem = e.into();
                if p.status == 404 || p.status == 401 {
                    return error_page(Some(&session), p);
                }
                let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::FORBIDDEN);
                return page(&s, &session, None, Some((status, p.detail)), HashMap::new()).await;
            }
        }
    }
    page(&s, &session, notice, None, HashMap::new()).await
}

/// The rules the form describes: every filled condition, all of which must hold; with each
/// rule's label, to name it in an error.
fn rules_of(f: &HashMap<String, String>) -> Result<(Value, Vec<&'static str>), Problem> {
    let get = |k: &str| f.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let days = |k: &str| get(k).map(|d| d.parse::<i64>().unwrap_or(-1));
    let mut rules = Vec::new();
    let mut labels = Vec::new();
    let mut push = |rule: Value, label: &'static str| {
        rules.push(rule);
        labels.push(label);
    };
    let label = |field: &str| {
        CONDITIONS
            .iter()
            .find(|(f, _)| *f == field)
            .map_or("", |(_, l)| *l)
    };
    if get("category").is_some() || get("min_count").is_some() {
        let mut p = json!({"category": get("category"), "within_days": days("within_days")});
        if let Some(n) = get("min_count") {
            p["min_count"] = json!(n.parse::<i64>().unwrap_or(-1));
        }
        push(json!({"purchased": p}), label("category"));
    }
    // A window or a state with nothing to apply to would make the segment broader than meant.
    for (modifier, main, label) in [
        ("within_days", &["category", "min_count"][..], "Bought"),
        ("spent_within", &["spent_min"][..], "Spent at least"),
        ("currency", &["spent_min"][..], "Spent at least"),
        ("channel_within", &["channel"][..], "In touch"),
    ] {
        if get(modifier).is_some() && main.iter().all(|m| get(m).is_none()) {
            return Err(Problem::invalid_parameter(
                modifier,
                match label {
                    "Bought" => "applies to a category or a number of purchases: fill one in",
                    "Spent at least" => "applies to an amount spent: fill it in",
                    _ => "applies to a channel: choose one",
                },
            ));
        }
    }
    if let Some(amount) = get("spent_min") {
        let minor = minor_units(amount, get("currency").unwrap_or("")).ok_or_else(|| {
            Problem::invalid_parameter("spent_min", "must be an amount such as 5000.00")
        })?;
        push(
            json!({"spent": {"currency": get("currency").unwrap_or(""), "min_minor": minor, "within_days": days("spent_within")}}),
            label("spent_min"),
        );
    }
    if let Some(d) = days("last_within") {
        push(
            json!({"last_purchase": {"max_days": d}}),
            label("last_within"),
        );
    }
    if let Some(t) = get("tier") {
        push(json!({"tier": t}), label("tier"));
    }
    if let Some(o) = get("outlet") {
        push(json!({"outlet": o}), label("outlet"));
    }
    if let Some(c) = get("channel") {
        let channel = (c != "any").then_some(c);
        push(
            json!({"interacted": {"channel": channel, "within_days": days("channel_within")}}),
            label("channel"),
        );
    }
    if let Some(p) = get("consent_purpose") {
        push(
            json!({"consent": {"purpose": p, "state": get("consent_state").unwrap_or("granted")}}),
            label("consent_purpose"),
        );
    }
    if let Some(l) = get("language") {
        push(json!({"language": l}), label("language"));
    }
    Ok((json!({ "all": rules }), labels))
}

/// A refusal of the rules, said with the condition's label instead of the rule's path.
fn said(p: &Problem, labels: &[&str]) -> String {
    let at = p
        .field
        .as_deref()
        .and_then(|f| f.strip_prefix("rules.all["))
        .and_then(|f| f.split(']').next())
        .and_then(|i| i.parse::<usize>().ok())
        .and_then(|i| labels.get(i));
    match at {
        Some(label) => format!(
            "{label}: {}",
            p.detail.rsplit_once(": ").map_or(&*p.detail, |d| d.1)
        ),
        None => sentence(p),
    }
}

/// `POST /console/segments`: defines a segment from the form.
pub(super) async fn define(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    body: Bytes,
) -> Response {
    let (session, f) = match signed_form(session, &body) {
        Ok(s) => s,
        Err(res) => return res,
    };
    // Refused before the input is read: a caller who may not define learns nothing of it.
    if !s
        .vault
        .segments()
        .may_manage_segments(&session.principal)
        .await
    {
        return error_page(
            Some(&session),
            Problem::forbidden(
                "Authorization",
                "only marketing and the DPO define segments".into(),
            ),
        );
    }
    let name = f
        .get("name")
        .map(|n| n.trim().to_owned())
        .unwrap_or_default();
    let result = match rules_of(&f) {
        Err(p) => Err(sentence(&p)),
        Ok((rules, labels)) => s
            .vault
            .segments()
            .create_segment(&session.principal, &name, &rules)
            .await
            .map_err(|e| said(&e.into(), &labels)),
    };
    match result {
        Ok(seg) => Redirect::to(&format!("/console/segments?saved={}", seg.id)).into_response(),
        Err(message) => {
            let error = Some((StatusCode::UNPROCESSABLE_ENTITY, message));
            page(&s, &session, None, error, f).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::web::form_of as form;

    #[test]
    fn filled_conditions_become_rules() {
        let (rules, labels) = rules_of(&form(&[
            ("category", "watch"),
            ("within_days", "365"),
            ("spent_min", "5000"),
            ("currency", "CHF"),
            ("tier", ""),
            ("channel", "any"),
        ]))
        .unwrap();
        assert_eq!(
            rules,
            json!({"all": [
                {"purchased": {"category": "watch", "within_days": 365}},
                {"spent": {"currency": "CHF", "min_minor": 500000, "within_days": null}},
                {"interacted": {"channel": null, "within_days": null}}
            ]})
        );
        assert_eq!(labels, ["Bought", "Spent at least", "In touch"]);
        assert_eq!(rules_of(&form(&[])).unwrap().0, json!({"all": []}));
        assert!(rules_of(&form(&[("spent_min", "lots")])).is_err());
    }

    #[test]
    fn a_refusal_names_the_condition() {
        let p = Problem::from(steward_domain::ValidationError::new(
            "rules.all[1].spent.currency",
            "must be an ISO 4217 code such as EUR",
        ));
        assert_eq!(
            said(&p, &["Bought", "Spent at least"]),
            "Spent at least: must be an ISO 4217 code such as EUR"
        );
    }
}
