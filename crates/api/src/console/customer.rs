//! The customer's page of the console: the decided read, break-glass, and what staff record on
//! the customer's behalf (interactions, purchases, consents given in store).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use steward_domain::ValidationError;
use steward_domain::{CustomerId, CustomerView};
use steward_service::{Access, Actor, Principal};

use super::{Form, Session, SignedIn, error_page, query_param, render, signed_form, to_sign_in};
use crate::{AppState, Problem};

/// One field of the customer page.
struct FieldView {
    label: &'static str,
    value: Option<String>,
    outcome: &'static str,
    why: String,
}

#[derive(Template)]
#[template(path = "console/customer.html")]
struct CustomerPage<'a> {
    signed_in: Option<String>,
    csrf: &'a str,
    id: CustomerId,
    purpose: &'a str,
    /// The purpose as people read it.
    purpose_title: String,
    fields: Vec<FieldView>,
    /// This read was a break-glass read (flagged for the DPO).
    broke_glass: bool,
    /// The reason this read was made with (not a break-glass one), to keep for the next page.
    reason: Option<String>,
    /// The reader's roles may break glass (the policy decides; the form is offered to them).
    may_break_glass: bool,
    /// Consent-based purposes (key, title) and the customer's state for each, if the reader may
    /// see them.
    consents: Option<Vec<(String, String, &'static str)>>,
    /// Interaction channels, for the form.
    channels: Vec<&'static str>,
    /// The timeline's page, newest first.
    timeline: Vec<Event>,
    /// The cursor of the older page, if any.
    older: Option<String>,
    /// What the timeline could show: a sentence for people.
    timeline_note: String,
    /// What the reader may do (the forms shown).
    may: steward_service::CustomerActions,
    /// A confirmation of what was just saved.
    saved: Option<&'static str>,
    /// Customers sharing this one's e-mail or phone whom the reader may merge here: (id, name
    /// as shown).
    duplicates: Vec<(String, String)>,
    /// The message threads, newest first, if the reader may read the customer's communications.
    threads: Vec<super::messages::ThreadView>,
    /// The reader may write to the customer under this purpose (the policy decides).
    may_message: bool,
    /// What went to recipients outside the business (issue 22), for readers of the access log:
    /// (recipient, purpose, data, last, times).
    disclosures: Vec<(String, String, String, String, i64)>,
}

/// One line of the timeline, as people read it.
struct Event {
    when: String,
    datetime: String,
    kind: &'static str,
    what: String,
    detail: String,
}

/// How many events a page of the timeline shows.
const TIMELINE_PAGE: u32 = 20;

fn events(t: &steward_service::Timeline) -> Vec<Event> {
    use steward_service::TimelineEntry;
    t.entries
        .iter()
        .map(|e| match e {
            TimelineEntry::Purchase(p) => Event {
                when: crate::display::when(p.occurred_at),
                datetime: p.occurred_at.to_rfc3339(),
                kind: "Purchase",
                what: format!("{} ({})", p.item, p.category),
                detail: crate::display::money(p.amount_minor, &p.currency),
            },
            TimelineEntry::Interaction(i) => Event {
                when: crate::display::when(i.occurred_at),
                datetime: i.occurred_at.to_rfc3339(),
                kind: "Interaction",
                what: i.text.clone(),
                detail: if i.masked {
                    let masked: Vec<&str> = i
                        .pii_types
                        .iter()
                        .filter(|t| t.is_sensitive())
                        .map(|t| t.label())
                        .collect();
                    format!(
                        "{} · {} · masked for you: {}",
                        i.channel.as_str(),
                        i.source,
                        masked.join(", ")
                    )
                } else {
                    format!("{} · {}", i.channel.as_str(), i.source)
                },
            },
        })
        .collect()
}

/// What the timeline holds, in a sentence: which kinds the policy shows for this purpose.
fn timeline_note(t: &steward_service::Timeline) -> String {
    let purchases = match t.purchases {
        "show" => "purchases",
        "abstract" => "the purchases made at your outlets (the rest only as the summary above)",
        _ => "no purchases (withheld for this purpose)",
    };
    let messages = if t.communications {
        "interactions"
    } else {
        "no interactions (withheld for this purpose)"
    };
    format!("Newest first: {purchases} and {messages}.")
}

