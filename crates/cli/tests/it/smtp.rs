//! One-time codes by SMTP: `steward serve --smtp-url` against a real SMTP server (PyPI's
//! aiosmtpd, installed by `scripts/ensure-mail`; see `mail.rs`).

use serde_json::json;

use crate::mail::{Smtp, free_port};
use crate::support::{Kind, Server, TestDb, run, token_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_go_out_by_smtp_and_verify_a_request() {
    let db = TestDb::new(Kind::Sqlite).await;
    let port = free_port();
    let sink = Smtp::start(port, &[]);
    let (code, out, err) = run(
        &[
            "token",
            "create",
            "--name",
            "desk",
            "--role",
            "support_agent",
            "--init",
        ],
        &db,
    );
    assert_eq!(code, 0, "{err}");
    let token = token_in(&out);
    let smtp = format!("smtp://127.0.0.1:{port}");
    let server = Server::start(
        &db,
        &[
            "--smtp-url",
            &smtp,
            "--mail-from",
            "Privacy Desk <privacy@example.com>",
        ],
        &[],
    );
    let (s, c) = server.json(
        "POST",
        "/v1/customers",
        Some(&token),
        Some(&json!({"name": "Sam Smtp", "email": "sam.smtp@example.org"})),
    );
    assert_eq!(s, 201, "{c}");
    let id = c["id"].as_str().unwrap().to_owned();
    let (s, r) = server.json(
        "POST",
        "/v1/requests",
        Some(&token),
        Some(&json!({"type": "export", "customer_id": id})),
    );
    assert_eq!(s, 201, "{r}");

    let data = sink
        .messages()
        .pop()
        .expect("the SMTP server received a message")
        .replace("\r\n", "\n");
    assert!(data.contains("To: sam.smtp@example.org"), "{data}");
    assert!(
        data.contains("From: \"Privacy Desk\" <privacy@example.com>")
            || data.contains("From: Privacy Desk <privacy@example.com>"),
        "{data}"
    );
    let code = data
        .lines()
        .find(|l| l.len() == 8 && l.chars().all(|c| c.is_ascii_digit()))
        .expect("a code line")
        .to_owned();
    let path = format!("/v1/requests/{}/verify", r["id"].as_str().unwrap());
    let (s, r) = server.json("POST", &path, Some(&token), Some(&json!({"code": code})));
    assert_eq!((s, &r["status"]), (200, &json!("fulfilled")), "{r}");
    let (_, logs) = server.stop();
    assert!(!logs.contains(&code), "the code is never logged");
    assert!(!logs.contains("sam.smtp@example.org"), "nor the address");
}
