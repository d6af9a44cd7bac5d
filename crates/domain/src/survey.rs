//! Anonymous surveys (issue 21): questions with fixed choices or a 1–5 scale, answered with a
//! one-time token the server signed blind, stored with no customer, and released only as noisy
//! totals once enough people answered.

use serde::{Deserialize, Serialize};

use crate::{SegmentId, ValidationError, normalize};

/// Fewest responses before any result is released: a total over a handful of people says too
/// much about each.
pub const MIN_RESPONSES: u64 = 10;
/// Most questions in one survey.
pub const MAX_QUESTIONS: usize = 20;
/// Most choices in one question.
pub const MAX_CHOICES: usize = 10;
/// The points of a scale question.
pub const SCALE: [&str; 5] = ["1", "2", "3", "4", "5"];

/// One question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Question {
    /// One of fixed choices.
    Choice {
        /// The question, e.g. `How did you hear of us?`.
        #[schema(min_length = 1, max_length = 300)]
        text: String,
        /// Two to ten choices.
        #[schema(min_items = 2, max_items = 10)]
        choices: Vec<String>,
    },
    /// A point from 1 to 5.
    Scale {
        /// The question, e.g. `How satisfied are you?`.
        #[schema(min_length = 1, max_length = 300)]
        text: String,
    },
    /// Free text: refused until free text can be scrubbed of personal data before it is stored.
    Text {
        /// The question.
        text: String,
    },
}

impl Question {
    /// The question's text.
    pub fn text(&self) -> &str {
        match self {
            Question::Choice { text, .. } | Question::Scale { text } | Question::Text { text } => {
                text
            }
        }
    }

    /// The answers it admits, in order: its choices, or the scale's points.
    pub fn options(&self) -> Vec<String> {
        match self {
            Question::Choice { choices, .. } => choices.clone(),
            Question::Scale { .. } => SCALE.iter().map(|s| (*s).to_owned()).collect(),
            Question::Text { .. } => Vec::new(),
        }
    }
}

/// The body of `POST /v1/surveys`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SurveyInput {
    /// What customers see as its title, e.g. `Your visit to our Geneva shop`.
    #[schema(format = "short-text", max_length = 200)]
    pub title: String,
    /// One to twenty questions.
    #[schema(min_items = 1, max_items = 20)]
    pub questions: Vec<Question>,
    /// The segment it is sent to.
    pub segment_id: SegmentId,
    /// The purpose its sending is decided under (who of the segment may be asked), e.g.
    /// `marketing_email`.
    #[schema(format = "consent-purpose")]
    pub purpose: String,
}

/// A validated survey definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSurvey {
    /// Title.
    pub title: String,
    /// Questions.
    pub questions: Vec<Question>,
    /// Segment.
    pub segment_id: SegmentId,
    /// Purpose key (checked against the registry by the service).
    pub purpose: String,
}

impl SurveyInput {
    /// Validates, naming the field at fault.
    pub fn validate(self) -> Result<NewSurvey, ValidationError> {
        let title = normalize::short_text("title", &self.title)?;
        if self.questions.is_empty() || self.questions.len() > MAX_QUESTIONS {
            return Err(ValidationError::new("questions", "one to twenty questions"));
        }
        let mut questions = Vec::with_capacity(self.questions.len());
        for (i, q) in self.questions.into_iter().enumerate() {
            let at = |f: &str| format!("questions[{i}].{f}");
            let text = q.text().trim().to_owned();
            if text.is_empty() || text.chars().count() > 300 {
                return Err(ValidationError::new(at("text"), "1 to 300 characters"));
            }
            questions.push(match q {
                Question::Text { .. } => {
                    return Err(ValidationError::new(
                        at("kind"),
                        "free-text answers are not taken yet: they would need to be scrubbed of personal data before they are stored; use choices or a scale",
                    ));
                }
                Question::Scale { .. } => Question::Scale { text },
                Question::Choice { choices, .. } => {
                    let choices: Vec<String> =
                        choices.iter().map(|c| c.trim().to_owned()).collect();
                    if !(2..=MAX_CHOICES).contains(&choices.len()) {
                        return Err(ValidationError::new(at("choices"), "two to ten choices"));
                    }
                    for (j, c) in choices.iter().enumerate() {
                        if c.is_empty() || c.chars().count() > 100 {
                            return Err(ValidationError::new(
                                format!("questions[{i}].choices[{j}]"),
                                "1 to 100 characters",
                            ));
                        }
                        if choices[..j].contains(c) {
                            return Err(ValidationError::new(
                                format!("questions[{i}].choices[{j}]"),
                                "repeats an earlier choice",
                            ));
                        }
                    }
                    Question::Choice { text, choices }
                }
            });
        }
        Ok(NewSurvey {
            title,
            questions,
            segment_id: self.segment_id,
            purpose: self.purpose.trim().to_owned(),
        })
    }
}

