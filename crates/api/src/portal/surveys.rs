//! The portal's surveys (issue 21): the questions, and the one response token the customer's
//! browser gets signed blind (`survey.js` does the blinding, the unblinding and the anonymous
//! submission to `POST /v1/surveys/{id}/responses`, which carries no cookie).

use askama::Template;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use steward_domain::SurveyId;
use steward_domain::survey::Question;

use super::{SignedIn, checked_form, message_page, to_start};
use crate::web::render;
use crate::{AppState, Problem};

/// A question as the page shows it: its text, and its answers as (value sent, label).
struct Shown {
    text: String,
    options: Vec<(u32, String)>,
}

#[derive(Template)]
#[template(path = "portal/survey.html")]
struct SurveyPage<'a> {
    signed_in: bool,
    csrf: &'a str,
    id: String,
    title: String,
    questions: Vec<Shown>,
    key_n: String,
    key_e: String,
    issued: bool,
}

fn shown(q: &Question) -> Shown {
    let scale = matches!(q, Question::Scale { .. });
    Shown {
        text: q.text().to_owned(),
        options: q
            .options()
            .into_iter()
            .enumerate()
            .map(|(i, label)| (if scale { i as u32 + 1 } else { i as u32 }, label))
            .collect(),
    }
}

fn survey_id(raw: &str) -> Result<SurveyId, Problem> {
    raw.parse()
        .map_err(|_| Problem::invalid_parameter("id", "not a survey"))
}

/// `GET /portal/surveys/{id}`: the questions, for a customer who was invited.
pub(super) async fn page(
    State(s): State<AppState>,
    SignedIn(visit): SignedIn,
    Path(id): Path<String>,
) -> Response {
    let Some(visit) = visit else {
        return to_start();
    };
    let id = match survey_id(&id) {
        Ok(id) => id,
        Err(p) => return message_page(Some(&visit), p),
    };
    match s.vault.surveys().portal_survey(&visit.session, id).await {
        Ok(survey) => render(
            SurveyPage {
                signed_in: true,
                csrf: &visit.csrf,
                id: survey.id.to_string(),
                title: survey.title,
                questions: survey.questions.iter().map(shown).collect(),
                key_n: survey.key_n,
                key_e: survey.key_e,
                issued: survey.issued,
            },
            StatusCode::OK,
        ),
        Err(e) => message_page(Some(&visit), e.into()),
    }
}

/// The blind signature, for the page's script.
#[derive(Serialize)]
struct Signed {
    blind_signature: String,
}

/// `POST /portal/surveys/{id}/token` (`csrf`, `blinded`): signs the customer's blinded token,
/// once. Answers JSON for the page's script; refusals as problem+json.
pub(super) async fn token(
    State(s): State<AppState>,
    SignedIn(visit): SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(visit) = visit else {
        return Problem::unauthorized().into_response();
    };
    let Some(f) = checked_form(&visit, &body) else {
        return Problem::forbidden("csrf", "the form did not come from this portal".into())
            .into_response();
    };
    let result = async {
        let id = survey_id(&id)?;
        let blinded = f
            .get("blinded")
            .filter(|b| b.len() <= 1024)
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
            .ok_or_else(|| Problem::invalid_parameter("blinded", "not base64url"))?;
        let signature = s
            .vault
            .surveys()
            .issue_survey_token(&visit.session, id, &blinded)
            .await?;
        Ok::<_, Problem>(Signed {
            blind_signature: URL_SAFE_NO_PAD.encode(signature),
        })
    }
    .await;
    match result {
        Ok(signed) => Json(signed).into_response(),
        Err(p) => p.into_response(),
    }
}
