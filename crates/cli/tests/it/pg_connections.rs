//! A server on PostgreSQL whose connections the database ends (a restart, a failover, a
//! terminated backend) serves the next request on new ones: the point reads and the audit
//! appends keep connections of their own, trusted unasked for a second after their last use.

use crate::cluster::token;
use crate::support::{Kind, Server, TestDb, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_survive_the_database_ending_every_connection() {
    let db = TestDb::new(Kind::Postgres).await;
    let (support, _) = token(&db, "support_agent");
    let server = Server::start(&db, &[], &[]);
    let (s, v) = server.json(
        "POST",
        "/v1/customers",
        Some(&support),
        Some(&serde_json::json!({"name": "Kept Reading"})),
    );
    assert_eq!(s, 201, "{v}");
    let path = format!(
        "/v1/customers/{}?purpose=service",
        v["id"].as_str().unwrap()
    );
    let read = || server.http("GET", &path, Some(&support), None);
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let end_every_connection = || async {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&crate::support::pg_admin_url())
            .await
            .unwrap();
        let ended: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&name)
        .fetch_all(&mut admin)
        .await
        .unwrap();
        assert!(!ended.is_empty(), "the server had connections to end");
    };
    for round in 0..3 {
        let (s, body) = read();
        assert_eq!(s, 200, "round {round}, before: {body}");
        // Soon after: the read's kept connections answered less than a second ago and are not
        // asked (the read runs again on a new one); the audit append's is asked after a tenth
        // of a second of quiet (a write is never run twice; one ended in that moment would fail
        // its batch, closed).
        end_every_connection().await;
        std::thread::sleep(std::time::Duration::from_millis(150));
        let (s, body) = read();
        assert_eq!(
            s,
            200,
            "round {round}, right after the database ended its connections: {body}\n{}",
            std::fs::read_to_string(&server.stderr).unwrap_or_default()
        );
    }
    // After a quiet second: asked first, replaced.
    end_every_connection().await;
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let (s, body) = read();
    assert_eq!(s, 200, "after a quiet second: {body}");
    let (_, err) = server.stop();
    let (code, out, verify) = run(&["audit", "verify"], &db);
    assert_eq!(code, 0, "{out}{verify}\n{err}");
}
