//! Staff who have agreed to the rules (issue 17, point 8): until a confidentiality notice is
//! published nothing is required; then a staff member reads nothing personal (403
//! `/problems/acknowledgement-required`) until they acknowledge the current version, again when it
//! changes and after 12 months; service clients are not asked; the console shows the notice
//! first and the DPO sees who has not acknowledged it. Both backends.

use axum::http::{StatusCode, header};
use serde_json::json;
use sqlx::Row;
use steward_domain::Role;
use steward_service::TokenOwner;

use crate::access::{call, token};
use crate::console::send;
use crate::door::console_session;
use crate::support::{TestDb, backend_tests, operator_customer};

backend_tests!(reads_wait_for_the_confidentiality_notice_to_be_acknowledged);

async fn reads_wait_for_the_confidentiality_notice_to_be_acknowledged(db: TestDb) {
    let (vault, op, _) = db.open().await;
    let outlet = vault
        .directory()
        .create_outlet(op.into(), "Notice Outlet")
        .await
        .unwrap();
    let password = "a long enough password";
    for (name, role, login) in [
        ("Nat Seller", Role::SalesAssociate, "nat"),
        ("Dot Dpo", Role::Dpo, "dot"),
    ] {
        let _ =
            crate::support::staff_member(&vault, op, (name, role, &[outlet]), (login, password))
                .await;
    }
    let customer = operator_customer(
        &vault,
        op,
        json!({"name": "Noa Notice", "outlet_id": outlet}),
    )
    .await;
    let app = steward_api::router(vault.clone());
    let nat = vault
        .identity()
        .sign_in("nat", zeroize::Zeroizing::new(password.into()))
        .await
        .unwrap()
        .unwrap();
    let nat_token = nat.token.as_str().to_owned();
    let dpo = token(&vault, TokenOwner::Role(Role::Dpo)).await;
    let support = token(&vault, TokenOwner::Role(Role::SupportAgent)).await;
    let read = format!("/v1/customers/{customer}?purpose=service");

    // No notice yet: nothing is required.
    let (s, _) = call(&app, &nat_token, "GET", &read, None, false).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(
        &app,
        &nat_token,
        "GET",
        "/v1/confidentiality-notice",
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Published: the associate's reads stop until they acknowledge; a service client reads on.
    let text = "Customer data is confidential. Read only what your task needs; never copy it out.";
    let (s, v1) = call(
        &app,
        &nat_token,
        "PUT",
        "/v1/confidentiality-notice",
        Some(json!({"text": text})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "only the DPO publishes: {v1}");
    let (s, v1) = call(
        &app,
        &dpo,
        "PUT",
        "/v1/confidentiality-notice",
        Some(json!({"text": text})),
        false,
    )
    .await;
    assert_eq!(
        (s, v1["version"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{v1}"
    );
    let (s, p) = call(&app, &nat_token, "GET", &read, None, false).await;
    assert_eq!(
        (s, p["type"].as_str()),
        (
            StatusCode::FORBIDDEN,
            Some("/problems/acknowledgement-required")
        ),
        "{p}"
    );
    let (s, _) = call(
        &app,
        &nat_token,
        "GET",
        &format!("/v1/customers/{customer}/purchases?purpose=service"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(&app, &support, "GET", &read, None, false).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "a service client is not a person and acknowledges nothing"
    );
    let (s, p) = call(
        &app,
        &support,
        "POST",
        "/v1/acknowledgements",
        Some(json!({"notice_version": 1})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{p}");
    let (s, notice) = call(
        &app,
        &nat_token,
        "GET",
        "/v1/confidentiality-notice",
        None,
        false,
    )
    .await;
    assert_eq!((s, notice["text"].as_str()), (StatusCode::OK, Some(text)));

    // The wrong version is named; the right one opens the reads.
    let (s, p) = call(
        &app,
        &nat_token,
        "POST",
        "/v1/acknowledgements",
        Some(json!({"notice_version": 2})),
        false,
    )
    .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("notice_version")),
        "{p}"
    );
    let (s, _) = call(
        &app,
        &nat_token,
        "POST",
        "/v1/acknowledgements",
        Some(json!({"notice_version": 1})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(&app, &nat_token, "GET", &read, None, false).await;
    assert_eq!(s, StatusCode::OK);

    // A new version asks again; the console shows it first, and the DPO sees who is missing.
    let (s, v2) = call(
        &app,
        &dpo,
        "PUT",
        "/v1/confidentiality-notice",
        Some(json!({"text": format!("{text} Version two.")})),
        false,
    )
    .await;
    assert_eq!((s, v2["version"].as_i64()), (StatusCode::OK, Some(2)));
    let (s, _) = call(&app, &nat_token, "GET", &read, None, false).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (dot, _) = console_session(&app, "dot", password).await;
    let (_, _, notice_page) = send(&app, "GET", "/console/notice", Some(&dot), None).await;
    let dot_csrf = crate::console::csrf_in(&notice_page);
    let (_, _, dpo_page) = {
        send(
            &app,
            "POST",
            "/console/notice",
            Some(&dot),
            Some(&[("csrf", dot_csrf.as_str()), ("version", "2")]),
        )
        .await;
        send(&app, "GET", "/console/dpo", Some(&dot), None).await
    };
    assert!(
        dpo_page.contains("Version 2 is in force. Not yet acknowledged by: Nat Seller."),
        "{dpo_page}"
    );
    let (nat_console, _) = {
        let (_, h, page) = send(&app, "GET", "/console/sign-in", None, None).await;
        let pre = crate::console::pair(crate::console::set_cookie(&h, "steward_csrf"));
        let csrf = crate::console::csrf_in(&page);
        let form = [
            ("csrf", csrf.as_str()),
            ("login", "nat"),
            ("password", password),
        ];
        let (_, h, _) = send(&app, "POST", "/console/sign-in", Some(&pre), Some(&form)).await;
        (
            crate::console::pair(crate::console::set_cookie(&h, "steward_session")),
            (),
        )
    };
    let (s, h, _) = send(&app, "GET", "/console", Some(&nat_console), None).await;
    assert_eq!(
        (s, h[header::LOCATION].to_str().unwrap()),
        (StatusCode::SEE_OTHER, "/console/notice")
    );
    let (_, _, page) = send(&app, "GET", "/console/notice", Some(&nat_console), None).await;
    assert!(
        page.contains("Version two.") && page.contains("I have read this notice"),
        "{page}"
    );
    let csrf = crate::console::csrf_in(&page);
    let (s, _, _) = send(
        &app,
        "POST",
        "/console/notice",
        Some(&nat_console),
        Some(&[("csrf", csrf.as_str()), ("version", "2")]),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, _, _) = send(&app, "GET", "/console", Some(&nat_console), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&app, &nat_token, "GET", &read, None, false).await;
    assert_eq!(s, StatusCode::OK);
    let (_, _, dpo_page) = send(&app, "GET", "/console/dpo", Some(&dot), None).await;
    assert!(
        dpo_page.contains("Every staff member has acknowledged it."),
        "{dpo_page}"
    );

    // Each acknowledgement is an audit entry.
    vault.audit().flush().await.unwrap();
    let acks: i64 = sqlx::query("SELECT COUNT(*) FROM audit_entries WHERE action = 'acknowledge'")
        .fetch_one(&db.raw_log().await)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(acks, 3);

    // Twelve months later the acknowledgement has lapsed (a vault opened afresh reads it so).
    sqlx::query("UPDATE acknowledgements SET acknowledged_at = acknowledged_at - 31622400000")
        .execute(&db.raw().await)
        .await
        .unwrap();
    let (later, _, _) = db.open().await;
    let app = steward_api::router(later);
    let (s, p) = call(&app, &nat_token, "GET", &read, None, false).await;
    assert_eq!(
        (s, p["type"].as_str()),
        (
            StatusCode::FORBIDDEN,
            Some("/problems/acknowledgement-required")
        ),
        "{p}"
    );
}

backend_tests!(the_dpo_is_told_of_requests_alerts_and_deadlines);

async fn the_dpo_is_told_of_requests_alerts_and_deadlines(db: TestDb) {
    use std::sync::Arc;
    let (vault, op, _) = db.open().await;
    let mail = Arc::new(Letters::default());
    vault.use_notifier(mail.clone());
    assert!(
        vault
            .request_ledger()
            .set_dpo_address(op, "not an address")
            .is_err()
    );
    vault
        .request_ledger()
        .set_dpo_address(op, "DPO@example.com")
        .unwrap();
    // Requests due in two days: inside the reminder's three.
    vault.request_ledger().set_request_deadline_days(2);
    let customer = operator_customer(
        &vault,
        op,
        json!({"name": "Tom Told", "email": "tom.told@example.com"}),
    )
    .await;
    let app = steward_api::router(vault.clone());
    let dpo = token(&vault, TokenOwner::Role(Role::Dpo)).await;
    let support = token(&vault, TokenOwner::Role(Role::SupportAgent)).await;

    let (s, r) = call(
        &app,
        &support,
        "POST",
        "/v1/requests",
        Some(json!({"type": "erasure", "customer_id": customer})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let reason = "The customer called about a charge he disputes";
    let uri = format!(
        "/v1/customers/{customer}?purpose=service&break_glass=true&reason={}",
        reason.replace(' ', "+")
    );
    let (s, _) = call(&app, &support, "GET", &uri, None, false).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        vault.request_ledger().remind_due_requests().await.unwrap(),
        1
    );
    assert_eq!(
        vault.request_ledger().remind_due_requests().await.unwrap(),
        0,
        "a deadline is reminded of once"
    );

    // Three messages to the DPO (besides the customer's code), naming no customer.
    let mut to_dpo = Vec::new();
    for _ in 0..200 {
        to_dpo = mail
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(to, _)| to == "dpo@example.com")
            .cloned()
            .collect::<Vec<_>>();
        if to_dpo.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(to_dpo.len(), 3, "{to_dpo:?}");
    let all: String = to_dpo.iter().map(|(_, b)| b.as_str()).collect();
    for needle in ["arrived", "access alert (break_glass)", "due by"] {
        assert!(all.contains(needle), "{needle}: {all}");
    }
    for secret in ["Tom", "tom.told", "disputes"] {
        assert!(
            !all.contains(secret),
            "{secret} reached the DPO's mail: {all}"
        );
    }

    // The console's badge says the same.
    let staff = vault
        .directory()
        .create_staff(op.into(), "Bo Badge", &[Role::Dpo], &[])
        .await
        .unwrap();
    let password = "a long enough password";
    vault
        .identity()
        .set_staff_password(
            op,
            staff,
            "bo.badge",
            zeroize::Zeroizing::new(password.into()),
        )
        .await
        .unwrap();
    let (bo, _) = console_session(&app, "bo.badge", password).await;
    let (_, _, home) = send(&app, "GET", "/console", Some(&bo), None).await;
    assert!(
        home.contains("1 due within 3 days") && home.contains("1 alerts this week"),
        "{home}"
    );
    let _ = dpo;
}

/// Keeps every message whole: (to, subject and body).
#[derive(Default)]
struct Letters(std::sync::Mutex<Vec<(String, String)>>);

impl steward_service::notify::Notifier for Letters {
    fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), &'static str> {
        self.0
            .lock()
            .map_err(|_| "poisoned")?
            .push((to.to_owned(), format!("{subject}\n{body}")));
        Ok(())
    }
}
