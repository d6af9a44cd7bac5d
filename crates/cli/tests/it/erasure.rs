//! Erasure by crypto-shredding (issue 5): through the HTTP API on both backends, and backups
//! that cannot bring an erased customer back, through the binary.

use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;
use steward_domain::Role;
use steward_service::TokenOwner;

use crate::access::{call, new_customer, token};
use crate::support::{Kind, TestDb, backend_tests, customer_json};

backend_tests!(
    erasure_shreds_at_once_and_leaves_a_disposal_record,
    a_legal_hold_blocks_erasure_until_lifted
);

/// The rows that would let anyone open or find the customer: their wrapped data key and their
/// blind-index entries.
async fn key_material(db: &TestDb, id: &str) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let raw = db.raw().await;
    let idb = uuid::Uuid::parse_str(id).unwrap().as_bytes().to_vec();
    let keys = sqlx::query("SELECT wrapped FROM data_keys WHERE customer_id = $1")
        .bind(idb.clone())
        .fetch_all(&raw)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<Vec<u8>, _>(0))
        .collect();
    // The e-mail's and phone's MACs: unique to the customer. (The name-search buckets are
    // shared by many customers by design, so their bytes prove nothing; they are counted apart.)
    let macs = sqlx::query(
        "SELECT mac FROM lookup_index WHERE customer_id = $1 AND kind IN ('email', 'phone')",
    )
    .bind(idb)
    .fetch_all(&raw)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<Vec<u8>, _>(0))
    .collect();
    raw.close().await;
    (keys, macs)
}

async fn count(db: &TestDb, table: &str, id: &str) -> i64 {
    let raw = db.raw().await;
    let n = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {table} WHERE {} = $1",
        if table == "customers" {
            "id"
        } else {
            "customer_id"
        }
    )))
    .bind(uuid::Uuid::parse_str(id).unwrap().as_bytes().to_vec())
    .fetch_one(&raw)
    .await
    .unwrap()
    .get::<i64, _>(0);
    raw.close().await;
    n
}

/// Whether any of `needles` occurs in the SQLite files of the data directory.
fn sqlite_files_hold(dir: &std::path::Path, needles: &[Vec<u8>]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("steward") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for n in needles {
            if bytes.windows(n.len()).any(|w| w == n.as_slice()) {
                found.push(name.clone());
            }
        }
    }
    found
}

