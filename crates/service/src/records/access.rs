//! Decided reads and authorised writes: every use of personal data goes through the policy.
//!
//! INVARIANT: a field the decision withholds is never unsealed; a masked field is unsealed only
//! to be masked here, and never leaves in full.

use steward_domain::{
    AuditLeaf, Customer, CustomerId, CustomerView, DecisionSummary, Interaction, LawfulBasis,
    ProfileField, Purchase, PurchaseSummary, Purpose, Shown, Timestamp,
};
use steward_policy::{Action, Decision, Field, Outcome, ReadRequest, Subject};
use uuid::Uuid;

use crate::error::{ServiceError, ServiceResult};
use crate::records::Records;
use crate::{GuardOutcome, Principal, seal};

/// How a read names its customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// By id.
    Id,
    /// By a recipient's pseudonym.
    Pseudonym,
}

/// Who reads, for which declared purpose, with which reason.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    /// The caller.
    pub principal: &'a Principal,
    /// The declared purpose (from the registry).
    pub purpose: &'a Purpose,
    /// A stated reason, if any.
    pub reason: Option<&'a str>,
    /// The caller asks to read beyond the normal rules (break-glass; flagged for the DPO).
    pub break_glass: bool,
}

impl<'a> Access<'a> {
    /// The read as the bulk guard and the DPO's alerts see it.
    pub(crate) fn flagged(&self) -> Flagged<'a> {
        Flagged {
            principal: self.principal,
            purpose: &self.purpose.key,
            reason: self.reason,
            break_glass: self.break_glass,
        }
    }
}

/// Who a guarded or flagged read is by, and under what.
pub(crate) struct Flagged<'a> {
    /// The caller.
    pub(crate) principal: &'a Principal,
    /// The purpose key (or what was read, for reads outside a purpose's decision).
    pub(crate) purpose: &'a str,
    /// The stated reason, if any.
    pub(crate) reason: Option<&'a str>,
    /// Whether break-glass was asked for.
    pub(crate) break_glass: bool,
}

/// What a staff member may do to a customer beyond reading (see [`Records::customer_actions`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct CustomerActions {
    /// Change the profile.
    pub update: bool,
    /// Log an interaction.
    pub add_interaction: bool,
    /// Record a purchase (at their own outlet: they need one).
    pub add_purchase: bool,
    /// Merge a duplicate into this customer.
    pub merge: bool,
}

/// What a staff member may do with the directory, the accounts and the purposes (see
/// [`Records::directory_actions`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct DirectoryActions {
    /// See outlets and staff.
    pub read: bool,
    /// Add outlets and staff, disable staff.
    pub manage: bool,
    /// List and revoke tokens and sessions.
    pub tokens: bool,
    /// Register and change purposes.
    pub purposes: bool,
}

/// A customer's purchases as a decided read returns them: the items, or only derived facts.
#[derive(Debug, Clone)]
pub struct PurchasesView {
    /// The purchases, when the history may be shown.
    pub items: Vec<Purchase>,
    /// The derived facts, when only the abstraction may be shown.
    pub summary: Option<PurchaseSummary>,
    /// The decision.
    pub decision: DecisionSummary,
}

fn summarise(decision: &Decision) -> DecisionSummary {
    let mut s = DecisionSummary::default();
    for d in &decision.fields {
        let name = d.field.as_str().to_owned();
        match d.outcome {
            Outcome::Show => {}
            Outcome::Mask => s.masked.push(name.clone()),
            Outcome::Abstract => s.abstracted.push(name.clone()),
            Outcome::Withhold => s.withheld.push(name.clone()),
        }
        s.policies.insert(name, d.policies.clone());
    }
    s
}

/// The refusal for a decision that allows nothing, naming the purpose when consent or the
/// purpose's scope is the reason.
fn refusal(access: &Access<'_>, decision: &Decision) -> ServiceError {
    let all_by = |id: &str| {
        decision
            .fields
            .iter()
            .all(|f| f.policies.iter().any(|p| p == id))
    };
    let key = &access.purpose.key;
    if all_by("acknowledgement-required") {
        return ServiceError::AcknowledgementRequired;
    }
    if all_by("purpose-bound-to-roles") {
        return ServiceError::PurposeNotDeclarable(key.clone());
    }
    let (field, detail) = if all_by("consent-required") {
        (
            "purpose",
            format!("purpose {key} needs the customer's consent, which is not active"),
        )
    } else if all_by("restriction") {
        (
            "purpose",
            format!("the customer's data is restricted; purpose {key} is not a legal obligation"),
        )
    } else if all_by("purpose-limits-categories") {
        (
            "purpose",
            format!("purpose {key} does not cover these data categories"),
        )
    } else {
        (
            "purpose",
            format!("no policy lets this caller read this data for purpose {key}"),
        )
    };
    ServiceError::Forbidden { field, detail }
}

