use steward_domain::purpose::default_purposes;
use steward_domain::{CustomerId, OutletId, ProfileField, Purpose, Role, Timestamp};

use super::*;

fn purpose(key: &str) -> Purpose {
    default_purposes()
        .into_iter()
        .find(|p| p.key == key)
        .unwrap()
}

struct Case {
    roles: Vec<Role>,
    staff_outlets: Vec<OutletId>,
    customer_outlets: Vec<OutletId>,
    restricted: bool,
    purpose: &'static str,
    consented: bool,
    reason: bool,
    break_glass: bool,
    acknowledged: bool,
    agreement: Option<steward_domain::sharing::AgreementTerms>,
}

impl Case {
    fn new(role: Role, purpose: &'static str) -> Self {
        Case {
            roles: vec![role],
            staff_outlets: vec![],
            customer_outlets: vec![],
            restricted: false,
            purpose,
            consented: false,
            reason: false,
            break_glass: false,
            acknowledged: true,
            agreement: None,
        }
    }

    fn decide(&self, p: &Policy) -> Decision {
        let purpose = purpose(self.purpose);
        p.decide_read(&self.request(&purpose), &Field::ALL)
    }

    /// The read this case describes, for `purpose` (the case's, looked up by the caller).
    fn request<'a>(&'a self, purpose: &'a Purpose) -> ReadRequest<'a> {
        ReadRequest {
            asker: Asker {
                id: "staff-1".into(),
                roles: &self.roles,
                outlets: &self.staff_outlets,
            },
            subject: Subject {
                id: CustomerId::new(),
                outlets: &self.customer_outlets,
                restricted: self.restricted,
            },
            purpose,
            consented: self.consented,
            has_reason: self.reason,
            reason_length: if self.reason { 30 } else { 0 },
            break_glass: self.break_glass,
            acknowledged: self.acknowledged,
            now: Timestamp::now(),
            agreement: self.agreement.as_ref(),
        }
    }
}

#[test]
fn the_default_policy_validates() {
    Policy::default_policy().unwrap();
}

#[test]
fn a_broken_policy_is_refused() {
    let bad = "permit (principal, action == Steward::Action::\"read_name\", resource) when { resource.shoe_size > 3 };";
    assert!(matches!(
        Policy::from_sources(bad, SCHEMA),
        Err(PolicyError::Invalid(_))
    ));
    assert!(matches!(
        Policy::from_sources("permit (", SCHEMA),
        Err(PolicyError::Parse(_))
    ));
}

#[test]
fn seed_003_other_outlet_sees_only_the_abstraction() {
    let p = Policy::default_policy().unwrap();
    let (a, b) = (OutletId::new(), OutletId::new());
    let mut c = Case::new(Role::SalesAssociate, "service");
    c.staff_outlets = vec![b];
    c.customer_outlets = vec![a];
    let d = c.decide(&p);
    assert_eq!(d.outcome(Field::Profile(ProfileField::Name)), Outcome::Show);
    assert_eq!(
        d.outcome(Field::Profile(ProfileField::Email)),
        Outcome::Mask
    );
    assert_eq!(
        d.outcome(Field::Profile(ProfileField::Phone)),
        Outcome::Mask
    );
    assert_eq!(d.outcome(Field::PurchaseHistory), Outcome::Abstract);
    assert_eq!(d.outcome(Field::Communications), Outcome::Withhold);
    // The same associate at the customer's own outlet sees the record, the e-mail address
    // masked (they write to the customer through Steward: `send_message`).
    c.staff_outlets = vec![a, b];
    let d = c.decide(&p);
    assert_eq!(d.outcome(Field::PurchaseHistory), Outcome::Show);
    assert_eq!(
        d.outcome(Field::Profile(ProfileField::Email)),
        Outcome::Mask
    );
    assert_eq!(
        d.outcome(Field::Profile(ProfileField::Phone)),
        Outcome::Show
    );
    assert!(
        d.fields
            .iter()
            .find(|f| f.field == Field::Profile(ProfileField::Email))
            .unwrap()
            .policies
            .contains(&"outlet-staff-own-customers".to_owned())
    );
}

#[test]
fn seed_003_manager_fraud_review_needs_a_reason() {
    let p = Policy::default_policy().unwrap();
    let mut c = Case::new(Role::StoreManager, "fraud_prevention");
    c.staff_outlets = vec![OutletId::new()];
    c.customer_outlets = vec![OutletId::new()];
    assert_eq!(
        c.decide(&p).outcome(Field::PurchaseHistory),
        Outcome::Abstract
    );
    c.reason = true;
    assert_eq!(c.decide(&p).outcome(Field::PurchaseHistory), Outcome::Show);
}

