//! The storage conformance suite: the same scenarios through the vault on both backends.

use std::ops::ControlFlow;

use sqlx::Row;
use steward_domain::{
    AddressInput, Channel, CustomerInput, CustomerPatch, InteractionInput, PurchaseInput, Role,
    Timestamp,
};
use steward_service::ServiceError;
use steward_service::keys::{self, RotationOutcome};

use crate::support::{TestDb, backend_tests};

fn input(n: usize) -> CustomerInput {
    CustomerInput {
        name: Some(format!("Conformance Person {n}")),
        email: Some(format!("Person{n}@Example.org")),
        phone: Some(format!("+44 20 7946 {n:04}")),
        address: Some(AddressInput::Line(format!("{n} Conformance Road"))),
        date_of_birth: Some("1990-05-17".into()),
        // Submitted in any case; kept canonical.
        preferred_language: Some("FR-ch".into()),
        social_handles: Some(steward_domain::social::SocialHandlesInput::Line(format!(
            "Instagram @Person{n}"
        ))),
        outlet_id: None,
        allow_duplicate: false,
    }
}

backend_tests!(
    customer_round_trip,
    activity_round_trip,
    tokens,
    key_rotation_survives_interruption,
    swapped_ciphertexts_fail_integrity,
    purposes_are_seeded
);