/// Whether a decision lets the customer view show anything: a profile field, or the purchase
/// abstraction (the history itself is read through its own endpoint).
pub(crate) fn serves_customer_view(d: &Decision) -> bool {
    Field::PROFILE
        .iter()
        .any(|f| d.outcome(*f) != Outcome::Withhold)
        || d.outcome(Field::PurchaseHistory) == Outcome::Abstract
}

/// Whether a decision lets a customer's messages be read.
pub(crate) fn serves_communications(d: &Decision) -> bool {
    d.outcome(Field::Communications) == Outcome::Show
}

/// Whether a decision lets a customer's purchases, or their abstraction, be read.
pub(crate) fn serves_purchases(d: &Decision) -> bool {
    matches!(
        d.outcome(Field::PurchaseHistory),
        Outcome::Show | Outcome::Abstract
    )
}

/// The audit entry of one decision: outcomes and policies per field, no values; `allow` only if
/// the endpoint serves something under it. A recipient's read is a disclosure: its entry names
/// the agreement and the recipient.
fn decision_leaf(
    (pseudonym, customer): (String, CustomerId),
    access: &Access<'_>,
    decision: &Decision,
    served: bool,
    reason_length: usize,
    covering: Option<&crate::agreements::Covering>,
) -> AuditLeaf {
    let principal = access.principal;
    AuditLeaf {
        v: steward_domain::audit::LEAF_VERSION,
        time: Timestamp::now(),
        principal: pseudonym,
        roles: principal.roles.clone(),
        outlets: principal.outlets.clone(),
        action: if covering.is_some() {
            "disclose"
        } else {
            "read"
        }
        .into(),
        customer: Some(customer),
        subject: covering
            .map(|c| format!("agreement:{} recipient:{}", c.row.id, c.row.recipient_id)),
        purpose: Some(access.purpose.key.clone()),
        categories: decision
            .fields
            .iter()
            .map(|f| (f.field.as_str().to_owned(), f.outcome.as_str().to_owned()))
            .collect(),
        policies: decision
            .fields
            .iter()
            .map(|f| (f.field.as_str().to_owned(), f.policies.clone()))
            .collect(),
        reason_length: u32::try_from(reason_length).unwrap_or(u32::MAX),
        break_glass: access.break_glass,
        outcome: if served { "allow" } else { "deny" }.into(),
    }
}

pub(crate) use steward_domain::segment::tier_of;

/// Derived facts from a purchase history.
pub fn purchase_summary(purchases: &[Purchase], now: Timestamp) -> PurchaseSummary {
    let n = purchases.len();
    let three_years = 3 * 365 * 86_400_000i64;
    let recent_watches = purchases
        .iter()
        .filter(|p| p.category == "watches" && now.millis() - p.occurred_at.millis() <= three_years)
        .count();
    PurchaseSummary {
        tier: tier_of(n),
        purchase_count_band: match n {
            0 => "0",
            1 => "1",
            2..=4 => "2-4",
            5..=9 => "5-9",
            _ => "10+",
        },
        eligible_for_allocation: recent_watches >= 2,
    }
}

/// Shapes an opened customer by a decision: withheld fields absent, masked ones masked. Pure, so
/// that the property "no response carries what its decision withheld or masked" is testable.
pub fn customer_view(
    decision: &Decision,
    c: Customer,
    purchase_summary: Option<PurchaseSummary>,
) -> CustomerView {
    let outcome = |f: Field| decision.outcome(f);
    // The purchase history is decided here for its abstraction; its items are read through their
    // own endpoint. A history the decision withholds is said to be withheld (issue 17: a
    // marketing read left it out and the console then called it shown).
    let summary = summarise(decision);
    // Only show and mask put anything of a profile field in the view; abstraction is defined for
    // purchase history alone, so on a profile field it shows nothing.
    let shown = |f: ProfileField| match outcome(Field::Profile(f)) {
        Outcome::Show => Shown::Full,
        Outcome::Mask => Shown::Masked,
        Outcome::Abstract | Outcome::Withhold => Shown::Nothing,
    };
    c.shaped(
        shown,
        // Where a customer registered says where they shop: shown only with the history.
        outcome(Field::PurchaseHistory) == Outcome::Show,
        purchase_summary.filter(|_| outcome(Field::PurchaseHistory) == Outcome::Abstract),
        summary,
    )
}