/// Reads and renders a customer's page.
async fn customer_page(
    s: &AppState,
    session: &Session,
    id: CustomerId,
    purpose_key: &str,
    read: Read<'_>,
    before: Option<uuid::Uuid>,
    saved: Option<&str>,
) -> Response {
    let (reason, glass) = match read {
        Read::Plain => (None, false),
        Read::Reason(r) => (Some(r), false),
        Read::BreakGlass(r) => (Some(r), true),
    };
    let Ok(purpose) = s.vault.purposes().get("purpose", purpose_key) else {
        return error_page(
            Some(session),
            Problem::invalid_parameter("purpose", "choose why you are looking"),
        );
    };
    let access = Access {
        principal: &session.principal,
        purpose: &purpose,
        reason,
        break_glass: glass,
    };
    // Offered only where the policy would allow it (and not again on a break-glass read).
    let may_break_glass = !glass
        && s.vault
            .records()
            .may_break_glass(&session.principal, &purpose, id)
            .await
            .unwrap_or(false);
    let c = match s.vault.records().read_customer(&access, id).await {
        Ok(c) => c,
        Err(e) => return error_page(Some(session), e.into()),
    };
    // The ledger only once the page will be shown: a refused page reads (and records) nothing
    // more than its refusal.
    let consents = consent_rows(s, &session.principal, id).await;
    // The timeline is read under the usual rules even on a break-glass page: one break-glass
    // read (one alert for the DPO) per page, of the record above.
    let timeline_access = Access {
        break_glass: false,
        ..access
    };
    let timeline = match s
        .vault
        .records()
        .read_timeline(&timeline_access, id, before, TIMELINE_PAGE)
        .await
    {
        Ok(t) => t,
        Err(e) => return error_page(Some(session), e.into()),
    };
    let may = s
        .vault
        .records()
        .customer_actions(&session.principal, id)
        .await
        .unwrap_or_default();
    // Shown with the timeline (the same decision: communications, under the usual rules); a
    // reader who may not read them sees no threads.
    let threads = if timeline.communications {
        match s.vault.outreach().read_threads(&timeline_access, id).await {
            Ok(t) => super::messages::views(&t),
            Err(e) => return error_page(Some(session), e.into()),
        }
    } else {
        Vec::new()
    };
    let may_message = s
        .vault
        .outreach()
        .may_send_message(&session.principal, &purpose, id)
        .await;
    // Shown to those the policy lets read the customer's access log (the DPO, support), and
    // recorded as such a read; for anyone else the section is not there.
    let disclosures = match s
        .vault
        .sharing()
        .disclosures(steward_service::Actor::Principal(&session.principal), id)
        .await
    {
        Ok(d) => d
            .into_iter()
            .map(|d| {
                (
                    d.recipient,
                    crate::display::words(&d.purpose),
                    d.categories
                        .iter()
                        .map(|c| c.label())
                        .collect::<Vec<_>>()
                        .join(", "),
                    crate::display::when(d.last_at),
                    d.times,
                )
            })
            .collect(),
        Err(steward_service::ServiceError::Forbidden { .. }) => Vec::new(),
        Err(e) => return error_page(Some(session), e.into()),
    };
    let duplicates = if may.merge {
        // Read under the purpose alone: never under this page's reason or break-glass, which
        // were given for this customer, not for others.
        let plain = Access {
            reason: None,
            break_glass: false,
            ..access
        };
        match s.vault.possible_duplicates(&plain, id).await {
            Ok(d) => d
                .into_iter()
                .map(|v| {
                    let label = v.name.unwrap_or_else(|| "(name not shown)".into());
                    (v.id.to_string(), label)
                })
                .collect(),
            Err(e) => return error_page(Some(session), e.into()),
        }
    } else {
        Vec::new()
    };
    {
        render(
            CustomerPage {
                signed_in: Some(session.label()),
                csrf: &session.csrf,
                id,
                purpose: &purpose.key,
                purpose_title: crate::display::words(&purpose.key),
                fields: field_views(&c),
                broke_glass: glass,
                reason: reason.filter(|_| !glass).map(str::to_owned),
                may_break_glass,
                consents,
                channels: steward_domain::Channel::ALL
                    .iter()
                    .map(|c| c.as_str())
                    .collect(),
                older: timeline.next.map(|n| n.to_string()),
                timeline_note: timeline_note(&timeline),
                timeline: events(&timeline),
                may,
                duplicates,
                threads,
                may_message,
                disclosures,
                saved: saved.and_then(|what| match what {
                    "created" => Some("The customer is registered."),
                    "updated" => Some("The changes are saved."),
                    "unchanged" => Some("Nothing was changed."),
                    "pending" => Some("The changes are saved. The new e-mail address takes effect when the customer confirms it with the code we sent there."),
                    "merged" => Some("The duplicate is merged into this customer: its purchases, interactions and consent withdrawals are here, and it is erased."),
                    "recorded" => Some("Recorded."),
                    "message" => Some("The message is on its way. Replies will appear in the thread below."),
                    _ => None,
                }),
            },
            StatusCode::OK,
        )
    }
}

