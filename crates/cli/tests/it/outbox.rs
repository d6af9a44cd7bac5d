//! Pending audit entries are tamper-evident: an entry changed, copied or forged in the outbox
//! while nothing runs is found by `steward audit verify` and refused by the writer, which
//! appends a stand-in that says so and keeps the row aside; a write without the outbox key
//! fails instead of leaving an untagged entry.

use sqlx::Row;

use crate::support::{TestDb, backend_tests, run};

backend_tests!(a_pending_entry_changed_while_stopped_is_found_and_refused);

/// SQLite keeps the drain's mark in the log's file: raised past every number given, it would
/// hide every later entry from the drain and from verify alike. Verify says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_mark_past_every_number_fails_verify() {
    let db = TestDb::new(crate::support::Kind::Sqlite).await;
    {
        let (v, op, _) = db.open().await;
        v.directory()
            .create_outlet(op.into(), "Before")
            .await
            .unwrap();
        v.audit().flush().await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (code, out, err) = run(&["audit", "verify"], &db);
    assert_eq!(code, 0, "{out}{err}");
    let log = db.raw_log().await;
    sqlx::query("UPDATE audit_drain SET last_seq = 1000000")
        .execute(&log)
        .await
        .unwrap();
    log.close().await;
    let (code, out, err) = run(&["audit", "verify"], &db);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("pending entries FAILED: the drain's mark (1000000) stands past every outbox number ever given"),
        "{err}"
    );
}

/// Tags with the installation's real outbox key, as the service does (the key unwrapped from
/// the keyring by the master key): pending entries made here are what a stopped server leaves.
#[derive(Debug)]
struct Tags(steward_crypto::OutboxKey);

impl steward_store::OutboxTagger for Tags {
    fn tag(&self, message: &[u8]) -> [u8; 32] {
        self.0.tag(message)
    }
    fn check(&self, message: &[u8], tag: &[u8]) -> bool {
        self.0.check(message, tag)
    }
}

async fn pending(raw: &sqlx::AnyPool) -> Vec<(i64, String)> {
    sqlx::query("SELECT seq, action FROM audit_outbox ORDER BY seq")
        .fetch_all(raw)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

async fn a_pending_entry_changed_while_stopped_is_found_and_refused(db: TestDb) {
    {
        let (v, _, _) = db.open().await;
        v.audit().flush().await.unwrap();
    }
    // The writer holds the vault weakly: give its last drain time to end.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let raw = db.raw().await;
    let log = db.raw_log().await;
    let size: i64 = sqlx::query("SELECT size FROM audit_head")
        .fetch_one(&log)
        .await
        .unwrap()
        .get(0);

    let store = steward_store::open(&db.url).await.unwrap();
    let entry = |a: &str| steward_service::operator_entry("test", a);
    // No tagger: the write fails and leaves nothing.
    assert!(
        store
            .record_audit(&[entry("untagged_write")])
            .await
            .is_err()
    );
    assert!(pending(&raw).await.is_empty());

    let (ring, _) = steward_service::keys::load_keyring(&db.key_file(), false).unwrap();
    let stored = store.keyring_get("audit_outbox").await.unwrap().unwrap();
    let key = ring
        .unwrap_outbox_key(&steward_crypto::WrappedKey {
            master_key_id: stored.master_key_id,
            blob: stored.wrapped,
        })
        .unwrap();
    store.tag_outbox_with(std::sync::Arc::new(Tags(key)));
    store
        .record_audit(&[
            entry("pending_one"),
            entry("pending_two"),
            entry("pending_three"),
        ])
        .await
        .unwrap();
    let (code, out, err) = run(&["audit", "verify"], &db);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("pending entries OK: 3 entries waiting to be appended, tags checked"),
        "{out}"
    );

    // While stopped, someone with the database changes one pending entry's action and
    // another's leaf, copies a genuine one (tag and all) and forges one with no tag.
    let seqs = pending(&raw).await;
    let (one, two, three) = (seqs[0].0, seqs[1].0, seqs[2].0);
    sqlx::query("UPDATE audit_outbox SET action = 'pending_tw0' WHERE seq = $1")
        .bind(two)
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_outbox SET leaf = $1 WHERE seq = $2")
        .bind(entry("pending_three").leaf)
        .bind(three)
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("INSERT INTO audit_outbox (leaf, occurred_at, action, customer_id, tag) SELECT leaf, occurred_at, action, customer_id, tag FROM audit_outbox WHERE seq = $1")
        .bind(one)
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("INSERT INTO audit_outbox (leaf, occurred_at, action, customer_id) VALUES ($1, $2, 'forged', NULL)")
        .bind(entry("forged").leaf)
        .bind(entry("forged").occurred_at)
        .execute(&raw)
        .await
        .unwrap();
    let all = pending(&raw).await;
    let (copy, forged) = (all[3].0, all[4].0);
    if db.kind == crate::support::Kind::Postgres {
        // PostgreSQL's drain reads every row whatever the old watermark says: so does verify.
        sqlx::query("UPDATE audit_drain SET last_seq = 9000000000000000000")
            .execute(&raw)
            .await
            .unwrap();
    }
    let (code, out, err) = run(&["audit", "verify"], &db);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("audit log OK"),
        "the log itself is intact: {out}"
    );
    assert!(
        err.contains(&format!(
            "pending entries FAILED: 4 entries with a missing or wrong tag, changed or inserted after they were written (outbox seq {two}, {three}, {copy}, {forged})"
        )),
        "{err}"
    );

    // The server's writer appends the genuine one and a stand-in for each refused one, and
    // keeps the refused rows as they were.
    drop(store);
    let (v, _, _) = db.open().await;
    v.audit().flush().await.unwrap();
    let appended: Vec<(String, Vec<u8>)> =
        sqlx::query("SELECT action, leaf FROM audit_entries WHERE idx >= $1 ORDER BY idx")
            .bind(size)
            .fetch_all(&log)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    let actions: Vec<&str> = appended.iter().map(|(a, _)| a.as_str()).collect();
    let refused = steward_service::OUTBOX_REFUSED;
    assert_eq!(actions, ["pending_one", refused, refused, refused, refused]);
    for (n, seq) in [(1, two), (2, three), (3, copy), (4, forged)] {
        let leaf = steward_domain::AuditLeaf::from_bytes(&appended[n].1).unwrap();
        let subject = leaf.subject.unwrap();
        assert!(
            subject.starts_with(&format!("outbox:{seq}:sha256:")),
            "{subject}"
        );
        assert_eq!(leaf.outcome, "refused");
    }
    assert!(
        pending(&raw).await.is_empty(),
        "refused entries leave the outbox"
    );
    let kept: Vec<(i64, Vec<u8>)> =
        sqlx::query("SELECT seq, action FROM audit_outbox_refused ORDER BY seq")
            .fetch_all(&raw)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    assert_eq!(
        kept,
        [
            (two, b"pending_tw0".to_vec()),
            (three, b"pending_three".to_vec()),
            (copy, b"pending_one".to_vec()),
            (forged, b"forged".to_vec())
        ],
        "the refused rows are kept as they were"
    );
    drop(v);
    let (code, out, err) = run(&["audit", "verify"], &db);
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.contains(
            "audit log records 4 entries for pending entries the server refused as tampered"
        ),
        "{err}"
    );
    assert!(
        out.contains("pending entries OK: 0 entries waiting"),
        "{out}"
    );
    let (code, out, err) = run(&["audit", "verify", "--refused-seen", "4"], &db);
    assert_eq!(code, 0, "investigated: {out}{err}");
    raw.close().await;
    log.close().await;
}