impl Records {
    /// Decides a read of `fields` of customer `id`; `serves` says whether the endpoint returns
    /// anything under a decision (the audit entry's outcome).
    async fn decide(
        &self,
        access: &Access<'_>,
        id: CustomerId,
        fields: &[Field],
        serves: fn(&Decision) -> bool,
    ) -> ServiceResult<Decision> {
        let facts = self.door().access_facts(id).await?;
        self.decide_with(access, id, &facts, fields, serves).await
    }

    /// Decides a read of `fields` of customer `id` whose policy facts are known.
    pub(crate) async fn decide_with(
        &self,
        access: &Access<'_>,
        id: CustomerId,
        facts: &steward_store::AccessFacts,
        fields: &[Field],
        serves: fn(&Decision) -> bool,
    ) -> ServiceResult<Decision> {
        self.decide_via(access, id, facts, fields, serves, Via::Id)
            .await
    }

    /// [`Records::decide_with`], naming how the caller refers to the customer: a recipient under a
    /// pseudonymous agreement may refer to them only by its pseudonym. A recipient's read that
    /// shows anything is recorded as a disclosure before anything leaves.
    pub(crate) async fn decide_via(
        &self,
        access: &Access<'_>,
        id: CustomerId,
        facts: &steward_store::AccessFacts,
        fields: &[Field],
        serves: fn(&Decision) -> bool,
        via: Via,
    ) -> ServiceResult<Decision> {
        if via == Via::Id {
            self.agreements.refuse_recipient_by_id(access)?;
        }
        let covering = self
            .agreements
            .covering(access.principal, &access.purpose.key);
        let asker = access.principal.asker();
        // The guard counts every decided read, allowed or not: probing is reading too.
        self.count_read(&access.flagged(), id).await?;
        // The ledger is read only when the purpose rests on consent.
        let consented = access.purpose.lawful_basis == LawfulBasis::Consent
            && self.consents().active(id, &access.purpose.key).await?;
        // Counted in visible characters: twenty zero-width spaces are no reason.
        let reason_length = access
            .reason
            .map(steward_domain::normalize::visible_chars)
            .unwrap_or(0);
        let req = ReadRequest {
            asker,
            subject: Subject {
                id,
                outlets: &facts.outlets,
                restricted: facts.restricted,
            },
            purpose: access.purpose,
            consented,
            has_reason: reason_length > 0,
            reason_length,
            break_glass: access.break_glass,
            acknowledged: self
                .notices
                .acknowledged(access.principal, steward_domain::Timestamp::now()),
            now: steward_domain::Timestamp::now(),
            agreement: covering.as_ref().map(|c| &c.terms),
        };
        let decision = self.door().policy().decide_read(&req, fields);
        // INVARIANT: recorded (and committed) before the caller can return any data.
        // A recipient's disclosure is recorded first, under the checks that it still may be
        // made; if it may not, the entry says it was refused and nothing leaves.
        let mut served = serves(&decision);
        if let Some(c) = &covering
            && served
        {
            let shown: Vec<&str> = decision
                .fields
                .iter()
                .filter(|f| f.outcome != Outcome::Withhold)
                .map(|f| f.field.category().as_str())
                .collect();
            served = self
                .agreements
                .record_disclosure(c, id, access.purpose, &shown)
                .await?
                .is_some();
        }
        let leaf = decision_leaf(
            (self.door().pseudonym(&req.asker.id), id),
            access,
            &decision,
            served,
            reason_length,
            covering.as_ref().filter(|_| served),
        );
        self.door().audit().append(&leaf).await?;
        if covering.is_some() && !served && serves(&decision) {
            return Err(ServiceError::Forbidden {
                field: "id",
                detail: "the customer's data may no longer be disclosed (restricted, consent withdrawn, erased, or the agreement ended)".into(),
            });
        }
        // A read that break-glass or the fraud review allowed is flagged for the DPO, with its
        // reason sealed, before any data leaves.
        for (policy, kind, what) in FLAGGED {
            let flagged: Vec<&str> = decision
                .fields
                .iter()
                .filter(|f| {
                    f.outcome != Outcome::Withhold && f.policies.iter().any(|p| p == policy)
                })
                .map(|f| f.field.as_str())
                .collect();
            if !flagged.is_empty() {
                let detail = format!(
                    "{what} of {} with a reason of {reason_length} visible characters",
                    flagged.join(", ")
                );
                self.alert(kind, access, Some(id), detail).await?;
            }
        }
        Ok(decision)
    }

