//! Analytics without identities (issue 21), through the API on both backends: noisy answers
//! with their intervals, the budget (refusal before release, repeat at no cost, two concurrent
//! releases never both spending the last of it), contribution bounding, partition selection
//! hiding a group of one, restricted customers left out, refusals by role and purpose, bad
//! input as problem+json, and an audit entry per release that carries no result.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use steward_domain::{
    InteractionInput, OutletId, PurchaseInput, Role, Timestamp, analytics::QueryInput,
};
use steward_service::{Actor, TokenOwner};

use crate::support::json_call as call;
use crate::support::{TestDb, backend_tests, operator_customer};

backend_tests!(analysts_learn_totals_not_customers);

/// The rows of an answer as `{group values joined by '|': (value, ci95)}`.
fn rows(answer: &Value) -> BTreeMap<String, (i64, u64)> {
    answer["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|r| {
            let group: Vec<&str> = r["group"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_str().unwrap())
                .collect();
            (
                group.join("|"),
                (r["value"].as_i64().unwrap(), r["ci95"].as_u64().unwrap()),
            )
        })
        .collect()
}

async fn analysts_learn_totals_not_customers(db: TestDb) {
    let (vault, op, store) = db.open().await;
    let a = vault
        .directory()
        .create_outlet(op.into(), "Outlet A")
        .await
        .unwrap();
    let b = vault
        .directory()
        .create_outlet(op.into(), "Outlet B")
        .await
        .unwrap();
    let buy = async |outlet: OutletId, n: usize, category: &str, amount: i64| {
        let id = operator_customer(
            &vault,
            op,
            json!({"name": "Some Buyer", "outlet_id": outlet}),
        )
        .await;
        for _ in 0..n {
            let p: PurchaseInput = serde_json::from_value(json!({"item": "Thing", "category": category, "outlet_id": outlet, "amount_minor": amount, "currency": "CHF"})).unwrap();
            vault
                .add_purchase(
                    Actor::Operator(op),
                    id,
                    &p.validate(Timestamp::now()).unwrap(),
                )
                .await
                .unwrap();
        }
        id
    };
    // Outlet A: 30 customers with one watch each (CHF 10.00), and one with 40 cheap watches.
    // Outlet B: 12 customers with three rings each, and one lone brooch buyer.
    for _ in 0..30 {
        buy(a, 1, "watches", 1000).await;
    }
    let heavy = buy(a, 40, "watches", 100).await;
    let mut ring_buyers = Vec::new();
    for _ in 0..12 {
        ring_buyers.push(buy(b, 3, "rings", 500).await);
    }
    buy(b, 1, "brooches", 200).await;
    // A restricted customer is in no aggregate (Art. 18).
    let restricted = buy(a, 5, "watches", 1000).await;
    assert!(store.set_restricted(restricted, true, &[]).await.unwrap());
    // Two e-mails and a call from the ring buyers.
    for (id, channel) in [
        (ring_buyers[0], "email"),
        (ring_buyers[1], "email"),
        (ring_buyers[2], "phone"),
    ] {
        let i: InteractionInput = serde_json::from_value(
            json!({"channel": channel, "text": "Asked about sizes", "source": "helpdesk"}),
        )
        .unwrap();
        vault
            .records()
            .add_interaction(
                Actor::Operator(op),
                id,
                &i.validate(Timestamp::now()).unwrap(),
            )
            .await
            .unwrap();
    }

    let app = steward_api::router(vault.clone());
    let token = async |role| crate::access::token(&vault, TokenOwner::Role(role)).await;
    let (analyst, dpo, marketing, support) = (
        token(Role::Analyst).await,
        token(Role::Dpo).await,
        token(Role::Marketing).await,
        token(Role::SupportAgent).await,
    );
    let q = async |token: &str, body: Value| {
        call(
            &app,
            token,
            "POST",
            "/v1/analytics/queries?purpose=analytics",
            Some(body),
            &[],
        )
        .await
    };

    // A whole budget to begin with.
    let (s, budget) = call(
        &app,
        &analyst,
        "GET",
        "/v1/analytics/budget?purpose=analytics",
        None,
        &[],
    )
    .await;
    assert_eq!(s, 200, "{budget}");
    assert_eq!(
        (
            budget["epsilon_spent"].as_f64(),
            budget["epsilon_left"].as_f64()
        ),
        (Some(0.0), Some(1.0))
    );
    assert!(budget["window_ends_at"].as_str().is_some(), "{budget}");

    // Purchases by outlet: every outlet is a row, each with its interval; half the budget spent.
    let by_outlet =
        json!({"metric": "count", "of": "purchases", "group_by": ["outlet"], "epsilon": 0.5});
    let (s, first) = q(&analyst, by_outlet.clone()).await;
    assert_eq!(s, 200, "{first}");
    let first_rows = rows(&first);
    assert_eq!(first_rows.len(), 2, "{first}");
    let (value_a, ci_a) = first_rows[&a.to_string()];
    // 30 watches + 10 of the heavy buyer's 40 (C = 10); the interval is the mechanism's.
    // The noise has scale C/ε = 20: beyond ±200 with probability 4·10⁻⁵ (±60 is only the 95 %
    // interval, which the value leaves one time in twenty).
    assert!((value_a - 40).abs() <= 200, "{first}");
    assert_eq!(
        ci_a, 60,
        "scale C/ε = 20: P(|X| > k) ≤ 0.05 first at k = 60"
    );
    assert_eq!(first["epsilon_spent"].as_f64(), Some(0.5));
    assert_eq!(first["budget_left"].as_f64(), Some(0.5));

    // Asked again: the same answer, nothing spent, so repeating cannot average the noise away.
    let (s, again) = q(&analyst, by_outlet.clone()).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(rows(&again), first_rows);
    assert_eq!(again["epsilon_spent"].as_f64(), Some(0.0));
    assert_eq!(again["budget_left"].as_f64(), Some(0.5));

    // More than is left: refused before any release, naming the budget.
    let (s, refused) = q(
        &analyst,
        json!({"metric": "count", "of": "customers", "epsilon": 0.6}),
    )
    .await;
    assert_eq!(s, 403, "{refused}");
    assert_eq!(refused["type"], "/problems/privacy-budget", "{refused}");
    assert_eq!(refused["field"], "epsilon", "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().contains("0.5 left"),
        "{refused}"
    );
    assert!(refused.get("rows").is_none());

    // Two releases at once that together exceed what is left: exactly one is charged.
    let (one, two) = tokio::join!(
        q(
            &analyst,
            json!({"metric": "count", "of": "customers", "epsilon": 0.3})
        ),
        q(
            &analyst,
            json!({"metric": "count", "of": "interactions", "epsilon": 0.3})
        ),
    );
    let mut statuses = [one.0, two.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 403], "{} {}", one.1, two.1);
    let (_, budget) = call(
        &app,
        &analyst,
        "GET",
        "/v1/analytics/budget?purpose=analytics",
        None,
        &[],
    )
    .await;
    assert_eq!(budget["epsilon_spent"].as_f64(), Some(0.8), "{budget}");

    // Bad input names its field and spends nothing.
    for (body, field) in [
        (
            json!({"metric": "count", "of": "purchases", "epsilon": 0}),
            "epsilon",
        ),
        (
            json!({"metric": "count", "of": "purchases", "epsilon": 5}),
            "epsilon",
        ),
        (
            json!({"metric": "count", "of": "purchases", "group_by": ["postcode"], "epsilon": 0.1}),
            "group_by",
        ),
        (
            json!({"metric": "count", "of": "customers", "group_by": ["month"], "epsilon": 0.1}),
            "group_by",
        ),
        (
            json!({"metric": "sum", "of": "purchases", "bounds": [100, 0], "epsilon": 0.1}),
            "bounds",
        ),
        (
            json!({"metric": "count", "of": "purchases", "filter": {"month": "2026-13"}, "epsilon": 0.1}),
            "filter.month",
        ),
        (
            json!({"metric": "count", "of": "purchases", "filter": {"segment": steward_domain::SegmentId::new()}, "epsilon": 0.1}),
            "filter.segment",
        ),
    ] {
        let (s, p) = q(&analyst, body.clone()).await;
        assert!(s == 400 || s == 422 || s == 403, "{body}: {s} {p}");
        assert_eq!(
            p["field"]
                .as_str()
                .map(|f| f.split(['.', '[']).next().unwrap()),
            Some(field.split('.').next().unwrap()),
            "{body}: {p}"
        );
    }
    let (_, budget) = call(
        &app,
        &analyst,
        "GET",
        "/v1/analytics/budget?purpose=analytics",
        None,
        &[],
    )
    .await;
    assert_eq!(budget["epsilon_spent"].as_f64(), Some(0.8), "{budget}");

    // Others may not: marketing and support agents cannot declare analytics; an analyst cannot
    // declare another purpose.
    for t in [&marketing, &support] {
        let (s, p) = q(t, by_outlet.clone()).await;
        assert_eq!((s, p["field"].as_str()), (403, Some("purpose")), "{p}");
    }
    let (s, p) = call(
        &app,
        &analyst,
        "POST",
        "/v1/analytics/queries?purpose=service",
        Some(by_outlet.clone()),
        &[],
    )
    .await;
    assert_eq!((s, p["field"].as_str()), (403, Some("purpose")), "{p}");

    // With a budget so large the noise is negligible (ε = 1000: scale C/1000), the exact
    // mechanics show: contribution bounding, partition selection, restriction, clamping.
    vault.analytics().set_analytics_budget(op, 1_000_000.0);
    let exact = async |body: Value| {
        let (s, v) = q(&dpo, body.clone()).await;
        assert_eq!(s, 200, "{body}: {v}");
        rows(&v)
    };
    let by_category = exact(
        json!({"metric": "count", "of": "purchases", "group_by": ["category"], "epsilon": 1000}),
    )
    .await;
    // Watches: 30 + 10 of the heavy buyer's 40; the restricted customer's five not at all.
    assert_eq!(
        by_category.get("watches").map(|r| r.0),
        Some(40),
        "{by_category:?}"
    );
    assert_eq!(
        by_category.get("rings").map(|r| r.0),
        Some(36),
        "{by_category:?}"
    );
    assert!(
        !by_category.contains_key("brooches"),
        "one customer's group is never released: {by_category:?}"
    );
    // With C = 2 the heavy buyer adds two.
    let bounded = exact(json!({"metric": "count", "of": "purchases", "group_by": ["category"], "contributions": 2, "epsilon": 1000})).await;
    assert_eq!(bounded.get("watches").map(|r| r.0), Some(32), "{bounded:?}");
    let _ = heavy;
    // Sums clamp each amount: A = 30 × 600 + 10 × 100; B = 36 × 500 + 200.
    let sums = exact(json!({"metric": "sum", "of": "purchases", "group_by": ["outlet"], "bounds": [0, 600], "currency": "CHF", "epsilon": 1000})).await;
    // Their noise has scale C·600/1000 = 6: within 60 but for a chance of 10⁻⁴.
    assert!((sums[&a.to_string()].0 - 19_000).abs() <= 60, "{sums:?}");
    assert!((sums[&b.to_string()].0 - 18_200).abs() <= 60, "{sums:?}");
    // Customers by tier: every tier is a row; the restricted customer is not counted.
    let tiers =
        exact(json!({"metric": "count", "of": "customers", "group_by": ["tier"], "epsilon": 1000}))
            .await;
    assert_eq!(tiers.len(), 4, "{tiers:?}");
    assert_eq!(
        (
            tiers["bronze"].0,
            tiers["silver"].0,
            tiers["gold"].0,
            tiers["none"].0
        ),
        (31, 12, 1, 0),
        "{tiers:?}"
    );
    // Interactions by channel, filtered to outlet B.
    let channels = exact(json!({"metric": "count", "of": "interactions", "group_by": ["channel"], "filter": {"outlet": b}, "epsilon": 1000})).await;
    assert_eq!(
        (channels["email"].0, channels["phone"].0, channels["web"].0),
        (2, 1, 0),
        "{channels:?}"
    );

    // A category the DPO marks as revealing health is in no aggregate: not grouped, not summed.
    let (s, v) = call(
        &app,
        &dpo,
        "PUT",
        "/v1/purchase-categories/rings",
        Some(json!({"data_category": "user.health_and_medical"})),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let marked = exact(
        json!({"metric": "count", "of": "purchases", "group_by": ["category"], "epsilon": 999}),
    )
    .await;
    assert!(!marked.contains_key("rings"), "{marked:?}");
    assert_eq!(marked.get("watches").map(|r| r.0), Some(40), "{marked:?}");

    // The dashboard's releases, and the DPO's view of everyone's spending.
    let (s, mine) = call(
        &app,
        &analyst,
        "GET",
        "/v1/analytics/releases?purpose=analytics",
        None,
        &[],
    )
    .await;
    assert_eq!(s, 200, "{mine}");
    // Releases are shared under the purpose: the analyst's two, the DPO's, none for a repeat.
    let list = mine.as_array().unwrap();
    let outlet_releases = list
        .iter()
        .filter(|r| r["query"]["group_by"] == json!(["outlet"]) && r["query"]["metric"] == "count")
        .count();
    assert_eq!(outlet_releases, 1, "the repeat is not a release: {mine}");
    // Another analyst asking the same question gets the same answer, at no cost: two people
    // cannot average the noise away either.
    let (s, same) = q(&dpo, by_outlet.clone()).await;
    assert_eq!(s, 200, "{same}");
    assert_eq!(rows(&same), first_rows);
    assert_eq!(same["epsilon_spent"].as_f64(), Some(0.0));
    let (s, all) = call(&app, &dpo, "GET", "/v1/analytics/budgets", None, &[]).await;
    assert_eq!(s, 200, "{all}");
    let spent: Vec<f64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["epsilon_spent"].as_f64().unwrap())
        .collect();
    assert!(spent.contains(&0.8), "{all}");
    let (s, _) = call(&app, &analyst, "GET", "/v1/analytics/budgets", None, &[]).await;
    assert_eq!(s, 403, "only the DPO sees everyone's budget");

    // Every release is an audit entry with the query's shape and ε, and no result.
    vault.audit().flush().await.unwrap();
    let size = store.audit_size().await.unwrap();
    let mut releases = Vec::new();
    let mut start = 0;
    while start < size {
        let end = (start + 1000).min(size);
        let (s, page) = call(
            &app,
            &dpo,
            "GET",
            &format!("/v1/audit/entries?start={start}&end={end}"),
            None,
            &[],
        )
        .await;
        assert_eq!(s, 200, "{page}");
        releases.extend(
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["action"] == "analytics_release")
                .cloned(),
        );
        start = end;
    }
    let done: Vec<&Value> = releases.iter().filter(|e| e["outcome"] == "done").collect();
    assert!(done.len() >= 7, "{releases:?}");
    assert!(releases.iter().any(|e| e["outcome"] == "repeat"));
    assert!(releases.iter().any(|e| e["outcome"] == "over_budget"));
    for e in &done {
        assert_eq!(e["purpose"], "analytics");
        assert!(
            e["categories"]["query"]
                .as_str()
                .unwrap()
                .contains("\"metric\""),
            "{e}"
        );
        assert!(e["categories"]["epsilon"].as_str().is_some(), "{e}");
        assert!(e["categories"]["delta"].as_str().is_some(), "{e}");
        let text = e.to_string();
        assert!(
            !text.contains("\"rows\"") && !text.contains("\"value\""),
            "no result in the log: {e}"
        );
    }
    // The released answers the store keeps are the answers, nothing about a customer.
    let input: QueryInput = serde_json::from_value(by_outlet).unwrap();
    assert!(input.validate().is_ok());
}
