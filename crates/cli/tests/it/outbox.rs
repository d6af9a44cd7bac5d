//! Pending audit entries are tamper-evident: an entry changed in the outbox while nothing runs
//! is found by `steward audit verify` and refused by the writer, which appends a stand-in that
//! says so; a write without the outbox key fails instead of leaving an untagged entry.

use sqlx::Row;

use crate::support::{TestDb, backend_tests, run};

backend_tests!(a_pending_entry_changed_while_stopped_is_found_and_refused);

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
        v.flush_audit().await.unwrap();
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
        .record_audit(&[entry("pending_one"), entry("pending_two")])
        .await
        .unwrap();
    // One written before tags existed: below the upgrade's mark, it is appended unchecked.
    sqlx::query("INSERT INTO audit_outbox (leaf, occurred_at, action, customer_id) VALUES ($1, $2, 'pending_older', NULL)")
        .bind(entry("pending_older").leaf)
        .bind(entry("pending_older").occurred_at)
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_outbox_untagged SET last_seq = (SELECT MAX(seq) FROM audit_outbox)")
        .execute(&raw)
        .await
        .unwrap();
    let (code, out, err) = run(&["audit", "verify"], &db);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("pending entries OK: 3 entries waiting to be appended, tags checked (1 written before tags, not checked)"),
        "{out}"
    );

    // While stopped, someone with the database changes one pending entry and forges another.
    let seqs = pending(&raw).await;
    let changed = seqs[1].0;
    sqlx::query("UPDATE audit_outbox SET action = 'pending_tw0' WHERE seq = $1")
        .bind(changed)
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("INSERT INTO audit_outbox (leaf, occurred_at, action, customer_id) VALUES ($1, $2, 'forged', NULL)")
        .bind(entry("forged").leaf)
        .bind(entry("forged").occurred_at)
        .execute(&raw)
        .await
        .unwrap();
    let forged = pending(&raw).await.last().unwrap().0;
    let (code, out, err) = run(&["audit", "verify"], &db);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("audit log OK"),
        "the log itself is intact: {out}"
    );
    assert!(
        err.contains(&format!(
            "pending entries FAILED: 2 entries changed after they were written (outbox seq {changed}, {forged})"
        )),
        "{err}"
    );

    // The server's writer appends the genuine ones and a stand-in for each refused one.
    drop(store);
    let (v, _, _) = db.open().await;
    v.flush_audit().await.unwrap();
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
    assert_eq!(
        actions,
        [
            "pending_one",
            steward_service::OUTBOX_REFUSED,
            "pending_older",
            steward_service::OUTBOX_REFUSED
        ]
    );
    for (n, seq) in [(1, changed), (3, forged)] {
        let leaf: serde_json::Value = serde_json::from_slice(&appended[n].1).unwrap();
        let subject = leaf["subject"].as_str().unwrap();
        assert!(
            subject.starts_with(&format!("outbox:{seq}:sha256:")),
            "{subject}"
        );
        assert_eq!(leaf["outcome"], "refused");
    }
    assert!(
        pending(&raw).await.is_empty(),
        "refused entries leave the outbox"
    );
    drop(v);
    let (code, out, err) = run(&["audit", "verify"], &db);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("warning: 2 entries in the log stand for pending entries refused"),
        "{err}"
    );
    assert!(
        out.contains("pending entries OK: 0 entries waiting"),
        "{out}"
    );
    raw.close().await;
    log.close().await;
}
