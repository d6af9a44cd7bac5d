//! The access policy's context building: a read request from arbitrary roles, outlets, purpose
//! (registered ones and operator-made ones with any key, basis, data use and categories),
//! consent, reason, break-glass, time and a recipient's agreement, decided by the shipped policy
//! and by one that reads `context.time`.

use std::sync::LazyLock;

use arbitrary::Unstructured;
use steward_domain::{
    CustomerId, DataCategory, LawfulBasis, OutletId, Purpose, Role, Timestamp, purpose,
};
use steward_policy::{Asker, Decision, Field, Outcome, Policy, ReadRequest, Subject};

static DEFAULT: LazyLock<Policy> =
    LazyLock::new(|| Policy::default_policy().expect("the shipped policy validates"));

/// The shipped policy plus a curfew: no personal data after 20:00 UTC.
static CURFEW: LazyLock<Policy> = LazyLock::new(|| {
    let text = format!(
        "{}\n@id(\"curfew\")\nforbid (principal, action in Steward::Action::\"read\", resource)\nwhen {{ context.time.toTime() >= duration(\"20h\") }};\n",
        steward_policy::DEFAULT_POLICIES
    );
    Policy::from_sources(&text, steward_policy::SCHEMA).expect("the curfew policy validates")
});

const CATEGORIES: [DataCategory; 12] = [
    DataCategory::Name,
    DataCategory::Email,
    DataCategory::PhoneNumber,
    DataCategory::Address,
    DataCategory::DateOfBirth,
    DataCategory::Language,
    DataCategory::Financial,
    DataCategory::PurchaseHistory,
    DataCategory::Communications,
    DataCategory::Social,
    DataCategory::Location,
    DataCategory::HealthAndMedical,
];

const BASES: [LawfulBasis; 4] = [
    LawfulBasis::Consent,
    LawfulBasis::Contract,
    LawfulBasis::LegalObligation,
    LawfulBasis::LegitimateInterest,
];

/// The members of `all` whose bit is set in `bits`.
fn subset<T: Copy>(all: &[T], bits: u32) -> Vec<T> {
    all.iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, x)| *x)
        .collect()
}

fn purpose_of(u: &mut Unstructured<'_>) -> arbitrary::Result<Purpose> {
    let defaults = purpose::default_purposes();
    let pick = u.int_in_range(0..=defaults.len())?;
    if let Some(p) = defaults.into_iter().nth(pick) {
        return Ok(p);
    }
    Ok(Purpose {
        key: u.arbitrary()?,
        lawful_basis: *u.choose(&BASES)?,
        data_use: u.arbitrary()?,
        categories: subset(&CATEGORIES, u.arbitrary()?),
        retention_days: u.arbitrary()?,
        notice_text: String::new(),
        notice_version: 1,
        roles: subset(&Role::ALL, u.arbitrary()?),
        pii_rule: Default::default(),
    })
}

fn check(policy: &Policy, req: &ReadRequest<'_>, fields: &[Field]) -> Decision {
    let evaluated = policy.evaluate_read(req, fields);
    // Twice: the first may fill the memo, the second reads from it.
    for _ in 0..2 {
        assert_eq!(
            policy.decide_read(req, fields),
            evaluated,
            "the memo decides otherwise than the policy"
        );
    }
    let denies = evaluated.denies_all();
    let basis = req.purpose.lawful_basis;
    if basis == LawfulBasis::Consent && !req.consented {
        assert!(denies, "a consent purpose read without consent");
    }
    if req.subject.restricted && basis != LawfulBasis::LegalObligation {
        assert!(
            denies,
            "a restricted customer read beyond a legal obligation"
        );
    }
    if req.asker.roles.iter().all(|r| {
        matches!(
            r,
            Role::Admin | Role::Analyst | Role::Monitoring | Role::Operator
        )
    }) {
        // The operator exports through its own action, never through a read.
        assert!(
            denies,
            "an admin, analyst or the operator read an individual's data"
        );
    }
    let recipient = req.asker.roles.contains(&Role::Recipient);
    if recipient && (req.agreement.is_none() || req.subject.restricted) {
        assert!(
            denies,
            "a recipient read without an agreement, or a restricted customer"
        );
    }
    for d in &evaluated.fields {
        if d.outcome != Outcome::Withhold {
            assert!(
                req.purpose.categories.contains(&d.field.category()),
                "a field outside the purpose's categories was not withheld"
            );
            if let Some(a) = req.agreement {
                if recipient {
                    assert!(
                        a.categories.contains(&d.field.category()),
                        "a recipient was shown a category its agreement does not name"
                    );
                }
                if a.identity == steward_domain::sharing::Identity::Pseudonymous {
                    assert!(
                        !steward_domain::sharing::DIRECT_IDENTIFIERS.contains(&d.field.category()),
                        "a direct identifier under a pseudonymous agreement"
                    );
                }
            }
            // A recipient's purposes are its agreement's, not the registry's roles.
            assert!(
                recipient
                    || req
                        .asker
                        .roles
                        .iter()
                        .any(|r| req.purpose.roles.contains(r)),
                "a role the purpose does not name declared it"
            );
        }
    }
    evaluated
}

