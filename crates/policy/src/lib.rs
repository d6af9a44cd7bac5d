//! Steward's access policy: one Cedar policy set decides every read, per data category.
//!
//! A read names who asks (roles, outlets), about whom (the customer's outlets, restriction), for
//! which declared purpose (its lawful basis and categories), with which consent and reason. For
//! each field the answer is [`Outcome::Show`], [`Outcome::Mask`], [`Outcome::Abstract`] or
//! [`Outcome::Withhold`], with the ids of the policies that decided it. Deny by default; a
//! matching `forbid` overrides every `permit`. No I/O: the caller gathers the facts.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{LazyLock, RwLock};

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName,
    EntityUid, PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use serde::Serialize;
use steward_domain::{CustomerId, DataCategory, OutletId, ProfileField, Purpose, Role, Timestamp};

/// The shipped default policy set.
pub const DEFAULT_POLICIES: &str = include_str!("../policies/steward.cedar");
/// The shipped schema.
pub const SCHEMA: &str = include_str!("../policies/steward.cedarschema");

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The schema does not parse.
    #[error("schema: {0}")]
    Schema(String),
    /// The policies do not parse.
    #[error("policies: {0}")]
    Parse(String),
    /// The policies do not validate against the schema.
    #[error("policies do not validate against the schema: {0}")]
    Invalid(String),
}

/// What a field of a response may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The value as stored.
    Show,
    /// A masked form (`j•••@example.com`, `•••• ••• 4821`).
    Mask,
    /// Derived facts instead of the values (tier, count band, eligibility).
    Abstract,
    /// Nothing.
    Withhold,
}

impl Outcome {
    /// The outcome's name, as in responses and audit entries.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Show => "show",
            Outcome::Mask => "mask",
            Outcome::Abstract => "abstract",
            Outcome::Withhold => "withhold",
        }
    }
}

/// A decidable part of a customer's data: each profile field (declared once, in
/// `steward_domain::profile`), the purchase history and the communications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// A profile field; its show action is `read_<field>`.
    Profile(ProfileField),
    /// `user.behavior.purchase_history`: items, prices, outlets, sellers.
    PurchaseHistory,
    /// Messages, notes, calls, posts.
    Communications,
}

/// How many profile fields there are.
const PROFILE_COUNT: usize = ProfileField::ALL.len();

impl Field {
    /// The profile fields.
    pub const PROFILE: [Field; PROFILE_COUNT] = {
        let mut all = [Field::PurchaseHistory; PROFILE_COUNT];
        let mut i = 0;
        while i < PROFILE_COUNT {
            all[i] = Field::Profile(ProfileField::ALL[i]);
            i += 1;
        }
        all
    };
    /// What a customer view decides: the profile, and the purchase history (for its abstraction).
    pub const CUSTOMER_VIEW: [Field; PROFILE_COUNT + 1] = {
        let mut all = [Field::PurchaseHistory; PROFILE_COUNT + 1];
        let mut i = 0;
        while i < PROFILE_COUNT {
            all[i] = Field::PROFILE[i];
            i += 1;
        }
        all
    };
    /// Every field of a customer's record.
    pub const ALL: [Field; PROFILE_COUNT + 2] = {
        let mut all = [Field::Communications; PROFILE_COUNT + 2];
        let mut i = 0;
        while i < PROFILE_COUNT + 1 {
            all[i] = Field::CUSTOMER_VIEW[i];
            i += 1;
        }
        all
    };

    /// The data category.
    pub fn category(self) -> DataCategory {
        match self {
            Field::Profile(f) => f.category(),
            Field::PurchaseHistory => DataCategory::PurchaseHistory,
            Field::Communications => DataCategory::Communications,
        }
    }

    /// The wire name of the field.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Profile(f) => f.name(),
            Field::PurchaseHistory => "purchases",
            Field::Communications => "interactions",
        }
    }

    /// The Cedar action that shows the field in full.
    fn show_action(self) -> std::borrow::Cow<'static, str> {
        match self {
            Field::Profile(f) => format!("read_{}", f.name()).into(),
            Field::PurchaseHistory => "read_purchase_history".into(),
            Field::Communications => "read_communications".into(),
        }
    }

    /// The lesser outcome tried when showing is not allowed.
    fn lesser(self) -> Option<(&'static str, Outcome)> {
        match self {
            Field::Profile(f) if f.maskable() => Some(("mask_contact", Outcome::Mask)),
            Field::PurchaseHistory => Some(("read_purchase_summary", Outcome::Abstract)),
            _ => None,
        }
    }
}

