//! The consent ledger: append-only grant and withdraw events.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use steward_crypto::ReceiptSigner;
use steward_domain::{
    ConsentAction, ConsentEvent, ConsentInput, ConsentSource, ConsentState, CustomerId, Role,
    Timestamp, ValidationError,
};
use steward_policy::Action;
use steward_store::{ConsentRow, ConsentStore};

use crate::agreements::Agreements;
use crate::door::Door;
use crate::error::{ServiceError, ServiceResult};
use crate::purposes::Purposes;
use crate::{Actor, Principal, Vault};

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

/// The consent ledger's context: append-only events, their signed receipts, the DPO's chart.
/// What crosses contexts (a staff member's read of a ledger, counted by the bulk guard; a
/// consent that moves personalisation's model) is the vault's, below.
pub struct Consents {
    door: Arc<Door>,
    store: Arc<dyn ConsentStore>,
    purposes: Arc<Purposes>,
    /// Who each purpose is shared with: a receipt names them.
    agreements: Arc<Agreements>,
    receipts: ReceiptSigner,
}

impl Consents {
    /// The ledger of one installation (made by the composition root).
    pub(crate) fn new(
        door: Arc<Door>,
        store: Arc<dyn ConsentStore>,
        purposes: Arc<Purposes>,
        agreements: Arc<Agreements>,
        receipts: ReceiptSigner,
    ) -> Self {
        Consents {
            door,
            store,
            purposes,
            agreements,
            receipts,
        }
    }

    /// The consent state and history of a customer, without an authorization check.
    pub(crate) async fn ledger(&self, id: CustomerId) -> ServiceResult<ConsentState> {
        let rows = self.store.consents(id).await?;
        Ok(ConsentState::from_history(
            rows.into_iter().map(event).collect(),
        ))
    }

    /// Whether the customer's consent for `purpose` is active (the last event is a grant).
    pub(crate) async fn active(&self, id: CustomerId, purpose: &str) -> ServiceResult<bool> {
        Ok(self.ledger(id).await?.granted(purpose))
    }

    /// The public key that verifies consent receipts, as a JWK Set (RFC 7517, RFC 8037).
    pub fn receipt_jwks(&self) -> serde_json::Value {
        let s = &self.receipts;
        serde_json::json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
            "kid": s.kid(), "x": URL_SAFE_NO_PAD.encode(s.public_key()),
        }]})
    }

    /// A signed Kantara Consent Receipt (v1.1) for one ledger event: a compact JWS anyone can
    /// verify offline with the key from [`Consents::receipt_jwks`]. It names the customer only by id.
    fn receipt(&self, e: &ConsentEvent) -> ServiceResult<String> {
        let purpose = self.purposes.get("purpose", &e.purpose)?;
        // The recipients the purpose is shared with under an agreement in force (issue 22).
        let shared_with = self.agreements.shared_with(&e.purpose);
        let mut shared = serde_json::json!({
            "purpose": purpose.notice_text,
            "purposeCategory": [purpose.data_use],
            "consentType": "EXPLICIT",
            "piiCategory": purpose.categories.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            "primaryPurpose": true,
            "termination": format!("{} days after collection", purpose.retention_days),
            "thirdPartyDisclosure": !shared_with.is_empty(),
        });
        if !shared_with.is_empty() {
            shared["thirdPartyName"] = serde_json::Value::String(shared_with.join(", "));
        }
        let claims = serde_json::json!({
            "version": "KI-CR-v1.1.0",
            "jurisdiction": "EU",
            "consentTimestamp": e.occurred_at.millis() / 1000,
            "collectionMethod": e.source,
            "consentReceiptID": e.id,
            "language": "en",
            "piiPrincipalId": e.customer_id.to_string(),
            "piiControllers": [{"piiController": "the operator of this Steward installation", "onBehalf": false}],
            "policyUrl": "/v1/purposes",
            "services": [{
                "service": "Steward CRM",
                "purposes": [shared],
            }],
            "sensitive": false,
            "spiCat": [],
            // Steward's extension: what this receipt records.
            "stewardAction": e.action,
            "stewardPurpose": e.purpose,
            "stewardNoticeVersion": e.notice_version,
        });
        let payload = serde_json::to_vec(&claims).map_err(|_| ServiceError::Integrity)?;
        Ok(self.receipts.sign_compact(&payload))
    }

    /// Appends a consent event (the caller has authorised it) and signs its receipt.
    pub(crate) async fn write(
        &self,
        actor: Actor<'_>,
        id: CustomerId,
        purpose: &steward_domain::Purpose,
        input: &ConsentInput,
    ) -> ServiceResult<(ConsentEvent, String)> {
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
        let e = event(row.clone());
        let receipt = self.receipt(&e)?;
        let entry = self.door.write_entry_for(
            actor,
            &format!("consent_{}", input.action.as_str()),
            Some(id),
            &[],
            crate::door::About {
                subject: None,
                purpose: Some(&purpose.key),
            },
        );
        self.store
            .insert_consent(&row, std::slice::from_ref(&entry))
            .await?;
        Ok((e, receipt))
    }
}