#[test]
fn consent_purposes_need_consent() {
    let p = Policy::default_policy().unwrap();
    let mut c = Case::new(Role::Marketing, "marketing_email");
    let d = c.decide(&p);
    assert!(d.denies_all(), "{d:?}");
    let email = d
        .fields
        .iter()
        .find(|f| f.field == Field::Profile(ProfileField::Email))
        .unwrap();
    assert_eq!(email.policies, vec!["consent-required".to_owned()]);
    c.consented = true;
    let d = c.decide(&p);
    assert_eq!(d.outcome(Field::Profile(ProfileField::Name)), Outcome::Show);
    // Marketing never sees an address: Steward sends the campaign (issue 18).
    assert_eq!(
        d.outcome(Field::Profile(ProfileField::Email)),
        Outcome::Withhold
    );
    // The purpose does not cover phone numbers, whatever the role may otherwise do.
    assert_eq!(
        d.outcome(Field::Profile(ProfileField::Phone)),
        Outcome::Withhold
    );
    assert_eq!(d.outcome(Field::PurchaseHistory), Outcome::Withhold);
}

#[test]
fn restriction_limits_reads_to_legal_obligations() {
    let p = Policy::default_policy().unwrap();
    let mut c = Case::new(Role::SupportAgent, "service");
    assert_eq!(
        c.decide(&p).outcome(Field::Profile(ProfileField::Phone)),
        Outcome::Show
    );
    c.restricted = true;
    let d = c.decide(&p);
    assert!(d.denies_all());
    assert!(
        d.fields
            .iter()
            .all(|f| f.policies.contains(&"restriction".to_owned())),
        "{d:?}"
    );
}

#[test]
fn an_unacknowledged_notice_stops_every_read_even_break_glass() {
    let p = Policy::default_policy().unwrap();
    for role in [Role::SupportAgent, Role::Dpo, Role::StoreManager] {
        let mut c = Case::new(role, "service");
        c.reason = true;
        c.break_glass = true;
        assert!(!c.decide(&p).denies_all(), "{role:?} reads at all");
        c.acknowledged = false;
        let d = c.decide(&p);
        assert!(d.denies_all(), "{role:?}: {d:?}");
        assert!(
            d.fields
                .iter()
                .all(|f| f.policies.contains(&"acknowledgement-required".to_owned())),
            "{d:?}"
        );
    }
}

#[test]
fn no_all_seeing_role() {
    let p = Policy::default_policy().unwrap();
    for role in [Role::Admin, Role::Analyst] {
        for purpose in default_purposes() {
            let mut c = Case::new(role, "service");
            c.purpose = Box::leak(purpose.key.clone().into_boxed_str());
            c.consented = true;
            c.reason = true;
            assert!(
                c.decide(&p).denies_all(),
                "{role:?} read under {}",
                purpose.key
            );
        }
    }
    // The DPO needs a reason.
    let mut c = Case::new(Role::Dpo, "service");
    assert!(c.decide(&p).denies_all());
    c.reason = true;
    assert_eq!(
        c.decide(&p).outcome(Field::Profile(ProfileField::Email)),
        Outcome::Show
    );
}

#[test]
fn writes_by_role() {
    let p = Policy::default_policy().unwrap();
    let asker = |roles: &'static [Role]| Asker {
        id: "x".into(),
        roles,
        outlets: &[],
    };
    assert!(
        p.allows(&asker(&[Role::Admin]), Action::ManageDirectory, None)
            .0
    );
    assert!(
        !p.allows(&asker(&[Role::Admin]), Action::CreateCustomer, None)
            .0
    );
    assert!(
        p.allows(&asker(&[Role::SalesAssociate]), Action::AddPurchase, None)
            .0
    );
    assert!(
        !p.allows(&asker(&[Role::SupportAgent]), Action::AddPurchase, None)
            .0
    );
    assert!(
        !p.allows(&asker(&[Role::Analyst]), Action::ReadConsents, None)
            .0
    );
    assert!(
        p.allows(&asker(&[Role::Marketing]), Action::ManageConsent, None)
            .0
    );
    // A merge: customer service and the DPO, never of a restricted customer.
    let subject = |restricted| Subject {
        id: CustomerId::new(),
        outlets: &[],
        restricted,
    };
    for role in [Role::SupportAgent, Role::Dpo] {
        let a = asker(if role == Role::Dpo {
            &[Role::Dpo]
        } else {
            &[Role::SupportAgent]
        });
        assert!(
            p.allows(&a, Action::MergeCustomers, Some(&subject(false)))
                .0,
            "{role:?}"
        );
        assert!(
            !p.allows(&a, Action::MergeCustomers, Some(&subject(true))).0,
            "{role:?} merged a restricted customer"
        );
    }
    assert!(
        !p.allows(
            &asker(&[Role::StoreManager]),
            Action::MergeCustomers,
            Some(&subject(false))
        )
        .0
    );
}