    /// Counts a read of customer `id` against the bulk-access guard; past the caller's limit it
    /// is refused (and the DPO alerted the first time).
    pub(crate) async fn count_read(&self, who: &Flagged<'_>, id: CustomerId) -> ServiceResult<()> {
        let asker = who.principal.asker().id;
        let shared = self.limits().shared();
        if shared && self.limits().bulk_refused_elsewhere(&asker) {
            return Err(ServiceError::BulkAccess);
        }
        let now = std::time::Instant::now();
        let outcome = match self.bulk.check_new(&asker, &who.principal.roles, id, now) {
            // New to this caller here: counted for the installation too (servers on
            // PostgreSQL), so a reader spread over several servers meets the same limit.
            (GuardOutcome::Allowed, Some((limit, window))) if shared => {
                if self.limits().count_bulk(&asker, id, limit, window).await? {
                    self.bulk.refuse(&asker, now);
                    GuardOutcome::Refused { newly: true }
                } else {
                    GuardOutcome::Allowed
                }
            }
            (o, _) => o,
        };
        match outcome {
            GuardOutcome::Allowed => Ok(()),
            GuardOutcome::Refused { newly } => {
                if newly {
                    let detail = "read more distinct customers in an hour than the role allows; refused for the next hour".to_owned();
                    self.alerts()
                        .raise("bulk_access", who, None, detail)
                        .await?;
                }
                Err(ServiceError::BulkAccess)
            }
        }
    }

    /// Raises an alert for the DPO: listed by `GET /v1/alerts` and appended to the audit log.
    async fn alert(
        &self,
        kind: &str,
        access: &Access<'_>,
        customer: Option<CustomerId>,
        detail: String,
    ) -> ServiceResult<()> {
        self.alerts()
            .raise(kind, &access.flagged(), customer, detail)
            .await
    }

    /// A customer's sealed row, wrapped key and access facts, read together; `NotFound` if none.
    async fn customer_for_read(
        &self,
        id: CustomerId,
    ) -> ServiceResult<(
        steward_store::CustomerRow,
        steward_store::StoredKey,
        steward_store::AccessFacts,
    )> {
        self.customers
            .get_customer_for_read(id)
            .await?
            .ok_or(ServiceError::NotFound("customer"))
    }

    /// Whether the policy would let `principal` read customer `id` for `purpose` beyond the usual
    /// rules (break-glass, with a reason long enough): the console offers the form only then. A
    /// hypothetical read: nothing is opened, nothing recorded; consent is taken as given, since
    /// break-glass never passes a missing one anyway.
    pub async fn may_break_glass(
        &self,
        principal: &Principal,
        purpose: &Purpose,
        id: CustomerId,
    ) -> ServiceResult<bool> {
        let facts = self.door().access_facts(id).await?;
        let subject = Subject {
            id,
            outlets: &facts.outlets,
            restricted: facts.restricted,
        };
        let d = self.decide_hypothetical(
            principal,
            purpose,
            subject,
            Some(BREAK_GLASS_REASON),
            true,
            &Field::ALL,
        );
        Ok(d.fields.iter().any(|f| {
            f.outcome != Outcome::Withhold && f.policies.iter().any(|p| p == "break-glass")
        }))
    }

    /// What `principal` may do to customer `id` beyond reading, as the policy decides it now:
    /// the console offers a form only when it would succeed. Nothing is recorded.
    pub async fn customer_actions(
        &self,
        principal: &Principal,
        id: CustomerId,
    ) -> ServiceResult<CustomerActions> {
        let may = async |action| {
            self.door()
                .authorize(principal, action, Some(id))
                .await
                .is_ok()
        };
        Ok(CustomerActions {
            update: may(Action::UpdateCustomer).await,
            add_interaction: may(Action::AddInteraction).await,
            add_purchase: may(Action::AddPurchase).await && !principal.outlets.is_empty(),
            merge: may(Action::MergeCustomers).await,
        })
    }

    /// What `principal` may do with the directory and the accounts: read it, change it, list
    /// and revoke tokens (the console offers each part only then). Nothing is recorded.
    pub async fn directory_actions(&self, principal: &Principal) -> DirectoryActions {
        let may = async |action| self.door().authorize(principal, action, None).await.is_ok();
        DirectoryActions {
            read: may(Action::ReadDirectory).await,
            manage: may(Action::ManageDirectory).await,
            tokens: may(Action::ManageTokens).await,
            purposes: may(Action::ManagePurposes).await,
        }
    }