/// Decides an arbitrary read with the shipped policy and with a curfew policy: never panics; the
/// memo agrees with evaluation; consent, restriction, purpose categories and the no-reader roles
/// bind every decision; the curfew withholds everything after 20:00 and changes nothing before.
pub fn policy_context(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let pool = [
        OutletId(uuid::Uuid::from_u128(1)),
        OutletId(uuid::Uuid::from_u128(2)),
        OutletId(uuid::Uuid::from_u128(3)),
    ];
    let Ok((roles, mine, theirs, purpose, agreement)) = (|| {
        Ok::<_, arbitrary::Error>((
            subset(&Role::EVERY, u.arbitrary()?),
            subset(&pool, u.arbitrary()?),
            subset(&pool, u.arbitrary()?),
            purpose_of(&mut u)?,
            // An agreement in force for the purpose, or none (issue 22).
            if u.arbitrary()? {
                Some(steward_domain::sharing::AgreementTerms {
                    id: steward_domain::AgreementId(uuid::Uuid::from_u128(u.arbitrary()?)),
                    categories: subset(&CATEGORIES, u.arbitrary()?),
                    identity: if u.arbitrary()? {
                        steward_domain::sharing::Identity::Pseudonymous
                    } else {
                        steward_domain::sharing::Identity::Identified
                    },
                })
            } else {
                None
            },
        ))
    })() else {
        return;
    };
    let Ok(req) = (|| {
        Ok::<_, arbitrary::Error>(ReadRequest {
            asker: Asker {
                id: u.arbitrary()?,
                roles: &roles,
                outlets: &mine,
            },
            subject: Subject {
                id: CustomerId(uuid::Uuid::from_u128(u.arbitrary()?)),
                outlets: &theirs,
                restricted: u.arbitrary()?,
            },
            purpose: &purpose,
            consented: u.arbitrary()?,
            has_reason: u.arbitrary()?,
            reason_length: u.int_in_range(0..=600)?,
            break_glass: u.arbitrary()?,
            acknowledged: true,
            // From 1970 to the year 9999, in milliseconds.
            now: Timestamp(u.int_in_range(0..=253_402_300_799_999)?),
            agreement: agreement.as_ref(),
        })
    })() else {
        return;
    };
    let fields = subset(&Field::ALL, u.arbitrary().unwrap_or(u32::MAX));
    let plain = check(&DEFAULT, &req, &fields);
    let curfewed = check(&CURFEW, &req, &fields);
    let hour = req.now.0.rem_euclid(86_400_000) / 3_600_000;
    if hour >= 20 {
        assert!(curfewed.denies_all(), "the curfew let a read through");
    } else {
        let outcomes = |d: &Decision| d.fields.iter().map(|f| f.outcome).collect::<Vec<_>>();
        assert_eq!(
            outcomes(&curfewed),
            outcomes(&plain),
            "the curfew changed a decision before 20:00"
        );
    }
}
