//! Issue 15, what must be true 2: no write widens what its author can read. For random sequences
//! of the writes outlet staff may attempt on another outlet's customer — profile changes, e-mail
//! changes, interactions, purchases at their own and at the customer's outlet, consent grants and
//! withdrawals, data-subject requests — every read decision the author gets afterwards equals the
//! one before, except for the records the writes created (a purchase made at the author's outlet,
//! and the purchase abstraction, which counts it). Cases are drawn by proptest's deterministic
//! runner (no shrinking: a failure prints the whole sequence).

use axum::http::StatusCode;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

use crate::access::{World, call, world};
use crate::support::{TestDb, backend_tests};

backend_tests!(no_write_widens_its_authors_reads);

/// One write an outlet-B staff member may try on Carla (registered at outlet A).
#[derive(Debug, Clone)]
enum Write {
    Rename,
    NewEmail,
    NewPhone,
    Interaction,
    PurchaseHere,
    PurchaseThere,
    Consent(&'static str, &'static str),
    Request(&'static str),
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![
        Just(Write::Rename),
        Just(Write::NewEmail),
        Just(Write::NewPhone),
        Just(Write::Interaction),
        Just(Write::PurchaseHere),
        Just(Write::PurchaseThere),
        prop::sample::select(vec!["marketing_email", "personalisation"]).prop_flat_map(|p| {
            prop::sample::select(vec!["grant", "withdraw"]).prop_map(move |a| Write::Consent(p, a))
        }),
        prop::sample::select(vec!["access", "rectification", "restriction", "erasure"])
            .prop_map(Write::Request),
    ]
}

/// Every read the author may ask of Carla, by path, with the answer (times left out).
async fn reads(w: &World, who: &str) -> Vec<(String, StatusCode, Value)> {
    let id = &w.customer;
    let mut out = vec![];
    for purpose in [
        "service",
        "order_fulfilment",
        "allocation",
        "fraud_prevention",
        "marketing_email",
    ] {
        for path in [
            format!("/v1/customers/{id}?purpose={purpose}"),
            format!(
                "/v1/customers/{id}?purpose={purpose}&reason=a%20reason%20of%20twenty%20visible"
            ),
            format!("/v1/customers/{id}/purchases?purpose={purpose}"),
            format!("/v1/customers/{id}/interactions?purpose={purpose}"),
        ] {
            let (s, mut v) = call(&w.router, who, "GET", &path, None, false).await;
            if let Some(o) = v.as_object_mut() {
                o.remove("updated_at");
            }
            out.push((path, s, v));
        }
    }
    out
}

/// Applies one write as `who` (working at outlet `here`, whose staff id is `me`); returns the id
/// of a purchase it recorded, if it did.
async fn apply(w: &World, who: &str, here: &str, me: &str, write: &Write) -> Option<String> {
    let id = &w.customer;
    let (method, path, body) = match write {
        Write::Rename => (
            "PATCH",
            format!("/v1/customers/{id}"),
            json!({"name": "Renamed"}),
        ),
        Write::NewEmail => (
            "PATCH",
            format!("/v1/customers/{id}"),
            json!({"email": "author@example.net"}),
        ),
        Write::NewPhone => (
            "PATCH",
            format!("/v1/customers/{id}"),
            json!({"phone": "+41 44 555 0199"}),
        ),
        Write::Interaction => (
            "POST",
            format!("/v1/customers/{id}/interactions"),
            json!({"channel": "in_store", "text": "asked about straps", "source": "till"}),
        ),
        Write::PurchaseHere | Write::PurchaseThere => {
            let outlet = if matches!(write, Write::PurchaseHere) {
                here.to_owned()
            } else {
                w.outlet_a.to_string()
            };
            (
                "POST",
                format!("/v1/customers/{id}/purchases"),
                json!({"item": "Strap adjustment", "category": "service", "outlet_id": outlet, "seller_id": me, "amount_minor": 0, "currency": "CHF"}),
            )
        }
        Write::Consent(purpose, action) => (
            "POST",
            format!("/v1/customers/{id}/consents"),
            json!({"purpose": purpose, "action": action, "source": "in_store"}),
        ),
        Write::Request(kind) => (
            "POST",
            "/v1/requests".to_owned(),
            json!({"type": kind, "customer_id": id, "corrections": if *kind == "rectification" { json!({"name": "Renamed"}) } else { Value::Null }}),
        ),
    };
    let (s, v) = call(&w.router, who, method, &path, Some(body), false).await;
    assert!(s.as_u16() < 500, "{write:?}: {s} {v}");
    (s == StatusCode::CREATED && matches!(write, Write::PurchaseHere | Write::PurchaseThere))
        .then(|| v["id"].as_str().unwrap_or_default().to_owned())
}

/// A read's answer without what the writes may legitimately add: purchases they recorded, and
/// the abstraction (which counts them).
fn without(v: &Value, created: &[String]) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("purchase_summary");
        o.remove("summary");
        if let Some(Value::Array(items)) = o.get_mut("items") {
            items.retain(|i| !created.iter().any(|c| i["id"] == json!(c)));
        }
    }
    v
}

async fn no_write_widens_its_authors_reads(db: TestDb) {
    let mut runner = TestRunner::deterministic();
    let cases: Vec<Vec<Write>> = (0..6)
        .map(|_| {
            prop::collection::vec(write(), 1..6)
                .new_tree(&mut runner)
                .unwrap()
                .current()
        })
        .collect();
    let w = world(&db).await;
    let staff = w
        .vault
        .directory()
        .list_staff(crate::support::op().into())
        .await
        .unwrap();
    let outlets = w
        .vault
        .directory()
        .list_outlets(crate::support::op().into())
        .await
        .unwrap();
    let b = outlets
        .iter()
        .find(|o| o.name == "Outlet B")
        .unwrap()
        .id
        .to_string();
    let me = |n: &str| staff.iter().find(|s| s.name == n).unwrap().id.to_string();
    // The associate and the manager of outlet B, one after the other on the same customer, so
    // that writes accumulate as they would over a day.
    for (case, writes) in cases.iter().enumerate() {
        let (who, seller) = if case % 2 == 0 {
            (&w.bob, me("Bob Seller"))
        } else {
            (&w.mia, me("Mia Manager"))
        };
        let before = reads(&w, who).await;
        let mut created = vec![];
        for write in writes {
            created.extend(apply(&w, who, &b, &seller, write).await);
        }
        let after = reads(&w, who).await;
        for ((path, s0, v0), (_, s1, v1)) in before.iter().zip(&after) {
            assert_eq!(
                s0, s1,
                "case {case} {writes:?}: {path} went from {v0} to {v1}"
            );
            assert_eq!(
                without(v0, &created),
                without(v1, &created),
                "case {case} {writes:?}: {path} widened"
            );
        }
    }
}
