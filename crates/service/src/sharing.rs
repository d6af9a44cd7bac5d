//! Sharing only under agreement (issue 22): the DPO registers recipients and the agreements
//! they receive data under; a recipient reads through the same door as staff, the policy
//! deciding every read with the agreement in its context; every disclosure is recorded where
//! the customer can see it; changes follow the data (see `webhooks`).

use std::sync::Arc;

use serde::Serialize;
use steward_domain::sharing::{
    AgreementInput, Identity, NewAgreement, RecipientInput, RecipientKind,
};
use steward_domain::{
    AgreementId, CustomerId, DataCategory, LawfulBasis, RecipientId, Timestamp, ValidationError,
};
use steward_policy::Action;
use steward_store::{AgreementRow, RecipientRow};

use crate::access::Via;
use crate::agreements::{categories_of, identity_of, parse_categories};
use crate::door::About;
use crate::error::{ServiceError, ServiceResult};
use crate::{Access, Actor, Principal};

/// How long before its expiry an agreement is flagged on the DPO's pages.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// A recipient, as the DPO sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Recipient {
    /// Id.
    pub id: RecipientId,
    /// Name.
    pub name: String,
    /// `processor` or `third_party`.
    pub kind: RecipientKind,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// Whom to contact there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// Where notifications go.
    pub webhook_url: String,
    /// Registered.
    pub created_at: Timestamp,
}

impl Recipient {
    fn of(r: RecipientRow) -> Self {
        Recipient {
            kind: kind_of(&r),
            id: r.id,
            name: r.name,
            country: r.country,
            contact: r.contact,
            webhook_url: r.webhook_url,
            created_at: Timestamp(r.created_at),
        }
    }
}

/// The refusal of an agreement whose identity differs from its recipient's other agreements'.
fn mixed_identity() -> ValidationError {
    ValidationError::new(
        "identity",
        "this recipient's agreements are all of the other kind: a recipient receives identities or pseudonyms, never both (register another recipient)",
    )
}

/// Where an agreement stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgreementStatus {
    /// Not yet in force.
    Scheduled,
    /// In force.
    InForce,
    /// Past its expiry.
    Expired,
    /// Ended early (or superseded).
    Ended,
}

/// An agreement, as the DPO sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Agreement {
    /// Id.
    pub id: AgreementId,
    /// The recipient.
    pub recipient_id: RecipientId,
    /// 1, or one more than the agreement it supersedes.
    pub version: i64,
    /// The agreement it replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<AgreementId>,
    /// Purpose keys.
    pub purposes: Vec<String>,
    /// Data categories.
    pub categories: Vec<DataCategory>,
    /// Lawful basis of the disclosure.
    pub lawful_basis: LawfulBasis,
    /// SHA-256 of the signed document.
    pub document_sha256: String,
    /// Identified or pseudonymous.
    pub identity: Identity,
    /// In force from.
    pub starts_at: Timestamp,
    /// Until.
    pub expires_at: Timestamp,
    /// Ended early, when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// Where it stands now.
    pub status: AgreementStatus,
    /// In force and expiring within 30 days.
    pub expires_soon: bool,
}

/// A stored recipient's kind (anything unknown read as the wider one, a third party).
fn kind_of(r: &RecipientRow) -> RecipientKind {
    RecipientKind::parse(&r.kind).unwrap_or(RecipientKind::ThirdParty)
}

