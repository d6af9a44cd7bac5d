//! A PostgreSQL log that lost its last entries (a failover to a standby that had not received
//! them) and grew again to the same length through another server is extended by what it holds,
//! not by a server's memory of the history that was lost: no hash, and no checkpoint, over a
//! tree that never existed.

use crate::cluster::token;
use crate::support::{Kind, Server, TestDb, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_lost_its_tail_and_grew_back_is_extended_by_what_it_holds() {
    let db = TestDb::new(Kind::Postgres).await;
    let (support, _) = token(&db, "support_agent");
    let lifted = ["--rate-limit", "default=1000000/1000000"];
    let a = Server::start(&db, &lifted, &[]);
    let (s, v) = a.json(
        "POST",
        "/v1/customers",
        Some(&support),
        Some(&serde_json::json!({"name": "Fail Over"})),
    );
    assert_eq!(s, 201, "{v}");
    let path = format!(
        "/v1/customers/{}?purpose=service",
        v["id"].as_str().unwrap()
    );
    for _ in 0..20 {
        assert_eq!(a.http("GET", &path, Some(&support), None).0, 200);
    }
    let raw = db.raw().await;
    let head = || async {
        sqlx::query_scalar::<_, i64>("SELECT size FROM audit_head WHERE id = 1")
            .fetch_one(&raw)
            .await
            .unwrap()
    };
    // Server A appended last: it holds the tree's edge at this size.
    let size = head().await;
    assert!(size > 20, "{size} entries");

    // The standby that takes over lacks the last ten entries (and what was built on them).
    let lost = size - 10;
    for q in [
        "DELETE FROM audit_entries WHERE idx >= $1",
        "DELETE FROM audit_by_customer WHERE idx >= $1",
        "DELETE FROM audit_checkpoints WHERE size > $1",
        "UPDATE audit_head SET size = $1 WHERE id = 1",
        "UPDATE audit_index_state SET indexed = LEAST(indexed, $1) WHERE id = 1",
    ] {
        sqlx::query(q).bind(lost).execute(&raw).await.unwrap();
    }
    // Another server appends other entries until the log is as long as A remembers it.
    let b = Server::start(&db, &lifted, &[]);
    while head().await < size {
        assert_eq!(b.http("GET", &path, Some(&support), None).0, 200);
    }
    assert_eq!(head().await, size, "the log grew back to exactly A's size");
    b.stop();

    // A appends again: the head has A's size, but not A's history. (A's quiet-time signature
    // over its tail, half a second after its last append, may fall on either side of the
    // regrowth: it signs from the stored hashes too, or this would fail at times.)
    for _ in 0..3 {
        let (s, body) = a.http("GET", &path, Some(&support), None);
        assert_eq!(s, 200, "{body}");
    }
    let (s, _) = a.http("GET", "/v1/audit/checkpoint", None, None);
    assert_eq!(s, 200);
    let (_, err) = a.stop();
    raw.close().await;
    let (code, out, verify) = run(&["audit", "verify"], &db);
    assert_eq!(code, 0, "{out}{verify}\n{err}");
}