    /// Whether `principal` may register new customers (the console offers the form only then).
    pub async fn may_create_customer(&self, principal: &Principal) -> bool {
        self.door()
            .authorize(principal, Action::CreateCustomer, None)
            .await
            .is_ok()
    }

    /// Whether `principal` may scrape the operational metrics (`Forbidden` otherwise).
    pub async fn may_read_metrics(&self, principal: &Principal) -> ServiceResult<()> {
        self.door()
            .authorize(principal, Action::ReadMetrics, None)
            .await
    }

    /// Reads one customer as the policy allows.
    pub async fn read_customer(
        &self,
        access: &Access<'_>,
        id: CustomerId,
    ) -> ServiceResult<CustomerView> {
        self.read_customer_via(access, id, Via::Id).await
    }

    /// [`Records::read_customer`], the customer named by id or by a recipient's pseudonym.
    pub(crate) async fn read_customer_via(
        &self,
        access: &Access<'_>,
        id: CustomerId,
        via: Via,
    ) -> ServiceResult<CustomerView> {
        if via == Via::Id {
            self.agreements.refuse_recipient_by_id(access)?;
        }
        let (row, key, facts) = self.customer_for_read(id).await?;
        let fields = Field::CUSTOMER_VIEW;
        // A shared record carries the purchases beside the profile: the history alone serves it.
        let serves: fn(&Decision) -> bool = match via {
            Via::Id => serves_customer_view,
            Via::Pseudonym => {
                |d| serves_customer_view(d) || d.outcome(Field::PurchaseHistory) == Outcome::Show
            }
        };
        let decision = self
            .decide_via(access, id, &facts, &fields, serves, via)
            .await?;
        if !serves(&decision) {
            return Err(refusal(access, &decision));
        }
        // A recipient is given the record as it is once its disclosure is recorded: a correction
        // committed before that found no disclosure to follow, so the old values must not leave
        // (second review, finding 4).
        let (row, key) = if access.principal.recipient().is_some() {
            let (row, key, _) = self.customer_for_read(id).await?;
            (row, key)
        } else {
            (row, key)
        };
        let dk = self.keys().open(id, &key)?;
        let c: Customer = seal::open_customer_fields(&dk, &row, |f| {
            matches!(
                decision.outcome(Field::Profile(f)),
                Outcome::Show | Outcome::Mask
            )
        })?;
        let purchase_summary = if decision.outcome(Field::PurchaseHistory) == Outcome::Abstract {
            let rows = self
                .activity
                .recent_purchases(id, None, ABSTRACTION_SCAN)
                .await?;
            let purchases = rows
                .iter()
                .map(|r| seal::open_purchase(&dk, r))
                .collect::<ServiceResult<Vec<_>>>()?;
            Some(purchase_summary(&purchases, Timestamp::now()))
        } else {
            None
        };
        Ok(customer_view(&decision, c, purchase_summary))
    }

    /// Looks customers up by e-mail or phone, as the policy allows.
    pub async fn lookup_customers(
        &self,
        access: &Access<'_>,
        kind: &'static str,
        normalised: &str,
    ) -> ServiceResult<Vec<CustomerView>> {
        // A recipient reads the customers its agreements cover, by id or pseudonym; it never
        // searches the contact index (whether an address is a customer's is not its to learn).
        if access.principal.recipient().is_some() {
            return Err(ServiceError::Forbidden {
                field: "Authorization",
                detail: "a recipient does not look customers up".into(),
            });
        }
        self.check_declarable(access)?;
        let ids = self.lookup_ids(kind, normalised).await?;
        if ids.is_empty() {
            // A look-up that finds nobody still tells the caller something: it is an entry.
            let about = crate::door::About {
                subject: None,
                purpose: Some(&access.purpose.key),
            };
            let e = crate::door::entry_with_outcome(
                self.door()
                    .actor_parts(crate::Actor::Principal(access.principal)),
                "lookup",
                None,
                &[kind],
                about,
                "asked",
                "none",
            );
            self.door().record(&[e]).await?;
        }
        self.read_each(access, ids).await
    }