/// How a customer's page is read.
enum Read<'a> {
    /// Under the purpose alone.
    Plain,
    /// With a stated reason (the DPO reads only so); it travels in a form body, never a URL.
    Reason(&'a str),
    /// Beyond the usual rules, with a reason (flagged for the DPO).
    BreakGlass(&'a str),
}

/// A read with a stated reason (the DPO's): the reason travels in the body, never the URL.
pub(super) async fn read_with_reason(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (session, f) = match signed_form(session, &body) {
        Ok(s) => s,
        Err(res) => return res,
    };
    let Ok(id) = uuid::Uuid::try_parse(&id).map(CustomerId) else {
        return error_page(Some(&session), Problem::not_found("customer"));
    };
    let reason = f.get("reason").map(|r| r.trim()).unwrap_or("");
    if reason.is_empty() || reason.chars().count() > 500 {
        return error_page(
            Some(&session),
            Problem::invalid_parameter(
                "reason",
                "say why you need to look (500 characters at most)",
            ),
        );
    }
    let purpose = f.get("purpose").map(String::as_str).unwrap_or("");
    // The timeline's older pages come back here, with the reason, in the body.
    let before = f.get("before").and_then(|b| uuid::Uuid::try_parse(b).ok());
    customer_page(
        &s,
        &session,
        id,
        purpose,
        Read::Reason(reason),
        before,
        None,
    )
    .await
}

/// A break-glass read: beyond the usual rules, with a reason of at least 20 characters, for the
/// roles the policy allows; flagged for the DPO. The reason travels in the body, never the URL.
pub(super) async fn break_glass(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (session, f) = match signed_form(session, &body) {
        Ok(s) => s,
        Err(res) => return res,
    };
    let Ok(id) = uuid::Uuid::try_parse(&id).map(CustomerId) else {
        return error_page(Some(&session), Problem::not_found("customer"));
    };
    let reason = f.get("reason").map(|r| r.trim()).unwrap_or("");
    if steward_domain::normalize::visible_chars(reason) < 20 || reason.chars().count() > 500 {
        return error_page(
            Some(&session),
            Problem::invalid_parameter(
                "reason",
                "a break-glass read needs a reason of 20 visible characters or more (500 at most)",
            ),
        );
    }
    let purpose = f.get("purpose").map(String::as_str).unwrap_or("");
    customer_page(
        &s,
        &session,
        id,
        purpose,
        Read::BreakGlass(reason),
        None,
        None,
    )
    .await
}

/// The page's fields, each with its outcome and the policies that decided it.
fn field_views(c: &CustomerView) -> Vec<FieldView> {
    let d = &c.decision;
    let outcome = |f: &str| {
        if d.withheld.iter().any(|x| x == f) {
            "withhold"
        } else if d.masked.iter().any(|x| x == f) {
            "mask"
        } else if d.abstracted.iter().any(|x| x == f) {
            "abstract"
        } else {
            "show"
        }
    };
    let why = |f: &str| match d.policies.get(f) {
        Some(p) if !p.is_empty() => format!("decided by {}", p.join(", ")),
        _ => "no policy allows it for this purpose (deny by default)".to_owned(),
    };
    let purchases = c.purchase_summary.as_ref().map(|p| {
        format!(
            "tier {}, {} purchases, {}",
            p.tier,
            p.purchase_count_band,
            if p.eligible_for_allocation {
                "eligible for allocation"
            } else {
                "not eligible for allocation"
            }
        )
    });
    // Every declared profile field, then the purchase history.
    c.texts()
        .into_iter()
        .map(|(f, value)| (f.label(), f.name(), value))
        .chain([("Purchase history", "purchases", purchases)])
        .map(|(label, f, value)| {
            let outcome = outcome(f);
            // A shown history has no summary; its items are not on this page (yet), and "none
            // recorded" would be untrue.
            let value = match (f, outcome, value) {
                ("purchases", "show", None) => {
                    Some("shown in full for this purpose: see the timeline below".into())
                }
                (_, _, v) => v,
            };
            FieldView {
                label,
                value,
                outcome,
                why: why(f),
            }
        })
        .collect()
}

pub(super) async fn page(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    uri: axum::http::Uri,
) -> Response {
    let Some(session) = session else {
        return to_sign_in();
    };
    let Ok(id) = uuid::Uuid::try_parse(&id).map(CustomerId) else {
        return error_page(Some(&session), Problem::not_found("customer"));
    };
    let wanted = query_param(&uri, "purpose").unwrap_or_default();
    // The timeline's cursor: an event id (time-ordered, no personal value) in the URL.
    let before = query_param(&uri, "before").and_then(|b| uuid::Uuid::try_parse(&b).ok());
    let saved = query_param(&uri, "saved");
    customer_page(
        &s,
        &session,
        id,
        &wanted,
        Read::Plain,
        before,
        saved.as_deref(),
    )
    .await
}

/// Each consent-based purpose with the customer's state (`granted`, `withdrawn` or `never`),
/// or `None` when the reader may not see the customer's consents.
async fn consent_rows(
    s: &AppState,
    principal: &Principal,
    id: CustomerId,
) -> Option<Vec<(String, String, &'static str)>> {
    let state = s.vault.consent_state(principal, id).await.ok()?;
    Some(
        s.vault
            .purposes()
            .all()
            .into_iter()
            .filter(|p| p.lawful_basis == steward_domain::LawfulBasis::Consent)
            .map(|p| {
                let now = state
                    .current
                    .iter()
                    .find(|c| c.purpose == p.key)
                    .map_or("never", |c| c.state);
                let title = crate::display::words(&p.key);
                (p.key, title, now)
            })
            .collect(),
    )
}

/// What every recording form of the page starts with: the session, the CSRF check, the
/// customer and the purpose the page was read under (to go back to it).
pub(super) async fn recording(
    s: &AppState,
    session: Option<Session>,
    id: &str,
    body: &Bytes,
) -> Result<
    (
        Session,
        std::collections::HashMap<String, String>,
        CustomerId,
        String,
    ),
    Response,
> {
    let (session, f) = signed_form(session, body)?;
    let Ok(id) = uuid::Uuid::try_parse(id).map(CustomerId) else {
        return Err(error_page(Some(&session), Problem::not_found("customer")));
    };
    let purpose = match s.vault.purposes().get(
        "purpose",
        f.get("purpose").map(String::as_str).unwrap_or(""),
    ) {
        Ok(p) => p.key.clone(),
        Err(e) => return Err(error_page(Some(&session), e.into())),
    };
    Ok((session, f, id, purpose))
}

/// Back to the customer's page, as read before (Post/Redirect/Get: a reload does not repeat
/// the write). Purpose keys are registry keys, safe in a URL.
fn back(id: CustomerId, purpose: &str) -> Response {
    Redirect::to(&format!("/console/customers/{id}?purpose={purpose}")).into_response()
}

pub(super) fn field<'a>(f: &'a Form, k: &str) -> &'a str {
    f.get(k).map(String::as_str).unwrap_or("")
}