#[test]
fn the_memo_agrees_with_evaluation_and_turns_off_for_individuals() {
    let p = Policy::default_policy().unwrap();
    assert!(p.memoizes());
    let (a, b) = (OutletId::new(), OutletId::new());
    for (outlets, purpose, consented, reason) in [
        (vec![a], "service", false, false),
        (vec![b], "service", false, false),
        (vec![b], "fraud_prevention", false, true),
        (vec![a], "marketing_email", true, false),
    ] {
        let mut c = Case::new(Role::StoreManager, purpose);
        c.staff_outlets = vec![a];
        c.customer_outlets = outlets;
        c.consented = consented;
        c.reason = reason;
        let first = c.decide(&p);
        let again = c.decide(&p);
        let purpose = super::tests::purpose(c.purpose);
        let req = ReadRequest {
            asker: Asker {
                id: "other".into(),
                roles: &c.roles,
                outlets: &c.staff_outlets,
            },
            subject: Subject {
                id: CustomerId::new(),
                outlets: &c.customer_outlets,
                restricted: false,
            },
            purpose: &purpose,
            consented,
            has_reason: reason,
            reason_length: if reason { 30 } else { 0 },
            break_glass: false,
            acknowledged: true,
            now: Timestamp::now(),
            agreement: None,
        };
        assert_eq!(first, again);
        assert_eq!(first, p.evaluate_read(&req, &Field::ALL));
    }
    let naming = format!(
        "{DEFAULT_POLICIES}\nforbid (principal == Steward::Staff::\"x\", action, resource);"
    );
    assert!(!Policy::from_sources(&naming, SCHEMA).unwrap().memoizes());
    // However it is spelled: Cedar allows spaces around `::` (issue 18 review, M1).
    for spelled in [
        "forbid (principal, action, resource == Steward::Customer :: \"c\");",
        "forbid (principal, action, resource) when { resource == Steward :: Customer::\"c\" };",
        "forbid (principal, action, resource) when { principal in [Steward::Staff ::\"x\"] };",
    ] {
        let naming = format!("{DEFAULT_POLICIES}\n{spelled}");
        let policy = Policy::from_sources(&naming, SCHEMA).unwrap();
        assert!(!policy.memoizes(), "{spelled}");
    }
}

#[test]
fn break_glass_needs_role_flag_and_a_long_reason() {
    let p = Policy::default_policy().unwrap();
    let mut c = Case::new(Role::StoreManager, "service");
    c.staff_outlets = vec![OutletId::new()];
    c.customer_outlets = vec![OutletId::new()];
    assert_eq!(
        c.decide(&p).outcome(Field::Communications),
        Outcome::Withhold
    );
    c.break_glass = true;
    assert_eq!(
        c.decide(&p).outcome(Field::Communications),
        Outcome::Withhold,
        "no reason"
    );
    c.reason = true;
    let d = c.decide(&p);
    assert_eq!(d.outcome(Field::Communications), Outcome::Show);
    assert!(
        d.fields
            .iter()
            .any(|f| f.policies.contains(&"break-glass".to_owned()))
    );
    // Not for sales associates, and never past a withdrawn consent.
    let mut s = Case::new(Role::SalesAssociate, "service");
    s.break_glass = true;
    s.reason = true;
    assert_eq!(
        s.decide(&p).outcome(Field::Communications),
        Outcome::Withhold
    );
    let mut m = Case::new(Role::Dpo, "marketing_email");
    m.break_glass = true;
    m.reason = true;
    assert!(m.decide(&p).denies_all());
}