impl Serialize for Field {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Field::Profile(f) => f.name(),
            Field::PurchaseHistory => "purchase_history",
            Field::Communications => "communications",
        })
    }
}

/// Who asks.
#[derive(Debug, Clone)]
pub struct Asker<'a> {
    /// A stable id (staff id or token id).
    pub id: String,
    /// Roles held.
    pub roles: &'a [Role],
    /// Outlets worked at.
    pub outlets: &'a [OutletId],
}

/// About whom.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// The customer.
    pub id: CustomerId,
    /// Outlets the customer belongs to: where registered (a purchase makes no customer an outlet's own;
    /// for a purchase record, the outlet it was made at).
    pub outlets: &'a [OutletId],
    /// Processing restricted (GDPR Art. 18).
    pub restricted: bool,
}

/// A read to decide.
#[derive(Debug, Clone)]
pub struct ReadRequest<'a> {
    /// Who.
    pub asker: Asker<'a>,
    /// About whom.
    pub subject: Subject<'a>,
    /// The declared purpose.
    pub purpose: &'a Purpose,
    /// Whether the customer's consent for this purpose is active.
    pub consented: bool,
    /// Whether a reason was given.
    pub has_reason: bool,
    /// The reason's length in characters (0 without one).
    pub reason_length: usize,
    /// The caller asked to read beyond the normal rules (break-glass).
    pub break_glass: bool,
    /// The caller has acknowledged the current confidentiality notice, or needs not (no notice
    /// published, or a service client rather than a staff member): `context.acknowledged`.
    pub acknowledged: bool,
    /// When the read is asked (`context.time` in the policy).
    pub now: Timestamp,
    /// For a recipient (issue 22): the agreement in force that covers the declared purpose, if
    /// one does. `None` for a recipient denies every read (`recipients-only-under-agreement`).
    pub agreement: Option<&'a steward_domain::sharing::AgreementTerms>,
}

/// The decision for one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldDecision {
    /// The field.
    pub field: Field,
    /// What it may show.
    pub outcome: Outcome,
    /// The policies that decided: permits that allowed the outcome, or forbids that denied
    /// showing. Empty when nothing permitted (deny by default).
    pub policies: Vec<String>,
}

/// The decision for a read: one outcome per field asked about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Per field.
    pub fields: Vec<FieldDecision>,
}

impl Decision {
    /// The outcome for `field` (withhold if it was not decided).
    pub fn outcome(&self, field: Field) -> Outcome {
        self.fields
            .iter()
            .find(|d| d.field == field)
            .map(|d| d.outcome)
            .unwrap_or(Outcome::Withhold)
    }

    /// True when no field may show anything.
    pub fn denies_all(&self) -> bool {
        self.fields.iter().all(|d| d.outcome == Outcome::Withhold)
    }
}