async fn customer_round_trip(db: TestDb) {
    let (v, op, _) = db.open().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            v.records()
                .create_customer(op.into(), &input(n).validate().unwrap())
                .await
                .unwrap(),
        );
    }
    let c = crate::support::operator_read(&v, op, ids[2]).await.unwrap();
    assert_eq!(c.name.as_deref(), Some("Conformance Person 2"));
    assert_eq!(c.email.as_deref(), Some("person2@example.org"));
    assert_eq!(c.phone.as_deref(), Some("+442079460002"));
    assert_eq!(
        c.address.as_ref().and_then(|a| a.street.as_deref()),
        Some("2 Conformance Road")
    );
    assert_eq!(c.preferred_language.as_deref(), Some("fr-CH"));

    // Cursor pagination walks every customer once, in creation order.
    let page = |after| {
        let v = v.clone();
        async move { v.records().export_page(op, after, 2).await.unwrap() }
    };
    let first = page(None).await;
    let second = page(first.next).await;
    let third = page(second.next).await;
    assert_eq!(third.next, None);
    let seen: Vec<_> = [first, second, third]
        .iter()
        .flat_map(|p| &p.customers)
        .map(|c| c.customer.id)
        .collect();
    assert_eq!(seen, ids);

    // Blind-index lookup matches normalised spellings, and follows a change of e-mail.
    assert_eq!(
        crate::support::lookup_ids(&v, op, "email", "person3@example.org").await[0],
        ids[3]
    );
    assert_eq!(
        crate::support::lookup_ids(&v, op, "phone", "+442079460004").await[0],
        ids[4]
    );
    let patch: CustomerPatch =
        serde_json::from_str(r#"{"email": "moved@example.org", "phone": null}"#).unwrap();
    let updated = v.update_customer(op.into(), ids[3], &patch).await.unwrap();
    assert_eq!(updated.customer.email.as_deref(), Some("moved@example.org"));
    assert_eq!(updated.customer.phone, None);
    assert!(
        crate::support::lookup_ids(&v, op, "email", "person3@example.org")
            .await
            .is_empty()
    );
    assert!(
        crate::support::lookup_ids(&v, op, "phone", "+442079460003")
            .await
            .is_empty()
    );
    assert_eq!(
        crate::support::lookup_ids(&v, op, "email", "moved@example.org").await[0],
        ids[3]
    );
    assert_eq!(
        crate::support::operator_read(&v, op, ids[3])
            .await
            .unwrap()
            .name
            .as_deref(),
        Some("Conformance Person 3")
    );

    // A patch that would leave no identity is refused and changes nothing.
    let wipe: CustomerPatch = serde_json::from_str(r#"{"name": null, "email": null}"#).unwrap();
    assert!(matches!(
        v.update_customer(op.into(), ids[3], &wipe).await,
        Err(ServiceError::Validation(_))
    ));
    assert_eq!(
        crate::support::operator_read(&v, op, ids[3])
            .await
            .unwrap()
            .email
            .as_deref(),
        Some("moved@example.org")
    );

    assert!(matches!(
        crate::support::operator_read(&v, op, steward_domain::CustomerId::new()).await,
        Err(ServiceError::NotFound(_))
    ));
    assert_eq!(v.records().count_customers().await.unwrap(), 5);
}

async fn activity_round_trip(db: TestDb) {
    let (v, op, _) = db.open().await;
    let outlet = v
        .directory()
        .create_outlet(op.into(), "Conformance Outlet")
        .await
        .unwrap();
    assert!(matches!(
        v.directory()
            .create_outlet(op.into(), "Conformance Outlet")
            .await,
        Err(ServiceError::Conflict("name"))
    ));
    let seller = v
        .directory()
        .create_staff(
            op.into(),
            "Seller Person",
            &[Role::SalesAssociate],
            &[outlet],
        )
        .await
        .unwrap();
    let staff = v.directory().list_staff(op.into()).await.unwrap();
    assert_eq!(staff[0].name, "Seller Person");
    assert_eq!(staff[0].outlet_ids, vec![outlet]);
    let cid = v
        .records()
        .create_customer(op.into(), &input(1).validate().unwrap())
        .await
        .unwrap();

    for n in 0..3 {
        let i = InteractionInput {
            channel: Channel::Social,
            text: format!("post number {n}"),
            source: "instagram".into(),
            occurred_at: None,
        };
        v.records()
            .add_interaction(op.into(), cid, &i.validate(Timestamp::now()).unwrap())
            .await
            .unwrap();
    }
    // Read as a support agent serving the customer: a decided read, like the API's.
    let agent = crate::support::Reader::new(&v, op, Role::SupportAgent, "service").await;
    let page = v
        .records()
        .read_interactions(&agent.access(), cid, None, 2)
        .await
        .unwrap();
    let rest = v
        .records()
        .read_interactions(&agent.access(), cid, Some(page[1].id.0), 2)
        .await
        .unwrap();
    assert_eq!(page.len() + rest.len(), 3);
    assert_eq!(rest[0].text, "post number 2");
    assert_eq!(rest[0].channel, Channel::Social);

    let p = PurchaseInput {
        item: "Meridian Diver".into(),
        category: "Watches".into(),
        outlet_id: outlet,
        seller_id: Some(seller),
        amount_minor: 890_000,
        currency: "chf".into(),
        occurred_at: None,
    };
    v.add_purchase(op.into(), cid, &p.validate(Timestamp::now()).unwrap())
        .await
        .unwrap();
    let got = &v
        .records()
        .read_purchases(&agent.access(), cid, None, 10)
        .await
        .unwrap()
        .items[0];
    assert_eq!(
        (
            got.item.as_str(),
            got.category.as_str(),
            got.amount_minor,
            got.currency.as_str()
        ),
        ("Meridian Diver", "watches", 890_000, "CHF")
    );
    assert_eq!((got.outlet_id, got.seller_id), (outlet, Some(seller)));

    // Unknown outlet or seller: a validation error naming the field, nothing stored.
    let bad = PurchaseInput {
        outlet_id: steward_domain::OutletId::new(),
        ..p.clone()
    };
    match v
        .add_purchase(op.into(), cid, &bad.validate(Timestamp::now()).unwrap())
        .await
    {
        Err(ServiceError::Validation(e)) => assert_eq!(e.field, "outlet_id"),
        other => panic!("{other:?}"),
    }
    let bad = PurchaseInput {
        seller_id: Some(steward_domain::StaffId::new()),
        ..p
    };
    match v
        .add_purchase(op.into(), cid, &bad.validate(Timestamp::now()).unwrap())
        .await
    {
        Err(ServiceError::Validation(e)) => assert_eq!(e.field, "seller_id"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        v.records()
            .read_purchases(&agent.access(), cid, None, 10)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert!(matches!(
        v.records()
            .read_purchases(&agent.access(), steward_domain::CustomerId::new(), None, 10)
            .await,
        Err(ServiceError::NotFound(_))
    ));
}

async fn tokens(db: TestDb) {
    let (v, op, _) = db.open().await;
    let (id, token) = v
        .identity()
        .create_token(
            op,
            "conformance",
            steward_service::TokenOwner::Role(Role::SupportAgent),
        )
        .await
        .unwrap();
    let p = v.identity().authenticate(&token).await.unwrap().unwrap();
    assert_eq!(
        (p.token_id(), p.roles().to_vec()),
        (id, vec![Role::SupportAgent])
    );
    // Cached path and uncached path both reject a wrong secret with the same id.
    let mut forged = token.to_string();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(v.identity().authenticate(&forged).await.unwrap(), None);
    let fresh = db.vault().await;
    assert_eq!(fresh.identity().authenticate(&forged).await.unwrap(), None);
    assert!(
        fresh
            .identity()
            .authenticate(&token)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        v.identity().authenticate("stw_nonsense").await.unwrap(),
        None
    );
    // The stored hash is an Argon2id PHC string that does not contain the secret.
    let raw = db.raw().await;
    let hash: String = sqlx::query("SELECT secret_hash FROM api_tokens")
        .fetch_one(&raw)
        .await
        .unwrap()
        .get(0);
    assert!(hash.starts_with("$argon2id$"));
    // `stw_<hex id>_<secret>`; the base64url secret may itself hold `_`.
    let secret = token.splitn(3, '_').nth(2).unwrap();
    assert!(secret.len() >= 40);
    assert!(!hash.contains(secret));
}

async fn key_rotation_survives_interruption(db: TestDb) {
    let (v, op, _) = db.open().await;
    let mut ids = Vec::new();
    for n in 0..7 {
        ids.push(
            v.records()
                .create_customer(op.into(), &input(n).validate().unwrap())
                .await
                .unwrap(),
        );
    }
    let before: Vec<u8> = sqlx::query("SELECT email FROM customers ORDER BY id")
        .fetch_all(&db.raw().await)
        .await
        .unwrap()[0]
        .get(0);
    drop(v);
    let store = steward_store::open(&db.url).await.unwrap();

    // Interrupted after the first batch of 3: both keys in play.
    let outcome = keys::rotate(&store, &db.key_file(), 3, |_| ControlFlow::Break(()))
        .await
        .unwrap();
    assert_eq!(outcome, RotationOutcome::Paused { done: 3 });
    assert!(keys::next_key_path(&db.key_file()).exists());
    let census = store.data_key_census().await.unwrap();
    assert_eq!(census.len(), 2, "{census:?}");
    let (v, op, store) = db.open().await;
    for id in &ids {
        crate::support::operator_read(&v, op, *id).await.unwrap();
    }
    // A customer created mid-rotation is wrapped by the new key already.
    ids.push(
        v.records()
            .create_customer(op.into(), &input(9).validate().unwrap())
            .await
            .unwrap(),
    );
    drop(v);

    // Resume and finish.
    let outcome = keys::rotate(&store, &db.key_file(), 3, |_| ControlFlow::Continue(()))
        .await
        .unwrap();
    let RotationOutcome::Done { master_key_id } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(!keys::next_key_path(&db.key_file()).exists());
    assert_eq!(
        store.data_key_census().await.unwrap(),
        vec![(master_key_id, 8)]
    );
    let (v, op, _) = db.open().await;
    for id in &ids {
        crate::support::operator_read(&v, op, *id).await.unwrap();
    }
    // The sealed data itself was not rewritten.
    let after: Vec<u8> = sqlx::query("SELECT email FROM customers ORDER BY id")
        .fetch_all(&db.raw().await)
        .await
        .unwrap()[0]
        .get(0);
    assert_eq!(before, after);
}

async fn swapped_ciphertexts_fail_integrity(db: TestDb) {
    let (v, op, _) = db.open().await;
    let a = v
        .records()
        .create_customer(op.into(), &input(1).validate().unwrap())
        .await
        .unwrap();
    let b = v
        .records()
        .create_customer(op.into(), &input(2).validate().unwrap())
        .await
        .unwrap();
    let raw = db.raw().await;
    let email = |id: steward_domain::CustomerId| {
        let raw = raw.clone();
        async move {
            sqlx::query("SELECT email FROM customers WHERE id = $1")
                .bind(id.as_bytes().to_vec())
                .fetch_one(&raw)
                .await
                .unwrap()
                .get::<Vec<u8>, _>(0)
        }
    };
    let (ea, eb) = (email(a).await, email(b).await);
    for (id, value) in [(a, &eb), (b, &ea)] {
        sqlx::query("UPDATE customers SET email = $1 WHERE id = $2")
            .bind(value.clone())
            .bind(id.as_bytes().to_vec())
            .execute(&raw)
            .await
            .unwrap();
    }
    assert!(matches!(
        crate::support::operator_read(&v, op, a).await,
        Err(ServiceError::Integrity)
    ));
    assert!(matches!(
        crate::support::operator_read(&v, op, b).await,
        Err(ServiceError::Integrity)
    ));
    // Moving a value to another field of the same customer fails too.
    let c = v
        .records()
        .create_customer(op.into(), &input(3).validate().unwrap())
        .await
        .unwrap();
    sqlx::query("UPDATE customers SET name = email WHERE id = $1")
        .bind(c.as_bytes().to_vec())
        .execute(&raw)
        .await
        .unwrap();
    assert!(matches!(
        crate::support::operator_read(&v, op, c).await,
        Err(ServiceError::Integrity)
    ));
    // So does swapping whole data keys.
    let d = v
        .records()
        .create_customer(op.into(), &input(4).validate().unwrap())
        .await
        .unwrap();
    let key_of = |id: steward_domain::CustomerId| {
        let raw = raw.clone();
        async move {
            sqlx::query("SELECT wrapped FROM data_keys WHERE customer_id = $1")
                .bind(id.as_bytes().to_vec())
                .fetch_one(&raw)
                .await
                .unwrap()
                .get::<Vec<u8>, _>(0)
        }
    };
    let kd = key_of(d).await;
    let kc = key_of(c).await;
    sqlx::query("UPDATE data_keys SET wrapped = $1 WHERE customer_id = $2")
        .bind(kc)
        .bind(d.as_bytes().to_vec())
        .execute(&raw)
        .await
        .unwrap();
    assert!(matches!(
        crate::support::operator_read(&v, op, d).await,
        Err(ServiceError::Integrity)
    ));
    drop(kd);
}

async fn purposes_are_seeded(db: TestDb) {
    let (v, _, _) = db.open().await;
    let purposes = v.purposes().all();
    let keys: Vec<_> = purposes.iter().map(|p| p.key.as_str()).collect();
    for k in [
        "service",
        "order_fulfilment",
        "marketing_email",
        "personalisation",
        "fraud_prevention",
        "analytics",
        "allocation",
    ] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    // Opening again does not duplicate them.
    assert_eq!(db.vault().await.purposes().all().len(), keys.len());
}

/// Decision records that earlier builds kept in the SQLite data file move to the log's own file
/// on open, once, and the old table goes.
#[tokio::test]
async fn sqlite_decision_records_move_to_their_own_file() {
    let db = TestDb::new(crate::support::Kind::Sqlite).await;
    drop(db.vault().await);
    let customer = steward_domain::CustomerId::new();
    {
        let raw = db.raw().await;
        sqlx::query(
            "CREATE TABLE access_decisions (id BLOB PRIMARY KEY, occurred_at INTEGER NOT NULL, principal TEXT NOT NULL, customer_id BLOB NOT NULL, purpose TEXT NOT NULL, outcome TEXT NOT NULL, fields TEXT NOT NULL, policies TEXT NOT NULL, reason_given INTEGER NOT NULL, break_glass INTEGER NOT NULL)",
        )
        .execute(&raw)
        .await
        .unwrap();
        for n in 0u8..3 {
            sqlx::query("INSERT INTO access_decisions VALUES ($1, 1, 'p', $2, 'service', 'allow', '{}', '{}', 0, 0)")
                .bind(vec![n; 16])
                .bind(customer.as_bytes().to_vec())
                .execute(&raw)
                .await
                .unwrap();
        }
        raw.close().await;
    }
    for _ in 0..2 {
        let _v = db.vault().await;
        let moved: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_decisions")
            .fetch_one(&db.raw_log().await)
            .await
            .unwrap();
        assert_eq!(moved, 3, "the records are in the log's file");
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'access_decisions'",
        )
        .fetch_one(&db.raw().await)
        .await
        .unwrap();
        assert_eq!(left, 0, "the data file keeps no decision table");
    }
    assert!(db.dir.path().join("steward-audit.db").exists());
}

/// The audit log's WAL is copied back into its file by a checkpointer of its own, not by the
/// commits that reads wait for (those never checkpoint: `wal_autocheckpoint = 0`).
#[tokio::test]
async fn sqlite_audit_log_is_checkpointed_apart() {
    let db = TestDb::new(crate::support::Kind::Sqlite).await;
    let (_v, _, store) = db.open().await;
    let customer = steward_domain::CustomerId::new();
    let rows: Vec<steward_store::AuditEntryRow> = (0..500)
        .map(|_| steward_store::AuditEntryRow {
            leaf: vec![b'x'; 400],
            occurred_at: 1,
            action: "read".into(),
            customer_id: Some(customer),
        })
        .collect();
    let file = db.dir.path().join("steward-audit.db");
    let size = || std::fs::metadata(&file).unwrap().len();
    let before = size();
    let (signer, _, _) = steward_crypto::NoteSigner::load_or_create(
        &db.dir.path().join("bench-audit.key"),
        "steward.test/audit",
    )
    .unwrap();
    let sealer = steward_service::TreeSealer::new(signer);
    // Half of the appends pass the tip they were given, half read the head afresh.
    let mut tip = None;
    let mut appender = store.audit_appender().await.unwrap();
    for round in 0..10 {
        let given = if round % 2 == 0 { None } else { tip.take() };
        tip = Some(appender.append(&rows, &sealer, given).await.unwrap());
    }
    // ~3 MB went to the WAL; within a few checkpoint periods it is in the file itself.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while size() < before + 1_000_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the log file did not grow: no checkpoint ran ({} bytes)",
            size()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(store.count_audit_entries(customer).await.unwrap(), 5000);
    assert_eq!(store.audit_size().await.unwrap(), 5000);
}

/// The SQLite files (data, decision log, their WAL and SHM) are readable by their owner only.
#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::new(crate::support::Kind::Sqlite).await;
    let (v, op, _) = db.open().await;
    v.directory()
        .create_outlet(op.into(), "Private Outlet")
        .await
        .unwrap();
    let mut seen = 0;
    for entry in std::fs::read_dir(db.dir.path()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("steward") {
            let mode = entry.metadata().unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{name} is open to others: {mode:o}");
            seen += 1;
        }
    }
    assert!(
        seen >= 4,
        "expected the data and log files with their WAL and SHM, saw {seen}"
    );
}