    /// Refuses a list or look-up whose purpose the caller's roles may not declare, before any
    /// customer is read (so an empty page does not hide the refusal). The policy decides, for a
    /// customer of no outlet: its `purpose-bound-to-roles` forbid depends on no customer.
    pub(crate) fn check_declarable(&self, access: &Access<'_>) -> ServiceResult<()> {
        self.agreements.refuse_recipient_by_id(access)?;
        let d = self.decide_hypothetical(
            access.principal,
            access.purpose,
            nobody(),
            Some(0),
            false,
            &Field::ALL,
        );
        let bound = d
            .fields
            .iter()
            .all(|f| f.policies.iter().any(|p| p == "purpose-bound-to-roles"));
        if bound {
            return Err(ServiceError::PurposeNotDeclarable(
                access.purpose.key.clone(),
            ));
        }
        Ok(())
    }

    /// Refuses a list whose caller could see nothing of any customer under this access (an
    /// analyst's, the DPO's without a reason): a 403 saying why, not an empty page (issue 17).
    /// Decided for a customer of the caller's own outlets who consented: the most a caller can be
    /// shown.
    pub(crate) fn check_reads_anyone(&self, access: &Access<'_>) -> ServiceResult<()> {
        let own = Subject {
            id: CustomerId(Uuid::nil()),
            outlets: &access.principal.outlets,
            restricted: false,
        };
        let reason = access
            .reason
            .map(steward_domain::normalize::visible_chars)
            .filter(|n| *n > 0);
        let d = self.decide_hypothetical(
            access.principal,
            access.purpose,
            own,
            reason,
            access.break_glass,
            &Field::CUSTOMER_VIEW,
        );
        if serves_customer_view(&d) {
            Ok(())
        } else {
            Err(refusal(access, &d))
        }
    }

    /// What the policy would decide for a read by `principal` of `subject` (consent taken as
    /// given; `reason` its visible length, if one is given): to know what to refuse or offer.
    /// Nothing is opened and nothing recorded.
    /// Whether `principal` may declare `purpose` (the policy's `purpose-bound-to-roles`).
    pub(crate) fn declares(&self, principal: &Principal, purpose: &Purpose) -> bool {
        self.check_declarable(&Access {
            principal,
            purpose,
            reason: None,
            break_glass: false,
        })
        .is_ok()
    }

    /// Whether a stated reason widens what `principal` may read under a purpose it declares
    /// (the DPO reads only with one): the console's search then asks for a reason.
    pub fn reads_with_reason(&self, principal: &Principal) -> bool {
        let shown = |purpose: &Purpose, reason: Option<usize>| {
            self.decide_hypothetical(principal, purpose, nobody(), reason, false, &Field::ALL)
                .fields
                .iter()
                .filter(|f| f.outcome != Outcome::Withhold)
                .count()
        };
        self.declarable_purposes(principal)
            .iter()
            .any(|p| shown(p, Some(BREAK_GLASS_REASON)) > shown(p, None))
    }

    pub(crate) fn decide_hypothetical(
        &self,
        principal: &Principal,
        purpose: &Purpose,
        subject: Subject<'_>,
        reason: Option<usize>,
        break_glass: bool,
        fields: &[Field],
    ) -> Decision {
        let covering = self.agreements.covering(principal, &purpose.key);
        let req = ReadRequest {
            asker: principal.asker(),
            subject,
            purpose,
            consented: true,
            has_reason: reason.is_some(),
            reason_length: reason.unwrap_or(0),
            break_glass,
            acknowledged: self.notices.acknowledged(principal, Timestamp::now()),
            now: Timestamp::now(),
            agreement: covering.as_ref().map(|c| &c.terms),
        };
        self.door().policy().decide_read(&req, fields)
    }