impl Agreement {
    fn of(row: AgreementRow, now: i64) -> Self {
        let status = match row.ended_at {
            Some(e) if e <= now => AgreementStatus::Ended,
            _ if now >= row.expires_at => AgreementStatus::Expired,
            _ if now < row.starts_at => AgreementStatus::Scheduled,
            _ => AgreementStatus::InForce,
        };
        Agreement {
            categories: categories_of(&row),
            identity: identity_of(&row),
            lawful_basis: serde_json::from_value(serde_json::Value::String(
                row.lawful_basis.clone(),
            ))
            .unwrap_or(LawfulBasis::Consent),
            id: row.id,
            recipient_id: row.recipient_id,
            version: row.version,
            supersedes: row.supersedes,
            purposes: row.purposes,
            document_sha256: row.document_sha256,
            starts_at: Timestamp(row.starts_at),
            expires_at: Timestamp(row.expires_at),
            ended_at: row.ended_at.map(Timestamp),
            expires_soon: status == AgreementStatus::InForce
                && row.expires_at - now <= EXPIRY_WARNING_DAYS * 86_400_000,
            status,
        }
    }
}

/// What went to one recipient about a customer: shown to the customer (portal, export) and to
/// staff who may read their access log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Disclosure {
    /// The recipient.
    pub recipient_id: RecipientId,
    /// Its name.
    pub recipient: String,
    /// `processor` or `third_party`.
    pub kind: RecipientKind,
    /// Where it processes the data.
    pub country: String,
    /// The agreement.
    pub agreement_id: AgreementId,
    /// The purpose.
    pub purpose: String,
    /// The categories received.
    pub categories: Vec<DataCategory>,
    /// First received.
    pub first_at: Timestamp,
    /// Last received.
    pub last_at: Timestamp,
    /// How many reads.
    pub times: i64,
}

/// A customer's record as a recipient under a pseudonymous agreement receives it: the
/// pseudonym instead of the id, the fields the policy showed, the purchases if it showed them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SharedRecord {
    /// The recipient's pseudonym for the customer.
    pub customer: String,
    /// The fields shown, as in `GET /v1/customers/{id}` (no id, no outlet), with the decision.
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// The purchases (newest 200), when the agreement and the policy show the history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purchases: Option<Vec<SharedPurchase>>,
}

/// A purchase as a pseudonymous recipient receives it: no id, outlet or seller.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SharedPurchase {
    /// The item.
    pub item: String,
    /// The product category.
    pub category: String,
    /// Amount in minor units.
    pub amount_minor: i64,
    /// ISO 4217.
    pub currency: String,
    /// The day (UTC), `YYYY-MM-DD`: no finer, so that two recipients cannot match records by
    /// the millisecond (review finding 9).
    pub occurred_on: String,
}

/// Shuffles a page of shared records (Fisher–Yates, the system's randomness): customers are
/// walked in creation order, and two recipients comparing the positions of their pseudonyms in
/// a page would otherwise match them one to one (second review, finding 5).
fn shuffle(page: &mut [SharedRecord]) -> ServiceResult<()> {
    for i in (1..page.len()).rev() {
        let mut b = [0u8; 8];
        steward_crypto::random_bytes(&mut b)?;
        let j = (u64::from_le_bytes(b) % (i as u64 + 1)) as usize;
        page.swap(i, j);
    }
    Ok(())
}

/// Most customers one page of `GET /v1/shared` looks at; the page then ends early, with a cursor.
const SHARED_SCAN_BUDGET: usize = 2_000;

/// Most purchases in one shared record.
const SHARED_PURCHASES: u32 = 200;

/// Sharing under agreement: recipients, the agreements with them, what went to whom, and a
/// recipient's reads by pseudonym.
pub struct Sharing {
    door: Arc<crate::door::Door>,
    store: Arc<dyn steward_store::SharingStore>,
    records: Arc<crate::records::Records>,
    agreements: Arc<crate::agreements::Agreements>,
    consents: Arc<crate::consent::Consents>,
    purposes: Arc<crate::purposes::Purposes>,
    /// Tells recipients of changes that follow the data.
    webhooks: Arc<crate::webhooks::Webhooks>,
    announcer: Arc<crate::cluster::Announcer>,
    /// Seals a listing's cursor.
    links: Arc<steward_crypto::LinkKey>,
}

