//! The blind index and each customer's list of their own entries (`lookup_owners`, issue 19)
//! change together: through creation, rectification, the start-up backfill of name buckets and
//! erasure, the list names exactly the customer's entries, so that a rectification or an
//! erasure deleting by the list leaves nothing behind. Both backends.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use serde_json::json;
use sqlx::Row;
use steward_domain::Role;
use steward_service::TokenOwner;

use crate::access::{call, new_customer, token};
use crate::support::{Kind, TestDb, backend_tests};

backend_tests!(the_list_of_a_customers_entries_matches_the_index);

type Entries = BTreeMap<Vec<u8>, BTreeSet<(String, Vec<u8>)>>;

/// Every customer's entries as the index holds them, and as their lists name them.
async fn both(db: &TestDb) -> (Entries, Entries) {
    let raw = db.raw().await;
    let mut index = Entries::new();
    for r in sqlx::query("SELECT customer_id, kind, mac FROM lookup_index")
        .fetch_all(&raw)
        .await
        .unwrap()
    {
        index
            .entry(r.get(0))
            .or_default()
            .insert((r.get(1), r.get(2)));
    }
    let mut listed = Entries::new();
    for r in sqlx::query("SELECT customer_id, entries FROM lookup_owners")
        .fetch_all(&raw)
        .await
        .unwrap()
    {
        let text: String = r.get(1);
        let set = listed.entry(r.get(0)).or_default();
        for e in text.split(';') {
            let (kind, hex) = e.split_once(':').unwrap();
            // Trailing zero digits are not listed.
            let hex = format!("{hex:0<32}");
            let mac: Vec<u8> = (0..16)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            assert!(set.insert((kind.to_owned(), mac)), "listed twice: {e}");
        }
    }
    raw.close().await;
    (index, listed)
}

fn id_bytes(id: &str) -> Vec<u8> {
    uuid::Uuid::parse_str(id).unwrap().as_bytes().to_vec()
}

async fn the_list_of_a_customers_entries_matches_the_index(db: TestDb) {
    let v = db.vault().await;
    let router = steward_api::router(v.clone());
    let support = token(&v, TokenOwner::Role(Role::SupportAgent)).await;
    let dpo = token(&v, TokenOwner::Role(Role::Dpo)).await;
    let ada = new_customer(
        &router,
        &support,
        json!({"name": "Ada Byron King", "email": "ada@example.com", "phone": "+44 20 7946 0101"}),
    )
    .await;
    let grace = new_customer(
        &router,
        &support,
        json!({"name": "Grace Hopper", "email": "grace@example.com"}),
    )
    .await;
    let edsger = new_customer(
        &router,
        &support,
        json!({"name": "Edsger Dijkstra", "email": "edsger@example.com"}),
    )
    .await;
    let linus = new_customer(
        &router,
        &support,
        json!({"name": "Linus Pauling", "email": "linus@example.com", "phone": "+44 20 7946 0102"}),
    )
    .await;
    let (index, listed) = both(&db).await;
    assert_eq!(index, listed, "after creation");
    assert_eq!(
        index[&id_bytes(&ada)].len(),
        8,
        "e-mail, phone, six buckets"
    );

    // The migration's statement makes the same lists from the index alone (as on upgrade).
    let migration = match db.kind {
        Kind::Sqlite => {
            include_str!("../../../store/migrations/sqlite/20261211000041_lookup_owners.sql")
        }
        Kind::Postgres => {
            include_str!("../../../store/migrations/postgres/20261211000041_lookup_owners.sql")
        }
    };
    let end = "GROUP BY customer_id";
    let from = migration.find("INSERT INTO lookup_owners").unwrap();
    let to = migration.find(end).unwrap() + end.len();
    let raw = db.raw().await;
    sqlx::query("DELETE FROM lookup_owners")
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(&migration[from..to]))
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    assert_eq!(
        both(&db).await,
        (index.clone(), listed),
        "rebuilt by the migration"
    );

    // Rectified: the old name's buckets go, the new name's are listed. (A new e-mail address
    // waits for its confirmation: the name is what changes at once.)
    let before = index[&id_bytes(&ada)].clone();
    let (s, p) = call(
        &router,
        &support,
        "PATCH",
        &format!("/v1/customers/{ada}"),
        Some(json!({"name": "Augusta Lovelace"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{p}");
    let (index, listed) = both(&db).await;
    assert_eq!(index, listed, "after rectification");
    let after = &index[&id_bytes(&ada)];
    assert_eq!(after.len(), 8);
    assert_ne!(&before, after, "the buckets follow the name");
    let (s, page) = call(
        &router,
        &support,
        "GET",
        "/v1/customers?purpose=service&q=byron",
        None,
        false,
    )
    .await;
    assert_eq!((s, &page["items"]), (StatusCode::OK, &json!([])), "{page}");

    // Grace as stored before name search existed: no buckets, none listed. The next start
    // indexes her name, listed with it.
    let raw = db.raw().await;
    sqlx::query("DELETE FROM lookup_index WHERE customer_id = $1 AND kind IN ('name2', 'name3')")
        .bind(id_bytes(&grace))
        .execute(&raw)
        .await
        .unwrap();
    // Both lists keep only the e-mail: Grace's buckets are gone with them; Edsger's stay in the
    // index unlisted (as an older server running through the upgrade would have left them), and
    // the start lists them, so an erasure finds them.
    for who in [&grace, &edsger] {
        let email_only = listed[&id_bytes(who)]
            .iter()
            .filter(|(k, _)| k == "email")
            .map(|(k, m)| format!("{k}:{}", hex(m)))
            .collect::<Vec<_>>()
            .join(";");
        sqlx::query("UPDATE lookup_owners SET entries = $2 WHERE customer_id = $1")
            .bind(id_bytes(who))
            .bind(email_only)
            .execute(&raw)
            .await
            .unwrap();
    }
    raw.close().await;
    drop((router, v));
    let v = db.vault().await;
    let router = steward_api::router(v.clone());
    let (index, listed) = both(&db).await;
    assert_eq!(index, listed, "after the backfill");
    assert_eq!(index[&id_bytes(&grace)].len(), 7, "e-mail and six buckets");
    assert_eq!(
        listed[&id_bytes(&edsger)].len(),
        7,
        "his buckets, listed at last"
    );
    let (s, page) = call(
        &router,
        &support,
        "GET",
        "/v1/customers?purpose=service&q=hop",
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(page["items"][0]["id"], grace.as_str(), "{page}");

    // Erased: none of Linus's entries is left, nor his list; the others' are untouched.
    let (s, report) = call(
        &router,
        &dpo,
        "DELETE",
        &format!("/v1/customers/{linus}"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{report}");
    let (index, listed) = both(&db).await;
    assert_eq!(index, listed, "after erasure");
    assert!(!index.contains_key(&id_bytes(&linus)));
    assert_eq!(index.len(), 3, "Ada, Grace and Edsger");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