#[test]
fn a_policy_can_depend_on_the_time_and_is_then_not_memoized() {
    let until_2030 = format!(
        "{DEFAULT_POLICIES}\n@id(\"embargo\")\nforbid (principal, action in Steward::Action::\"read\", resource)\nwhen {{ context.time < datetime(\"2030-01-01T00:00:00Z\") }};"
    );
    let p = Policy::from_sources(&until_2030, SCHEMA).unwrap();
    assert!(!p.memoizes());
    assert!(Policy::default_policy().unwrap().memoizes());
    let c = Case::new(Role::SupportAgent, "service");
    let at = |millis: i64| {
        let purpose = purpose("service");
        let req = ReadRequest {
            asker: Asker {
                id: "staff-1".into(),
                roles: &c.roles,
                outlets: &[],
            },
            subject: Subject {
                id: CustomerId::new(),
                outlets: &[],
                restricted: false,
            },
            purpose: &purpose,
            consented: false,
            has_reason: false,
            reason_length: 0,
            break_glass: false,
            acknowledged: true,
            now: Timestamp(millis),
            agreement: None,
        };
        p.decide_read(&req, &[Field::Profile(ProfileField::Phone)])
    };
    let before = at(1_800_000_000_000); // 2027
    assert_eq!(
        before.outcome(Field::Profile(ProfileField::Phone)),
        Outcome::Withhold
    );
    assert_eq!(before.fields[0].policies, vec!["embargo".to_owned()]);
    assert_eq!(
        at(1_900_000_000_000).outcome(Field::Profile(ProfileField::Phone)),
        Outcome::Show
    ); // 2030
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Slicing the policy set by action and roles never changes a decision.
    #[test]
    fn slices_decide_as_the_whole_set(
        role_mask in 1u16..128,
        own_outlet: bool,
        restricted: bool,
        purpose_ix in 0usize..7,
        consented: bool,
        reason_len in proptest::prop_oneof![proptest::strategy::Just(0usize), 1usize..40],
        break_glass: bool,
    ) {
        let sliced = Policy::default_policy().unwrap();
        let mut whole = Policy::default_policy().unwrap();
        whole.slices.whole = Some(std::sync::Arc::new(DEFAULT_POLICIES.parse().unwrap()));
        let roles: Vec<Role> = Role::ALL
            .iter()
            .enumerate()
            .filter(|(i, _)| role_mask & (1 << i) != 0)
            .map(|(_, r)| *r)
            .collect();
        let outlet = OutletId::new();
        let staff_outlets = [outlet];
        let customer_outlets = if own_outlet { vec![outlet] } else { vec![OutletId::new()] };
        let purpose = default_purposes().swap_remove(purpose_ix);
        let req = ReadRequest {
            asker: Asker { id: "staff-1".into(), roles: &roles, outlets: &staff_outlets },
            subject: Subject { id: CustomerId::new(), outlets: &customer_outlets, restricted },
            purpose: &purpose,
            consented,
            has_reason: reason_len > 0,
            reason_length: reason_len,
            break_glass,
            acknowledged: true,
            now: Timestamp::now(),
            agreement: None,
        };
        proptest::prop_assert_eq!(
            sliced.evaluate_read(&req, &Field::ALL),
            whole.evaluate_read(&req, &Field::ALL)
        );
        for action in [Action::CreateCustomer, Action::AddPurchase, Action::ManageConsent,
                       Action::ManageDirectory, Action::ReadAlerts, Action::ManagePurposes] {
            let asker = Asker { id: "staff-1".into(), roles: &roles, outlets: &staff_outlets };
            proptest::prop_assert_eq!(
                sliced.allows(&asker, action, Some(&req.subject)),
                whole.allows(&asker, action, Some(&req.subject))
            );
        }
    }
}

/// Issue 15, finding 3: marketing read names and e-mails without consent by declaring a purpose
/// that does not rest on consent. A purpose now names the roles that may declare it.
#[test]
fn a_purpose_is_declared_only_by_its_roles() {
    let p = Policy::default_policy().unwrap();
    for purpose in [
        "service",
        "order_fulfilment",
        "fraud_prevention",
        "allocation",
    ] {
        let mut c = Case::new(Role::Marketing, purpose);
        c.consented = true;
        c.reason = true;
        let d = c.decide(&p);
        assert!(d.denies_all(), "marketing read under {purpose}: {d:?}");
        assert!(
            d.fields
                .iter()
                .all(|f| f.policies.contains(&"purpose-bound-to-roles".to_owned())),
            "{d:?}"
        );
    }
    // Marketing's own purpose still works with consent.
    let mut c = Case::new(Role::Marketing, "marketing_email");
    c.consented = true;
    assert_eq!(
        c.decide(&p).outcome(Field::Profile(ProfileField::Name)),
        Outcome::Show
    );
    // An associate may not declare fraud review; a store manager may.
    let mut c = Case::new(Role::SalesAssociate, "fraud_prevention");
    c.reason = true;
    assert!(c.decide(&p).denies_all());
    c.roles = vec![Role::StoreManager];
    assert_eq!(c.decide(&p).outcome(Field::PurchaseHistory), Outcome::Show);
    // A purpose whose roles the DPO changed binds at once (the memo keys on the roles too).
    let mut purpose = purpose("service");
    purpose.roles = vec![Role::Dpo];
    let req = ReadRequest {
        asker: Asker {
            id: "staff-1".into(),
            roles: &[Role::SupportAgent],
            outlets: &[],
        },
        subject: Subject {
            id: CustomerId::new(),
            outlets: &[],
            restricted: false,
        },
        purpose: &purpose,
        consented: false,
        has_reason: false,
        reason_length: 0,
        break_glass: false,
        acknowledged: true,
        now: Timestamp::now(),
        agreement: None,
    };
    let before = Case::new(Role::SupportAgent, "service").decide(&p);
    assert_eq!(
        before.outcome(Field::Profile(ProfileField::Phone)),
        Outcome::Show
    );
    assert!(p.decide_read(&req, &Field::ALL).denies_all());
}