/// What sharing is wired to.
pub(crate) struct SharingParts {
    pub(crate) door: Arc<crate::door::Door>,
    pub(crate) store: Arc<dyn steward_store::SharingStore>,
    pub(crate) records: Arc<crate::records::Records>,
    pub(crate) agreements: Arc<crate::agreements::Agreements>,
    pub(crate) consents: Arc<crate::consent::Consents>,
    pub(crate) purposes: Arc<crate::purposes::Purposes>,
    pub(crate) webhooks: Arc<crate::webhooks::Webhooks>,
    pub(crate) announcer: Arc<crate::cluster::Announcer>,
    pub(crate) links: Arc<steward_crypto::LinkKey>,
}

impl Sharing {
    /// Wires sharing to its store and the services it asks.
    pub(crate) fn new(p: SharingParts) -> Self {
        Sharing {
            door: p.door,
            store: p.store,
            records: p.records,
            agreements: p.agreements,
            consents: p.consents,
            purposes: p.purposes,
            webhooks: p.webhooks,
            announcer: p.announcer,
            links: p.links,
        }
    }

    fn door(&self) -> &crate::door::Door {
        &self.door
    }

    fn purposes(&self) -> &crate::purposes::Purposes {
        &self.purposes
    }

    fn consents(&self) -> &crate::consent::Consents {
        &self.consents
    }

    fn webhooks(&self) -> &crate::webhooks::Webhooks {
        &self.webhooks
    }
}

impl Sharing {
    /// Whether `principal` may manage recipients and agreements (the console offers the page
    /// only then). Nothing is recorded.
    pub async fn may_manage_recipients(&self, principal: &Principal) -> bool {
        self.door()
            .authorize(principal, Action::ManageRecipients, None)
            .await
            .is_ok()
    }

    /// Registers a recipient (the DPO).
    pub async fn create_recipient(
        &self,
        principal: &Principal,
        input: &RecipientInput,
    ) -> ServiceResult<RecipientId> {
        self.door()
            .authorize(principal, Action::ManageRecipients, None)
            .await?;
        let new = input.validate(self.webhooks().insecure())?;
        let row = RecipientRow {
            id: RecipientId::new(),
            name: new.name,
            kind: new.kind.as_str().to_owned(),
            country: new.country,
            contact: new.contact,
            webhook_url: new.webhook_url,
            created_at: Timestamp::now().millis(),
        };
        let id = row.id.to_string();
        let entry = self.door().write_entry_for(
            Actor::Principal(principal),
            "create_recipient",
            None,
            &["recipient"],
            About {
                subject: Some(&id),
                purpose: None,
            },
        );
        self.store.insert_recipient(&row, &[entry]).await?;
        Ok(row.id)
    }

    /// Every recipient (the DPO).
    pub async fn recipients(&self, principal: &Principal) -> ServiceResult<Vec<Recipient>> {
        self.door()
            .authorize(principal, Action::ManageRecipients, None)
            .await?;
        let rows = self.store.recipients().await?;
        Ok(rows.into_iter().map(Recipient::of).collect())
    }

