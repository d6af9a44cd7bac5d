//! Staff sign-in: `steward staff password`, `POST /v1/sessions`, `DELETE /v1/sessions/current`;
//! expiry, revocation, the audit entries of every attempt (naming neither login nor password),
//! and the per-address brake on failed sign-ins.

use std::io::Write;

use axum::http::StatusCode;
use steward_domain::Role;

use crate::support::{Kind, Server, TestDb, backend_tests, oneshot, steward};

const LOGIN: &str = "Alice.Kowalska";
const PASSWORD: &str = "correct horse battery staple";

/// `steward staff password --staff ID --login L` with `password` on standard input.
fn set_password(db: &TestDb, staff: &str, login: &str, password: &str) -> (i32, String) {
    let mut child = steward()
        .args(["staff", "password", "--staff", staff, "--login", login])
        .args(db.cli_args())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sign_in_body(login: &str, password: &str) -> Option<String> {
    Some(serde_json::json!({"login": login, "password": password}).to_string())
}

/// Every audit leaf, as text.
async fn leaves(db: &TestDb) -> Vec<String> {
    use sqlx::Row;
    sqlx::query("SELECT leaf FROM audit_entries ORDER BY idx")
        .fetch_all(&db.raw_log().await)
        .await
        .unwrap()
        .iter()
        .map(|r| crate::support::leaf_text(&r.get::<Vec<u8>, _>(0)))
        .collect()
}

backend_tests!(staff_sign_in_and_out);

async fn staff_sign_in_and_out(db: TestDb) {
    let (vault, op, _) = db.open().await;
    let outlet = vault
        .directory()
        .create_outlet(op.into(), "Geneva")
        .await
        .unwrap();
    let staff = vault
        .directory()
        .create_staff(
            op.into(),
            "Alice Kowalska",
            &[Role::SalesAssociate],
            &[outlet],
        )
        .await
        .unwrap();

    let (code, err) = set_password(&db, &staff.to_string(), LOGIN, "too short");
    assert_ne!(code, 0);
    assert!(err.contains("password"), "{err}");
    assert!(
        !err.contains("too short"),
        "the error repeats the password: {err}"
    );
    let (code, err) = set_password(&db, &staff.to_string(), LOGIN, PASSWORD);
    assert_eq!(code, 0, "{err}");

    let api = steward_api::router(vault.clone());
    let post = |body| {
        oneshot(
            &api,
            None,
            "POST",
            "/v1/sessions",
            body,
            Some("application/json"),
            &[],
        )
    };
    // Wrong password and unknown login: the same answer.
    let (s, ct, wrong) = post(sign_in_body(LOGIN, "correct horse battery stapler")).await;
    assert_eq!(
        (s, ct.as_str()),
        (StatusCode::UNAUTHORIZED, "application/problem+json")
    );
    let (s, _, unknown) = post(sign_in_body("nobody.here", PASSWORD)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong, unknown,
        "a wrong login must look like a wrong password"
    );
    assert_eq!(wrong["type"], "/problems/sign-in-failed");

    // The login is case-insensitive; the session acts for the staff member.
    let (s, _, session) = post(sign_in_body(&LOGIN.to_uppercase(), PASSWORD)).await;
    assert_eq!(s, StatusCode::CREATED, "{session}");
    assert_eq!(session["roles"], serde_json::json!(["sales_associate"]));
    assert_eq!(
        session["outlet_ids"],
        serde_json::json!([outlet.to_string()])
    );
    let token = session["token"].as_str().unwrap().to_owned();
    let (s, _, _) = oneshot(&api, Some(&token), "GET", "/v1/purposes", None, None, &[]).await;
    assert_eq!(s, StatusCode::OK);

    // Signing out revokes it at once.
    let (s, _, _) = oneshot(
        &api,
        Some(&token),
        "DELETE",
        "/v1/sessions/current",
        None,
        None,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = oneshot(&api, Some(&token), "GET", "/v1/purposes", None, None, &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // An expired session is refused (expiry set in the past before its first use).
    let (_, _, later) = post(sign_in_body(LOGIN, PASSWORD)).await;
    let later_token = later["token"].as_str().unwrap().to_owned();
    sqlx::query(
        "UPDATE api_tokens SET expires_at = 1 WHERE expires_at IS NOT NULL AND revoked_at IS NULL",
    )
    .execute(&db.raw().await)
    .await
    .unwrap();
    let (s, _, _) = oneshot(
        &api,
        Some(&later_token),
        "GET",
        "/v1/purposes",
        None,
        None,
        &[],
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "an expired session still works"
    );
    // Retention deletes sessions dead for over a day (the expired one; the one revoked just
    // now keeps its row for a day), counting them first in a dry run.
    let sessions = || async {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) FROM api_tokens WHERE expires_at IS NOT NULL")
            .fetch_one(&db.raw().await)
            .await
            .unwrap()
            .get::<i64, _>(0)
    };
    assert_eq!(sessions().await, 2);
    assert_eq!(vault.run_retention(op, true).await.unwrap().sessions, 1);
    assert_eq!(sessions().await, 2, "a dry run deleted");
    assert_eq!(vault.run_retention(op, false).await.unwrap().sessions, 1);
    assert_eq!(sessions().await, 1);

    // Every attempt is in the audit log, and nothing there spells the login or the password.
    vault.audit().flush().await.unwrap();
    let all = leaves(&db).await;
    let of = |action: &str, outcome: &str| {
        all.iter()
            .filter(|l| {
                l.contains(&format!("\"action\":\"{action}\""))
                    && l.contains(&format!("\"outcome\":\"{outcome}\""))
            })
            .count()
    };
    assert_eq!(of("sign_in", "denied"), 2);
    assert_eq!(of("sign_in", "done"), 2);
    assert_eq!(of("sign_out", "done"), 1);
    assert_eq!(of("set_password", "done"), 1);
    for l in &all {
        let lower = l.to_lowercase();
        assert!(
            !lower.contains("alice") && !lower.contains("kowalska"),
            "{l}"
        );
        assert!(!l.contains("horse") && !l.contains("nobody.here"), "{l}");
    }
    // Nor the database: the login is kept as a MAC, the password as an Argon2id hash.
    use sqlx::Row;
    let stored = sqlx::query("SELECT login_mac, password_hash FROM staff_credentials")
        .fetch_all(&db.raw().await)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    let mac: Vec<u8> = stored[0].get(0);
    let hash: String = stored[0].get(1);
    assert_eq!(mac.len(), 16);
    assert!(hash.starts_with("$argon2id$") && !hash.contains("horse"));
}

/// Failed sign-ins from one address are braked like bad tokens: past ten in a minute, 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_braked_per_address() {
    let db = TestDb::new(Kind::Sqlite).await;
    let server = Server::start(&db, &[], &[]);
    let body = serde_json::json!({"login": "someone", "password": "not the password at all"});
    let statuses: Vec<u16> = (0..12)
        .map(|_| server.json("POST", "/v1/sessions", None, Some(&body)).0)
        .collect();
    assert!(statuses[..10].iter().all(|s| *s == 401), "{statuses:?}");
    let (s, problem) = server.json("POST", "/v1/sessions", None, Some(&body));
    assert_eq!(s, 429, "{problem}");
    assert_eq!(problem["type"], "/problems/too-many-failed-sign-ins");
}

/// A console cookie that is no session counts as a failed attempt from its address, like a bad
/// bearer token: past ten in a minute, the console answers 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bogus_session_cookies_are_braked_per_address() {
    use std::io::{Read, Write};
    let db = TestDb::new(Kind::Sqlite).await;
    let server = Server::start(&db, &[], &[]);
    let get = |path: &str| {
        let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
        let cookie = "steward_session=stw_0123456789abcdef0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: t\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split(' ')
            .nth(1)
            .and_then(|c| c.parse::<u16>().ok())
            .unwrap_or(0)
    };
    let statuses: Vec<u16> = (0..10).map(|_| get("/console")).collect();
    assert!(statuses.iter().all(|s| *s == 303), "{statuses:?}");
    assert_eq!(get("/console"), 429);
}