/// A non-read action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Create a customer.
    CreateCustomer,
    /// Change a customer's profile.
    UpdateCustomer,
    /// Record an interaction.
    AddInteraction,
    /// Record a purchase.
    AddPurchase,
    /// Grant or withdraw consent.
    ManageConsent,
    /// See a customer's consents.
    ReadConsents,
    /// Add outlets and staff.
    ManageDirectory,
    /// See access alerts (bulk access, break-glass).
    ReadAlerts,
    /// See outlets and staff.
    ReadDirectory,
    /// Register and change purposes.
    ManagePurposes,
    /// Read the audit log's entries and proofs.
    ReadAudit,
    /// See who accessed a customer's data ("who looked at my data").
    ReadAccessLog,
    /// Erase a customer (crypto-shredding).
    EraseCustomer,
    /// Set or lift a legal hold, which blocks erasure.
    ManageLegalHold,
    /// Take and progress data-subject requests about a customer.
    ManageRequests,
    /// Record a customer's identity as checked in person.
    VerifyIdentity,
    /// See data-subject requests.
    ReadRequests,
    /// Scrape the operational metrics.
    ReadMetrics,
    /// Take a customer's whole record out in clear (the operator's `steward export`).
    ExportCustomer,
    /// List and revoke API tokens and sign-in sessions.
    ManageTokens,
    /// Publish the confidentiality notice staff acknowledge.
    ManageNotice,
    /// Merge a duplicate into this customer (decided for both: the survivor and the one that
    /// is crypto-shredded).
    MergeCustomers,
    /// Define segments and see their sizes (issue 18).
    ManageSegments,
    /// Compose campaigns to segments and see their counts (issue 18).
    ManageCampaigns,
    /// Hand inbound mail (replies to staff messages, bounces) to Steward (issue 18).
    ReceiveMail,
    /// Compose anonymous surveys and send them to segments (issue 21).
    ManageSurveys,
    /// Register recipients and their agreements, see disclosures and notifications (issue 22).
    ManageRecipients,
    /// Ask what personal data a text holds (issue 23; the text is neither stored nor logged).
    AnalyzeText,
    /// See in full a text that holds a card, account or identity number (issue 23).
    ReadSensitiveText,
    /// Report social-media events, kept only for consenting customers (issue 23).
    IngestSocial,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::CreateCustomer => "create_customer",
            Action::UpdateCustomer => "update_customer",
            Action::AddInteraction => "add_interaction",
            Action::AddPurchase => "add_purchase",
            Action::ManageConsent => "manage_consent",
            Action::ReadConsents => "read_consents",
            Action::ManageDirectory => "manage_directory",
            Action::ReadDirectory => "read_directory",
            Action::ReadAlerts => "read_alerts",
            Action::ManagePurposes => "manage_purposes",
            Action::ReadAudit => "read_audit",
            Action::ReadAccessLog => "read_access_log",
            Action::EraseCustomer => "erase_customer",
            Action::ManageLegalHold => "manage_legal_hold",
            Action::ManageRequests => "manage_requests",
            Action::VerifyIdentity => "verify_identity",
            Action::ReadRequests => "read_requests",
            Action::ReadMetrics => "read_metrics",
            Action::ExportCustomer => "export_customer",
            Action::ManageTokens => "manage_tokens",
            Action::ManageNotice => "manage_notice",
            Action::MergeCustomers => "merge_customers",
            Action::ManageSegments => "manage_segments",
            Action::ManageCampaigns => "manage_campaigns",
            Action::ManageSurveys => "manage_surveys",
            Action::ReceiveMail => "receive_mail",
            Action::ManageRecipients => "manage_recipients",
            Action::AnalyzeText => "analyze_text",
            Action::ReadSensitiveText => "read_sensitive_text",
            Action::IngestSocial => "ingest_social",
        }
    }

    fn on_directory(self) -> bool {
        matches!(
            self,
            Action::ManageDirectory
                | Action::ReadDirectory
                | Action::ReadAlerts
                | Action::ManagePurposes
                | Action::ReadAudit
                | Action::ReadRequests
                | Action::ReadMetrics
                | Action::ManageTokens
                | Action::ManageNotice
                | Action::ManageSegments
                | Action::ManageCampaigns
                | Action::ReceiveMail
                | Action::ManageSurveys
                | Action::ManageRecipients
                | Action::AnalyzeText
                | Action::ReadSensitiveText
                | Action::IngestSocial
        )
    }
}

/// A loaded, validated policy set. Build once and share (it is immutable).
pub struct Policy {
    /// The schema's action entities, to which each request adds its principal and resource.
    actions: Entities,
    slices: slice::Slices,
    authorizer: Authorizer,
    /// Cedar's generated policy ids to the `@id` annotations written in the policy text.
    names: HashMap<String, String>,
    /// Decided reads, by everything a decision can depend on; `None` when the policy text names
    /// individual staff or customers, so that ids matter (see [`MemoKey`]).
    memo: Option<RwLock<HashMap<MemoKey, Decision>>>,
    /// Decided uses of a customer's facts inside a segment's evaluation, keyed like reads (the
    /// fields are empty, the categories used are in `uses`).
    use_memo: Option<RwLock<HashMap<MemoKey, bool>>>,
    /// Some policy reads `context.time`; otherwise the time is left out of the context (building
    /// a Cedar datetime costs more than the rest of the context together).
    reads_time: bool,
    /// Tests only: every request's entities are refused, as Cedar would refuse malformed ones.
    #[cfg(test)]
    refuse_entities: bool,
}