/// Fail closed (issue 16): a read whose Cedar context cannot be built is denied field by field,
/// even for a caller every permit would allow — a context without its attributes would skip the
/// forbids that read them.
#[test]
fn a_read_without_its_context_is_denied() {
    let p = Policy::default_policy().unwrap();
    let mut case = Case::new(Role::Dpo, "service");
    case.reason = true;
    // With its context the DPO reads everything the purpose covers…
    let with = case.decide(&p);
    assert!(with.fields.iter().any(|f| f.outcome == Outcome::Show));
    // …without one, nothing.
    let purpose = purpose("service");
    let req = case.request(&purpose);
    let without = p.evaluate_read_with(&req, &Field::ALL, |_, _| None);
    assert_eq!(without.fields.len(), Field::ALL.len());
    for f in &without.fields {
        assert_eq!(f.outcome, Outcome::Withhold, "{f:?}");
        assert_eq!(f.policies, vec!["context-unavailable".to_owned()]);
    }
}

/// Fail closed (issue 16): a request whose entities cannot be built (a party Cedar refused, or
/// a set it refused to join with the actions' own) is decided over nothing and denied — never
/// over an entity stripped of its attributes, which would skip the forbids that read them. The
/// reads, the uses and the other actions each deny when their entities are refused.
#[test]
fn a_request_whose_entities_cannot_be_built_is_denied() {
    let p = Policy::default_policy().unwrap();
    let case = Case::new(Role::SupportAgent, "service");
    let purpose = purpose("service");
    let req = case.request(&purpose);
    let customer = Policy::customer(&req.subject);
    let staff = Policy::principal(&req.asker);
    assert!(p.parties(staff.clone(), customer.clone()).is_some());
    assert!(p.parties(None, customer.clone()).is_none());
    assert!(p.parties(staff.clone(), None).is_none());
    // An entity that clashes with one the policy holds (an action's, with its groups).
    let clash = Entity::with_uid(uid("Action", "use_in_segment"));
    assert!(p.parties(Some(clash), customer).is_none());
    // With its entities built this case reads something, may use the customer's facts, and
    // may register a customer…
    let name = Field::Profile(ProfileField::Name);
    let allowed = |p: &Policy| {
        (
            p.evaluate_read(&req, &Field::ALL),
            p.decide_all(&req, &name.show_action(), &[name.category()]),
            p.allows(&req.asker, Action::CreateCustomer, None),
        )
    };
    let (read, used, created) = allowed(&p);
    assert!(read.fields.iter().any(|f| f.outcome != Outcome::Withhold));
    assert!(used);
    assert!(created.0, "{created:?}");
    // …with its entities refused, nothing.
    let mut refusing = Policy::default_policy().unwrap();
    refusing.refuse_entities = true;
    let (read, used, created) = allowed(&refusing);
    assert_eq!(read.fields.len(), Field::ALL.len());
    for f in &read.fields {
        assert_eq!(f.outcome, Outcome::Withhold, "{f:?}");
        assert_eq!(f.policies, vec!["entities-unavailable".to_owned()]);
    }
    assert!(!used);
    assert_eq!(created, (false, vec!["entities-unavailable".to_owned()]));
}

/// The operator (the command line, with the master key) exports, loads and erases by the
/// policy's `operator` permit; no other role exports, and the operator reads nobody through the
/// API's read actions.
#[test]
fn the_operator_acts_by_its_own_permit() {
    let p = Policy::default_policy().unwrap();
    let asker = |roles: &'static [Role]| Asker {
        id: "x".into(),
        roles,
        outlets: &[],
    };
    let customer = Subject {
        id: CustomerId::new(),
        outlets: &[],
        restricted: true,
    };
    for action in [
        Action::ExportCustomer,
        Action::CreateCustomer,
        Action::EraseCustomer,
        Action::ManageDirectory,
    ] {
        let (ok, ids) = p.allows(&asker(&[Role::Operator]), action, Some(&customer));
        assert!(ok, "{action:?}");
        assert_eq!(ids, vec!["operator".to_owned()]);
    }
    for role in Role::ALL {
        let roles = [role];
        let staff = Asker {
            id: "x".into(),
            roles: &roles,
            outlets: &[],
        };
        assert!(
            !p.allows(&staff, Action::ExportCustomer, Some(&customer)).0,
            "{role:?} may not export"
        );
    }
    assert!(
        !p.allows(&asker(&[Role::Operator]), Action::ReadAlerts, None)
            .0
    );
    let mut case = Case::new(Role::Operator, "service");
    case.consented = true;
    assert!(case.decide(&p).denies_all());
}

