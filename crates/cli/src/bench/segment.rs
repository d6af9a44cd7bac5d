//! `steward bench segment`: sizing segments over a large customer base (issue 18: 1,000,000
//! customers with 3,000,000 purchases, target ≤ 10 s on two cores), through the service as the
//! API calls it (the policy decided per customer, sealed amounts opened, one audit entry), beside
//! the naive count a team would otherwise write: plaintext rows and one SQL query, same rows,
//! same run. SQLite.

use std::time::Instant;

use serde_json::json;
use sqlx::{AnyPool, AssertSqlSafe};
use steward_domain::{
    ConsentAction, ConsentInput, ConsentSource, CustomerId, NewPurchase, OutletId, Role, SegmentId,
    Timestamp,
};
use steward_service::{Activity, Principal, TokenOwner, Vault};

const CATEGORIES: [&str; 6] = ["watch", "strap", "jewellery", "pen", "wallet", "service"];
const DAY_MS: i64 = 86_400_000;

/// Purchase `k` of customer `n`: a category, days ago (within three years) and an amount in
/// CHF minor units, deterministic and spread.
fn purchase(n: usize, k: usize) -> (&'static str, i64, i64) {
    let mix = (n as u64 * 3 + k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16;
    let category = CATEGORIES[(mix % CATEGORIES.len() as u64) as usize];
    let days = ((mix >> 8) % 1095) as i64;
    let amount = 5_000 + ((mix >> 20) % 400_000) as i64;
    (category, days, amount)
}

pub(super) async fn client(
    vault: &Vault,
    operator: steward_service::Operator,
    role: Role,
) -> anyhow::Result<Principal> {
    let (_, token) = vault
        .identity()
        .create_token(operator, "bench", TokenOwner::Role(role))
        .await?;
    vault
        .identity()
        .authenticate(&token)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the bench token does not authenticate"))
}

/// Loads `customers` customers with `per_customer` purchases each; every third consents to
/// personalisation. Returns the ids, and fills the plain tables of the baseline.
async fn load(
    vault: &Vault,
    operator: steward_service::Operator,
    outlet: OutletId,
    plain: &AnyPool,
    customers: usize,
    per_customer: usize,
) -> anyhow::Result<Vec<CustomerId>> {
    sqlx::query("CREATE TABLE plain_purchases (customer_id BLOB NOT NULL, category TEXT NOT NULL, occurred_at INTEGER NOT NULL, amount_minor INTEGER NOT NULL, currency TEXT NOT NULL) STRICT")
        .execute(plain)
        .await?;
    sqlx::query("CREATE TABLE plain_consents (customer_id BLOB NOT NULL, purpose TEXT NOT NULL, granted INTEGER NOT NULL) STRICT")
        .execute(plain)
        .await?;
    let bar = indicatif::ProgressBar::new(customers as u64);
    bar.set_message("customers and purchases");
    let now = Timestamp::now().millis();
    let mut ids = Vec::with_capacity(customers);
    for start in (0..customers).step_by(2_000) {
        let end = (start + 2_000).min(customers);
        let batch: Vec<CustomerId> =
            super::insert_generated(vault, operator, outlet, start..end).await?;
        let mut items = Vec::with_capacity(batch.len() * per_customer);
        let mut tx = plain.begin().await?;
        for (i, id) in batch.iter().enumerate() {
            for k in 0..per_customer {
                let (category, days, amount) = purchase(start + i, k);
                let at = now - days * DAY_MS;
                items.push((
                    *id,
                    Activity::Purchase(NewPurchase {
                        item: format!("Bench item {k}"),
                        category: category.into(),
                        outlet_id: outlet,
                        seller_id: None,
                        amount_minor: amount,
                        currency: "CHF".into(),
                        occurred_at: Timestamp(at),
                    }),
                ));
                sqlx::query("INSERT INTO plain_purchases VALUES (?, ?, ?, ?, 'CHF')")
                    .bind(id.as_bytes().to_vec())
                    .bind(category)
                    .bind(at)
                    .bind(amount)
                    .execute(&mut *tx)
                    .await?;
            }
            if (start + i) % 3 == 0 {
                sqlx::query("INSERT INTO plain_consents VALUES (?, 'personalisation', 1)")
                    .bind(id.as_bytes().to_vec())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        vault.records().add_activity(operator, &items).await?;
        ids.extend(batch);
        bar.set_position(end as u64);
    }
    bar.finish_and_clear();
    sqlx::query("CREATE INDEX plain_purchases_by_customer ON plain_purchases (customer_id)")
        .execute(plain)
        .await?;
    Ok(ids)
}

/// Records `chosen` customers' personalisation consent as support staff would, eight at a time.
pub(super) async fn consents(
    vault: &Vault,
    support: &Principal,
    chosen: &[CustomerId],
) -> anyhow::Result<()> {
    let bar = indicatif::ProgressBar::new(chosen.len() as u64);
    let mut tasks = Vec::new();
    for part in chosen.chunks(chosen.len().div_ceil(8).max(1)) {
        let (vault, support, part, bar) =
            (vault.clone(), support.clone(), part.to_vec(), bar.clone());
        tasks.push(tokio::spawn(async move {
            let grant = ConsentInput {
                purpose: "personalisation".into(),
                action: ConsentAction::Grant,
                source: ConsentSource::InStore,
            };
            for id in part {
                vault.record_consent(&support, id, &grant).await?;
                bar.inc(1);
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    bar.finish_and_clear();
    Ok(())
}

/// Sizes one segment `runs` times through the service: (median seconds, size).
async fn time_size(
    vault: &Vault,
    who: &Principal,
    segment: SegmentId,
    purpose: &str,
    runs: usize,
) -> anyhow::Result<(f64, String)> {
    let mut times = Vec::new();
    let mut size = String::new();
    for _ in 0..runs {
        let t = Instant::now();
        let v = vault.segments().segment_size(who, segment, purpose).await?;
        times.push(t.elapsed().as_secs_f64());
        size = v.size.to_string();
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], size))
}

/// The baseline's count, `runs` times: (median seconds, count).
async fn time_plain(plain: &AnyPool, sql: &str, runs: usize) -> anyhow::Result<(f64, i64)> {
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..runs {
        let t = Instant::now();
        n = sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
            .fetch_one(plain)
            .await?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], n))
}

/// Loads the data, then times three segments against their plaintext counts.
pub async fn run(customers: usize, per_customer: usize, runs: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (vault, operator, _, _) = super::temp_vault(dir.path()).await?;
    let outlet = vault
        .directory()
        .create_outlet(operator.into(), "Bench outlet")
        .await?;
    let plain = steward_store::sqlite::pool(&format!(
        "sqlite://{}",
        dir.path().join("plain.db").display()
    ))
    .await?;
    let t = Instant::now();
    let ids = load(&vault, operator, outlet, &plain, customers, per_customer).await?;
    let support = client(&vault, operator, Role::SupportAgent).await?;
    // Every third customer consents.
    let chosen: Vec<CustomerId> = ids.iter().step_by(3).copied().collect();
    consents(&vault, &support, &chosen).await?;
    vault.audit().flush().await?;
    eprintln!(
        "Loaded {customers} customers, {} purchases in {:.0} s",
        customers * per_customer,
        t.elapsed().as_secs_f64()
    );
    let marketing = client(&vault, operator, Role::Marketing).await?;
    let dpo = client(&vault, operator, Role::Dpo).await?;
    let since = Timestamp::now().millis() - 365 * DAY_MS;
    let cases = [
        (
            "watch buyers of the last year, personalisation (consent), marketing",
            json!({"purchased": {"category": "watch", "within_days": 365}}),
            &marketing,
            "personalisation",
            format!(
                "SELECT COUNT(DISTINCT p.customer_id) FROM plain_purchases p JOIN plain_consents c ON c.customer_id = p.customer_id AND c.purpose = 'personalisation' AND c.granted = 1 WHERE p.category = 'watch' AND p.occurred_at >= {since}"
            ),
        ),
        (
            "spent ≥ CHF 5,000 in the last year (amounts opened), order_fulfilment, DPO",
            json!({"spent": {"currency": "CHF", "min_minor": 500_000, "within_days": 365}}),
            &dpo,
            "order_fulfilment",
            format!(
                "SELECT COUNT(*) FROM (SELECT customer_id FROM plain_purchases WHERE occurred_at >= {since} AND currency = 'CHF' GROUP BY customer_id HAVING SUM(amount_minor) >= 500000)"
            ),
        ),
        (
            "every customer, order_fulfilment, DPO",
            json!({"all": []}),
            &dpo,
            "order_fulfilment",
            "SELECT COUNT(DISTINCT customer_id) FROM plain_purchases".to_owned(),
        ),
    ];
    for (what, rules, who, purpose, sql) in cases {
        let segment = vault.segments().create_segment(who, what, &rules).await?;
        let (steward, size) = time_size(&vault, who, segment.id, purpose, runs).await?;
        let (naive, count) = time_plain(&plain, &sql, runs).await?;
        emit!(
            "| segment size, {customers} customers, {} purchases: {what} | Steward {steward:.2} s (size {size}) | plaintext SQL {naive:.2} s (count {count}) | ratio {:.1} |",
            customers * per_customer,
            steward / naive
        );
    }
    Ok(())
}
