//! One-click unsubscribe (issue 18, point 4; RFC 8058). Every campaign message carries a link
//! holding a sealed token for its delivery. A `POST` of `List-Unsubscribe=One-Click` to it is
//! the customer withdrawing consent for the campaign's purpose: recorded in the consent ledger
//! (source `unsubscribe`, with its signed receipt), as the customer. Looking at the link
//! changes nothing, so a mail scanner that follows every link withdraws nothing.
//!
//! The token opens only to the delivery it was made for (AES-GCM-SIV under the link key): it
//! names no customer, cannot be turned into another customer's or another purpose's, and a
//! changed one is refused like an unknown one.

use steward_domain::{ConsentAction, ConsentInput, ConsentSource};

use crate::error::ServiceResult;
use crate::{Actor, Myself, Vault};

/// What an unsubscribe link stands for, as its page shows it: the purpose, never the customer.
#[derive(Debug, Clone)]
pub struct UnsubscribeLink {
    /// The purpose's key.
    pub purpose: String,
    /// Whether this link has been used already.
    pub done: bool,
}

impl Vault {
    /// What a link would do: read only, nothing recorded, nothing changed.
    pub async fn unsubscribe_link(&self, token: &str) -> ServiceResult<UnsubscribeLink> {
        let d = self.outreach().link_delivery(token).await?;
        Ok(UnsubscribeLink {
            purpose: d.purpose,
            done: d.unsubscribed_at.is_some(),
        })
    }

    /// Unsubscribes: withdraws the customer's consent for the campaign's purpose (if still
    /// given) as the customer, and counts the unsubscription on the campaign. Using a link
    /// again changes nothing more; a link of an erased customer has nothing left to withdraw.
    pub async fn unsubscribe(&self, token: &str) -> ServiceResult<UnsubscribeLink> {
        let d = self.outreach().link_delivery(token).await?;
        let purpose = self.purposes().get("purpose", &d.purpose)?;
        // A link used once is spent: used again after the customer consented anew (an old mail
        // forwarded, a scanner that posts), it must not take the new consent back.
        if let Some(customer) = d.customer_id
            && d.unsubscribed_at.is_none()
            && self.consents().active(customer, &purpose.key).await?
        {
            let input = ConsentInput {
                purpose: purpose.key.clone(),
                action: ConsentAction::Withdraw,
                source: ConsentSource::Unsubscribe,
            };
            self.write_consent(Actor::Subject(Myself(customer)), customer, &purpose, &input)
                .await?;
        }
        self.outreach().mark_unsubscribed(d.id).await?;
        Ok(UnsubscribeLink {
            purpose: d.purpose,
            done: true,
        })
    }
}