/// Every declared profile field has its show action (`read_<field>`) in the schema: a field the
/// schema lacked would be withheld from everyone without a word. And the preferred language is
/// shown where the rest of the contact record is: to a support agent serving the customer.
#[test]
fn every_profile_field_is_decidable() {
    for f in ProfileField::ALL {
        assert!(
            SCHEMA.contains(&format!("read_{}", f.name())),
            "{} has no read action in the schema",
            f.name()
        );
    }
    let p = Policy::default_policy().unwrap();
    let d = Case::new(Role::SupportAgent, "service").decide(&p);
    assert_eq!(
        d.outcome(Field::Profile(ProfileField::PreferredLanguage)),
        Outcome::Show
    );
    // Another outlet's associate sees the name and masked contact details, not the language.
    let d = Case::new(Role::SalesAssociate, "service").decide(&p);
    assert_eq!(
        d.outcome(Field::Profile(ProfileField::PreferredLanguage)),
        Outcome::Withhold
    );
}

#[test]
fn segments_use_facts_only_within_the_read_limits() {
    use steward_domain::DataCategory::{Financial, PurchaseHistory};
    let p = Policy::default_policy().unwrap();
    let uses = |c: &Case, categories: &[DataCategory]| {
        let purpose = purpose(c.purpose);
        let req = c.request(&purpose);
        let decided = p.decide_use(&req, categories);
        // The memo answers as the policy does.
        assert_eq!(decided, p.evaluate_use(&req, categories));
        decided
    };
    let mut c = Case::new(Role::Marketing, "personalisation");
    // Consent is needed for a consent-based purpose, even though nothing is shown.
    assert!(!uses(&c, &[PurchaseHistory]));
    c.consented = true;
    assert!(uses(&c, &[PurchaseHistory]));
    // Amounts are financial data: personalisation does not cover them.
    assert!(!uses(&c, &[PurchaseHistory, Financial]));
    // Rules that use no category are decided under the purpose's own.
    assert!(uses(&c, &[]));
    c.restricted = true;
    assert!(!uses(&c, &[PurchaseHistory]));
    c.restricted = false;
    c.acknowledged = false;
    assert!(!uses(&c, &[PurchaseHistory]));
    // Only marketing and the DPO evaluate segments; an associate may not, for any purpose.
    let mut a = Case::new(Role::SalesAssociate, "service");
    a.consented = true;
    assert!(!uses(&a, &[PurchaseHistory]));
    // Marketing may not declare `service`, so it cannot size a segment under it either.
    let mut m = Case::new(Role::Marketing, "service");
    m.consented = true;
    assert!(!uses(&m, &[PurchaseHistory]));
    let asker = Asker {
        id: "m".into(),
        roles: &[Role::Marketing],
        outlets: &[],
    };
    assert!(p.allows(&asker, Action::ManageSegments, None).0);
    let asker = Asker {
        id: "a".into(),
        roles: &[Role::Analyst],
        outlets: &[],
    };
    assert!(!p.allows(&asker, Action::ManageSegments, None).0);
}

/// Writing to one customer (issue 18): outlet staff to their own outlets' customers, support
/// agents to any, marketing and the DPO to no one individually; the limits on reads apply.
#[test]
fn only_those_who_serve_a_customer_write_to_them() {
    let p = Policy::default_policy().unwrap();
    let (own, other) = (OutletId::new(), OutletId::new());
    let may = |c: &Case| {
        let purpose = purpose(c.purpose);
        p.decide_message(&c.request(&purpose))
    };
    for role in [Role::SalesAssociate, Role::StoreManager] {
        let mut c = Case::new(role, "service");
        c.customer_outlets = vec![own];
        c.staff_outlets = vec![other];
        assert!(!may(&c), "{role:?} of another outlet");
        c.staff_outlets = vec![own];
        assert!(may(&c), "{role:?} of the customer's outlet");
        c.restricted = true;
        assert!(!may(&c), "{role:?}: a restricted customer");
        c.restricted = false;
        c.acknowledged = false;
        assert!(!may(&c), "{role:?}: the notice not acknowledged");
    }
    assert!(may(&Case::new(Role::SupportAgent, "service")));
    // A purpose that does not cover the address, or that the role may not declare.
    assert!(!may(&Case::new(Role::SupportAgent, "personalisation")));
    for role in [
        Role::Marketing,
        Role::Dpo,
        Role::Admin,
        Role::Analyst,
        Role::MailGateway,
    ] {
        for purpose in ["service", "marketing_email"] {
            let mut c = Case::new(role, purpose);
            c.consented = true;
            c.reason = true;
            assert!(!may(&c), "{role:?} under {purpose}");
        }
    }
    // Only the gateway (and the operator) hands mail in.
    let asker = |roles: &'static [Role]| Asker {
        id: "x".into(),
        roles,
        outlets: &[],
    };
    assert!(
        p.allows(&asker(&[Role::MailGateway]), Action::ReceiveMail, None)
            .0
    );
    assert!(
        p.allows(&asker(&[Role::Operator]), Action::ReceiveMail, None)
            .0
    );
    assert!(
        !p.allows(&asker(&[Role::SupportAgent]), Action::ReceiveMail, None)
            .0
    );
    assert!(
        !p.allows(&asker(&[Role::MailGateway]), Action::AddInteraction, None)
            .0
    );
}