/// Runs a recording form: the session, CSRF and customer checks of [`recording`], then `act`;
/// back to the page on success, an error page otherwise.
async fn record_with(
    s: &AppState,
    session: Option<Session>,
    id: &str,
    body: &Bytes,
    act: impl AsyncFnOnce(&Principal, &Form, CustomerId) -> Result<(), Problem>,
) -> Response {
    let (session, f, id, purpose) = match recording(s, session, id, body).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    match act(&session.principal, &f, id).await {
        // A page read with a stated reason (the DPO's) cannot be fetched again by a URL (the
        // reason never goes into one): it is shown again at once, read with the same reason.
        Ok(()) => match reason_of(&f) {
            Some(reason) => {
                customer_page(
                    s,
                    &session,
                    id,
                    &purpose,
                    Read::Reason(reason),
                    None,
                    Some("recorded"),
                )
                .await
            }
            None => back(id, &purpose),
        },
        Err(p) => error_page(Some(&session), p),
    }
}

/// The stated reason a form carries back (a page read with one), if any.
fn reason_of(f: &Form) -> Option<&str> {
    f.get("reason")
        .map(|r| r.trim())
        .filter(|r| !r.is_empty() && r.chars().count() <= 500)
}

/// Logs an interaction (a call, a visit, a message) from the console.
pub(super) async fn add_interaction(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    record_with(&s, session, &id, &body, async |p, f, id| {
        let input: steward_domain::InteractionInput = serde_json::from_value(serde_json::json!({
            "channel": field(f, "channel"), "text": field(f, "text"), "source": "console",
        }))
        .map_err(|_| ValidationError::new("channel", "choose a channel"))?;
        let new = input.validate(steward_domain::Timestamp::now())?;
        // The page's purpose is what the text is recorded for: its rule keeps, masks or
        // redacts the personal data found in it.
        s.vault
            .records()
            .add_interaction_for(
                Actor::Principal(p),
                id,
                &new,
                f.get("purpose").map(String::as_str),
            )
            .await?;
        Ok(())
    })
    .await
}