impl Vault {
    /// Records a grant or withdrawal and returns the event with its signed receipt. Marketing may
    /// record withdrawals only.
    pub async fn record_consent(
        &self,
        principal: &Principal,
        id: CustomerId,
        input: &ConsentInput,
    ) -> ServiceResult<(ConsentEvent, String)> {
        // A source is a fact of the channel, not a claim of the body (issue 15, finding 5): staff
        // record what a customer said in a shop or another system sent; `portal` comes only from
        // a portal session, `gpc` only from the signal, `rights_request` only from a request.
        if !matches!(input.source, ConsentSource::InStore | ConsentSource::Api) {
            return Err(ValidationError::new(
                "source",
                "staff record consent as in_store or api; portal, gpc and rights_request events come only from those channels",
            )
            .into());
        }
        self.staff_consent(principal, id, input).await
    }

    /// Records a consent event by staff whose source the caller has set from the channel.
    async fn staff_consent(
        &self,
        principal: &Principal,
        id: CustomerId,
        input: &ConsentInput,
    ) -> ServiceResult<(ConsentEvent, String)> {
        self.door()
            .authorize(principal, Action::ManageConsent, Some(id))
            .await?;
        let only_marketing = principal.roles.iter().all(|r| *r == Role::Marketing);
        if only_marketing && input.action == ConsentAction::Grant {
            return Err(ServiceError::Forbidden {
                field: "action",
                detail: "marketing may record withdrawals, not grants".into(),
            });
        }
        let purpose = self.purposes().get("purpose", &input.purpose)?;
        self.write_consent(Actor::Principal(principal), id, &purpose, input)
            .await
    }

    /// Appends a consent event (the caller has authorised it) and signs its receipt;
    /// personalisation's model follows the consent before this returns (issue 20).
    pub(crate) async fn write_consent(
        &self,
        actor: Actor<'_>,
        id: CustomerId,
        purpose: &steward_domain::Purpose,
        input: &ConsentInput,
    ) -> ServiceResult<(ConsentEvent, String)> {
        let write = async || self.consents().write(actor, id, purpose, input).await;
        if purpose.key == crate::personalise::PURPOSE {
            self.personalisation().with_basket_moved(id, write).await
        } else {
            write().await
        }
    }

    /// Records the Global Privacy Control signal: withdraws every purpose of sale, sharing,
    /// targeted marketing or personalisation (see [`steward_domain::Purpose::withdrawn_by_gpc`]).
    pub async fn record_gpc(
        &self,
        principal: &Principal,
        id: CustomerId,
    ) -> ServiceResult<Vec<(ConsentEvent, String)>> {
        let mut out = Vec::new();
        for p in self
            .purposes()
            .all()
            .into_iter()
            .filter(|p| p.withdrawn_by_gpc())
        {
            let input = ConsentInput {
                purpose: p.key,
                action: ConsentAction::Withdraw,
                source: ConsentSource::Gpc,
            };
            out.push(self.staff_consent(principal, id, &input).await?);
        }
        Ok(out)
    }