    /// Records an agreement (the DPO): its purposes must be registered and name every category
    /// it covers; a new version supersedes the old, which ends when it starts.
    pub async fn create_agreement(
        &self,
        principal: &Principal,
        input: &AgreementInput,
    ) -> ServiceResult<AgreementId> {
        self.door()
            .authorize(principal, Action::ManageRecipients, None)
            .await?;
        let new: NewAgreement = input.validate()?;
        if self.store.recipient(new.recipient_id).await?.is_none() {
            return Err(ValidationError::new("recipient_id", "no such recipient").into());
        }
        let mut purposes = Vec::with_capacity(new.purposes.len());
        for key in &new.purposes {
            let purpose = self.purposes().get("purposes", key)?;
            // A purpose resting on consent can be shared only with consent to it: the policy
            // checks it per customer; here the agreement cannot claim another basis for it.
            if purpose.lawful_basis == LawfulBasis::Consent
                && new.lawful_basis != LawfulBasis::Consent
            {
                return Err(ValidationError::new(
                    "lawful_basis",
                    format!("{key} rests on consent: so does sharing it"),
                )
                .into());
            }
            purposes.push(purpose);
        }
        let named = |c: &DataCategory| purposes.iter().any(|p| p.categories.contains(c));
        if let Some(c) = new.categories.iter().find(|c| !named(c)) {
            return Err(ValidationError::new(
                "categories",
                format!(
                    "{} is named by none of the agreement's purposes",
                    c.as_str()
                ),
            )
            .into());
        }
        let version = match new.supersedes {
            None => 1,
            Some(old) => match self.store.agreement(old).await? {
                Some(o) if o.recipient_id == new.recipient_id => o.version + 1,
                _ => {
                    return Err(ValidationError::new(
                        "supersedes",
                        "no agreement of this recipient with that id",
                    )
                    .into());
                }
            },
        };
        let row = AgreementRow {
            id: AgreementId::new(),
            recipient_id: new.recipient_id,
            version,
            supersedes: new.supersedes,
            purposes: new.purposes,
            categories: new
                .categories
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            lawful_basis: crate::vault::serde_plain(&new.lawful_basis),
            document_sha256: new.document_sha256,
            identity: new.identity.as_str().to_owned(),
            starts_at: new.starts_at.millis(),
            expires_at: new.expires_at.millis(),
            ended_at: None,
            created_at: Timestamp::now().millis(),
        };
        let (id, recipient) = (row.id.to_string(), row.recipient_id.to_string());
        let subject = format!("agreement:{id} recipient:{recipient}");
        let fields: Vec<&str> = row.categories.iter().map(String::as_str).collect();
        let entry = self.door().write_entry_for(
            Actor::Principal(principal),
            "create_agreement",
            None,
            &fields,
            About {
                subject: Some(&subject),
                purpose: None,
            },
        );
        match self.store.insert_agreement(&row, &[entry]).await? {
            steward_store::AgreementStored::Stored => {}
            steward_store::AgreementStored::Superseded => {
                return Err(ValidationError::new(
                    "supersedes",
                    "that agreement was superseded already",
                )
                .into());
            }
            // A recipient receives identities or pseudonyms, never both: a change would otherwise
            // reach it twice, once by id and once by pseudonym, and link the two (checked in the
            // agreement's own transaction, so two recorded at once cannot mix).
            steward_store::AgreementStored::MixedIdentity => return Err(mixed_identity().into()),
        }
        self.agreements.reload().await?;
        self.announcer
            .announce(crate::cluster::Change::Registry)
            .await;
        Ok(row.id)
    }

    /// Ends an agreement now (the DPO): recorded, never deleted; its recipient reads nothing
    /// more under it from this moment.
    pub async fn end_agreement(&self, principal: &Principal, id: AgreementId) -> ServiceResult<()> {
        self.door()
            .authorize(principal, Action::ManageRecipients, None)
            .await?;
        let subject = format!("agreement:{id}");
        let entry = self.door().write_entry_for(
            Actor::Principal(principal),
            "end_agreement",
            None,
            &[],
            About {
                subject: Some(&subject),
                purpose: None,
            },
        );
        let ended = self
            .store
            .end_agreement(id, Timestamp::now().millis(), &[entry])
            .await?;
        self.agreements.reload().await?;
        self.announcer
            .announce(crate::cluster::Change::Registry)
            .await;
        if ended {
            Ok(())
        } else if self.store.agreement(id).await?.is_some() {
            Err(ServiceError::WrongState("the agreement has ended already"))
        } else {
            Err(ServiceError::NotFound("agreement"))
        }
    }