/// Records a purchase at the staff member's (first) outlet, sold by them.
pub(super) async fn add_purchase(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    record_with(&s, session, &id, &body, async |p, f, id| {
        let outlet = p
            .outlets()
            .first()
            .ok_or_else(|| ValidationError::new("outlet_id", "you work at no outlet"))?;
        let amount = crate::display::minor_units(field(f, "amount"), field(f, "currency"))
            .ok_or_else(|| ValidationError::new("amount", "must be an amount such as 1250.00"))?;
        let input: steward_domain::PurchaseInput = serde_json::from_value(serde_json::json!({
            "item": field(f, "item"), "category": field(f, "category"), "outlet_id": outlet,
            "seller_id": p.staff_id(), "amount_minor": amount, "currency": field(f, "currency"),
        }))
        .map_err(|_| ValidationError::new("item", "fill in every field"))?;
        let new = input.validate(steward_domain::Timestamp::now())?;
        s.vault.add_purchase(Actor::Principal(p), id, &new).await?;
        Ok(())
    })
    .await
}

/// Merges a duplicate (`other_id`) into this customer; back to the page with a confirmation.
pub(super) async fn merge(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (session, f, id, purpose) = match recording(&s, session, &id, &body).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    let Ok(other) = uuid::Uuid::try_parse(field(&f, "other_id")).map(CustomerId) else {
        return error_page(
            Some(&session),
            Problem::invalid_parameter("other_id", "choose a customer to merge"),
        );
    };
    match s
        .vault
        .merge_customers(Actor::Principal(&session.principal), id, other)
        .await
    {
        Ok(_) if reason_of(&f).is_some() => {
            let reason = reason_of(&f).unwrap_or_default();
            customer_page(
                &s,
                &session,
                id,
                &purpose,
                Read::Reason(reason),
                None,
                Some("merged"),
            )
            .await
        }
        Ok(_) => Redirect::to(&format!(
            "/console/customers/{id}?purpose={purpose}&saved=merged"
        ))
        .into_response(),
        Err(e) => error_page(Some(&session), e.into()),
    }
}

/// Grants or withdraws a consent on the customer's behalf, as given in store.
pub(super) async fn record_consent(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    record_with(&s, session, &id, &body, async |p, f, id| {
        let input: steward_domain::ConsentInput = serde_json::from_value(serde_json::json!({
            "purpose": field(f, "consent_purpose"), "action": field(f, "action"), "source": "in_store",
        }))
        .map_err(|_| Problem::invalid_parameter("action", "grant or withdraw"))?;
        s.vault.record_consent(p, id, &input).await?;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use crate::display::minor_units;

    #[test]
    fn amounts_become_minor_units() {
        assert_eq!(minor_units("1250", "CHF"), Some(125_000));
        assert_eq!(minor_units("1250", "JPY"), Some(1_250));
        assert_eq!(minor_units("1.25", "KWD"), Some(1_250));
        assert_eq!(minor_units("1.5", "JPY"), None);
        assert_eq!(minor_units("1250.5", "CHF"), Some(125_050));
        assert_eq!(minor_units(" 0.07 ", "CHF"), Some(7));
        assert_eq!(minor_units("12,50", "CHF"), Some(1_250));
        for bad in [
            "",
            ".5",
            "1.234",
            "-3",
            "1e3",
            "1,250.50",
            "12,5,0",
            "99999999999999999999",
        ] {
            assert_eq!(minor_units(bad, "CHF"), None, "{bad}");
        }
    }
}
