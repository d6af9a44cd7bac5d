//! Accounts with an end (issue 17, point 5): tokens listed and revoked by the admin (API) and the
//! operator (CLI), staff members disabled with every token and session they hold, on both
//! backends.

use axum::http::StatusCode;
use serde_json::json;
use steward_domain::Role;
use steward_service::TokenOwner;

use crate::access::{call, token};
use crate::console::{csrf_in, pair, send, set_cookie};
use crate::support::{TestDb, backend_tests};

backend_tests!(tokens_and_staff_come_to_an_end);

/// Signs `login` in to the console; `None` if refused.
async fn console_sign_in(app: &axum::Router, login: &str, password: &str) -> Option<String> {
    let (_, h, page) = send(app, "GET", "/console/sign-in", None, None).await;
    let pre = pair(set_cookie(&h, "steward_csrf"));
    let csrf = csrf_in(&page);
    let form = [
        ("csrf", csrf.as_str()),
        ("login", login),
        ("password", password),
    ];
    let (s, h, _) = send(app, "POST", "/console/sign-in", Some(&pre), Some(&form)).await;
    (s == StatusCode::SEE_OTHER).then(|| pair(set_cookie(&h, "steward_session")))
}

async fn tokens_and_staff_come_to_an_end(db: TestDb) {
    let (v, op, _) = db.open().await;
    let outlet = v
        .directory()
        .create_outlet(op.into(), "Leaving Outlet")
        .await
        .unwrap();
    let admin = token(&v, TokenOwner::Role(Role::Admin)).await;
    let (support_id, support) = v
        .identity()
        .create_token(op, "till", TokenOwner::Role(Role::SupportAgent))
        .await
        .unwrap();
    let support = support.to_string();
    let staff = v
        .directory()
        .create_staff(op.into(), "Lea Leaving", &[Role::StoreManager], &[outlet])
        .await
        .unwrap();
    let password = "a long enough password";
    v.identity()
        .set_staff_password(op, staff, "lea", zeroize::Zeroizing::new(password.into()))
        .await
        .unwrap();
    let lea = token(&v, TokenOwner::Staff(staff)).await;
    let app = steward_api::router(v.clone());

    // The admin lists tokens (no secret in sight); nobody else does.
    let (s, list) = call(&app, &admin, "GET", "/v1/tokens", None, false).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let mine = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == support_id.to_string())
        .cloned()
        .unwrap();
    assert_eq!(
        (
            mine["name"].as_str(),
            mine["owner"].as_str(),
            mine["state"].as_str()
        ),
        (Some("till"), Some("role:support_agent"), Some("active"))
    );
    assert!(!list.to_string().contains("argon2") && !list.to_string().contains(&support));
    let (s, _) = call(&app, &support, "GET", "/v1/tokens", None, false).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Revocation: refused to others; the admin's takes effect on the next request.
    let path = format!("/v1/tokens/{support_id}");
    let (s, _) = call(&app, &support, "DELETE", &path, None, false).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(&app, &support, "GET", "/v1/purposes", None, false).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = call(&app, &admin, "DELETE", &path, None, false).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (s, _) = call(&app, &support, "GET", "/v1/purposes", None, false).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(&app, &admin, "DELETE", &path, None, false).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "revoking twice changes nothing");
    let unknown = format!("/v1/tokens/{}", steward_domain::TokenId::new());
    let (s, _) = call(&app, &admin, "DELETE", &unknown, None, false).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = call(&app, &admin, "DELETE", "/v1/tokens/not-an-id", None, false).await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("id"))
    );

    // Disabling a staff member ends their token and their console session at once, and they
    // cannot sign in again until enabled.
    let session = console_sign_in(&app, "lea", password).await.unwrap();
    let (s, _, _) = send(&app, "GET", "/console", Some(&session), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&app, &lea, "GET", "/v1/outlets", None, false).await;
    assert_eq!(s, StatusCode::OK);
    let staff_path = format!("/v1/staff/{staff}");
    let (s, _) = call(
        &app,
        &lea,
        "PATCH",
        &staff_path,
        Some(json!({"disabled": true})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = call(&app, &admin, "PATCH", &staff_path, Some(json!({})), false).await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("body"))
    );
    let (s, b) = call(
        &app,
        &admin,
        "PATCH",
        &staff_path,
        Some(json!({"disabled": true})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (s, _) = call(&app, &lea, "GET", "/v1/outlets", None, false).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, h, _) = send(&app, "GET", "/console", Some(&session), None).await;
    assert_eq!(
        (s, h["location"].to_str().unwrap()),
        (StatusCode::SEE_OTHER, "/console/sign-in")
    );
    assert!(console_sign_in(&app, "lea", password).await.is_none());
    let (_, staff_list) = call(&app, &admin, "GET", "/v1/staff", None, false).await;
    let listed = staff_list
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == staff.to_string())
        .cloned()
        .unwrap();
    assert_eq!(listed["disabled"], true);
    let unknown = format!("/v1/staff/{}", steward_domain::StaffId::new());
    let (s, _) = call(
        &app,
        &admin,
        "PATCH",
        &unknown,
        Some(json!({"disabled": true})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Enabled again: signs in; the old token stays revoked.
    let (s, _) = call(
        &app,
        &admin,
        "PATCH",
        &staff_path,
        Some(json!({"disabled": false})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(console_sign_in(&app, "lea", password).await.is_some());
    let (s, _) = call(&app, &lea, "GET", "/v1/outlets", None, false).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // The operator at the command line: every token a line, one revoked.
    v.audit().flush().await.unwrap();
    drop((app, v));
    let (code, out, err) = crate::support::run(&["token", "list"], &db);
    assert_eq!(code, 0, "{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with(&support_id.to_string()))
        .unwrap_or_else(|| panic!("no line for the till token: {out}"));
    let cells: Vec<&str> = line.split('\t').collect();
    assert_eq!(
        (cells[1], cells[2], cells[5]),
        ("till", "role:support_agent", "revoked")
    );
    assert!(out.contains(&format!("staff:{staff}")), "{out}");
    let admin_id = out
        .lines()
        .find(|l| l.contains("role:admin") && l.ends_with("active"))
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .to_owned();
    let (code, _, err) = crate::support::run(&["token", "revoke", &admin_id], &db);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = crate::support::run(&["token", "list"], &db);
    assert!(
        out.lines()
            .any(|l| l.starts_with(&admin_id) && l.ends_with("revoked")),
        "{out}"
    );
    let (code, _, err) = crate::support::run(&["token", "revoke", "nonsense"], &db);
    assert_ne!(code, 0);
    assert!(err.contains("not a token id"), "{err}");
}
