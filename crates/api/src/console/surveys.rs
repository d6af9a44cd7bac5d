//! The console's surveys (issue 21): marketing and the DPO compose an anonymous survey from a
//! form (up to five questions, each a 1–5 scale or fixed choices), send it to a segment, and see
//! how many were asked and answered — never who answered what. Results are released by analysts
//! on the analytics page. Over the same services as `/v1/surveys`.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};
use steward_domain::SurveyId;
use steward_domain::survey::SurveyInput;

use super::{Session, SignedIn, error_page, query_param, render, signed_form, to_sign_in};
use crate::display::{when, words};
use crate::{AppState, Problem};

/// Question slots the form offers.
const SLOTS: usize = 5;

/// A survey as the page lists it.
struct Row {
    id: String,
    title: String,
    questions: usize,
    segment: String,
    purpose: String,
    sent: Option<String>,
    invited: String,
    responses: String,
}

#[derive(Template)]
#[template(path = "console/surveys.html")]
struct SurveysPage<'a> {
    signed_in: Option<String>,
    csrf: &'a str,
    notice: Option<String>,
    error: Option<String>,
    surveys: Vec<Row>,
    segments: Vec<(String, String)>,
    purposes: Vec<(String, String)>,
    slots: Vec<usize>,
    typed: HashMap<String, String>,
}

async fn page(
    s: &AppState,
    session: &Session,
    notice: Option<String>,
    error: Option<(StatusCode, String)>,
    typed: HashMap<String, String>,
) -> Response {
    let p = &session.principal;
    let (surveys, segments) = match (
        s.vault.surveys().surveys(p).await,
        s.vault.segments().segments(p).await,
    ) {
        (Ok(v), Ok(seg)) => (v, seg),
        (Err(e), _) | (_, Err(e)) => return error_page(Some(session), e.into()),
    };
    let names: HashMap<String, String> = segments
        .iter()
        .map(|g| (g.id.to_string(), g.name.clone()))
        .collect();
    let rows = surveys
        .into_iter()
        .map(|v| Row {
            id: v.id.to_string(),
            questions: v.questions.len(),
            segment: names
                .get(&v.segment_id.to_string())
                .cloned()
                .unwrap_or_else(|| "a segment removed since".into()),
            purpose: words(&v.purpose),
            sent: v.sent_at.map(when),
            invited: v.invited.to_string(),
            responses: v.responses.to_string(),
            title: v.title,
        })
        .collect();
    let purposes = super::declarable_purposes(s, session);
    let (status, error) = match error {
        Some((status, e)) => (status, Some(e)),
        None => (StatusCode::OK, None),
    };
    render(
        SurveysPage {
            signed_in: Some(session.label()),
            csrf: &session.csrf,
            notice,
            error,
            surveys: rows,
            segments: segments
                .into_iter()
                .map(|g| (g.id.to_string(), g.name))
                .collect(),
            purposes,
            slots: (1..=SLOTS).collect(),
            typed,
        },
        status,
    )
}

/// `GET /console/surveys`.
pub(super) async fn show(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    uri: axum::http::Uri,
) -> Response {
    let Some(session) = session else {
        return to_sign_in();
    };
    let notice = match query_param(&uri, "done").as_deref() {
        Some("saved") => Some("The survey is saved. Send it when you are ready.".to_owned()),
        Some("sent") => Some(
            "The survey is sent: the customers it reaches see it in their privacy portal."
                .to_owned(),
        ),
        _ => None,
    };
    page(&s, &session, notice, None, HashMap::new()).await
}

/// The survey the form describes: the filled question slots, in order, and each question's
/// slot number (to name it in an error).
fn survey_of(f: &HashMap<String, String>) -> (Value, Vec<usize>) {
    let get = |k: &str| f.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut questions = Vec::new();
    let mut slots = Vec::new();
    for i in 1..=SLOTS {
        let Some(text) = get(&format!("q{i}_text")) else {
            continue;
        };
        let q = match get(&format!("q{i}_kind")) {
            Some("choice") => {
                let choices: Vec<&str> = get(&format!("q{i}_choices"))
                    .unwrap_or("")
                    .lines()
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .collect();
                json!({"kind": "choice", "text": text, "choices": choices})
            }
            _ => json!({"kind": "scale", "text": text}),
        };
        questions.push(q);
        slots.push(i);
    }
    let survey = json!({
        "title": get("title").unwrap_or(""),
        "segment_id": get("segment_id").unwrap_or(""),
        "purpose": get("purpose").unwrap_or(""),
        "questions": questions,
    });
    (survey, slots)
}

