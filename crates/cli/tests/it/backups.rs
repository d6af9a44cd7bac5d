//! Erasure stays final when the database comes back from a backup taken before it (issue 24):
//! a logical dump restored over the database, or the whole server restored from a physical base
//! backup. Every node replays the erasure journal they share, which no database backup holds.

use crate::pg_instance::PgInstance;
use crate::support::{Kind, Server, TestDb, run};

use crate::cluster::token;

/// How the database is backed up and brought back.
#[derive(Clone, Copy, PartialEq)]
enum Backup {
    /// `pg_dump -Fc`, then the database dropped and `pg_restore`d.
    Dump,
    /// `pg_basebackup` of the whole server, then the server lost and started from the copy.
    Base,
}

/// A node of its own: a data directory holding copies of the installation's key files (as
/// every machine of a deployment would), the erasure journal on storage all nodes share.
fn node_dir(db: &TestDb, n: usize) -> std::path::PathBuf {
    let dir = db.dir.path().join(format!("node-{n}"));
    std::fs::create_dir_all(&dir).unwrap();
    for key in ["master.key", "audit-signing.key"] {
        std::fs::copy(db.dir.path().join(key), dir.join(key)).unwrap();
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_dump_brings_no_erased_customer_back_on_any_node() {
    nobody_comes_back(Backup::Dump).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_base_backup_brings_no_erased_customer_back_on_any_node() {
    nobody_comes_back(Backup::Base).await;
}

async fn nobody_comes_back(how: Backup) {
    // A physical backup copies a whole server: one of the test's own, not the shared one.
    let mut server = (how == Backup::Base).then(PgInstance::init);
    let db = match &server {
        Some(pg) => TestDb::on_server(&pg.admin_url()).await,
        None => TestDb::new(Kind::Postgres).await,
    };
    let (dpo, _) = token(&db, "dpo");
    let (support, _) = token(&db, "support_agent");
    let journal = db.dir.path().join("shared").join("erasures.journal");
    std::fs::create_dir_all(journal.parent().unwrap()).unwrap();
    let journal_arg = journal.display().to_string();
    let extra = ["--erasure-journal", journal_arg.as_str()];
    let dirs: Vec<_> = (0..3).map(|n| node_dir(&db, n)).collect();
    let start = || -> Vec<Server> {
        dirs.iter()
            .map(|d| Server::start_in(&db, d, &extra, &[]))
            .collect()
    };
    let nodes = start();
    let (s, v) = nodes[0].json(
        "POST",
        "/v1/customers",
        Some(&support),
        Some(&crate::support::customer_json(
            "Ada Erased",
            "ada.erased@example.org",
            "+44 20 7946 0000",
            "1 Gone Street",
        )),
    );
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let kept = nodes[2]
        .json(
            "POST",
            "/v1/customers",
            Some(&support),
            Some(&serde_json::json!({"name": "Kept"})),
        )
        .1["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The backup a managed PostgreSQL would take: before the erasure.
    let dump = db.dir.path().join("before-erasure.dump");
    let base = match &server {
        Some(pg) => Some(pg.base_backup()),
        None => {
            crate::pg_instance::run(
                std::process::Command::new("pg_dump").args([
                    "-Fc",
                    "-d",
                    &db.url,
                    "-f",
                    dump.to_str().unwrap(),
                ]),
                "pg_dump",
            );
            None
        }
    };

    let (s, report) = nodes[1].json("DELETE", &format!("/v1/customers/{id}"), Some(&dpo), None);
    assert_eq!(s, 200, "{report}");
    for n in nodes {
        n.stop();
    }

    match (server.as_mut(), base) {
        // The database server is lost and started again from its base backup, on the same
        // address, as an operator restoring the machine would.
        (Some(pg), Some(base)) => pg.replace_with(base),
        _ => restore_dump(&db, &dump).await,
    }
    let keys = || async {
        let raw = db.raw().await;
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM data_keys WHERE customer_id = decode($1, 'hex')",
        )
        .bind(id.replace('-', ""))
        .fetch_one(&raw)
        .await
        .unwrap();
        raw.close().await;
        n
    };
    assert_eq!(keys().await, 1, "the dump holds the erased customer's key");

    // Every node replays the shared journal before it serves: nobody is brought back.
    let nodes = start();
    for (i, n) in nodes.iter().enumerate() {
        let (s, body) = n.http(
            "GET",
            &format!("/v1/customers/{id}?purpose=service"),
            Some(&support),
            None,
        );
        assert_eq!(
            s, 404,
            "node {i} served a customer erased after the backup: {body}"
        );
        let (s, _) = n.http(
            "GET",
            &format!("/v1/customers/{kept}?purpose=service"),
            Some(&support),
            None,
        );
        assert_eq!(s, 200, "node {i} lost a customer who was not erased");
    }
    assert_eq!(keys().await, 0, "the key is destroyed again");
    for n in nodes {
        n.stop();
    }
    // A node started with a journal of its own says, loudly, that it does not share the
    // installation's.
    let lonely = node_dir(&db, 3);
    let (_, err) = Server::start_in(&db, &lonely, &[], &[]).stop();
    assert!(
        err.contains("missing from this server's erasure journal"),
        "{err}"
    );
    let (code, out, err) = run(&["audit", "verify"], &db);
    assert_eq!(code, 0, "{out}{err}");
}

/// The dump restored over the database: the customer's row and data key are back in it.
async fn restore_dump(db: &TestDb, dump: &std::path::Path) {
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&crate::support::pg_admin_url())
            .await
            .unwrap();
        for q in [
            format!("DROP DATABASE {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(q))
                .execute(&mut c)
                .await
                .unwrap();
        }
    }
    crate::pg_instance::run(
        std::process::Command::new("pg_restore").args(["-d", &db.url, dump.to_str().unwrap()]),
        "pg_restore",
    );
}
