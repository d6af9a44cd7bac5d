//! One-time codes by SMTP: `steward serve --smtp-url` against a real SMTP server the test starts
//! on loopback (a minimal sink speaking RFC 5321: greeting, EHLO, MAIL, RCPT, DATA, QUIT).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::support::{Kind, Server, TestDb, run, token_in};

/// Accepts SMTP sessions on a loopback port; every message's DATA lands in the returned list.
fn smtp_sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the SMTP sink");
    let port = listener.local_addr().unwrap().port();
    let messages = Arc::new(Mutex::new(Vec::new()));
    let store = messages.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut out) = stream else { continue };
            let store = store.clone();
            std::thread::spawn(move || {
                let mut input = BufReader::new(out.try_clone().unwrap());
                let _ = out.write_all(b"220 steward-test-sink ESMTP\r\n");
                let mut line = String::new();
                loop {
                    line.clear();
                    if input.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 steward-test-sink\r\n",
                        "DATA" => {
                            let _ = out.write_all(b"354 end with <CRLF>.<CRLF>\r\n");
                            let mut data = String::new();
                            loop {
                                let mut l = String::new();
                                if input.read_line(&mut l).unwrap_or(0) == 0 {
                                    return;
                                }
                                if l == ".\r\n" {
                                    break;
                                }
                                data.push_str(&l);
                            }
                            store.lock().unwrap().push(data);
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            let _ = out.write_all(b"221 bye\r\n");
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    let _ = out.write_all(reply);
                }
            });
        }
    });
    (port, messages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_go_out_by_smtp_and_verify_a_request() {
    let db = TestDb::new(Kind::Sqlite).await;
    let (port, messages) = smtp_sink();
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

    let data = messages
        .lock()
        .unwrap()
        .pop()
        .expect("the sink received a message");
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