    /// Reads each customer as the policy allows, leaving out those the caller may see nothing of.
    async fn read_each(
        &self,
        access: &Access<'_>,
        ids: Vec<CustomerId>,
    ) -> ServiceResult<Vec<CustomerView>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.read_customer(access, id).await {
                Ok(v) => out.push(v),
                Err(ServiceError::Forbidden { .. } | ServiceError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// A customer's interactions, if the policy shows communications.
    pub async fn read_interactions(
        &self,
        access: &Access<'_>,
        id: CustomerId,
        after: Option<Uuid>,
        limit: u32,
    ) -> ServiceResult<Vec<Interaction>> {
        self.check_communications(access, id).await?;
        let mut items = self.list_interactions(id, after, limit).await?;
        self.shown_to(access.principal, &mut items).await?;
        Ok(items)
    }

    /// A request decided without a reason or break-glass: what writing to a customer
    /// (`send_message`) and personalising for them (`personalise`) are decided on — neither is
    /// ever widened by a stated reason.
    pub(crate) fn plain_request<'a>(
        &self,
        principal: &'a Principal,
        (id, facts): (CustomerId, &'a steward_store::AccessFacts),
        purpose: &'a Purpose,
        consented: bool,
        now: steward_domain::Timestamp,
    ) -> ReadRequest<'a> {
        ReadRequest {
            asker: principal.asker(),
            subject: Subject {
                id,
                outlets: &facts.outlets,
                restricted: facts.restricted,
            },
            purpose,
            consented,
            has_reason: false,
            reason_length: 0,
            break_glass: false,
            acknowledged: self.notices.acknowledged(principal, now),
            now,
            // Writing to a customer and personalising are no recipient's: no agreement, and the
            // policy refuses a recipient.
            agreement: None,
        }
    }

    /// Decides (and records) a read of customer `id`'s communications; refused unless shown.
    pub(crate) async fn check_communications(
        &self,
        access: &Access<'_>,
        id: CustomerId,
    ) -> ServiceResult<()> {
        self.agreements.refuse_recipient_by_id(access)?;
        let decision = self
            .decide(access, id, &[Field::Communications], serves_communications)
            .await?;
        if !serves_communications(&decision) {
            return Err(refusal(access, &decision));
        }
        Ok(())
    }

    /// A customer's purchases: the items if the policy shows them, the derived facts if it
    /// abstracts them — and then, need-to-know per record, the items sold at the caller's own
    /// outlets in full, if the policy shows a purchase made there (decided as a read of its own).
    pub async fn read_purchases(
        &self,
        access: &Access<'_>,
        id: CustomerId,
        after: Option<Uuid>,
        limit: u32,
    ) -> ServiceResult<PurchasesView> {
        self.agreements.refuse_recipient_by_id(access)?;
        let facts = self.door().access_facts(id).await?;
        let decision = self
            .decide_with(
                access,
                id,
                &facts,
                &[Field::PurchaseHistory],
                serves_purchases,
            )
            .await?;
        match decision.outcome(Field::PurchaseHistory) {
            Outcome::Show => Ok(PurchasesView {
                items: {
                    let mut items = self.list_purchases(id, after, limit).await?;
                    // Who sold it is the business's staff, not the customer's data: a recipient
                    // is not told (review finding 10).
                    if access.principal.recipient().is_some() {
                        for p in &mut items {
                            p.seller_id = None;
                        }
                    }
                    items
                },
                summary: None,
                decision: summarise(&decision),
            }),
            Outcome::Abstract => {
                let all = self.newest_purchases(id, ABSTRACTION_SCAN).await?;
                let summary = purchase_summary(&all, Timestamp::now());
                let items = self
                    .own_outlet_purchases(access, id, &facts, all, after, limit)
                    .await?;
                Ok(PurchasesView {
                    items,
                    summary: Some(summary),
                    decision: summarise(&decision),
                })
            }
            _ => Err(refusal(access, &decision)),
        }
    }

    /// Of `all` (opened for the abstraction), the purchases made at the caller's outlets, if the
    /// policy shows a purchase record made there: the resource of that decision is the record's
    /// outlet, not the customer's, so recording a sale shows the seller that sale and nothing else.
    pub(crate) async fn own_outlet_purchases(
        &self,
        access: &Access<'_>,
        id: CustomerId,
        facts: &steward_store::AccessFacts,
        all: Vec<Purchase>,
        after: Option<Uuid>,
        limit: u32,
    ) -> ServiceResult<Vec<Purchase>> {
        let mine = &access.principal.outlets;
        let mut at: Vec<steward_domain::OutletId> = all
            .iter()
            .map(|p| p.outlet_id)
            .filter(|o| mine.contains(o))
            .collect();
        at.sort_unstable();
        at.dedup();
        if at.is_empty() {
            return Ok(vec![]);
        }
        let record = steward_store::AccessFacts {
            outlets: at.clone(),
            restricted: facts.restricted,
        };
        let d = self
            .decide_with(access, id, &record, &[Field::PurchaseHistory], |d| {
                d.outcome(Field::PurchaseHistory) == Outcome::Show
            })
            .await?;
        if d.outcome(Field::PurchaseHistory) != Outcome::Show {
            return Ok(vec![]);
        }
        Ok(all
            .into_iter()
            .filter(|p| at.contains(&p.outlet_id))
            .filter(|p| after.is_none_or(|a| p.id.0 > a))
            .take(limit as usize)
            .collect())
    }
}

/// A customer of no outlet and no restriction, for decisions about what a caller could read at
/// all (a hypothetical decision names no one).
pub(crate) fn nobody() -> Subject<'static> {
    Subject {
        id: CustomerId(Uuid::nil()),
        outlets: &[],
        restricted: false,
    }
}