/// Checks one response's answers against the questions: one per question, each the index of a
/// choice or a point of the scale (1–5). Returns them as the option index per question.
pub fn check_answers(questions: &[Question], answers: &[u32]) -> Result<Vec<u8>, ValidationError> {
    if answers.len() != questions.len() {
        return Err(ValidationError::new(
            "answers",
            format!("one answer per question ({})", questions.len()),
        ));
    }
    questions
        .iter()
        .zip(answers)
        .enumerate()
        .map(|(i, (q, &a))| {
            let index = match q {
                Question::Scale { .. } => a.checked_sub(1),
                _ => Some(a),
            };
            index
                .filter(|&x| (x as usize) < q.options().len())
                .map(|x| x as u8)
                .ok_or_else(|| {
                    let why = match q {
                        Question::Scale { .. } => "a point from 1 to 5",
                        _ => "the index of one of the choices, from 0",
                    };
                    ValidationError::new(format!("answers[{i}]"), why)
                })
        })
        .collect()
}

/// The exact count of each answer of each question from the stored totals ((question, answer,
/// count); answers no question has are ignored). Never leaves the service: results leave only
/// with noise.
pub fn counts(questions: &[Question], tallies: &[(u32, u32, i64)]) -> Vec<Vec<i64>> {
    let mut counts: Vec<Vec<i64>> = questions
        .iter()
        .map(|q| vec![0; q.options().len()])
        .collect();
    for &(q, a, n) in tallies {
        if let Some(c) = counts
            .get_mut(q as usize)
            .and_then(|q| q.get_mut(a as usize))
        {
            *c += n;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn survey(questions: serde_json::Value) -> Result<NewSurvey, ValidationError> {
        serde_json::from_value::<SurveyInput>(json!({
            "title": "Your visit", "questions": questions,
            "segment_id": SegmentId::new(), "purpose": "marketing_email"
        }))
        .map_err(|e| ValidationError::new("body", e.to_string()))?
        .validate()
    }

    #[test]
    fn questions_are_choices_or_scales_and_errors_name_them() {
        let ok = survey(json!([
            {"kind": "scale", "text": "How satisfied are you?"},
            {"kind": "choice", "text": "Which shop?", "choices": ["Geneva", "Zurich"]}
        ]))
        .unwrap();
        assert_eq!(ok.questions[1].options(), ["Geneva", "Zurich"]);
        let field = |q| survey(q).unwrap_err().field.into_owned();
        assert_eq!(field(json!([])), "questions");
        assert_eq!(
            field(json!([{"kind": "text", "text": "Anything else?"}])),
            "questions[0].kind"
        );
        assert_eq!(
            field(json!([{"kind": "choice", "text": "?", "choices": ["a"]}])),
            "questions[0].choices"
        );
        assert_eq!(
            field(
                json!([{"kind": "scale", "text": "ok"}, {"kind": "choice", "text": "?", "choices": ["a", "a"]}])
            ),
            "questions[1].choices[1]"
        );
        assert_eq!(
            field(json!([{"kind": "scale", "text": " "}])),
            "questions[0].text"
        );
    }

    #[test]
    fn answers_are_checked_and_tallied() {
        let q = survey(json!([
            {"kind": "scale", "text": "How satisfied?"},
            {"kind": "choice", "text": "Which?", "choices": ["a", "b", "c"]}
        ]))
        .unwrap()
        .questions;
        assert_eq!(check_answers(&q, &[5, 2]).unwrap(), [4, 2]);
        assert_eq!(check_answers(&q, &[0, 2]).unwrap_err().field, "answers[0]");
        assert_eq!(check_answers(&q, &[6, 2]).unwrap_err().field, "answers[0]");
        assert_eq!(check_answers(&q, &[3, 3]).unwrap_err().field, "answers[1]");
        assert_eq!(check_answers(&q, &[3]).unwrap_err().field, "answers");
        let t = counts(
            &q,
            &[
                (0, 4, 2),
                (0, 0, 1),
                (1, 2, 2),
                (1, 0, 1),
                (1, 9, 5),
                (7, 0, 1),
            ],
        );
        assert_eq!(t, vec![vec![1, 0, 0, 0, 2], vec![1, 0, 2]]);
    }
}
