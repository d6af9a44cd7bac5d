//! Social listening without shadow profiles (issue 23, point 1). A social connector reports
//! what people post; Steward keeps an event only when its author's handle belongs to exactly one
//! customer who is not restricted and has consented to the `social_listening` purpose. Every
//! other event is dropped unseen — nothing of it is stored, logged or audited, and the caller is
//! told the same either way — so no profile of anyone who is not a consenting customer is ever
//! built. A kept event is an interaction (channel `social`): read, exported and erased like any
//! other, its text screened by the purpose's rule, its place coarsened to city and country.

use steward_domain::social::NewSocialEvent;
use steward_domain::{Channel, InteractionId, NewInteraction};
use steward_policy::Action;

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::Principal;
use crate::auth::Actor;
use crate::door::About;
use crate::error::ServiceResult;
use crate::records::Records;

/// The purpose a customer consents to for their posts to be kept.
pub const SOCIAL_PURPOSE: &str = "social_listening";

/// What became of a reported event (for metrics and the importer's count, never for the caller
/// of the API, who learns nothing about who is a customer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Kept as an interaction of its author.
    Stored,
    /// Kept before (the same platform and event id).
    Repeated,
    /// Dropped: no `social_listening` purpose is registered.
    NoPurpose,
    /// Dropped: the handle is no customer's (or more than one's).
    Unknown,
    /// Dropped: the customer has not consented, or has withdrawn, or is restricted.
    NotConsented,
}

impl Ingested {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Ingested::Stored => "stored",
            Ingested::Repeated => "repeated",
            Ingested::NoPurpose => "dropped_no_purpose",
            Ingested::Unknown => "dropped_unknown",
            Ingested::NotConsented => "dropped_not_consented",
        }
    }
}

/// Events being taken in the background (see [`Records::report_social`]).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

impl Records {
    /// Takes a social event reported over the API: the caller is decided now, the event taken
    /// in a task of its own, so that the answer comes back at the same time whatever becomes of
    /// it — how long the request takes tells nobody whether the handle is a customer's. The
    /// outcome is only counted (`steward_social_events_total`: kept, repeated or dropped).
    pub async fn report_social(
        self: &std::sync::Arc<Self>,
        principal: &Principal,
        event: NewSocialEvent,
    ) -> ServiceResult<()> {
        self.door()
            .authorize(principal, Action::IngestSocial, None)
            .await?;
        let (records, principal) = (self.clone(), principal.clone());
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let outcome = records
                .ingest_social(Actor::Principal(&principal), &event)
                .await;
            IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
            let label = match outcome {
                Ok(Ingested::Stored) => "kept",
                Ok(Ingested::Repeated) => "repeated",
                Ok(_) => "dropped",
                Err(e) => {
                    // The error only: never the handle, the text or the customer.
                    tracing::warn!(error = %e, "a social event could not be taken");
                    "failed"
                }
            };
            metrics::counter!("steward_social_events_total", "outcome" => label).increment(1);
        });
        Ok(())
    }

    /// Waits until every event [`Records::report_social`] handed to a task has been taken (for
    /// tests that read what was kept, and an orderly shutdown).
    pub async fn social_settled(&self) {
        while IN_FLIGHT.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Takes a social event from `actor` (a social connector, or the operator's import), if the
    /// policy lets it report events; keeps it only for a consenting customer (see the module).
    pub async fn ingest_social(
        &self,
        actor: Actor<'_>,
        event: &NewSocialEvent,
    ) -> ServiceResult<Ingested> {
        self.door()
            .authorize_actor(actor, Action::IngestSocial, None, false)
            .await?;
        let Ok(purpose) = self.purposes().get("purpose", SOCIAL_PURPOSE) else {
            return Ok(Ingested::NoPurpose);
        };
        let ids = self
            .lookup_ids("social", &event.author.index_value())
            .await?;
        let [customer] = ids.as_slice() else {
            return Ok(Ingested::Unknown);
        };
        let customer = *customer;
        let facts = match self.door().access_facts(customer).await {
            Ok(f) => f,
            Err(crate::ServiceError::NotFound(_)) => return Ok(Ingested::Unknown),
            Err(e) => return Err(e),
        };
        if facts.restricted || !self.consents().active(customer, SOCIAL_PURPOSE).await? {
            return Ok(Ingested::NotConsented);
        }
        let (text, found) = crate::pii::screen(&event.text, purpose.pii_rule);
        let mut written = text;
        if let Some(place) = &event.location {
            written.push_str("\nPosted from ");
            written.push_str(&place.line());
        }
        let new = NewInteraction {
            channel: Channel::Social,
            text: written,
            source: event.author.platform.clone(),
            occurred_at: event.occurred_at,
        };
        let dk = self.keys().of(customer).await?;
        let row = crate::seal::seal_screened(&dk, customer, InteractionId::new(), &new, found)?;
        // The author is part of the key: an id reported for someone else cannot block theirs.
        let mac = self.door().mac(
            "social_event",
            &format!("{}\n{}", event.author.index_value(), event.event_id),
        );
        let entry = self.door().write_entry_for(
            actor,
            "ingest_social",
            Some(customer),
            &["social", "communications"],
            About {
                subject: None,
                purpose: Some(SOCIAL_PURPOSE),
            },
        );
        let stored = self
            .activity
            .insert_external_interaction(&row, &mac, &[entry])
            .await?;
        Ok(if stored {
            Ingested::Stored
        } else {
            Ingested::Repeated
        })
    }
}
