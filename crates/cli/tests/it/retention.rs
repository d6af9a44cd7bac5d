//! Retention through the binary, on both backends: `steward retention run --dry-run` reports,
//! `steward retention run` disposes of what no purpose still justifies, records each disposal,
//! and leaves a customer under legal hold alone.

use serde_json::Value;
use sqlx::Row;
use steward_domain::{Channel, CustomerId, NewCustomer, NewInteraction, NewPurchase, Timestamp};

use crate::support::{TestDb, backend_tests, run};

backend_tests!(retention_disposes_what_no_purpose_justifies);

const DAY: i64 = 86_400_000;

fn person(name: &str) -> NewCustomer {
    NewCustomer {
        name: Some(name.into()),
        ..Default::default()
    }
}

async fn age(db: &TestDb, sql: &str, days: i64, id: &[u8]) {
    let raw = db.raw().await;
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(Timestamp::now().millis() - days * DAY)
        .bind(id.to_vec())
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
}

async fn count(db: &TestDb, sql: &str, id: CustomerId) -> i64 {
    let raw = db.raw().await;
    let n = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(id.as_bytes().to_vec())
        .fetch_one(&raw)
        .await
        .unwrap()
        .get::<i64, _>(0);
    raw.close().await;
    n
}

async fn retention_disposes_what_no_purpose_justifies(db: TestDb) {
    let (v, op, _) = db.open().await;
    let outlet = v
        .directory()
        .create_outlet(op.into(), "Retention Outlet")
        .await
        .unwrap();
    let active = v
        .records()
        .create_customer(op.into(), &person("Active Ann"))
        .await
        .unwrap();
    let note = |text: &str| NewInteraction {
        channel: Channel::Email,
        text: text.into(),
        source: "test".into(),
        occurred_at: Timestamp::now(),
    };
    let old_note = v
        .records()
        .add_interaction(op.into(), active, &note("old"))
        .await
        .unwrap();
    v.records()
        .add_interaction(op.into(), active, &note("new"))
        .await
        .unwrap();
    let old_buy = v
        .add_purchase(
            op.into(),
            active,
            &NewPurchase {
                item: "Old Watch".into(),
                category: "watches".into(),
                outlet_id: outlet,
                seller_id: None,
                amount_minor: 100,
                currency: "EUR".into(),
                occurred_at: Timestamp::now(),
            },
        )
        .await
        .unwrap();
    let gone = v
        .records()
        .create_customer(op.into(), &person("Gone Gus"))
        .await
        .unwrap();
    let held = v
        .records()
        .create_customer(op.into(), &person("Held Hal"))
        .await
        .unwrap();
    v.erasures()
        .set_legal_hold(op.into(), held, Some("CASE-7"))
        .await
        .unwrap();
    v.audit().flush().await.unwrap();
    drop(v);

    // Past the longest purposes: messages 1,095 days (service), purchases and profiles 2,555.
    age(
        &db,
        "UPDATE interactions SET occurred_at = $1 WHERE id = $2",
        1100,
        old_note.0.as_bytes(),
    )
    .await;
    age(
        &db,
        "UPDATE purchases SET occurred_at = $1 WHERE id = $2",
        2600,
        old_buy.0.as_bytes(),
    )
    .await;
    for c in [gone, held] {
        age(
            &db,
            "UPDATE customers SET updated_at = $1 WHERE id = $2",
            2600,
            c.as_bytes(),
        )
        .await;
    }

    let (code, out, err) = run(&["retention", "run", "--dry-run"], &db);
    assert_eq!(code, 0, "{err}");
    let dry: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(disposed(&dry), [Some(1); 4], "{dry}");
    assert_eq!(dry["rules"][1]["justified_by"], "order_fulfilment");
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM interactions WHERE customer_id = $1",
            active
        )
        .await,
        2,
        "a dry run changes nothing"
    );

    let (code, out, err) = run(&["retention", "run"], &db);
    assert_eq!(code, 0, "{err}");
    let done: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(disposed(&done), [Some(1); 4], "{done}");
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM interactions WHERE customer_id = $1",
            active
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM purchases WHERE customer_id = $1",
            active
        )
        .await,
        0
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM customers WHERE id = $1", gone).await,
        0
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM data_keys WHERE customer_id = $1",
            held
        )
        .await,
        1
    );

    // Every disposal is on the record.
    let raw = db.raw_log().await;
    let leaves: Vec<Value> = sqlx::query("SELECT leaf FROM audit_entries WHERE action IN ('retention.dispose', 'erase') ORDER BY idx")
        .fetch_all(&raw)
        .await
        .unwrap()
        .iter()
        .map(|r| crate::support::leaf_json(&r.get::<Vec<u8>, _>(0)))
        .collect();
    raw.close().await;
    assert_eq!(leaves.len(), 3, "{leaves:?}");
    assert!(
        leaves
            .iter()
            .any(|l| l["categories"]["communications"] == "destroyed")
    );
    assert!(
        leaves
            .iter()
            .any(|l| l["categories"]["purchase_history"] == "destroyed")
    );
    let erase = leaves.iter().find(|l| l["action"] == "erase").unwrap();
    assert_eq!(erase["customer"], gone.to_string());
    assert!(
        erase["subject"].as_str().unwrap().contains("retention"),
        "{erase}"
    );
    assert_eq!(erase["principal"], "operator:retention");
}

/// A retention report's counts: interactions, purchases, customers, held.
fn disposed(report: &Value) -> [Option<i64>; 4] {
    ["interactions", "purchases", "customers", "held"].map(|k| report[k].as_i64())
}