/// A refusal said as people read it: `questions[1].choices` as the question's slot ("Question 3"
/// when the second filled slot is the third).
fn said(p: &Problem, slots: &[usize]) -> String {
    let field = p.field.as_deref().unwrap_or("");
    let question = field
        .strip_prefix("questions[")
        .and_then(|f| f.split(']').next())
        .and_then(|i| i.parse::<usize>().ok());
    let detail = p.detail.rsplit_once(": ").map_or(&*p.detail, |d| d.1);
    match (question, field) {
        (Some(i), _) => format!(
            "Question {}: {detail}",
            slots.get(i).copied().unwrap_or(i + 1)
        ),
        (None, "questions") => "Write at least one question.".to_owned(),
        (None, "segment_id") => format!("Segment: {detail}"),
        (None, "title") => format!("Title: {detail}"),
        _ => super::purposes::sentence(p),
    }
}

/// `POST /console/surveys`: composes a survey from the form.
pub(super) async fn compose(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    body: Bytes,
) -> Response {
    let (session, f) = match signed_form(session, &body) {
        Ok(s) => s,
        Err(res) => return res,
    };
    // Refused before the input is read: a caller who may not compose learns nothing of it.
    if !s
        .vault
        .surveys()
        .may_manage_surveys(&session.principal)
        .await
    {
        return error_page(
            Some(&session),
            Problem::forbidden(
                "Authorization",
                "only marketing and the DPO compose surveys".into(),
            ),
        );
    }
    let (survey, slots) = survey_of(&f);
    let result = async {
        let input: SurveyInput = serde_json::from_value(survey)
            .map_err(|_| Problem::invalid_parameter("segment_id", "choose a segment"))?;
        s.vault
            .surveys()
            .create_survey(&session.principal, input)
            .await
            .map_err(Problem::from)
    }
    .await;
    match result {
        Ok(_) => Redirect::to("/console/surveys?done=saved").into_response(),
        Err(p) => {
            let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            page(&s, &session, None, Some((status, said(&p, &slots))), f).await
        }
    }
}

/// `POST /console/surveys/{id}/send`: sends a survey to its segment.
pub(super) async fn send(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (session, _) = match signed_form(session, &body) {
        Ok(s) => s,
        Err(res) => return res,
    };
    let Ok(id) = id.parse::<SurveyId>() else {
        return error_page(
            Some(&session),
            Problem::invalid_parameter("id", "not a survey"),
        );
    };
    match s.vault.surveys().send_survey(&session.principal, id).await {
        Ok(_) => Redirect::to("/console/surveys?done=sent").into_response(),
        Err(e) => {
            let p: Problem = e.into();
            if matches!(p.status, 401 | 404) {
                return error_page(Some(&session), p);
            }
            let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::FORBIDDEN);
            page(
                &s,
                &session,
                None,
                Some((status, said(&p, &[]))),
                HashMap::new(),
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::web::form_of as form;

    #[test]
    fn filled_slots_become_questions() {
        let (v, slots) = survey_of(&form(&[
            ("title", "Your visit"),
            ("segment_id", "x"),
            ("purpose", "marketing_email"),
            ("q1_text", "How satisfied?"),
            ("q1_kind", "scale"),
            ("q2_text", ""),
            ("q3_text", "Why?"),
            ("q3_kind", "choice"),
            ("q3_choices", "A gift\n\n A repair \n"),
        ]));
        assert_eq!(slots, [1, 3]);
        assert_eq!(
            v["questions"],
            json!([
                {"kind": "scale", "text": "How satisfied?"},
                {"kind": "choice", "text": "Why?", "choices": ["A gift", "A repair"]}
            ])
        );
        let p = Problem::from(steward_domain::ValidationError::new(
            "questions[1].choices",
            "two to ten choices",
        ));
        assert_eq!(said(&p, &slots), "Question 3: two to ten choices");
    }
}
