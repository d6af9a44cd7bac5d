//! Personal data in free text (issue 23): every interaction's text is examined before it is
//! sealed, the purpose it is recorded under decides whether what was found is kept, masked or
//! redacted, the kinds found are stored beside it, and a text holding a card, account or
//! identity number is shown masked to every reader the policy does not clear for it.
//! `analyze_text` offers the detector to staff and service clients; it stores and logs nothing.

use std::sync::LazyLock;

use steward_domain::pii::{self, AnalyzerResult, Detector, PiiRule, PiiTypes};
use steward_domain::{CustomerId, Interaction, InteractionId, NewInteraction};
use steward_policy::Action;

use crate::error::ServiceResult;
use crate::records::Records;
use crate::{Actor, Principal, ServiceError};

/// The detector used when no language is named: texts recorded by staff, masking at read. The
/// types that decide masking (cards, IBANs, national ids, URLs) do not depend on the language.
pub(crate) static DEFAULT: LazyLock<Detector> = LazyLock::new(Detector::default);

/// The kinds of personal data in `text`.
pub(crate) fn types_in(text: &str) -> PiiTypes {
    PiiTypes::of(&DEFAULT.analyze(text))
}

/// `text` with its card, account and identity numbers masked, if it holds any.
pub(crate) fn masked(text: &str) -> Option<String> {
    let findings = DEFAULT.sensitive(text);
    (!findings.is_empty()).then(|| pii::apply(text, &findings, PiiRule::Mask).into_owned())
}

/// `text` with `rule` applied, and the kinds found in it (before the rule: a masked card is
/// still recorded as a card).
pub fn screen(text: &str, rule: PiiRule) -> (String, PiiTypes) {
    let findings = DEFAULT.analyze(text);
    (
        pii::apply(text, &findings, rule).into_owned(),
        PiiTypes::of(&findings),
    )
}

impl Records {
    /// What personal data `text` holds, in Presidio's analyzer shape (offsets in code points),
    /// if the policy lets `principal` ask. The text is neither stored nor logged.
    pub async fn analyze_text(
        &self,
        principal: &Principal,
        text: &str,
        language: &str,
    ) -> ServiceResult<Vec<AnalyzerResult>> {
        self.door()
            .authorize(principal, Action::AnalyzeText, None)
            .await?;
        let detector = Detector::for_language(language)?;
        if text.len() > pii::MAX_TEXT_BYTES {
            detector.analyze_checked(text)?;
        }
        // Up to a megabyte of scanning: off the async workers, so other requests go on.
        let text = text.to_owned();
        tokio::task::spawn_blocking(move || {
            let findings = detector.analyze(&text);
            pii::to_code_points(&text, &findings)
        })
        .await
        .map_err(|_| ServiceError::Integrity)
    }

    /// Records an interaction under a declared purpose, if the policy lets `actor` do so: the
    /// purpose's rule keeps, masks or redacts the personal data found in the text before it is
    /// sealed, and the kinds found are recorded with it.
    pub async fn add_interaction_for(
        &self,
        actor: Actor<'_>,
        customer: CustomerId,
        i: &NewInteraction,
        purpose: Option<&str>,
    ) -> ServiceResult<InteractionId> {
        // Decided first: a caller who may not record learns nothing about the purposes.
        self.door()
            .authorize_actor(actor, Action::AddInteraction, Some(customer), false)
            .await?;
        let rule = match purpose {
            None => PiiRule::Keep,
            Some(key) => {
                let p = self.purposes().get("purpose", key)?;
                if let Actor::Principal(who) = actor
                    && !self.declares(who, &p)
                {
                    return Err(ServiceError::Forbidden {
                        field: "purpose",
                        detail: "this purpose cannot be declared by your role".into(),
                    });
                }
                p.pii_rule
            }
        };
        let (text, found) = screen(&i.text, rule);
        let screened = NewInteraction { text, ..i.clone() };
        self.record_interaction(actor, customer, &screened, found)
            .await
    }

    /// Whether the policy lets `principal` see card, account and identity numbers in texts.
    pub(crate) async fn clears_sensitive(&self, principal: &Principal) -> bool {
        self.door()
            .authorize(principal, Action::ReadSensitiveText, None)
            .await
            .is_ok()
    }

    /// Shows `items` to `principal`: the card, account and identity numbers in their texts are
    /// masked unless the policy clears the reader for them.
    pub(crate) async fn shown_to(
        &self,
        principal: &Principal,
        items: &mut [Interaction],
    ) -> ServiceResult<()> {
        if items.is_empty() || self.clears_sensitive(principal).await {
            return Ok(());
        }
        // Examined again rather than trusted to the stored kinds: texts recorded before the
        // detector existed have none stored.
        for i in items.iter_mut() {
            let findings = DEFAULT.sensitive(&i.text);
            if findings.is_empty() {
                continue;
            }
            i.pii_types = i.pii_types.union(PiiTypes::of(&findings));
            i.text = pii::apply(&i.text, &findings, PiiRule::Mask).into_owned();
            i.masked = true;
        }
        Ok(())
    }
}