/// Personalisation (issue 20): marketing, with consent, from the purchase history; never from a
/// special category, even under a purpose that names one, and not even the DPO with a reason.
#[test]
fn special_categories_never_drive_personalisation() {
    let p = Policy::default_policy().unwrap();
    let mut wide = purpose("personalisation");
    wide.categories.push(DataCategory::HealthAndMedical);
    let mut c = Case::new(Role::Marketing, "personalisation");
    let may =
        |c: &Case, purpose: &Purpose, category| p.decide_personalise(&c.request(purpose), category);
    assert!(!may(&c, &wide, DataCategory::PurchaseHistory), "no consent");
    c.consented = true;
    assert!(may(&c, &wide, DataCategory::PurchaseHistory));
    for special in DataCategory::SPECIAL {
        assert!(!may(&c, &wide, special), "{special:?}");
    }
    let mut dpo = Case::new(Role::Dpo, "personalisation");
    dpo.consented = true;
    dpo.reason = true;
    assert!(!may(&dpo, &wide, DataCategory::HealthAndMedical));
    // Other roles do not personalise.
    for role in [Role::SupportAgent, Role::SalesAssociate, Role::Analyst] {
        let mut c = Case::new(role, "personalisation");
        c.consented = true;
        assert!(!may(&c, &wide, DataCategory::PurchaseHistory), "{role:?}");
    }
}

/// Analytics (issue 21): analysts and the DPO, under an analytics purpose, per customer; a
/// restricted customer, a purpose it does not cover or another role are refused.
#[test]
fn analysts_use_facts_only_in_aggregates_under_analytics() {
    let p = Policy::default_policy().unwrap();
    let analytics = purpose("analytics");
    let may = |c: &Case, purpose: &Purpose, categories: &[DataCategory]| {
        p.decide_analyse(&c.request(purpose), categories)
    };
    let analyst = Case::new(Role::Analyst, "analytics");
    assert!(may(&analyst, &analytics, &[]));
    assert!(may(
        &analyst,
        &analytics,
        &[DataCategory::PurchaseHistory, DataCategory::Financial]
    ));
    assert!(may(&analyst, &analytics, &[DataCategory::Communications]));
    // Not a category the purpose names.
    assert!(!may(&analyst, &analytics, &[DataCategory::Email]));
    // A restricted customer is in no aggregate.
    let mut restricted = Case::new(Role::Analyst, "analytics");
    restricted.restricted = true;
    assert!(!may(&restricted, &analytics, &[]));
    // Only a purpose whose data use is analytics.
    let mut service = Case::new(Role::Dpo, "service");
    service.reason = true;
    assert!(!may(
        &service,
        &purpose("service"),
        &[DataCategory::PurchaseHistory]
    ));
    assert!(may(&Case::new(Role::Dpo, "analytics"), &analytics, &[]));
    // Other roles do not, not even under the analytics purpose; and analysts still read no one.
    for role in [
        Role::Marketing,
        Role::SupportAgent,
        Role::StoreManager,
        Role::Admin,
    ] {
        assert!(
            !may(&Case::new(role, "analytics"), &analytics, &[]),
            "{role:?}"
        );
    }
    assert!(
        p.decide_read(&analyst.request(&analytics), &Field::ALL)
            .denies_all()
    );
}

/// An agreement covering `categories`, identified or not.
fn terms(
    categories: &[steward_domain::DataCategory],
    pseudonymous: bool,
) -> steward_domain::sharing::AgreementTerms {
    use steward_domain::sharing::Identity;
    steward_domain::sharing::AgreementTerms {
        id: steward_domain::AgreementId::new(),
        categories: categories.to_vec(),
        identity: if pseudonymous {
            Identity::Pseudonymous
        } else {
            Identity::Identified
        },
    }
}