/// Most distinct decisions kept; past it the memo starts over (a crude bound, rarely reached:
/// the key space is roles × outlet sets × purposes × a few flags).
const MEMO_LIMIT: usize = 50_000;

/// Everything a read decision depends on, ids aside. A Cedar decision is a pure function of the
/// request's entities and context; the context holds no time, and a policy that names no
/// individual staff member or customer cannot tell two of them with equal attributes apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MemoKey {
    roles: Vec<Role>,
    asker_outlets: Vec<OutletId>,
    subject_outlets: Vec<OutletId>,
    restricted: bool,
    purpose: String,
    data_use: String,
    basis: LawfulBasisKey,
    categories: Vec<&'static str>,
    purpose_roles: Vec<Role>,
    consented: bool,
    has_reason: bool,
    reason_length: usize,
    break_glass: bool,
    acknowledged: bool,
    fields: Vec<Field>,
    /// For a use inside a segment: the categories used.
    uses: Vec<DataCategory>,
    /// The agreement's categories and whether it is pseudonymous (issue 22); `None` without one.
    agreement: Option<(Vec<DataCategory>, bool)>,
}

type LawfulBasisKey = &'static str;

impl MemoKey {
    fn new(req: &ReadRequest<'_>, fields: &[Field]) -> Self {
        let sorted = |v: &[OutletId]| {
            let mut v = v.to_vec();
            v.sort_unstable();
            v.dedup();
            v
        };
        let mut roles = req.asker.roles.to_vec();
        roles.sort_unstable_by_key(|r| r.as_str());
        roles.dedup();
        MemoKey {
            roles,
            asker_outlets: sorted(req.asker.outlets),
            subject_outlets: sorted(req.subject.outlets),
            restricted: req.subject.restricted,
            purpose: req.purpose.key.clone(),
            data_use: req.purpose.data_use.clone(),
            basis: basis_name(req.purpose.lawful_basis),
            categories: req.purpose.categories.iter().map(|c| c.as_str()).collect(),
            purpose_roles: req.purpose.roles.clone(),
            consented: req.consented,
            has_reason: req.has_reason,
            reason_length: req.reason_length,
            break_glass: req.break_glass,
            acknowledged: req.acknowledged,
            fields: fields.to_vec(),
            uses: Vec::new(),
            agreement: req.agreement.map(|a| {
                (
                    a.categories.clone(),
                    a.identity == steward_domain::sharing::Identity::Pseudonymous,
                )
            }),
        }
    }
}

/// Whether any policy reads an attribute named `time` (`context.time`, `context has time`): then
/// two reads with equal facts may be decided differently, and decisions cannot be memoized. The
/// check runs on Cedar's JSON form, where every spelling of attribute access is one shape.
fn reads_time(set: &PolicySet) -> bool {
    set.policies().any(|p| {
        p.to_json()
            .map(|j| j.to_string().contains("\"attr\":\"time\""))
            // A policy Cedar cannot show as JSON: assume the worst.
            .unwrap_or(true)
    })
}

/// Whether any policy names an individual staff member or customer (an entity literal of either
/// type, in its scope or its conditions): then ids matter, and decisions cannot be memoized.
/// Checked on Cedar's JSON form, where every spelling (`Steward::Customer :: "x"` with spaces
/// included) is one shape.
fn names_individuals(set: &PolicySet) -> bool {
    set.policies().any(|p| {
        p.to_json()
            .map(|j| {
                let j = j.to_string();
                j.contains("\"type\":\"Steward::Staff\"")
                    || j.contains("\"type\":\"Steward::Customer\"")
            })
            .unwrap_or(true)
    })
}

fn basis_name(b: steward_domain::LawfulBasis) -> &'static str {
    match b {
        steward_domain::LawfulBasis::Consent => "consent",
        steward_domain::LawfulBasis::Contract => "contract",
        steward_domain::LawfulBasis::LegalObligation => "legal_obligation",
        steward_domain::LawfulBasis::LegitimateInterest => "legitimate_interest",
    }
}

/// The schema's entity type names, parsed once: Cedar's parser is the slow part of building a
/// uid from text (a third of a cold decision before these were kept).
static TYPE_NAMES: LazyLock<HashMap<&'static str, EntityTypeName>> = LazyLock::new(|| {
    ["Staff", "Customer", "Outlet", "Role", "Action", "Directory"]
        .into_iter()
        .filter_map(|t| {
            EntityTypeName::from_str(&format!("Steward::{t}"))
                .ok()
                .map(|n| (t, n))
        })
        .collect()
});