/// The shortest reason a break-glass read takes, in visible characters (the policy's own figure).
const BREAK_GLASS_REASON: usize = 20;

/// Reads flagged for the DPO: the deciding policy, the alert's kind, and how the alert names it.
const FLAGGED: [(&str, &str, &str); 2] = [
    ("break-glass", "break_glass", "break-glass read"),
    ("manager-fraud-review", "fraud_review", "fraud review"),
];

/// The most purchases an abstraction is computed from, the customer's newest (by the time they
/// were recorded): it keeps one read's work and memory fixed. A customer with more is in the top
/// tier and band either way; what they bought recently (eligibility) is judged on their newest
/// 10,000 purchases, never on stale ones. A caller shown only the abstraction and the sales of
/// its own outlets pages through those sales oldest first within the same window.
pub const ABSTRACTION_SCAN: u32 = 10_000;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use steward_domain::{Address, CustomerId, Timestamp};
    use steward_policy::FieldDecision;

    use super::*;

    fn outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            Just(Outcome::Show),
            Just(Outcome::Mask),
            Just(Outcome::Abstract),
            Just(Outcome::Withhold)
        ]
    }

    proptest! {
        /// No response ever carries a field its decision withheld, nor the clear value of a field
        /// it masked — whatever the policy decides, even outcomes it never gives today.
        #[test]
        fn views_obey_their_decision(
            outcomes in proptest::collection::vec(outcome(), Field::CUSTOMER_VIEW.len()),
            name in "[A-Za-z]{3,12} [A-Za-z]{3,12}",
            local in "[a-z]{2,10}",
            digits in "[1-9][0-9]{9}",
            street in "[A-Za-z ]{5,20}",
        ) {
            let fields = Field::CUSTOMER_VIEW;
            let decision = Decision { fields: fields.iter().zip(&outcomes).map(|(f, o)| FieldDecision { field: *f, outcome: *o, policies: vec![] }).collect() };
            let email = format!("{local}@example.com");
            let phone = format!("+44{digits}");
            let handle = format!("{local}_social");
            let c = Customer {
                id: CustomerId::new(),
                outlet_id: Some(steward_domain::OutletId::new()),
                name: Some(name.clone()),
                email: Some(email.clone()),
                phone: Some(phone.clone()),
                address: Some(Address { street: Some(street.clone()), city: None, postal_code: None, country: Some("GB".into()) }),
                date_of_birth: Some("1983-04-27".into()),
                preferred_language: Some("fr-CH".into()),
                social_handles: Some(steward_domain::social::SocialHandles(vec![steward_domain::social::SocialHandle { platform: "instagram".into(), handle: handle.clone() }])),
                created_at: Timestamp(0),
                updated_at: Timestamp(0),
            };
            let summary = PurchaseSummary { tier: "gold", purchase_count_band: "5-9", eligible_for_allocation: true };
            let v = customer_view(&decision, c, Some(summary));
            let json = serde_json::to_string(&v).unwrap();
            for (f, o) in fields.iter().zip(&outcomes) {
                let clear: &[&str] = match f {
                    Field::Profile(ProfileField::Name) => &[&name],
                    Field::Profile(ProfileField::Email) => &[&email],
                    Field::Profile(ProfileField::Phone) => &[&phone, &digits],
                    Field::Profile(ProfileField::Address) => &[&street],
                    Field::Profile(ProfileField::DateOfBirth) => &["1983-04-27"],
                    Field::Profile(ProfileField::PreferredLanguage) => &["fr-CH"],
                    Field::Profile(ProfileField::SocialHandles) => &[&handle],
                    _ => &[],
                };
                if matches!(o, Outcome::Withhold | Outcome::Mask | Outcome::Abstract) {
                    for value in clear {
                        prop_assert!(!json.contains(value), "{f:?} decided {o:?} but {value} is in {json}");
                    }
                }
            }
            // The purchase history is decided last.
            let history = outcomes[Field::CUSTOMER_VIEW.len() - 1];
            prop_assert_eq!(v.purchase_summary.is_some(), history == Outcome::Abstract);
            prop_assert_eq!(v.outlet_id.is_some(), history == Outcome::Show);
        }
    }
}
