//! The consent ledger: append-only grant and withdraw events.

use steward_domain::{
    ConsentAction, ConsentEvent, ConsentInput, ConsentSource, ConsentState, CustomerId, Role,
    Timestamp, ValidationError,
};
use steward_policy::Action;
use steward_store::ConsentRow;

use crate::error::{ServiceError, ServiceResult};
use crate::{Principal, Vault};

/// The purposes a Global Privacy Control signal withdraws: sale/sharing and targeted marketing.
pub const GPC_PURPOSES: [&str; 2] = ["marketing_email", "personalisation"];

fn event(r: ConsentRow) -> ConsentEvent {
    let id = uuid::Uuid::from_slice(&r.id)
        .map(|u| u.to_string())
        .unwrap_or_default();
    ConsentEvent {
        id,
        customer_id: r.customer_id,
        purpose: r.purpose,
        action: r.action,
        source: r.source,
        notice_version: r.notice_version,
        occurred_at: Timestamp(r.occurred_at),
    }
}

impl Vault {
    async fn ledger(&self, id: CustomerId) -> ServiceResult<ConsentState> {
        let rows = self.inner.store.consents(id).await?;
        Ok(ConsentState::from_history(
            rows.into_iter().map(event).collect(),
        ))
    }

    /// Whether the customer's consent for `purpose` is active (the last event is a grant).
    pub(crate) async fn consent_active(
        &self,
        id: CustomerId,
        purpose: &str,
    ) -> ServiceResult<bool> {
        Ok(self.ledger(id).await?.granted(purpose))
    }

    /// Records a grant or withdrawal. Marketing may record withdrawals only.
    pub async fn record_consent(
        &self,
        principal: &Principal,
        id: CustomerId,
        input: &ConsentInput,
    ) -> ServiceResult<ConsentEvent> {
        self.authorize(principal, Action::ManageConsent, Some(id))
            .await?;
        let only_marketing = principal.roles.iter().all(|r| *r == Role::Marketing);
        if only_marketing && input.action == ConsentAction::Grant {
            return Err(ServiceError::Forbidden {
                field: "action",
                detail: "marketing may record withdrawals, not grants".into(),
            });
        }
        let purpose = self.purpose("purpose", &input.purpose)?;
        if purpose.lawful_basis != steward_domain::LawfulBasis::Consent {
            return Err(
                ValidationError::new("purpose", "this purpose does not rest on consent").into(),
            );
        }
        let row = ConsentRow {
            id: uuid::Uuid::now_v7().as_bytes().to_vec(),
            customer_id: id,
            purpose: purpose.key.clone(),
            action: input.action.as_str().to_owned(),
            source: input.source.as_str().to_owned(),
            notice_version: purpose.notice_version,
            occurred_at: Timestamp::now().millis(),
        };
        self.inner.store.insert_consent(&row).await?;
        Ok(event(row))
    }

    /// Records the Global Privacy Control signal: withdraws every GPC purpose.
    pub async fn record_gpc(
        &self,
        principal: &Principal,
        id: CustomerId,
    ) -> ServiceResult<Vec<ConsentEvent>> {
        let mut out = Vec::new();
        for p in GPC_PURPOSES {
            let input = ConsentInput {
                purpose: p.to_owned(),
                action: ConsentAction::Withdraw,
                source: ConsentSource::Gpc,
            };
            out.push(self.record_consent(principal, id, &input).await?);
        }
        Ok(out)
    }

    /// The current consent state and history of a customer.
    pub async fn consent_state(
        &self,
        principal: &Principal,
        id: CustomerId,
    ) -> ServiceResult<ConsentState> {
        self.authorize(principal, Action::ReadConsents, Some(id))
            .await?;
        self.ledger(id).await
    }
}