fn uid(ty: &str, id: &str) -> EntityUid {
    match TYPE_NAMES.get(ty) {
        Some(name) => EntityUid::from_type_name_and_id(name.clone(), EntityId::new(id)),
        None => unreachable!("entity types here are constants of the schema"),
    }
}

impl Policy {
    /// The shipped default policy.
    pub fn default_policy() -> Result<Self, PolicyError> {
        Self::from_sources(DEFAULT_POLICIES, SCHEMA)
    }

    /// Parses and strictly validates a policy set against a schema.
    pub fn from_sources(policies: &str, schema: &str) -> Result<Self, PolicyError> {
        let (schema, _) =
            Schema::from_cedarschema_str(schema).map_err(|e| PolicyError::Schema(e.to_string()))?;
        let set = PolicySet::from_str(policies).map_err(|e| PolicyError::Parse(e.to_string()))?;
        let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
        if !result.validation_passed() {
            let msgs: Vec<String> = result.validation_errors().map(|e| e.to_string()).collect();
            return Err(PolicyError::Invalid(msgs.join("; ")));
        }
        let action_entities = schema
            .action_entities()
            .map_err(|e| PolicyError::Schema(e.to_string()))?;
        let slices = slice::Slices::new(&set, &action_entities);
        let names = set
            .policies()
            .map(|p| {
                (
                    p.id().to_string(),
                    p.annotation("id")
                        .map(str::to_owned)
                        .unwrap_or_else(|| p.id().to_string()),
                )
            })
            .collect();
        // Conservative: any mention of an individual staff member or customer, even in a comment,
        // turns the memo off.
        let names_individuals = policies.contains("Steward::Staff::\"")
            || policies.contains("Steward::Customer::\"")
            || names_individuals(&set);
        let reads_time = reads_time(&set);
        let memoizes = !names_individuals && !reads_time;
        let memo = memoizes.then(|| RwLock::new(HashMap::new()));
        let use_memo = memoizes.then(|| RwLock::new(HashMap::new()));
        Ok(Self {
            actions: action_entities,
            slices,
            authorizer: Authorizer::new(),
            names,
            memo,
            use_memo,
            reads_time,
            #[cfg(test)]
            refuse_entities: false,
        })
    }

    /// The asker's entity; `None` if Cedar refuses to build it (the caller then denies: an
    /// entity without its attributes or roles would skip every `forbid` that reads them).
    fn principal(asker: &Asker<'_>) -> Option<Entity> {
        let outlets = RestrictedExpression::new_set(
            asker
                .outlets
                .iter()
                .map(|o| RestrictedExpression::new_entity_uid(uid("Outlet", &o.to_string()))),
        );
        let parents: HashSet<EntityUid> = asker
            .roles
            .iter()
            .map(|r| uid("Role", r.as_str()))
            .collect();
        let attrs = HashMap::from([("outlets".to_owned(), outlets)]);
        Entity::new(uid("Staff", &asker.id), attrs, parents).ok()
    }

    /// The customer's entity; `None` if Cedar refuses to build it (see [`Policy::principal`]).
    fn customer(subject: &Subject<'_>) -> Option<Entity> {
        Self::customer_as(&subject.id.to_string(), subject.outlets, subject.restricted)
    }

    /// A customer entity named `id` with these attributes.
    fn customer_as(id: &str, outlets: &[OutletId], restricted: bool) -> Option<Entity> {
        let outlets = RestrictedExpression::new_set(
            outlets
                .iter()
                .map(|o| RestrictedExpression::new_entity_uid(uid("Outlet", &o.to_string()))),
        );
        let attrs = HashMap::from([
            ("outlets".to_owned(), outlets),
            (
                "restricted".to_owned(),
                RestrictedExpression::new_bool(restricted),
            ),
        ]);
        Entity::new(uid("Customer", id), attrs, HashSet::new()).ok()
    }