    /// The current consent state and history of a customer.
    pub async fn consent_state(
        &self,
        principal: &Principal,
        id: CustomerId,
    ) -> ServiceResult<ConsentState> {
        self.door()
            .authorize(principal, Action::ReadConsents, Some(id))
            .await?;
        // A personal read like any other: not before the confidentiality notice is acknowledged.
        if self.notices().must_acknowledge(principal) {
            return Err(ServiceError::AcknowledgementRequired);
        }
        // A read of the ledger is a read of the customer: counted and recorded like any other.
        self.records()
            .count_read(
                &crate::access::Flagged {
                    principal,
                    purpose: "consents",
                    reason: None,
                    break_glass: false,
                },
                id,
            )
            .await?;
        self.door()
            .record_read(
                Actor::Principal(principal),
                "read_consents",
                Some(id),
                &["consents"],
            )
            .await?;
        self.consents().ledger(id).await
    }
}

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// Customers consenting to each purpose at the end of each of the `days` days up to the one
/// holding `now`, from the whole ledger in time order (the last event per customer and purpose
/// decides, as for one customer). Purposes that never had an event are absent.
pub fn consent_series(
    events: &[(Vec<u8>, String, String, i64)],
    now: Timestamp,
    days: usize,
) -> std::collections::BTreeMap<String, Vec<i64>> {
    use std::collections::{BTreeMap, HashMap};
    let today = now.millis().div_euclid(DAY_MS);
    let first = today - days as i64 + 1;
    let mut active: HashMap<(&[u8], &str), bool> = HashMap::new();
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    let mut series: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut day = first;
    let snapshot = |upto: i64,
                    day: &mut i64,
                    counts: &BTreeMap<String, i64>,
                    series: &mut BTreeMap<String, Vec<i64>>| {
        // Close every day before `upto` with the counts as they stand.
        while *day < upto && *day <= today {
            let at = (*day - first) as usize;
            for (purpose, n) in counts {
                let s = series
                    .entry(purpose.clone())
                    .or_insert_with(|| vec![0; days]);
                s[at] = *n;
            }
            *day += 1;
        }
    };
    for (customer, purpose, action, at) in events {
        snapshot(at.div_euclid(DAY_MS), &mut day, &counts, &mut series);
        let now_on = action == "grant";
        let was_on = active
            .insert((customer.as_slice(), purpose.as_str()), now_on)
            .unwrap_or(false);
        let n = counts.entry(purpose.clone()).or_insert(0);
        *n += i64::from(now_on) - i64::from(was_on);
    }
    snapshot(today + 1, &mut day, &counts, &mut series);
    for purpose in counts.keys() {
        series
            .entry(purpose.clone())
            .or_insert_with(|| vec![0; days]);
    }
    series
}

impl Consents {
    /// The DPO's chart: customers consenting per purpose at the end of each of the last `days`
    /// days.
    pub async fn chart(
        &self,
        principal: &Principal,
        days: usize,
    ) -> ServiceResult<std::collections::BTreeMap<String, Vec<i64>>> {
        self.door
            .authorize(principal, Action::ReadAudit, None)
            .await?;
        let events = self.store.consent_timeline().await?;
        Ok(consent_series(&events, Timestamp::now(), days.max(1)))
    }
}

#[cfg(test)]
mod series_tests {
    use super::*;

    fn ev(c: u8, p: &str, a: &str, day: i64) -> (Vec<u8>, String, String, i64) {
        (vec![c], p.into(), a.into(), day * DAY_MS + 1000)
    }

    #[test]
    fn the_last_event_per_customer_and_purpose_counts_each_day() {
        let now = Timestamp(10 * DAY_MS + 5);
        let events = vec![
            ev(1, "m", "grant", 1),
            ev(2, "m", "grant", 7),
            ev(2, "m", "grant", 8), // a repeated grant counts once
            ev(1, "m", "withdraw", 9),
            ev(3, "p", "withdraw", 10),
        ];
        let s = consent_series(&events, now, 5); // days 6..=10
        assert_eq!(s["m"], vec![1, 2, 2, 1, 1]);
        assert_eq!(s["p"], vec![0, 0, 0, 0, 0]);
    }
}