#[test]
fn a_recipient_reads_only_what_an_agreement_in_force_covers() {
    use steward_domain::DataCategory::*;
    let p = Policy::default_policy().unwrap();
    let name = Field::Profile(ProfileField::Name);
    let email = Field::Profile(ProfileField::Email);
    let mut c = Case::new(Role::Recipient, "order_fulfilment");
    // No agreement in force for the purpose: nothing, whatever else holds.
    let d = c.decide(&p);
    assert!(d.denies_all(), "{d:?}");
    assert!(
        d.fields.iter().all(|f| f
            .policies
            .iter()
            .any(|p| p == "recipients-only-under-agreement")
            || f.policies.is_empty()),
        "{d:?}"
    );
    // Under an agreement: exactly its categories that the purpose also names, in full.
    c.agreement = Some(terms(&[Name, Address, PurchaseHistory, Email], false));
    let d = c.decide(&p);
    assert_eq!(d.outcome(name), Outcome::Show);
    assert_eq!(
        d.outcome(Field::Profile(ProfileField::Address)),
        Outcome::Show
    );
    assert_eq!(
        d.outcome(Field::Profile(ProfileField::Phone)),
        Outcome::Withhold
    );
    assert_eq!(d.outcome(Field::Communications), Outcome::Withhold);
    let fulfilment = purpose("order_fulfilment");
    assert_eq!(
        d.outcome(email) == Outcome::Show,
        fulfilment.categories.contains(&Email),
        "the purpose's categories bound the agreement's"
    );
    // Restricted: nothing, even under a legal obligation.
    c.restricted = true;
    assert!(c.decide(&p).denies_all());
    let mut legal = Case::new(Role::Recipient, "service");
    legal.restricted = true;
    legal.agreement = Some(terms(&[Name], false));
    assert!(legal.decide(&p).denies_all());
    c.restricted = false;
    // Never widened by a reason or break-glass.
    c.reason = true;
    c.break_glass = true;
    assert!(c.decide(&p).denies_all());
    c.reason = false;
    c.break_glass = false;
    // Pseudonymous: no direct identifier even if an agreement listed one.
    c.agreement = Some(terms(&[Name, PurchaseHistory], true));
    let d = c.decide(&p);
    assert_eq!(d.outcome(name), Outcome::Withhold);
    assert_eq!(d.outcome(Field::PurchaseHistory), Outcome::Show);
    // Consent-based purposes need the customer's consent for recipients too.
    let mut m = Case::new(Role::Recipient, "marketing_email");
    m.agreement = Some(terms(&[Name, Email], false));
    assert!(m.decide(&p).denies_all());
    m.consented = true;
    assert_eq!(m.decide(&p).outcome(name), Outcome::Show);
}

#[test]
fn an_agreement_widens_no_staff_read_and_recipients_write_nothing() {
    use steward_domain::DataCategory::*;
    let p = Policy::default_policy().unwrap();
    let mut c = Case::new(Role::Marketing, "service");
    c.agreement = Some(terms(&[Name, Email, PurchaseHistory], false));
    assert!(
        c.decide(&p).denies_all(),
        "marketing may not declare service"
    );
    let customer = Subject {
        id: CustomerId::new(),
        outlets: &[],
        restricted: false,
    };
    let recipient = Asker {
        id: "token-r".into(),
        roles: &[Role::Recipient],
        outlets: &[],
    };
    for action in [
        Action::CreateCustomer,
        Action::UpdateCustomer,
        Action::ManageConsent,
        Action::ReadConsents,
        Action::EraseCustomer,
        Action::ReadAccessLog,
        Action::ExportCustomer,
    ] {
        assert!(
            !p.allows(&recipient, action, Some(&customer)).0,
            "{action:?}"
        );
    }
    assert!(!p.allows(&recipient, Action::ManageRecipients, None).0);
    let dpo = Asker {
        id: "staff-dpo".into(),
        roles: &[Role::Dpo],
        outlets: &[],
    };
    assert!(p.allows(&dpo, Action::ManageRecipients, None).0);
}

/// Issue 23: any staff or service role may ask what a text holds (no recipient, not the
/// operator); only the DPO and the operator see card, account and identity numbers in full.
#[test]
fn texts_are_analysed_by_staff_and_shown_in_full_to_the_dpo() {
    let p = Policy::default_policy().unwrap();
    for role in Role::EVERY {
        let asker = Asker {
            id: format!("staff-{}", role.as_str()),
            roles: &[role],
            outlets: &[],
        };
        let analyse = !matches!(role, Role::Recipient | Role::Operator);
        assert_eq!(
            p.allows(&asker, Action::AnalyzeText, None).0,
            analyse,
            "{role:?}"
        );
        let full = matches!(role, Role::Dpo | Role::Operator);
        assert_eq!(
            p.allows(&asker, Action::ReadSensitiveText, None).0,
            full,
            "{role:?}"
        );
    }
}