    /// The principal's and resource's ids and the entities a request is decided over; `None`
    /// (deny) if any could not be built. Never an entity without its attributes, nor a set
    /// without the actions' groups: either would make `forbid`s that read them not apply.
    fn parties(
        &self,
        principal: Option<Entity>,
        resource: Option<Entity>,
    ) -> Option<(EntityUid, EntityUid, Entities)> {
        #[cfg(test)]
        if self.refuse_entities {
            return None;
        }
        let (principal, resource) = (principal?, resource?);
        let (p_uid, r_uid) = (principal.uid(), resource.uid());
        // Adding to a copy of the prebuilt actions costs a third of building all anew.
        let entities = self
            .actions
            .clone()
            .add_entities([principal, resource], None)
            .ok()?;
        Some((p_uid, r_uid, entities))
    }

    /// Runs one authorization; returns whether it allowed, and the deciding policy ids.
    fn check(
        &self,
        roles: u16,
        principal: &EntityUid,
        action: &str,
        resource: &EntityUid,
        context: Context,
        entities: &Entities,
    ) -> (bool, Vec<String>) {
        let Ok(request) = Request::new(
            principal.clone(),
            uid("Action", action),
            resource.clone(),
            context,
            None,
        ) else {
            return (false, vec![]);
        };
        let slice = self.slices.get(action, roles);
        let response = self.authorizer.is_authorized(&request, &slice, entities);
        let mut ids: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|p| {
                self.names
                    .get(&p.to_string())
                    .cloned()
                    .unwrap_or_else(|| p.to_string())
            })
            .collect();
        ids.sort();
        // An evaluation error inside a policy means that policy does not apply; deny-by-default
        // stands. Errors are not expected with validated policies and our typed context.
        (response.decision() == CedarDecision::Allow, ids)
    }

    /// The context of a read of `category`; `None` if Cedar refuses to build it (the read is then
    /// denied: a context without its attributes would skip every `forbid` that reads them).
    fn read_context(&self, req: &ReadRequest<'_>, category: DataCategory) -> Option<Context> {
        let categories = RestrictedExpression::new_set(
            req.purpose
                .categories
                .iter()
                .map(|c| RestrictedExpression::new_string(c.as_str().to_owned())),
        );
        let basis = basis_name(req.purpose.lawful_basis);
        let pairs = [
            (
                "purpose".to_owned(),
                RestrictedExpression::new_string(req.purpose.key.clone()),
            ),
            (
                "basis".to_owned(),
                RestrictedExpression::new_string(basis.to_owned()),
            ),
            (
                "data_use".to_owned(),
                RestrictedExpression::new_string(req.purpose.data_use.clone()),
            ),
            ("purpose_categories".to_owned(), categories),
            (
                "purpose_roles".to_owned(),
                RestrictedExpression::new_set(
                    req.purpose
                        .roles
                        .iter()
                        .map(|r| RestrictedExpression::new_entity_uid(uid("Role", r.as_str()))),
                ),
            ),
            (
                "category".to_owned(),
                RestrictedExpression::new_string(category.as_str().to_owned()),
            ),
            (
                "consented".to_owned(),
                RestrictedExpression::new_bool(req.consented),
            ),
            (
                "has_reason".to_owned(),
                RestrictedExpression::new_bool(req.has_reason),
            ),
            (
                "reason_length".to_owned(),
                RestrictedExpression::new_long(
                    i64::try_from(req.reason_length).unwrap_or(i64::MAX),
                ),
            ),
            (
                "break_glass".to_owned(),
                RestrictedExpression::new_bool(req.break_glass),
            ),
            (
                "acknowledged".to_owned(),
                RestrictedExpression::new_bool(req.acknowledged),
            ),
            (
                "agreement_in_force".to_owned(),
                RestrictedExpression::new_bool(req.agreement.is_some()),
            ),
            (
                "agreement_categories".to_owned(),
                RestrictedExpression::new_set(req.agreement.into_iter().flat_map(|a| {
                    a.categories
                        .iter()
                        .map(|c| RestrictedExpression::new_string(c.as_str().to_owned()))
                })),
            ),
            (
                "pseudonymous".to_owned(),
                RestrictedExpression::new_bool(req.agreement.is_some_and(|a| {
                    a.identity == steward_domain::sharing::Identity::Pseudonymous
                })),
            ),
        ];
        // Unread by the policy, the time changes no decision.
        let time = self.reads_time.then(|| {
            (
                "time".to_owned(),
                RestrictedExpression::new_datetime(req.now.to_rfc3339_millis()),
            )
        });
        Context::from_pairs(pairs.into_iter().chain(time)).ok()
    }

    /// Decides a read of `fields` of one customer, from the memo when the same facts were
    /// decided before.
    pub fn decide_read(&self, req: &ReadRequest<'_>, fields: &[Field]) -> Decision {
        let Some(memo) = &self.memo else {
            return self.evaluate_read(req, fields);
        };
        let key = MemoKey::new(req, fields);
        if let Some(d) = memo.read().ok().and_then(|m| m.get(&key).cloned()) {
            return d;
        }
        let decision = self.evaluate_read(req, fields);
        if let Ok(mut m) = memo.write() {
            if m.len() >= MEMO_LIMIT {
                m.clear();
            }
            m.insert(key, decision.clone());
        }
        decision
    }

    /// How many decisions the memo holds (each one evaluated by Cedar once).
    pub fn memo_size(&self) -> usize {
        self.memo
            .as_ref()
            .and_then(|m| m.read().ok().map(|m| m.len()))
            .unwrap_or(0)
    }

    /// Whether decisions are memoized (false when the policy names individuals).
    pub fn memoizes(&self) -> bool {
        self.memo.is_some()
    }

    /// Decides a read by evaluating the policies, without the memo.
    pub fn evaluate_read(&self, req: &ReadRequest<'_>, fields: &[Field]) -> Decision {
        self.evaluate_read_with(req, fields, |req, category| {
            self.read_context(req, category)
        })
    }

    /// [`Policy::evaluate_read`] with the contexts built by `context` (a test passes one that
    /// fails, to show that a read without its context is denied).
    fn evaluate_read_with(
        &self,
        req: &ReadRequest<'_>,
        fields: &[Field],
        context: impl Fn(&ReadRequest<'_>, DataCategory) -> Option<Context>,
    ) -> Decision {
        let Some((p_uid, r_uid, entities)) =
            self.parties(Self::principal(&req.asker), Self::customer(&req.subject))
        else {
            // Fail closed: no entities, no read.
            return Decision {
                fields: fields
                    .iter()
                    .map(|&field| FieldDecision {
                        field,
                        outcome: Outcome::Withhold,
                        policies: vec!["entities-unavailable".to_owned()],
                    })
                    .collect(),
            };
        };
        let roles = slice::role_bits(req.asker.roles);
        // One context per category, shared by the fields of that category.
        let mut contexts: Vec<(DataCategory, Option<Context>)> = Vec::new();
        let decisions = fields
            .iter()
            .map(|&field| {
                let category = field.category();
                let context = match contexts.iter().find(|(c, _)| *c == category) {
                    Some((_, c)) => c.clone(),
                    None => {
                        let c = context(req, category);
                        contexts.push((category, c.clone()));
                        c
                    }
                };
                // Fail closed: no context, no read.
                let Some(context) = context else {
                    return FieldDecision {
                        field,
                        outcome: Outcome::Withhold,
                        policies: vec!["context-unavailable".to_owned()],
                    };
                };
                let (shown, ids) = self.check(
                    roles,
                    &p_uid,
                    &field.show_action(),
                    &r_uid,
                    context.clone(),
                    &entities,
                );
                if shown {
                    return FieldDecision {
                        field,
                        outcome: Outcome::Show,
                        policies: ids,
                    };
                }
                if let Some((action, outcome)) = field.lesser() {
                    let (allowed, lesser_ids) =
                        self.check(roles, &p_uid, action, &r_uid, context, &entities);
                    if allowed {
                        return FieldDecision {
                            field,
                            outcome,
                            policies: lesser_ids,
                        };
                    }
                }
                FieldDecision {
                    field,
                    outcome: Outcome::Withhold,
                    policies: ids,
                }
            })
            .collect();
        Decision { fields: decisions }
    }

    /// Decides whether one customer's facts of `categories` may be used inside a segment's
    /// evaluation (`use_in_segment`, a member of the `read` group: the limits on reads apply —
    /// the purpose's categories and roles, consent, restriction, the notice). Nothing of the
    /// customer is shown, so the outcome is yes or no; every category must be allowed.
    pub fn decide_use(&self, req: &ReadRequest<'_>, categories: &[DataCategory]) -> bool {
        let Some(memo) = &self.use_memo else {
            return self.evaluate_use(req, categories);
        };
        let mut key = MemoKey::new(req, &[]);
        key.uses = categories.to_vec();
        if let Some(d) = memo.read().ok().and_then(|m| m.get(&key).copied()) {
            return d;
        }
        let allowed = self.evaluate_use(req, categories);
        if let Ok(mut m) = memo.write() {
            if m.len() >= MEMO_LIMIT {
                m.clear();
            }
            m.insert(key, allowed);
        }
        allowed
    }

    fn evaluate_use(&self, req: &ReadRequest<'_>, categories: &[DataCategory]) -> bool {
        // Rules over outlets or consent states alone use no category, yet they still pick
        // customers for the purpose: decided under the purpose's first category, so that the
        // other limits (its roles, consent, restriction, the notice) still apply. A purpose with
        // no category allows no use.
        self.decide_all(req, "use_in_segment", &Self::asked(req, categories))
    }

    /// Decides whether the asker may write to the customer by e-mail under the declared purpose
    /// (`send_message`, a member of the `read` group: the limits on reads apply). Steward opens
    /// the address to send; the writer never sees it. The message uses the contact details
    /// (`user.contact.email`) and is itself a communication (`user.content.private`): both must be
    /// allowed.
    pub fn decide_message(&self, req: &ReadRequest<'_>) -> bool {
        self.decide_all(
            req,
            "send_message",
            &[DataCategory::Email, DataCategory::Communications],
        )
    }

    /// Decides whether a customer's purchases of `category` (their purchase history, or the
    /// special category the DPO marked their purchase category as) may be used to personalise
    /// for them (`personalise`, a member of the `read` group): the limits on reads apply, and the
    /// special categories never do (`no-special-categories-in-personalisation`).
    pub fn decide_personalise(&self, req: &ReadRequest<'_>, category: DataCategory) -> bool {
        self.decide_all(req, "personalise", &[category])
    }

    /// Decides whether one customer's facts of `categories` may be used inside an aggregate
    /// released with differentially private noise (`analyse`, a member of the `read` group: the
    /// limits on reads apply). Like [`Policy::decide_use`], a query that uses no category (a
    /// count of customers) is decided under the purpose's first category.
    pub fn decide_analyse(&self, req: &ReadRequest<'_>, categories: &[DataCategory]) -> bool {
        self.decide_all(req, "analyse", &Self::asked(req, categories))
    }

    /// The categories a use is decided under: those it names, or, when it names none, the
    /// purpose's first (a purpose with no category allows no use).
    fn asked(req: &ReadRequest<'_>, categories: &[DataCategory]) -> Vec<DataCategory> {
        if categories.is_empty() {
            req.purpose
                .categories
                .first()
                .copied()
                .into_iter()
                .collect()
        } else {
            categories.to_vec()
        }
    }

    /// True when `action` is allowed for every one of `categories` (none: no).
    fn decide_all(&self, req: &ReadRequest<'_>, action: &str, categories: &[DataCategory]) -> bool {
        let Some((p_uid, r_uid, entities)) =
            self.parties(Self::principal(&req.asker), Self::customer(&req.subject))
        else {
            return false;
        };
        let roles = slice::role_bits(req.asker.roles);
        !categories.is_empty()
            && categories.iter().all(|&category| {
                // Fail closed: no context, no use.
                self.read_context(req, category).is_some_and(|context| {
                    self.check(roles, &p_uid, action, &r_uid, context, &entities)
                        .0
                })
            })
    }

    /// Decides a non-read action; `subject` is the customer for customer actions.
    pub fn allows(
        &self,
        asker: &Asker<'_>,
        action: Action,
        subject: Option<&Subject<'_>>,
    ) -> (bool, Vec<String>) {
        let resource = match (action.on_directory(), subject) {
            (false, Some(s)) => Self::customer(s),
            // A customer being created: no outlets yet, not restricted (its attributes set, so
            // that a forbid reading them applies as it would to any customer).
            (false, None) => Self::customer_as("new", &[], false),
            (true, _) => Some(Entity::with_uid(uid("Directory", "steward"))),
        };
        let Some((p_uid, r_uid, entities)) = self.parties(Self::principal(asker), resource) else {
            return (false, vec!["entities-unavailable".to_owned()]);
        };
        self.check(
            slice::role_bits(asker.roles),
            &p_uid,
            action.name(),
            &r_uid,
            Context::empty(),
            &entities,
        )
    }
}

mod slice;
#[cfg(test)]
mod tests;
