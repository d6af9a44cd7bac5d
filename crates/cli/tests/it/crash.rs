//! Crash safety: `steward serve` killed with SIGKILL during concurrent writes, ten times, on
//! SQLite and PostgreSQL. Every acknowledged write must be there afterwards and readable, no
//! half-written customer may exist, and `steward audit verify` must pass.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::Row;

use crate::support::{Server, TestDb, backend_tests, run, token_in};

backend_tests!(acknowledged_writes_survive_sigkill);

/// The load here is the point, not the rate limit.
/// The test reads back every customer it wrote, as no person would in an hour.
const UNLIMITED: &[&str] = &[
    "--rate-limit",
    "default=1000000/1000000",
    "--bulk-limit",
    "support_agent=none",
];

/// One request; `None` when the server is gone or answered nothing.
fn post(addr: &str, token: &str, path: &str, body: &Value) -> Option<(u16, Value)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let body = body.to_string();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split(' ').nth(1)?.parse().ok()?;
    let (_, b) = out.split_once("\r\n\r\n")?;
    Some((status, serde_json::from_str(b).unwrap_or(Value::Null)))
}

async fn acknowledged_writes_survive_sigkill(db: TestDb) {
    let (code, out, err) = run(
        &[
            "token",
            "create",
            "--name",
            "crash",
            "--role",
            "support_agent",
            "--init",
        ],
        &db,
    );
    assert_eq!(code, 0, "{err}");
    let token = token_in(&out);
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::new(Mutex::new(Vec::new()));
    for round in 0..10u64 {
        let server = Server::start(&db, UNLIMITED, &[]);
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let (addr, token, acked, stop) = (server.addr.clone(), token.clone(), acked.clone(), stop.clone());
                std::thread::spawn(move || {
                    for n in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let name = format!("Crash {round}-{t}-{n}");
                        let body = json!({"name": name, "email": format!("crash.{round}.{t}.{n}@example.org")});
                        match post(&addr, &token, "/v1/customers", &body) {
                            Some((201, v)) => acked
                                .lock()
                                .unwrap()
                                .push((v["id"].as_str().unwrap().to_owned(), name)),
                            Some((s, v)) => panic!("a write failed before the kill: {s} {v}"),
                            None => return,
                        }
                    }
                })
            })
            .collect();
        // Killed at a different moment each round, while every writer is mid-stream.
        std::thread::sleep(Duration::from_millis(250 + (round * 97) % 500));
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().expect("a writer panicked");
        }
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 40,
        "the writers wrote too little to prove anything: {}",
        acked.len()
    );

    // Every acknowledged customer is there and opens to what was written.
    let server = Server::start(&db, UNLIMITED, &[]);
    for (id, name) in &acked {
        let (s, c) = server.json(
            "GET",
            &format!("/v1/customers/{id}?purpose=service"),
            Some(&token),
            None,
        );
        assert_eq!((s, &c["name"]), (200, &json!(name)), "{id}");
    }
    server.stop();
    // Nothing half-written: every customer has its key and its look-up, and opens.
    let raw = db.raw().await;
    let orphans: i64 = sqlx::query(
        "SELECT COUNT(*) FROM customers c WHERE NOT EXISTS (SELECT 1 FROM data_keys k WHERE k.customer_id = c.id) \
         OR NOT EXISTS (SELECT 1 FROM lookup_index l WHERE l.customer_id = c.id) \
         OR NOT EXISTS (SELECT 1 FROM lookup_owners o WHERE o.customer_id = c.id)",
    )
    .fetch_one(&raw)
    .await
    .unwrap()
    .get(0);
    assert_eq!(orphans, 0);
    let stored: i64 = sqlx::query("SELECT COUNT(*) FROM customers")
        .fetch_one(&raw)
        .await
        .unwrap()
        .get(0);
    assert!(stored as usize >= acked.len());
    raw.close().await;
    let (code, out, err) = run(
        &[
            "export",
            "--out",
            db.dir.path().join("all.jsonl").to_str().unwrap(),
        ],
        &db,
    );
    assert_eq!(code, 0, "every stored customer opens: {out} {err}");
    // Each customer's creation reached the Merkle log, and the log verifies.
    let log = db.raw_log().await;
    let created: i64 =
        sqlx::query("SELECT COUNT(*) FROM audit_entries WHERE action = 'create_customer'")
            .fetch_one(&log)
            .await
            .unwrap()
            .get(0);
    log.close().await;
    assert_eq!(created, stored, "one creation entry per stored customer");
    let (code, out, err) = run(&["audit", "verify"], &db);
    assert_eq!(code, 0, "audit verify after ten SIGKILLs: {out} {err}");
}