    /// Every agreement (of one recipient), oldest first (the DPO).
    pub async fn agreements(
        &self,
        principal: &Principal,
        recipient: Option<RecipientId>,
    ) -> ServiceResult<Vec<Agreement>> {
        self.door()
            .authorize(principal, Action::ManageRecipients, None)
            .await?;
        let now = Timestamp::now().millis();
        let rows = self.store.agreements(recipient).await?;
        Ok(rows.into_iter().map(|r| Agreement::of(r, now)).collect())
    }

    /// What went to which recipient about a customer: the customer themself (portal, export)
    /// or staff who may read the customer's access log. Recorded as a read of that log.
    pub async fn disclosures(
        &self,
        actor: Actor<'_>,
        customer: CustomerId,
    ) -> ServiceResult<Vec<Disclosure>> {
        self.door()
            .authorize_actor(actor, Action::ReadAccessLog, Some(customer), true)
            .await?;
        if let Actor::Principal(_) = actor {
            self.door()
                .record_read(actor, "read_disclosures", Some(customer), &[])
                .await?;
        }
        self.disclosures_unrecorded(customer).await
    }

    /// [`Sharing::disclosures`] inside an act already decided and recorded (the subject's export).
    pub(crate) async fn disclosures_unrecorded(
        &self,
        customer: CustomerId,
    ) -> ServiceResult<Vec<Disclosure>> {
        let rows = self.store.disclosures_of(customer).await?;
        let recipients = self.store.recipients().await?;
        Ok(rows
            .into_iter()
            .filter_map(|d| {
                let r = recipients.iter().find(|r| r.id == d.recipient_id)?;
                Some(Disclosure {
                    recipient_id: d.recipient_id,
                    recipient: r.name.clone(),
                    kind: kind_of(r),
                    country: r.country.clone(),
                    agreement_id: d.agreement_id,
                    purpose: d.purpose,
                    categories: parse_categories(&d.categories),
                    first_at: Timestamp(d.first_at),
                    last_at: Timestamp(d.last_at),
                    times: d.times,
                })
            })
            .collect())
    }

    /// The pseudonymous agreement covering a recipient's read under `access`; refused for
    /// anyone else, and for an identified agreement (whose recipient reads by id).
    fn pseudonymous_covering(&self, access: &Access<'_>) -> ServiceResult<RecipientId> {
        let Some(recipient) = access.principal.recipient() else {
            return Err(ServiceError::Forbidden {
                field: "Authorization",
                detail: "only a recipient under a pseudonymous agreement reads by pseudonym".into(),
            });
        };
        match self.agreements
            .covering(access.principal, &access.purpose.key)
        {
            Some(c) if c.terms.identity == Identity::Pseudonymous => Ok(recipient),
            Some(_) => Err(ServiceError::Forbidden {
                field: "purpose",
                detail: "the agreement for this purpose is identified: read by id, GET /v1/customers/{id}".into(),
            }),
            None => Err(ServiceError::Forbidden {
                field: "purpose",
                detail: "no agreement in force covers this purpose".into(),
            }),
        }
    }

    /// One customer by a recipient's pseudonym, decided and recorded like any read; 404 for a
    /// pseudonym it was never given or whose customer is erased.
    pub async fn read_shared(
        &self,
        access: &Access<'_>,
        pseudonym: &str,
    ) -> ServiceResult<SharedRecord> {
        let recipient = self.pseudonymous_covering(access)?;
        let id = self
            .store
            .pseudonym_customer(recipient, pseudonym)
            .await?
            .ok_or(ServiceError::NotFound("customer"))?;
        self.shared_record(access, recipient, id).await
    }

