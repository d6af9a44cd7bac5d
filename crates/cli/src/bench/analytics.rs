//! `steward bench analytics` (issue 21, point 6): differentially private queries over 1,000,000
//! customers and about 3,000,000 purchases through the service, as the API calls them (each
//! customer decided by the policy, sealed outlets and amounts opened, noise sampled, the release
//! charged and recorded): latency per query, and the median relative error of the counts of
//! groups of at least 1,000 at ε = 1 against the exact answers, known from the generator of the
//! same run. SQLite.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Value, json};
use steward_domain::analytics::QueryInput;
use steward_domain::{NewPurchase, OutletId, Role, Timestamp};
use steward_service::Activity;

const OUTLETS: usize = 5;
const CATEGORIES: [&str; 6] = ["watch", "strap", "jewellery", "pen", "wallet", "service"];
const DAY_MS: i64 = 86_400_000;

/// Customer `n`'s purchases: 0 to 6 of them (3 on average), each a category, days ago (within
/// three years) and an amount in CHF minor units; deterministic.
fn purchases_of(n: usize) -> Vec<(&'static str, i64, i64)> {
    (0..n % 7)
        .map(|k| {
            let mix = (n as u64 * 7 + k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16;
            let category = CATEGORIES[(mix % CATEGORIES.len() as u64) as usize];
            let days = ((mix >> 8) % 1095) as i64;
            let amount = 5_000 + ((mix >> 20) % 400_000) as i64;
            (category, days, amount)
        })
        .collect()
}

/// The exact answers, tallied as the data is generated: per query, per group.
#[derive(Default)]
struct Truth {
    by_outlet: BTreeMap<String, i64>,
    by_month: BTreeMap<String, i64>,
    by_category: BTreeMap<String, i64>,
    by_tier: BTreeMap<String, i64>,
    sales_by_outlet: BTreeMap<String, i64>,
}

pub async fn run(customers: usize, runs: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (vault, operator, _, _) = super::temp_vault(dir.path()).await?;
    let mut outlets: Vec<OutletId> = Vec::new();
    for i in 0..OUTLETS {
        outlets.push(
            vault
                .directory()
                .create_outlet(operator.into(), &format!("Bench outlet {i}"))
                .await?,
        );
    }
    let t = Instant::now();
    let mut truth = Truth::default();
    let now = Timestamp::now().millis();
    let bar = indicatif::ProgressBar::new(customers as u64);
    bar.set_message("customers and purchases");
    let mut total_purchases = 0usize;
    for start in (0..customers).step_by(2_000) {
        let end = (start + 2_000).min(customers);
        let sealed = (start..end)
            .map(|n| {
                let mut c = super::generated(n);
                c.outlet_id = Some(outlets[n % OUTLETS]);
                vault.records().seal_new_customer(&c, Timestamp::now())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sealed = vault.records().insert_sealed(operator, sealed).await?;
        let mut items = Vec::new();
        for (i, s) in sealed.iter().enumerate() {
            let n = start + i;
            let outlet = outlets[n % OUTLETS];
            let bought = purchases_of(n);
            *truth
                .by_tier
                .entry(steward_domain::segment::tier_of(bought.len()).to_owned())
                .or_default() += 1;
            for (category, days, amount) in bought {
                let at = now - days * DAY_MS;
                *truth.by_outlet.entry(outlet.to_string()).or_default() += 1;
                *truth
                    .by_month
                    .entry(steward_domain::analytics::month_of(at))
                    .or_default() += 1;
                *truth.by_category.entry(category.to_owned()).or_default() += 1;
                *truth.sales_by_outlet.entry(outlet.to_string()).or_default() +=
                    amount.clamp(0, 500_000);
                items.push((
                    *s,
                    Activity::Purchase(NewPurchase {
                        item: "Bench item".into(),
                        category: category.into(),
                        outlet_id: outlet,
                        seller_id: None,
                        amount_minor: amount,
                        currency: "CHF".into(),
                        occurred_at: Timestamp(at),
                    }),
                ));
            }
        }
        total_purchases += items.len();
        vault.records().add_activity(operator, &items).await?;
        bar.set_position(end as u64);
    }
    bar.finish_and_clear();
    vault.audit().flush().await?;
    eprintln!(
        "Loaded {customers} customers, {total_purchases} purchases in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    let analyst = super::segment::client(&vault, operator, Role::Analyst).await?;
    vault.analytics().set_analytics_budget(operator, 1000.0);
    let cases: [(&str, Value, &BTreeMap<String, i64>, bool); 5] = [
        (
            "count of purchases by outlet",
            json!({"metric": "count", "of": "purchases", "group_by": ["outlet"]}),
            &truth.by_outlet,
            true,
        ),
        (
            "count of purchases by month (partition selection)",
            json!({"metric": "count", "of": "purchases", "group_by": ["month"]}),
            &truth.by_month,
            true,
        ),
        (
            "count of purchases by category (partition selection)",
            json!({"metric": "count", "of": "purchases", "group_by": ["category"]}),
            &truth.by_category,
            true,
        ),
        (
            "count of customers by tier",
            json!({"metric": "count", "of": "customers", "group_by": ["tier"]}),
            &truth.by_tier,
            true,
        ),
        (
            "sum of purchase amounts by outlet, bounds [0, 500000]",
            json!({"metric": "sum", "of": "purchases", "group_by": ["outlet"], "bounds": [0, 500_000]}),
            &truth.sales_by_outlet,
            false,
        ),
    ];
    let mut count_errors = Vec::new();
    for (what, body, exact, is_count) in cases {
        let mut times = Vec::new();
        let mut errors = Vec::new();
        for r in 0..runs {
            // A slightly different ε each run: the same body again would be the stored answer.
            let mut q = body.clone();
            q["epsilon"] = json!(1.0 + r as f64 / 1000.0);
            let input: QueryInput = serde_json::from_value(q)?;
            let t = Instant::now();
            let answer = vault
                .analytics()
                .analytics_query(&analyst, "analytics", input)
                .await?;
            times.push(t.elapsed().as_secs_f64());
            for row in answer.rows {
                let key = row.group.values().next().cloned().unwrap_or_default();
                let Some(&truth) = exact.get(&key) else {
                    continue;
                };
                if truth >= 1_000 {
                    errors.push((row.value - truth).abs() as f64 / truth as f64);
                }
            }
        }
        times.sort_by(f64::total_cmp);
        errors.sort_by(f64::total_cmp);
        let median_error = errors.get(errors.len() / 2).copied().unwrap_or(f64::NAN);
        if is_count {
            count_errors.extend(errors.iter().copied());
        }
        emit!(
            "| analytics, {customers} customers, {total_purchases} purchases: {what}, ε = 1 | median {:.2} s, slowest {:.2} s ({runs} runs) | median relative error {:.4} % over {} groups ≥ 1,000 |",
            times[times.len() / 2],
            times[times.len() - 1],
            median_error * 100.0,
            errors.len()
        );
    }
    count_errors.sort_by(f64::total_cmp);
    emit!(
        "| analytics: median relative error of all counts of groups ≥ 1,000 at ε = 1 | {:.4} % (target < 1 %) | {} groups |",
        count_errors
            .get(count_errors.len() / 2)
            .copied()
            .unwrap_or(f64::NAN)
            * 100.0,
        count_errors.len()
    );
    Ok(())
}
