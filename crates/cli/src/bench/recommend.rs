//! `steward bench recommend` (issue 20, point 5): builds personalisation's model from a
//! generated history with a planted structure (customers buy mostly within one "taste" of ten
//! items, plus popular items everyone buys), holds out each customer's last purchase, and
//! reports hit-rate@5 on the held-out purchases against a most-popular baseline computed in the
//! same run from the same purchases, the model's build time, and the latency of a
//! recommendation through the service (decided, audited, purchases opened), in process.

use std::collections::HashMap;
use std::time::Instant;

use steward_domain::{CustomerId, NewPurchase, OutletId, Purpose, Role, Timestamp};
use steward_service::{Access, Activity};

/// Items of one taste.
const TASTE: usize = 10;
/// Items everyone buys now and then.
const POPULAR: usize = 20;

/// A deterministic stream of numbers for customer `n` (SplitMix64 of `n` and `k`: every bit
/// depends on both, so no purchase position is biased for any group of customers).
fn mix(n: usize, k: usize) -> u64 {
    let mut z = ((n as u64) << 16 | k as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The items customer `n` buys, in order: mostly from their taste, one in four popular. The
/// last one is held out.
fn history(n: usize, per_customer: usize, tastes: usize) -> Vec<(String, &'static str)> {
    let taste = n % tastes;
    (0..per_customer)
        .map(|k| {
            let m = mix(n, k);
            if m.is_multiple_of(4) {
                (
                    format!("Popular item {}", (m >> 3) as usize % POPULAR),
                    "popular",
                )
            } else {
                let i = (m >> 3) as usize % TASTE;
                (format!("Taste {taste} item {i}"), "taste")
            }
        })
        .collect()
}

/// Percentile `p` (0..1) of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// Loads the history (all but each customer's last purchase) for consenting customers, builds
/// the model, and measures.
pub async fn run(customers: usize, per_customer: usize, sample: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (vault, operator, _, _) = super::temp_vault(dir.path()).await?;
    let outlet: OutletId = vault
        .directory()
        .create_outlet(operator.into(), "Bench outlet")
        .await?;
    let tastes = (customers / 500).max(1);
    let t = Instant::now();
    let bar = indicatif::ProgressBar::new(customers as u64);
    let mut ids: Vec<CustomerId> = Vec::with_capacity(customers);
    let mut popularity: HashMap<String, u64> = HashMap::new();
    let now = Timestamp::now().millis();
    for start in (0..customers).step_by(2_000) {
        let end = (start + 2_000).min(customers);
        let batch = super::insert_generated(&vault, operator, outlet, start..end).await?;
        let mut items = Vec::new();
        for (i, id) in batch.iter().enumerate() {
            let h = history(start + i, per_customer, tastes);
            for (k, (item, category)) in h.iter().take(per_customer - 1).enumerate() {
                *popularity.entry(item.clone()).or_default() += 1;
                items.push((
                    *id,
                    Activity::Purchase(NewPurchase {
                        item: item.clone(),
                        category: (*category).into(),
                        outlet_id: outlet,
                        seller_id: None,
                        amount_minor: 1_000,
                        currency: "CHF".into(),
                        occurred_at: Timestamp(now - (per_customer - k) as i64 * 86_400_000),
                    }),
                ));
            }
            ids.push(*id);
        }
        vault.records().add_activity(operator, &items).await?;
        bar.set_position(end as u64);
    }
    bar.finish_and_clear();
    let support = super::segment::client(&vault, operator, Role::SupportAgent).await?;
    super::segment::consents(&vault, &support, &ids).await?;
    eprintln!(
        "Loaded {customers} consenting customers, {} purchases (one more each held out) in {:.0} s",
        customers * (per_customer - 1),
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let size = vault.personalisation().build_recommender(operator).await?;
    let build = t.elapsed().as_secs_f64();

    // The sample reads thousands of customers: lift the hourly limit on distinct customers.
    vault
        .records()
        .set_bulk_limit(operator, Role::Marketing, None);
    let marketing = super::segment::client(&vault, operator, Role::Marketing).await?;
    let purpose: std::sync::Arc<Purpose> = vault
        .purposes()
        .get("purpose", "personalisation")
        .map_err(|e| anyhow::anyhow!("{}", e.reason))?;
    let access = Access {
        principal: &marketing,
        purpose: &purpose,
        reason: None,
        break_glass: false,
    };
    let mut ranked: Vec<(&String, &u64)> = popularity.iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let step = (customers / sample.max(1)).max(1);
    let (mut hits, mut baseline_hits, mut asked) = (0u64, 0u64, 0u64);
    let mut times = Vec::new();
    for n in (0..customers).step_by(step).take(sample) {
        let h = history(n, per_customer, tastes);
        let held_out = &h[per_customer - 1].0;
        let owned: Vec<&String> = h[..per_customer - 1].iter().map(|(i, _)| i).collect();
        let t = Instant::now();
        let recs = vault
            .personalisation()
            .recommendations(&access, ids[n], 5)
            .await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        asked += 1;
        if recs.iter().any(|r| &r.item == held_out) {
            hits += 1;
        }
        let popular: Vec<&String> = ranked
            .iter()
            .map(|(i, _)| *i)
            .filter(|i| !owned.contains(i))
            .take(5)
            .collect();
        if popular.contains(&held_out) {
            baseline_hits += 1;
        }
    }
    times.sort_by(f64::total_cmp);
    let rate = |h: u64| 100.0 * h as f64 / asked.max(1) as f64;
    emit!(
        "| recommend, {customers} customers, {} purchases ({tastes} planted tastes), model of {} customers and {} items | build {build:.1} s | hit-rate@5 {:.1} % vs most-popular {:.1} % ({asked} held-out purchases) | p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms per recommendation (service call, in process) |",
        customers * (per_customer - 1),
        size.customers,
        size.items,
        rate(hits),
        rate(baseline_hits),
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times.last().copied().unwrap_or(0.0)
    );
    Ok(())
}
