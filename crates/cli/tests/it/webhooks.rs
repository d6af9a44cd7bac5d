//! Changes follow the data (issue 22), through the real binary: `steward serve` delivers each
//! notification to a real HTTP receiver (Python's `http.server`) that verifies its Standard
//! Webhooks `v1a` signature with PyNaCl and the key Steward publishes; the receiver is down for a
//! while, then up, and Steward is killed with SIGKILL mid-delivery: every notification arrives,
//! each `webhook-id` at least once, none lost.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::mail::{free_port, mail_tools, scripts};
use crate::support::{Server, TestDb, backend_tests, run, token_in};

backend_tests!(notifications_arrive_signed_through_an_outage_and_a_kill);

/// The receiver on `port`, logging to `log`, verifying with `key`.
struct Receiver(Child);

impl Receiver {
    fn start(port: u16, log: &std::path::Path, key: &str, delay: f64) -> Receiver {
        let mut child = Command::new(mail_tools().join("bin/python"))
            .arg(scripts().join("webhooks/receiver.py"))
            .arg(port.to_string())
            .arg(log)
            .args(["--key", key, "--delay", &delay.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the webhook receiver");
        let mut ready = [0u8; 5];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut ready)
            .expect("the receiver says ready");
        assert_eq!(&ready, b"ready");
        Receiver(child)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the receiver logged: one line per request.
fn received(log: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Every notification as the DPO sees it: id → status.
fn outbox(server: &Server, dpo: &str) -> HashMap<String, String> {
    let (s, v) = server.json("GET", "/v1/notifications?limit=500", Some(dpo), None);
    assert_eq!(s, 200, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["id"].as_str().unwrap().to_owned(),
                n["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn token(db: &TestDb, args: &[&str]) -> String {
    let mut all = vec!["token", "create", "--name", "t"];
    all.extend_from_slice(args);
    let (code, out, err) = run(&all, db);
    assert_eq!(code, 0, "{err}");
    token_in(&out)
}

async fn notifications_arrive_signed_through_an_outage_and_a_kill(db: TestDb) {
    let (dpo, agent) = (
        token(&db, &["--role", "dpo", "--init"]),
        token(&db, &["--role", "support_agent"]),
    );
    let flags = ["--allow-insecure-webhooks", "--webhook-lease-secs", "3"];
    let server = Server::start(&db, &flags, &[]);
    let port = free_port();
    let (s, v) = server.json(
        "POST",
        "/v1/recipients",
        Some(&dpo),
        Some(
            &json!({"name": "Parcel Co", "kind": "processor", "country": "DE",
                     "webhook_url": format!("http://127.0.0.1:{port}/hooks")}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    let recipient = v["id"].as_str().unwrap().to_owned();
    let now = steward_domain::Timestamp::now().millis();
    let (s, v) = server.json(
        "POST",
        "/v1/agreements",
        Some(&dpo),
        Some(&json!({"recipient_id": recipient, "purposes": ["order_fulfilment"],
                     "categories": ["user.name", "user.contact.address"], "lawful_basis": "contract",
                     "document_sha256": "ab".repeat(32), "identity": "identified",
                     "starts_at": steward_domain::Timestamp(now - 60_000).to_rfc3339(),
                     "expires_at": steward_domain::Timestamp(now + 86_400_000).to_rfc3339()})),
    );
    assert_eq!(s, 201, "{v}");
    let parcel = token(&db, &["--recipient", &recipient]);
    let (s, keys) = server.json("GET", "/.well-known/webhook-keys.json", None, None);
    assert_eq!(s, 200, "{keys}");
    let key = keys["keys"][0]["public_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("whpk_"), "{keys}");

    // Thirty customers the recipient received, then corrected while the receiver is down.
    const N: usize = 30;
    let mut ids = Vec::new();
    for i in 0..N {
        let (s, c) = server.json(
            "POST",
            "/v1/customers",
            Some(&agent),
            Some(&json!({"name": format!("Hook Person{i}"), "email": format!("hook{i}@example.com")})),
        );
        assert_eq!(s, 201, "{c}");
        let id = c["id"].as_str().unwrap().to_owned();
        let (s, v) = server.json(
            "GET",
            &format!("/v1/customers/{id}?purpose=order_fulfilment"),
            Some(&parcel),
            None,
        );
        assert_eq!(s, 200, "{v}");
        ids.push(id);
    }
    for id in &ids {
        let (s, v) = server.json(
            "PATCH",
            &format!("/v1/customers/{id}"),
            Some(&agent),
            Some(&json!({"name": "Renamed Person"})),
        );
        assert_eq!(s, 204, "{v}");
    }
    // Down: tried, refused by the connection, still pending; the changes were never held up.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = server.json("GET", "/v1/notifications?limit=500", Some(&dpo), None);
        let items = v["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), N, "one per change: {v}");
        if items.iter().all(|n| n["attempts"].as_i64() >= Some(1)) {
            assert!(items.iter().all(|n| n["status"] == "pending"), "{v}");
            assert!(
                items.iter().all(|n| n["last_error"] == "could not connect"),
                "{v}"
            );
            assert!(
                items.iter().all(|n| n["type"] == "customer.rectified"),
                "{v}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never tried: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Up, slowly; Steward killed mid-delivery, then started again.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("received.jsonl");
    let _receiver = Receiver::start(port, &log, &key, 0.2);
    let deadline = Instant::now() + Duration::from_secs(60);
    while received(&log).len() < 3 {
        assert!(Instant::now() < deadline, "nothing arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
    server.kill();
    let before_restart = received(&log).len();
    assert!(
        before_restart < N,
        "killed mid-delivery: {before_restart} arrived"
    );
    let server = Server::start(&db, &flags, &[]);
    // An erasure after the restart follows too.
    let (s, v) = server.json(
        "DELETE",
        &format!("/v1/customers/{}", ids[0]),
        Some(&dpo),
        None,
    );
    assert!(s == 200 || s == 204, "{v}");
    let deadline = Instant::now() + Duration::from_secs(90);
    let expected = loop {
        let out = outbox(&server, &dpo);
        if out.values().all(|s| s == "delivered") && out.len() > N {
            break out;
        }
        assert!(Instant::now() < deadline, "not all delivered: {out:?}");
        std::thread::sleep(Duration::from_millis(250));
    };
    let lines = received(&log);
    assert!(
        lines.iter().all(|l| l["verified"] == true),
        "every notification verified with the published key"
    );
    let arrived: HashSet<&str> = lines.iter().filter_map(|l| l["id"].as_str()).collect();
    for id in expected.keys() {
        assert!(arrived.contains(id.as_str()), "{id} never arrived");
    }
    for l in &lines {
        let body = &l["body"];
        let customer = body["customer"].as_str().unwrap();
        assert!(ids.iter().any(|i| i == customer), "{body}");
        assert_eq!(body["recipient"], recipient.as_str(), "{body}");
        assert!(
            !body["timestamp"].as_str().unwrap().contains('.'),
            "to the second: {body}"
        );
        let text = body.to_string();
        assert!(
            !text.contains("Renamed")
                && !text.contains("Hook Person")
                && !text.contains("@example.com"),
            "no value leaves: {text}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l["body"]["type"] == "customer.erased"
                && l["body"]["customer"] == ids[0].as_str()),
        "the erasure followed"
    );
    let (_, logs) = server.stop();
    assert!(!logs.contains("Renamed Person"), "no value in the logs");
}