async fn erasure_shreds_at_once_and_leaves_a_disposal_record(db: TestDb) {
    let v = db.vault().await;
    let router = steward_api::router(v.clone());
    let support = token(&v, TokenOwner::Role(Role::SupportAgent)).await;
    let dpo = token(&v, TokenOwner::Role(Role::Dpo)).await;
    let id = new_customer(
        &router,
        &support,
        customer_json(
            "Erin Erasable",
            "erin.erasable@example.org",
            "+44 20 7946 0999",
            "1 Gone Lane",
        ),
    )
    .await;
    for n in 0..3 {
        let (s, _) = call(
            &router,
            &support,
            "POST",
            &format!("/v1/customers/{id}/interactions"),
            Some(json!({"channel": "email", "text": format!("note {n}"), "source": "helpdesk"})),
            false,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let (keys, macs) = key_material(&db, &id).await;
    assert_eq!(
        (keys.len(), macs.len()),
        (1, 2),
        "a key and two look-ups before"
    );
    assert_eq!(
        count(&db, "lookup_index", &id).await,
        8,
        "and six name-search buckets"
    );
    assert_eq!(
        count(&db, "lookup_owners", &id).await,
        1,
        "listed on one row"
    );

    // Only the DPO erases.
    let (s, p) = call(
        &router,
        &support,
        "DELETE",
        &format!("/v1/customers/{id}"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{p}");
    assert_eq!(
        count(&db, "interactions", &id).await,
        3,
        "a refused erasure changes nothing"
    );

    let (s, report) = call(
        &router,
        &dpo,
        "DELETE",
        &format!("/v1/customers/{id}"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report["customer_id"], id.as_str());
    assert_eq!(report["method"], "crypto-shredding");
    assert_eq!(report["purge"], "complete");
    assert!(
        report["categories"]
            .as_array()
            .unwrap()
            .contains(&json!("email"))
    );

    // Unreadable and unfindable, to every role.
    for t in [&support, &dpo] {
        let (s, _) = call(
            &router,
            t,
            "GET",
            &format!("/v1/customers/{id}?purpose=service&reason=erasure+check"),
            None,
            false,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
    let (s, found) = call(
        &router,
        &support,
        "POST",
        "/v1/customers/lookup?purpose=service",
        Some(json!({"email": "erin.erasable@example.org"})),
        false,
    )
    .await;
    assert_eq!((s, &found["items"]), (StatusCode::OK, &json!([])));
    let (s, _) = call(
        &router,
        &dpo,
        "DELETE",
        &format!("/v1/customers/{id}"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "erasing twice finds nobody");

    // Nothing of the customer is left in the data tables; the key bytes are gone from the files.
    assert_eq!(key_material(&db, &id).await, (vec![], vec![]));
    for table in [
        "customers",
        "lookup_index",
        "lookup_owners",
        "interactions",
        "purchases",
        "consent_events",
        "customer_outlets",
    ] {
        assert_eq!(count(&db, table, &id).await, 0, "{table}");
    }
    let mut needles = keys.clone();
    needles.extend(macs.clone());
    match db.kind {
        Kind::Sqlite => {
            // The customer's list of entries names the MACs in hex (upper case as the migration
            // wrote existing ones; trailing zero digits dropped, so twelve bytes' worth is sought).
            for m in &macs {
                let hex: String = m[..12].iter().map(|b| format!("{b:02x}")).collect();
                needles.push(hex.to_uppercase().into_bytes());
                needles.push(hex.into_bytes());
            }
            let held = sqlite_files_hold(db.dir.path(), &needles);
            assert!(held.is_empty(), "erased key material still in {held:?}");
        }
        Kind::Postgres => {
            // What the database would hand to anyone who dumps it (dead tuples wait for VACUUM;
            // without the key they hold only ciphertext).
            let out = std::process::Command::new("pg_dump")
                .arg("--no-owner")
                .arg(&db.url)
                .output()
                .expect("run pg_dump (Debian package postgresql-client)");
            assert!(out.status.success());
            let dump = String::from_utf8_lossy(&out.stdout).to_lowercase();
            assert!(
                dump.contains("copy public.data_keys"),
                "the dump holds the key table"
            );
            for n in &needles {
                let hex: String = n.iter().map(|b| format!("{b:02x}")).collect();
                assert!(!dump.contains(&hex), "erased key material in pg_dump");
            }
            // The customer's list names the MACs in hex, trailing zero digits dropped.
            for m in &macs {
                let hex: String = m[..12].iter().map(|b| format!("{b:02x}")).collect();
                assert!(!dump.contains(&hex), "an erased customer's list in pg_dump");
            }
        }
    }

    // The disposal record: in the audit log, naming what was destroyed and how, by whom.
    v.audit().flush().await.unwrap();
    let raw = db.raw_log().await;
    let leaves: Vec<Value> = sqlx::query("SELECT leaf FROM audit_entries WHERE action = 'erase'")
        .fetch_all(&raw)
        .await
        .unwrap()
        .iter()
        .map(|r| crate::support::leaf_json(&r.get::<Vec<u8>, _>(0)))
        .collect();
    assert_eq!(leaves.len(), 1, "{leaves:?}");
    let leaf = &leaves[0];
    assert_eq!(leaf["customer"], id.as_str());
    assert_eq!(leaf["categories"]["email"], "destroyed");
    assert_eq!(leaf["roles"], json!(["dpo"]));
    assert!(
        leaf["subject"]
            .as_str()
            .unwrap()
            .starts_with("crypto-shredding; request; journal ")
    );
    raw.close().await;
}

async fn a_legal_hold_blocks_erasure_until_lifted(db: TestDb) {
    let v = db.vault().await;
    let router = steward_api::router(v.clone());
    let support = token(&v, TokenOwner::Role(Role::SupportAgent)).await;
    let dpo = token(&v, TokenOwner::Role(Role::Dpo)).await;
    let id = new_customer(
        &router,
        &support,
        customer_json(
            "Hal Held",
            "hal.held@example.org",
            "+44 20 7946 0888",
            "2 Court Row",
        ),
    )
    .await;
    let hold = format!("/v1/customers/{id}/legal-hold");

    let (s, p) = call(
        &router,
        &dpo,
        "PUT",
        &hold,
        Some(json!({"reference": "Hal Held"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["field"], "reference", "a name is no case reference: {p}");
    let (s, _) = call(
        &router,
        &support,
        "PUT",
        &hold,
        Some(json!({"reference": "CASE-2026/114"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, p) = call(
        &router,
        &dpo,
        "PUT",
        &hold,
        Some(json!({"reference": "CASE-2026/114"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{p}");

    let (s, p) = call(
        &router,
        &dpo,
        "DELETE",
        &format!("/v1/customers/{id}"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("CASE-2026/114"),
        "{p}"
    );
    let (s, c) = call(
        &router,
        &support,
        "GET",
        &format!("/v1/customers/{id}?purpose=service"),
        None,
        false,
    )
    .await;
    assert_eq!(
        (s, &c["email"]),
        (
            StatusCode::OK,
            &json!(steward_domain::view::mask_email("hal.held@example.org"))
        ),
        "still there"
    );
    assert_eq!(key_material(&db, &id).await.0.len(), 1);

    let (s, _) = call(&router, &dpo, "DELETE", &hold, None, false).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, p) = call(
        &router,
        &dpo,
        "DELETE",
        &format!("/v1/customers/{id}"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{p}");

    // The refused erasure was voided in the journal: a replay erases nothing more, and the
    // hold and its lifting are on the record.
    assert_eq!(v.replay_erasures().await.unwrap(), 0);
    v.audit().flush().await.unwrap();
    let raw = db.raw_log().await;
    let actions: Vec<String> = sqlx::query(
        "SELECT action FROM audit_entries WHERE action LIKE 'legal_hold%' ORDER BY idx",
    )
    .fetch_all(&raw)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert_eq!(actions, ["legal_hold.set", "legal_hold.lift"]);
    raw.close().await;
}

/// Back up, erase, restore the backup: the customer is unreadable and unfindable, and no byte
/// of their key material or values is in the restored files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_backup_does_not_bring_an_erased_customer_back() {
    let db = TestDb::new(Kind::Sqlite).await;
    let v = db.vault().await;
    let router = steward_api::router(v.clone());
    let support = token(&v, TokenOwner::Role(Role::SupportAgent)).await;
    let gone = new_customer(
        &router,
        &support,
        customer_json(
            "Bea Backedup",
            "bea.backedup@example.org",
            "+44 20 7946 0777",
            "3 Tape Street",
        ),
    )
    .await;
    let kept = new_customer(
        &router,
        &support,
        customer_json(
            "Kit Kept",
            "kit.kept@example.org",
            "+44 20 7946 0666",
            "4 Stay Road",
        ),
    )
    .await;
    let (keys, macs) = key_material(&db, &gone).await;
    v.audit().flush().await.unwrap();
    drop(router);
    drop(v);

    // Backed up and erased while a server is running and serving.
    let server = crate::support::Server::start(&db, &[], &[]);
    let (s, _) = server.http("GET", "/healthz", None, None);
    assert_eq!(s, 200);
    let backup = db.dir.path().join("before-erasure.zip");
    let (code, _, err) = crate::support::run(&["backup", backup.to_str().unwrap()], &db);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = crate::support::run(&["erase", "--customer", &gone], &db);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["purge"], "complete");
    let (code, _, _) = crate::support::run(&["backup", backup.to_str().unwrap()], &db);
    assert_ne!(code, 0, "a backup never overwrites a file");
    server.stop();

    let (code, _, err) = crate::support::run(&["restore", backup.to_str().unwrap()], &db);
    assert_ne!(code, 0, "a restore over a database needs --force");
    assert!(err.contains("--force"), "{err}");
    let (code, _, err) =
        crate::support::run(&["restore", backup.to_str().unwrap(), "--force"], &db);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("Erasures replayed from the journal: 1"),
        "{err}"
    );

    assert_eq!(key_material(&db, &gone).await, (vec![], vec![]));
    assert_eq!(count(&db, "customers", &gone).await, 0);
    assert_eq!(
        count(&db, "customers", &kept).await,
        1,
        "the rest is restored"
    );
    let mut needles = keys;
    needles.extend(macs);
    for v in ["Bea Backedup", "bea.backedup@example.org", "3 Tape Street"] {
        needles.push(v.as_bytes().to_vec());
    }
    let held = sqlite_files_hold(db.dir.path(), &needles);
    assert!(
        held.is_empty(),
        "the restored files hold the erased customer: {held:?}"
    );

    let v = db.vault().await;
    let router = steward_api::router(v.clone());
    let support = token(&v, TokenOwner::Role(Role::SupportAgent)).await;
    let (s, _) = call(
        &router,
        &support,
        "GET",
        &format!("/v1/customers/{gone}?purpose=service"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, c) = call(
        &router,
        &support,
        "GET",
        &format!("/v1/customers/{kept}?purpose=service"),
        None,
        false,
    )
    .await;
    assert_eq!((s, &c["name"]), (StatusCode::OK, &json!("Kit Kept")));
    // A journal that was edited is refused, not half-trusted.
    let journal = db.dir.path().join("erasures.journal");
    let text = std::fs::read_to_string(&journal).unwrap();
    std::fs::write(&journal, text.replacen(" erase ", " void ", 1)).unwrap();
    assert!(v.replay_erasures().await.is_err());
}

/// On PostgreSQL, backups are pg_dump's: `steward backup` says so, and `restore --replay-only`
/// replays the journal against the configured database (here: a database a pg_dump of which was
/// restored from before an erasure, simulated by copying the customer's rows back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restores_replay_the_journal() {
    let db = TestDb::new(Kind::Postgres).await;
    let v = db.vault().await;
    let router = steward_api::router(v.clone());
    let support = token(&v, TokenOwner::Role(Role::SupportAgent)).await;
    let id = new_customer(
        &router,
        &support,
        customer_json(
            "Pia Postgres",
            "pia.pg@example.org",
            "+44 20 7946 0123",
            "10 Dump Road",
        ),
    )
    .await;
    let idb = uuid::Uuid::parse_str(&id).unwrap().as_bytes().to_vec();
    let raw = db.raw().await;
    // What a pg_dump taken now would bring back: the customer, their key and look-ups.
    let saved_customer =
        sqlx::query("SELECT created_at, updated_at, name FROM customers WHERE id = $1")
            .bind(idb.clone())
            .fetch_one(&raw)
            .await
            .unwrap();
    let (created, updated, name): (i64, i64, Vec<u8>) = (
        saved_customer.get(0),
        saved_customer.get(1),
        saved_customer.get(2),
    );
    let key = sqlx::query(
        "SELECT master_key_id, wrapped, created_at FROM data_keys WHERE customer_id = $1",
    )
    .bind(idb.clone())
    .fetch_one(&raw)
    .await
    .unwrap();
    let (mk, wrapped, kat): (String, Vec<u8>, i64) = (key.get(0), key.get(1), key.get(2));
    drop(router);
    drop(v);

    let (code, _, err) = crate::support::run(&["backup", "/tmp/never.zip"], &db);
    assert_ne!(code, 0);
    assert!(err.contains("pg_dump"), "{err}");
    let (code, _, err) = crate::support::run(&["erase", "--customer", &id], &db);
    assert_eq!(code, 0, "{err}");

    // "Restore the dump": the rows come back, the record of the erasure does not.
    sqlx::query("INSERT INTO customers (id, created_at, updated_at, name) VALUES ($1, $2, $3, $4)")
        .bind(idb.clone())
        .bind(created)
        .bind(updated)
        .bind(name)
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("INSERT INTO data_keys (customer_id, master_key_id, wrapped, created_at) VALUES ($1, $2, $3, $4)")
        .bind(idb.clone()).bind(mk).bind(wrapped).bind(kat)
        .execute(&raw).await.unwrap();
    sqlx::query("DELETE FROM erasures WHERE customer_id = $1")
        .bind(idb.clone())
        .execute(&raw)
        .await
        .unwrap();
    let (code, _, err) = crate::support::run(&["restore", "--replay-only"], &db);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("Erasures replayed from the journal: 1"),
        "{err}"
    );
    assert_eq!(key_material(&db, &id).await, (vec![], vec![]));
    assert_eq!(count(&db, "customers", &id).await, 0);
    raw.close().await;
}
