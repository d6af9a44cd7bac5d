//! `steward bench policy`: access decisions, cold and memoized, and as a server meets them.

use std::time::Instant;

use anyhow::Context;
use steward_domain::{CustomerId, OutletId, ProfileField, Purpose, Role};
use steward_policy::{Asker, Field, Policy, ReadRequest, Subject};

fn purposes() -> Vec<Purpose> {
    steward_domain::purpose::default_purposes()
}

/// A number in `0..n` scattered over `i` (deterministic, so runs compare).
fn pick(i: usize, salt: u64, n: usize) -> usize {
    let x = (i as u64 ^ salt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((x >> 17) % n as u64) as usize
}

/// p50 and p99 of `samples` (ns), in µs.
fn percentiles(mut samples: Vec<u64>) -> (f64, f64) {
    samples.sort_unstable();
    let pct = |p: f64| {
        samples
            .get(((samples.len() as f64 * p) as usize).min(samples.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    (pct(0.5), pct(0.99))
}

/// The decisions of `reads` customer reads as a server meets them, the memo empty at the start:
/// 40 staff members at 10 outlets (25 sales associates, 7 store managers, 4 support agents,
/// 4 marketing), 2,000 customers registered at one outlet and some having bought at one or two
/// others, half of them consenting to marketing e-mail; seven reads in ten for `service`, two
/// for `marketing_email`, one for `order_fulfilment`.
fn served_mix(policy: &Policy, purposes: &[Purpose], reads: usize) -> anyhow::Result<()> {
    let purpose = |key: &str| {
        purposes
            .iter()
            .find(|p| p.key == key)
            .with_context(|| format!("{key} purpose"))
    };
    let mix = [
        purpose("service")?,
        purpose("marketing_email")?,
        purpose("order_fulfilment")?,
    ];
    let outlets: Vec<OutletId> = (0..10).map(|_| OutletId::new()).collect();
    let staff: Vec<(String, [Role; 1], [OutletId; 1])> = (0..40)
        .map(|s| {
            let role = match s {
                0..25 => Role::SalesAssociate,
                25..32 => Role::StoreManager,
                32..36 => Role::SupportAgent,
                _ => Role::Marketing,
            };
            (format!("staff-{s}"), [role], [outlets[s % 10]])
        })
        .collect();
    let customers: Vec<(CustomerId, Vec<OutletId>)> = (0..2_000)
        .map(|c| {
            let mut at = vec![outlets[c % 10]];
            if c % 3 == 0 {
                at.push(outlets[(c * 7 + 1) % 10]);
            }
            if c % 5 == 0 {
                at.push(outlets[(c * 3 + 2) % 10]);
            }
            (CustomerId::new(), at)
        })
        .collect();
    let mut samples = Vec::with_capacity(reads);
    for i in 0..reads {
        let (id, roles, at) = &staff[pick(i, 1, staff.len())];
        let c = pick(i, 2, customers.len());
        let (customer, bought) = &customers[c];
        let purpose = match pick(i, 3, 10) {
            0..7 => mix[0],
            7..9 => mix[1],
            _ => mix[2],
        };
        let req = ReadRequest {
            asker: Asker {
                id: id.clone(),
                roles,
                outlets: at,
            },
            subject: Subject {
                id: *customer,
                outlets: bought,
                restricted: false,
            },
            purpose,
            consented: c.is_multiple_of(2),
            has_reason: false,
            reason_length: 0,
            break_glass: false,
            acknowledged: true,
            now: steward_domain::Timestamp::now(),
            agreement: None,
        };
        let t = Instant::now();
        std::hint::black_box(policy.decide_read(&req, &Field::CUSTOMER_VIEW));
        samples.push(t.elapsed().as_nanos() as u64);
    }
    let cold = policy.memo_size();
    let (p50, p99) = percentiles(samples);
    emit!(
        "| policy decisions of {reads} customer reads as a server meets them (40 staff, 10 outlets, 2,000 customers, 3 purposes; memo empty at the start; {cold} decided by Cedar) | p50 {p50:.1} µs | p99 {p99:.1} µs |"
    );
    Ok(())
}

/// One decision for a customer read, evaluated and memoized (a sales associate reading another
/// outlet's customer: six categories, some needing a second, lesser check, the most work a read
/// asks of the policy), and the decisions of a mixed run of reads as a server meets them.
pub(super) fn run(iterations: usize) -> anyhow::Result<()> {
    let policy = Policy::default_policy()?;
    let purpose = purposes()
        .into_iter()
        .find(|p| p.key == "service")
        .context("service purpose")?;
    let (mine, theirs) = ([OutletId::new()], [OutletId::new()]);
    let roles = [Role::SalesAssociate];
    let time = |memo: bool, fields: &[Field]| {
        let mut samples = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let req = ReadRequest {
                asker: Asker {
                    id: "bench-staff".into(),
                    roles: &roles,
                    outlets: &mine,
                },
                subject: Subject {
                    id: CustomerId::new(),
                    outlets: &theirs,
                    restricted: false,
                },
                purpose: &purpose,
                consented: false,
                has_reason: false,
                reason_length: 0,
                break_glass: false,
                acknowledged: true,
                now: steward_domain::Timestamp::now(),
                agreement: None,
            };
            let t = Instant::now();
            std::hint::black_box(if memo {
                policy.decide_read(&req, fields)
            } else {
                policy.evaluate_read(&req, fields)
            });
            samples.push(t.elapsed().as_nanos() as u64);
        }
        percentiles(samples)
    };
    let (c50, c99) = time(false, &Field::CUSTOMER_VIEW);
    let (w50, w99) = time(true, &Field::CUSTOMER_VIEW);
    // The name of another outlet's customer is shown by one permit: one Cedar authorization.
    let (o50, o99) = time(false, &[Field::Profile(ProfileField::Name)]);
    emit!(
        "| policy decision, one field (one Cedar authorization), evaluated | p50 {o50:.1} µs | p99 {o99:.1} µs |"
    );
    emit!(
        "| policy decision, customer read (6 categories, other outlet), evaluated | p50 {c50:.1} µs | p99 {c99:.1} µs |"
    );
    emit!("| the same, memoized (same facts decided before) | p50 {w50:.1} µs | p99 {w99:.1} µs |");
    // A policy of its own, so that its memo starts empty.
    served_mix(
        &Policy::default_policy()?,
        &purposes(),
        iterations.max(1_000) * 5,
    )
}
