//! The console's customer list: browse, search by name, look up by e-mail or phone, filter by
//! outlet and tier — every result a decided read. Searches are POSTed, so no name, address or
//! number ends up in a URL, a browser history or a proxy's log; the form keeps what was typed.

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use steward_domain::{CustomerFilter, CustomerId, CustomerView, OutletId, normalize};
use steward_service::Access;

use super::{Session, SignedIn, error_page, render, signed_form, to_sign_in};
use crate::AppState;

/// How many customers a page of the list shows.
const PAGE: u32 = 25;

/// One row of the list: what the policy let this reader see.
struct Row {
    id: CustomerId,
    name: String,
    email: String,
    phone: String,
    tier: String,
}

/// What was asked, kept in the form.
#[derive(Default)]
struct Asked {
    query: String,
    purpose: String,
    outlet: String,
    tier: String,
    /// A stated reason (the DPO reads only with one); kept in the form, sent in bodies only.
    reason: String,
    /// A consent-based purpose the customers must have agreed to.
    consent: String,
    /// A date (`YYYY-MM-DD`) of latest activity.
    active_since: String,
}

#[derive(Template)]
#[template(path = "console/home.html")]
struct HomePage<'a> {
    signed_in: Option<String>,
    /// Show the link to the DPO's page.
    dpo_desk: bool,
    /// The search asks why (the caller reads more with a reason: the DPO).
    asks_reason: bool,
    csrf: &'a str,
    error: Option<&'a str>,
    /// Purposes as (key, title).
    purposes: Vec<(String, String)>,
    /// Consent-based purposes as (key, title), for the consent filter.
    consent_purposes: Vec<(String, String)>,
    /// Outlets offered in the filter, as (id, name).
    outlets: Vec<(String, String)>,
    tiers: &'static [&'static str],
    asked: Asked,
    results: Option<Vec<Row>>,
    /// The cursor of the next page, if there is one.
    next: Option<String>,
    /// The reader may register customers (the link is offered).
    may_create: bool,
    /// The reader may see the directory or the tokens (the link is offered).
    may_directory: bool,
    /// For the DPO: open requests due within three days, and alerts of the last seven days.
    attention: Option<(usize, usize)>,
    /// The reader may define and size segments (the link is offered).
    may_segments: bool,
    /// The reader may release analytics (the dashboard's link is offered).
    may_analyse: bool,
    /// The reader may compose and send surveys.
    may_surveys: bool,
    /// Manages recipients and agreements (issue 22).
    may_share: bool,
    /// The reader may compose and send campaigns (the link is offered).
    may_campaigns: bool,
}