    /// The customers a pseudonymous recipient may receive under `access`, a page at a time,
    /// each a decided and recorded read; the cursor is sealed, so it names no customer.
    pub async fn list_shared(
        &self,
        access: &Access<'_>,
        cursor: Option<&str>,
        limit: u32,
    ) -> ServiceResult<(Vec<SharedRecord>, Option<String>)> {
        let recipient = self.pseudonymous_covering(access)?;
        let kind = format!("shared-cursor:{recipient}");
        let mut after = match cursor {
            None => None,
            Some(c) => Some(
                self.links
                    .open(&kind, c)
                    .map(|b| CustomerId(uuid::Uuid::from_bytes(b)))
                    .ok_or_else(|| ValidationError::new("cursor", "not a cursor of this list"))?,
            ),
        };
        let limit = limit.clamp(1, 100);
        let mut out = Vec::new();
        let mut scanned = 0usize;
        let seal = |after: Option<CustomerId>| -> ServiceResult<Option<String>> {
            Ok(match after {
                Some(a) => Some(self.links.seal(&kind, a.as_bytes())?),
                None => None,
            })
        };
        loop {
            let (ids, _) = self.records.customer_id_page(after, limit * 2).await?;
            let exhausted = ids.len() < (limit * 2) as usize;
            for id in ids {
                after = Some(id);
                scanned += 1;
                // Passed over unread, unrecorded and uncounted: those the agreement and the policy
                // would show nothing of (restricted, no consent where the purpose needs it).
                if self.shareable(access, id).await? {
                    match self.shared_record(access, recipient, id).await {
                        Ok(r) => out.push(r),
                        Err(ServiceError::Forbidden { .. } | ServiceError::NotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                if out.len() == limit as usize || scanned >= SHARED_SCAN_BUDGET {
                    shuffle(&mut out)?;
                    return Ok((out, seal(after)?));
                }
            }
            if exhausted {
                shuffle(&mut out)?;
                return Ok((out, None));
            }
        }
    }

    /// Whether a pseudonymous recipient's read of customer `id` under `access` would show
    /// anything: decided hypothetically (nothing opened, nothing recorded), consent asked where
    /// the purpose rests on it.
    async fn shareable(&self, access: &Access<'_>, id: CustomerId) -> ServiceResult<bool> {
        let facts = match self.door().access_facts(id).await {
            Ok(f) => f,
            Err(ServiceError::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        let subject = steward_policy::Subject {
            id,
            outlets: &facts.outlets,
            restricted: facts.restricted,
        };
        let d = self.records.decide_hypothetical(
            access.principal,
            access.purpose,
            subject,
            None,
            false,
            &steward_policy::Field::CUSTOMER_VIEW,
        );
        if d.denies_all() {
            return Ok(false);
        }
        Ok(access.purpose.lawful_basis != LawfulBasis::Consent
            || self.consents().active(id, &access.purpose.key).await?)
    }

    /// The shared record of customer `id`, read under its pseudonym.
    async fn shared_record(
        &self,
        access: &Access<'_>,
        recipient: RecipientId,
        id: CustomerId,
    ) -> ServiceResult<SharedRecord> {
        let view = self
            .records
            .read_customer_via(access, id, Via::Pseudonym)
            .await?;
        let history = "purchases".to_owned();
        let shows_history = !view.decision.withheld.contains(&history)
            && !view.decision.abstracted.contains(&history)
            && !view.decision.masked.contains(&history);
        let mut fields = match serde_json::to_value(&view) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        // What would link the record to the customer or the shop they use stays behind.
        for key in ["id", "outlet_id", "created_at", "updated_at"] {
            fields.remove(key);
        }
        let purchases = if shows_history {
            let all = self
                .records
                .list_purchases(id, None, SHARED_PURCHASES)
                .await?;
            Some(
                all.into_iter()
                    .map(|p| SharedPurchase {
                        item: p.item,
                        category: p.category,
                        amount_minor: p.amount_minor,
                        currency: p.currency,
                        occurred_on: p.occurred_at.to_rfc3339().chars().take(10).collect(),
                    })
                    .collect(),
            )
        } else {
            None
        };
        let customer = self
            .store
            .pseudonym_of(recipient, id)
            .await?
            .ok_or(ServiceError::NotFound("customer"))?;
        Ok(SharedRecord {
            customer,
            fields,
            purchases,
        })
    }
}
