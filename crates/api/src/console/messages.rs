//! The customer page's messages (issue 18, point 8): staff write to the customer through
//! Steward and read the thread with the replies; no address is ever on the page.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use steward_domain::{CustomerId, Direction, MessageInput, Thread, ThreadId};
use steward_service::Access;

use super::customer::{field, recording};
use super::{SignedIn, error_page};
use crate::{AppState, Problem};

/// One thread as the page shows it.
pub(super) struct ThreadView {
    pub id: String,
    pub subject: String,
    /// The subject of a message written again in the thread (within the subject's limit).
    pub reply_subject: String,
    pub replies_until: String,
    pub messages: Vec<MessageView>,
}

/// One message of a thread, as people read it.
pub(super) struct MessageView {
    pub who: &'static str,
    pub when: String,
    pub datetime: String,
    pub state: &'static str,
    pub subject: String,
    pub text: String,
}

/// A delivery state in words.
fn state_words(state: &str, reason: Option<&str>) -> &'static str {
    match (state, reason) {
        ("queued", _) | ("sending", _) => "being sent",
        ("sent", _) => "delivered to the mail server",
        ("uncertain", _) => "may not have been sent (the server stopped while sending)",
        ("failed", Some("bounced")) => "bounced: the address does not take mail",
        ("failed", Some("undeliverable")) => "not sent: no address that takes mail",
        ("failed", Some("erased")) => "not sent: the customer was erased",
        ("failed", Some("restricted")) => "not sent: the customer's data is restricted",
        ("failed", _) => "not sent: the mail server refused it",
        ("received", Some("other_sender")) => {
            "received from an address other than the customer's own: check before acting on it"
        }
        ("received", _) => "received",
        _ => "",
    }
}

/// The threads as the page shows them.
pub(super) fn views(threads: &[Thread]) -> Vec<ThreadView> {
    threads
        .iter()
        .rev()
        .map(|t| ThreadView {
            id: t.id.to_string(),
            subject: t.subject.clone(),
            reply_subject: format!("Re: {}", t.subject)
                .chars()
                .take(steward_domain::normalize::MAX_SHORT_CHARS)
                .collect(),
            replies_until: crate::display::when(t.replies_until),
            messages: t
                .messages
                .iter()
                .map(|m| MessageView {
                    who: match m.direction {
                        Direction::Out => "Sent by staff",
                        Direction::In => "Reply from the customer",
                    },
                    when: crate::display::when(m.at),
                    datetime: m.at.to_rfc3339(),
                    state: state_words(&m.state, m.reason.as_deref()),
                    subject: m.subject.clone(),
                    text: m.text.clone(),
                })
                .collect(),
        })
        .collect()
}

/// Sends a message from the customer page: decided like a read of the contact details under
/// the page's purpose; back to the page with a confirmation.
pub(super) async fn send(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (session, f, id, purpose_key) = match recording(&s, session, &id, &body).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    let sent = async {
        let thread_id = match field(&f, "thread_id") {
            "" => None,
            t => Some(
                uuid::Uuid::try_parse(t)
                    .map(ThreadId)
                    .map_err(|_| Problem::invalid_parameter("thread_id", "not a thread"))?,
            ),
        };
        let m = MessageInput {
            subject: field(&f, "subject").to_owned(),
            text: field(&f, "text").to_owned(),
            thread_id,
        }
        .validate()?;
        let purpose = s.vault.purposes().get("purpose", &purpose_key)?;
        let access = Access {
            principal: &session.principal,
            purpose: &purpose,
            reason: None,
            break_glass: false,
        };
        s.vault.outreach().send_message(&access, id, &m).await?;
        Ok::<_, Problem>(())
    }
    .await;
    match sent {
        Ok(()) => back_saying_sent(id, &purpose_key),
        Err(p) => error_page(Some(&session), p),
    }
}

fn back_saying_sent(id: CustomerId, purpose: &str) -> Response {
    Redirect::to(&format!(
        "/console/customers/{id}?purpose={purpose}&saved=message"
    ))
    .into_response()
}