async fn page(
    s: &AppState,
    session: &Session,
    asked: Asked,
    error: Option<&str>,
    results: Option<(Vec<Row>, Option<String>)>,
    status: StatusCode,
) -> Response {
    let consent_purposes = s
        .vault
        .purposes()
        .all()
        .into_iter()
        .filter(|p| p.lawful_basis == steward_domain::LawfulBasis::Consent)
        .map(|p| {
            let title = crate::display::words(&p.key);
            (p.key, title)
        })
        .collect();
    // Offered: the purposes the caller may declare (a search under another is refused).
    let purposes = s
        .vault
        .records()
        .declarable_purposes(&session.principal)
        .into_iter()
        .map(|p| {
            let title = crate::display::words(&p.key);
            (p.key, title)
        })
        .collect();
    // Offered: the outlets whose customers the reader would be shown as such under the purpose
    // chosen (`service` before one is), with their reason.
    let purpose = s
        .vault
        .purposes()
        .get("purpose", &asked.purpose)
        .or_else(|_| s.vault.purposes().get("purpose", "service"));
    let reason = (!asked.reason.is_empty()).then_some(asked.reason.as_str());
    let outlets = match &purpose {
        Ok(p) => s
            .vault
            .records()
            .outlets_for(&session.principal, p, reason)
            .await
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
    .into_iter()
    .map(|o| (o.id.to_string(), o.name))
    .collect();
    // The DPO's desk (requests and alerts) is offered to whom the policy lets read them; the
    // search asks for a reason of whom the policy lets read more with one.
    // A failure to count shows the link without counts: the desk's page decides again.
    let (dpo_desk, attention) = match s
        .vault
        .request_ledger()
        .dpo_attention(&session.principal)
        .await
    {
        Ok(a) => (true, Some(a)),
        Err(steward_service::ServiceError::Forbidden { .. }) => (false, None),
        Err(e) => {
            tracing::warn!(error = %e, "the DPO's requests and alerts could not be counted");
            (true, None)
        }
    };
    let asks_reason = s.vault.records().reads_with_reason(&session.principal);
    let (results, next) = match results {
        Some((r, n)) => (Some(r), n),
        None => (None, None),
    };
    render(
        HomePage {
            signed_in: Some(session.label()),
            dpo_desk,
            asks_reason,
            csrf: &session.csrf,
            error,
            purposes,
            consent_purposes,
            outlets,
            tiers: &steward_domain::search::TIERS,
            asked,
            results,
            next,
            may_create: s
                .vault
                .records()
                .may_create_customer(&session.principal)
                .await,
            attention,
            may_directory: {
                let d = s
                    .vault
                    .records()
                    .directory_actions(&session.principal)
                    .await;
                d.read || d.tokens
            },
            may_segments: s
                .vault
                .segments()
                .may_manage_segments(&session.principal)
                .await,
            may_analyse: s.vault.analytics().may_analyse(&session.principal),
            may_surveys: s
                .vault
                .surveys()
                .may_manage_surveys(&session.principal)
                .await,
            may_share: s
                .vault
                .sharing()
                .may_manage_recipients(&session.principal)
                .await,
            may_campaigns: s
                .vault
                .outreach()
                .may_manage_campaigns(&session.principal)
                .await,
        },
        status,
    )
}

/// The list page, empty until the reader says why they are looking.
pub(super) async fn home(State(s): State<AppState>, SignedIn(session): SignedIn) -> Response {
    match session {
        // Staff read nothing personal before acknowledging the current notice: shown it first.
        Some(session) if s.vault.notices().must_acknowledge(&session.principal) => {
            axum::response::Redirect::to("/console/notice").into_response()
        }
        Some(session) => {
            // Outlet staff start from their own outlet's customers.
            let outlet = session
                .principal
                .outlets()
                .first()
                .map(ToString::to_string)
                .unwrap_or_default();
            let asked = Asked {
                outlet,
                ..Asked::default()
            };
            page(&s, &session, asked, None, None, StatusCode::OK).await
        }
        None => to_sign_in(),
    }
}

fn row(c: CustomerView) -> Row {
    let dash = || "—".to_owned();
    Row {
        id: c.id,
        name: c.name.unwrap_or_else(|| "(name not shown)".into()),
        email: c.email.unwrap_or_else(dash),
        phone: c.phone.unwrap_or_else(dash),
        tier: c
            .purchase_summary
            .map(|p| p.tier.to_owned())
            .unwrap_or_else(dash),
    }
}

/// Runs a search: an e-mail address or a phone number is looked up exactly; anything else is
/// the beginning of a name; nothing lists the customers the filters select.
pub(super) async fn search(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    body: Bytes,
) -> Response {
    let (session, f) = match signed_form(session, &body) {
        Ok(s) => s,
        Err(res) => return res,
    };
    let field = |k: &str| f.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let asked = Asked {
        query: field("query"),
        purpose: field("purpose"),
        outlet: field("outlet_id"),
        tier: field("tier"),
        reason: field("reason"),
        consent: field("consent"),
        active_since: field("active_since"),
    };
    let bad = |asked: Asked, msg: String| {
        let s = s.clone();
        let session = &session;
        async move {
            page(
                &s,
                session,
                asked,
                Some(&msg),
                None,
                StatusCode::BAD_REQUEST,
            )
            .await
        }
    };
    let Ok(purpose) = s.vault.purposes().get("purpose", &asked.purpose) else {
        return bad(asked, "Choose why you are looking.".into()).await;
    };
    let reason = asked.reason.clone();
    let access = Access {
        principal: &session.principal,
        purpose: &purpose,
        reason: (!reason.is_empty()).then_some(reason.as_str()),
        break_glass: false,
    };
    let q = asked.query.as_str();
    // Digits are a phone number: international, or national where the reader's outlet's
    // country is known.
    let country = s.vault.directory().phone_country(&session.principal).await;
    let looks_like_phone = q.starts_with('+')
        || q.starts_with("00")
        || (country.is_some()
            && q.chars().any(|c| c.is_ascii_digit())
            && q.chars()
                .all(|c| c.is_ascii_digit() || " ().-/".contains(c)));
    let found = if q.contains('@') || looks_like_phone {
        let lookup = if q.contains('@') {
            normalize::email("query", q).map(|v| ("email", v))
        } else {
            normalize::phone_in("query", q, country.as_deref()).map(|v| ("phone", v))
        };
        let Ok((kind, value)) = lookup else {
            let msg = "Enter a whole e-mail address, or a phone number (with its country code, +44 …, unless your outlet's country is set).";
            return bad(asked, msg.into()).await;
        };
        s.vault
            .records()
            .lookup_customers(&access, kind, &value)
            .await
            .map(|v| (v, None))
    } else {
        let outlet = match asked.outlet.as_str() {
            "" => None,
            o => match uuid::Uuid::try_parse(o) {
                Ok(u) => Some(OutletId(u)),
                Err(_) => return bad(asked, "Choose an outlet from the list.".into()).await,
            },
        };
        let filter = match CustomerFilter::parse(Some(q), outlet, Some(&asked.tier))
            .and_then(|f| f.with_activity(Some(&asked.consent), Some(&asked.active_since)))
        {
            Ok(f) => f,
            Err(e) => {
                let msg = if e.field == "q" {
                    "Type at least two letters of a name, a whole e-mail address or a phone number with its country code.".into()
                } else {
                    format!("{}: {}", e.field, e.reason)
                };
                return bad(asked, msg).await;
            }
        };
        let after = f
            .get("cursor")
            .and_then(|c| uuid::Uuid::try_parse(c).ok())
            .map(CustomerId);
        s.vault
            .records()
            .read_customers(&access, &filter, after, PAGE)
            .await
            .map(|(v, next)| (v, next.map(|n| n.to_string())))
    };
    // An exact look-up's address or number is not echoed back once it has found what it could:
    // the page shows the customers as the policy shows them (masked, perhaps), not what was typed.
    let asked = if found.is_ok() && (q.contains('@') || looks_like_phone) {
        Asked {
            query: String::new(),
            ..asked
        }
    } else {
        asked
    };
    match found {
        Ok((views, next)) => {
            let rows = views.into_iter().map(row).collect();
            page(
                &s,
                &session,
                asked,
                None,
                Some((rows, next)),
                StatusCode::OK,
            )
            .await
        }
        Err(steward_service::ServiceError::Forbidden { field, detail })
            if ["q", "tier", "outlet_id", "active_since"].contains(&field) =>
        {
            bad(asked, detail).await
        }
        Err(steward_service::ServiceError::Validation(v)) => {
            bad(
                asked,
                format!("{}: {}", crate::display::words(&v.field), v.reason),
            )
            .await
        }
        Err(e) => error_page(Some(&session), e.into()),
    }
}
