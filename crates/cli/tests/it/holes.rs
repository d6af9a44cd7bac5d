//! Issue 15: the penetration test's findings, each replayed as the attack it was and shown to
//! fail now, on both backends. Need-to-know attaches to records, purposes to roles, and no write
//! widens what its author can read.

use axum::http::StatusCode;
use serde_json::{Value, json};
use steward_domain::Role;
use steward_service::TokenOwner;

use crate::access::{World, call, token, world};
use crate::portal::Mailbox;
use crate::support::{TestDb, backend_tests};

backend_tests!(
    a_purchase_makes_no_customer_ones_own,
    purchases_only_at_own_outlet_by_its_staff,
    purposes_are_bound_to_roles,
    outlet_staff_change_only_their_own_customers,
    fraud_review_is_guarded_and_alerted,
    consent_sources_are_facts,
    portal_code_tries_are_atomic,
    request_code_tries_are_atomic,
    a_new_password_ends_the_sessions,
    exported_csv_opens_no_formula,
    a_new_address_waits_for_its_owner,
    an_address_is_nobody_elses,
    removal_and_requests_wait_for_the_old_address,
    every_read_is_an_entry
);

/// Finding 15: `/metrics` needed no credentials. Now it needs a monitoring token, or a listener
/// of its own (`serve --metrics-listen`).
#[test]
fn metrics_need_a_token_or_their_own_address() {
    use std::io::{Read, Write};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::new(crate::support::Kind::Sqlite));
    let v = rt.block_on(db.vault());
    let monitoring = rt.block_on(token(&v, TokenOwner::Role(Role::Monitoring)));
    let support = rt.block_on(token(&v, TokenOwner::Role(Role::SupportAgent)));
    drop(v);
    let server = crate::support::Server::start(&db, &["--metrics-listen", "127.0.0.1:0"], &[]);
    assert_eq!(server.http("GET", "/metrics", None, None).0, 401);
    assert_eq!(server.http("GET", "/metrics", Some(&support), None).0, 403);
    let (s, text) = server.http("GET", "/metrics", Some(&monitoring), None);
    assert_eq!(s, 200);
    assert!(text.contains("steward_http_requests_total"), "{text}");
    // The monitoring role reads no customer.
    let (s, _) = server.http(
        "GET",
        "/v1/customers?purpose=service",
        Some(&monitoring),
        None,
    );
    assert_eq!(s, 403);
    let out = server.stdout_text();
    let at = out
        .lines()
        .find_map(|l| l.strip_prefix("Metrics (no token) on http://"))
        .and_then(|l| l.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no metrics address in {out}"))
        .to_owned();
    let mut c = std::net::TcpStream::connect(&at).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("steward_http_requests_total"), "{answer}");
    // Only the metrics there.
    let mut c = std::net::TcpStream::connect(&at).unwrap();
    c.write_all(b"GET /v1/purposes HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    server.stop();
}

/// Every read Bob (an associate of outlet B) can make of Carla (registered at A): profile and
/// purchases for each purpose he may declare, and her messages.
async fn bobs_reads(w: &World) -> Vec<(String, StatusCode, Value)> {
    let id = &w.customer;
    let mut out = vec![];
    for purpose in ["service", "order_fulfilment", "allocation"] {
        for path in [
            format!("/v1/customers/{id}?purpose={purpose}"),
            format!("/v1/customers/{id}/purchases?purpose={purpose}"),
            format!("/v1/customers/{id}/interactions?purpose={purpose}"),
        ] {
            let (s, mut v) = call(&w.router, &w.bob, "GET", &path, None, false).await;
            // Times move; the decision and the values are what must not.
            if let Some(o) = v.as_object_mut() {
                o.remove("updated_at");
            }
            out.push((path, s, v));
        }
    }
    out
}

/// Finding 2 (seed 003 bypassed): a zero-amount "strap adjustment" recorded at Bob's own outlet
/// made Carla "his", with every outlet's items, prices and sellers and her full contact details.
async fn a_purchase_makes_no_customer_ones_own(db: TestDb) {
    let w = world(&db).await;
    let outlet_b = w
        .vault
        .directory()
        .list_outlets(crate::support::op().into())
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.name == "Outlet B")
        .unwrap()
        .id;
    let bob_id = w
        .vault
        .directory()
        .list_staff(crate::support::op().into())
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == "Bob Seller")
        .unwrap()
        .id;
    let before = bobs_reads(&w).await;
    let strap = json!({"item": "Strap adjustment", "category": "service", "outlet_id": outlet_b, "seller_id": bob_id, "amount_minor": 0, "currency": "CHF"});
    let (s, created) = call(
        &w.router,
        &w.bob,
        "POST",
        &format!("/v1/customers/{}/purchases", w.customer),
        Some(strap),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let strap_id = created["id"].as_str().unwrap().to_owned();
    let after = bobs_reads(&w).await;
    for ((path, s0, v0), (_, s1, v1)) in before.iter().zip(&after) {
        assert_eq!(s0, s1, "{path}: {v0} then {v1}");
        if path.contains("/purchases") {
            // Only the record the write created is new to him: his own outlet's sale, in full.
            let items = v1["items"].as_array().unwrap();
            assert_eq!(items.len(), 1, "{path}: {v1}");
            assert_eq!(items[0]["id"], json!(strap_id), "{path}: {v1}");
            assert_eq!(v1["summary"]["purchase_count_band"], "2-4", "{path}: {v1}");
            assert_eq!(v0["items"], json!([]), "{path}: {v0}");
        } else {
            assert_eq!(v0, v1, "{path}: the write widened what its author reads");
        }
    }
    let text = format!("{after:?}");
    for secret in [
        "Solstice",
        "Meridian",
        "Equinox",
        "2150000",
        "carla@example.com",
    ] {
        assert!(!text.contains(secret), "{secret} reached Bob: {text}");
    }
}

/// Finding 8: a purchase could be recorded at any outlet, credited to any seller, by anyone.
async fn purchases_only_at_own_outlet_by_its_staff(db: TestDb) {
    let w = world(&db).await;
    let staff = w
        .vault
        .directory()
        .list_staff(crate::support::op().into())
        .await
        .unwrap();
    let id_of = |n: &str| staff.iter().find(|s| s.name == n).unwrap().id;
    let (alice, bob) = (id_of("Alice Seller"), id_of("Bob Seller"));
    let path = format!("/v1/customers/{}/purchases", w.customer);
    let sale = |outlet, seller| json!({"item": "Strap", "category": "service", "outlet_id": outlet, "seller_id": seller, "amount_minor": 0, "currency": "CHF"});
    // Bob (outlet B) records a sale at A: refused, naming the outlet.
    let (s, p) = call(
        &w.router,
        &w.bob,
        "POST",
        &path,
        Some(sale(w.outlet_a, bob)),
        false,
    )
    .await;
    assert_eq!(
        (s, &p["field"]),
        (StatusCode::FORBIDDEN, &json!("outlet_id")),
        "{p}"
    );
    // Alice (outlet A) credits a sale at A to Bob, who does not work there: refused.
    let (s, p) = call(
        &w.router,
        &w.alice,
        "POST",
        &path,
        Some(sale(w.outlet_a, bob)),
        false,
    )
    .await;
    assert_eq!(
        (s, &p["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("seller_id")),
        "{p}"
    );
    // Her own sale at her own outlet is recorded.
    let (s, p) = call(
        &w.router,
        &w.alice,
        "POST",
        &path,
        Some(sale(w.outlet_a, alice)),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
}

/// Finding 3: marketing read names and e-mails without consent by declaring `service` (or any
/// purpose not resting on consent); a list call returned 500 of them.
async fn purposes_are_bound_to_roles(db: TestDb) {
    let w = world(&db).await;
    let marketing = token(&w.vault, TokenOwner::Role(Role::Marketing)).await;
    for purpose in [
        "service",
        "order_fulfilment",
        "fraud_prevention",
        "allocation",
    ] {
        for (method, path, body) in [
            (
                "GET",
                format!("/v1/customers/{}?purpose={purpose}", w.customer),
                None,
            ),
            (
                "GET",
                format!("/v1/customers?purpose={purpose}&limit=500"),
                None,
            ),
            (
                "POST",
                format!("/v1/customers/lookup?purpose={purpose}"),
                Some(json!({"email": "carla@example.com"})),
            ),
        ] {
            let (s, p) = call(&w.router, &marketing, method, &path, body, false).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {p}");
            assert_eq!(p["field"], "purpose", "{path}: {p}");
            assert!(p["detail"].as_str().unwrap().contains(purpose), "{p}");
            assert!(!p.to_string().contains("Carla"), "{p}");
        }
    }
    // Its own purpose still needs consent, as before.
    let (s, p) = call(
        &w.router,
        &marketing,
        "GET",
        &format!("/v1/customers/{}?purpose=marketing_email", w.customer),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("consent"), "{p}");
    // The registry says who may declare each purpose, and the DPO can change it.
    let dpo = token(&w.vault, TokenOwner::Role(Role::Dpo)).await;
    let (_, list) = call(&w.router, &dpo, "GET", "/v1/purposes", None, false).await;
    let service = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == "service")
        .unwrap();
    assert_eq!(
        service["roles"],
        json!(["dpo", "sales_associate", "store_manager", "support_agent"])
    );
    let (s, p) = call(
        &w.router,
        &dpo,
        "PATCH",
        "/v1/purposes/service",
        Some(json!({"roles": ["dpo", "store_manager", "support_agent"]})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let (s, p) = call(
        &w.router,
        &w.alice,
        "GET",
        &format!("/v1/customers/{}?purpose=service", w.customer),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{p}");
    let (s, p) = call(
        &w.router,
        &dpo,
        "PATCH",
        "/v1/purposes/service",
        Some(json!({"roles": ["admin"]})),
        false,
    )
    .await;
    assert_eq!(
        (s, &p["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("roles")),
        "{p}"
    );
}

/// Finding 1, its first step: an associate of any outlet could change any customer's details.
async fn outlet_staff_change_only_their_own_customers(db: TestDb) {
    let w = world(&db).await;
    let path = format!("/v1/customers/{}", w.customer);
    let (s, p) = call(
        &w.router,
        &w.bob,
        "PATCH",
        &path,
        Some(json!({"email": "attacker@example.net"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{p}");
    let (s, p) = call(
        &w.router,
        &w.mia,
        "PATCH",
        &path,
        Some(json!({"name": "Carla Renamed"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{p}");
    let (s, v) = call(
        &w.router,
        &w.support,
        "GET",
        &format!("{path}?purpose=service"),
        None,
        false,
    )
    .await;
    assert_eq!(
        (s, &v["email"]),
        (
            StatusCode::OK,
            &json!(steward_domain::view::mask_email("carla@example.com"))
        )
    );
    // Her own outlet's associate and support may.
    for t in [&w.alice, &w.support] {
        let (s, p) = call(
            &w.router,
            t,
            "PATCH",
            &path,
            Some(json!({"name": "Carla Collector"})),
            false,
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{p}");
    }
}

/// Finding 6: a store manager read 196 other outlets' itemised histories with
/// `purpose=fraud_prevention&reason=x`, with no alert. The reason now needs 20 visible characters,
/// and every such read is an alert whose reason the DPO can read.
async fn fraud_review_is_guarded_and_alerted(db: TestDb) {
    let w = world(&db).await;
    let base = format!(
        "/v1/customers/{}/purchases?purpose=fraud_prevention",
        w.customer
    );
    let zero_width = "%E2%80%8B".repeat(20);
    for reason in ["x", "too%20short%20a%20reason", zero_width.as_str()] {
        let (s, p) = call(
            &w.router,
            &w.mia,
            "GET",
            &format!("{base}&reason={reason}"),
            None,
            false,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert_eq!(
            p["items"],
            json!([]),
            "reason {reason:?} opened the history: {p}"
        );
    }
    let dpo = token(&w.vault, TokenOwner::Role(Role::Dpo)).await;
    let (_, alerts) = call(&w.router, &dpo, "GET", "/v1/alerts", None, false).await;
    assert!(
        !alerts.to_string().contains("fraud_review"),
        "no history was shown, so no alert: {alerts}"
    );
    let reason = "Chargeback dispute CASE-2026-881 on a card used at both outlets";
    let (s, p) = call(
        &w.router,
        &w.mia,
        "GET",
        &format!("{base}&reason={}", reason.replace(' ', "%20")),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["items"].as_array().unwrap().len(), 3, "{p}");
    let (_, alerts) = call(&w.router, &dpo, "GET", "/v1/alerts", None, false).await;
    let alert = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "fraud_review")
        .unwrap_or_else(|| panic!("no fraud_review alert: {alerts}"))
        .clone();
    assert_eq!(alert["customer_id"], json!(w.customer));
    assert_eq!(alert["has_reason"], true);
    assert!(
        alert.get("reason").is_none(),
        "the list opens no reason: {alert}"
    );
    // The reason is sealed at rest and opened for the DPO alone.
    let path = format!("/v1/alerts/{}", alert["id"].as_str().unwrap());
    let (s, _) = call(&w.router, &w.mia, "GET", &path, None, false).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, one) = call(&w.router, &dpo, "GET", &path, None, false).await;
    assert_eq!(
        (s, &one["reason"]),
        (StatusCode::OK, &json!(reason)),
        "{one}"
    );
    let raw = db.raw().await;
    let stored: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT reason FROM access_alerts WHERE reason IS NOT NULL")
            .fetch_all(&raw)
            .await
            .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!String::from_utf8_lossy(&stored[0]).contains("Chargeback"));
}

/// Finding 5: staff recorded a consent with `"source": "portal"`, which the GPC signal then
/// treated as the customer's own choice.
async fn consent_sources_are_facts(db: TestDb) {
    let w = world(&db).await;
    let path = format!("/v1/customers/{}/consents", w.customer);
    for source in ["portal", "gpc", "rights_request"] {
        let body = json!({"purpose": "marketing_email", "action": "grant", "source": source});
        let (s, p) = call(&w.router, &w.alice, "POST", &path, Some(body), false).await;
        assert_eq!(
            (s, &p["field"]),
            (StatusCode::UNPROCESSABLE_ENTITY, &json!("source")),
            "{source}: {p}"
        );
    }
    let (_, ledger) = call(&w.router, &w.alice, "GET", &path, None, false).await;
    assert_eq!(ledger["history"], json!([]), "{ledger}");
    let body = json!({"purpose": "marketing_email", "action": "grant", "source": "in_store"});
    let (s, p) = call(&w.router, &w.alice, "POST", &path, Some(body), false).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
}

/// Wrong codes sent together, then the right one: at most five are ever compared.
const TOGETHER: usize = 40;

/// Finding 4 (and 13): 40 wrong portal codes sent together, then the right one, signed in, because
/// each try read the counter before any wrote it. Tries are now claimed atomically before the
/// comparison, and every refused try is audited as `denied`.
async fn portal_code_tries_are_atomic(db: TestDb) {
    let w = world(&db).await;
    let mail = std::sync::Arc::new(Mailbox::default());
    w.vault.use_notifier(mail.clone());
    let challenge = w
        .vault
        .portal_access()
        .portal_send_code("carla@example.com")
        .await
        .unwrap();
    let (_, code) = mail.nth(0).await;
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let mut tries = tokio::task::JoinSet::new();
    for _ in 0..TOGETHER {
        let v = w.vault.clone();
        tries.spawn(async move {
            v.portal_access()
                .portal_sign_in(challenge, wrong)
                .await
                .is_ok()
        });
    }
    let signed_in = tries.join_all().await.into_iter().filter(|ok| *ok).count();
    assert_eq!(signed_in, 0);
    assert!(
        w.vault
            .portal_access()
            .portal_sign_in(challenge, &code)
            .await
            .is_err(),
        "the right code still worked after {TOGETHER} wrong ones sent together"
    );
    w.vault.audit().flush().await.unwrap();
    let leaves: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT leaf FROM audit_entries WHERE action = 'portal.sign_in'")
            .fetch_all(&db.raw_log().await)
            .await
            .unwrap();
    let outcomes: Vec<String> = leaves
        .iter()
        .map(|l| steward_domain::AuditLeaf::from_bytes(l).unwrap().outcome)
        .collect();
    assert_eq!(outcomes.len(), TOGETHER + 1);
    assert!(outcomes.iter().all(|o| o == "denied"), "{outcomes:?}");
    // A fresh code still works: the brake is per code, not a lock-out.
    let challenge = w
        .vault
        .portal_access()
        .portal_send_code("carla@example.com")
        .await
        .unwrap();
    let (_, code) = mail.nth(1).await;
    assert!(
        w.vault
            .portal_access()
            .portal_sign_in(challenge, &code)
            .await
            .is_ok()
    );
}

/// Finding 7: wrong data-subject-request codes sent together overwrote one another's count; the
/// request was denied after 60 tries, not 5.
async fn request_code_tries_are_atomic(db: TestDb) {
    let w = world(&db).await;
    let mail = std::sync::Arc::new(Mailbox::default());
    w.vault.use_notifier(mail.clone());
    let (s, r) = call(
        &w.router,
        &w.support,
        "POST",
        "/v1/requests",
        Some(json!({"type": "access", "customer_id": w.customer})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let (_, code) = mail.nth(0).await;
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let verify = format!("/v1/requests/{}/verify", r["id"].as_str().unwrap());
    let mut tries = tokio::task::JoinSet::new();
    for _ in 0..TOGETHER {
        let (router, t, path) = (w.router.clone(), w.support.clone(), verify.clone());
        tries.spawn(async move {
            call(
                &router,
                &t,
                "POST",
                &path,
                Some(json!({"code": wrong})),
                false,
            )
            .await
            .0
        });
    }
    let answers = tries.join_all().await;
    assert!(answers.iter().all(|s| *s != StatusCode::OK), "{answers:?}");
    let (s, p) = call(
        &w.router,
        &w.support,
        "POST",
        &verify,
        Some(json!({"code": code})),
        false,
    )
    .await;
    assert_ne!(s, StatusCode::OK, "the right code still worked: {p}");
    let (_, now) = call(
        &w.router,
        &w.support,
        "GET",
        &format!("/v1/requests/{}", r["id"].as_str().unwrap()),
        None,
        false,
    )
    .await;
    assert_eq!(now["status"], "denied", "{now}");
}

/// Finding 14: changing a staff member's password left their sessions working.
async fn a_new_password_ends_the_sessions(db: TestDb) {
    let w = world(&db).await;
    let alice = w
        .vault
        .directory()
        .list_staff(crate::support::op().into())
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == "Alice Seller")
        .unwrap()
        .id;
    let old = zeroize::Zeroizing::new("correct horse battery staple".to_owned());
    w.vault
        .identity()
        .set_staff_password(crate::support::op(), alice, "alice.seller", old.clone())
        .await
        .unwrap();
    let mut sessions = vec![];
    for _ in 0..2 {
        let s = w
            .vault
            .identity()
            .sign_in("alice.seller", old.clone())
            .await
            .unwrap()
            .unwrap();
        sessions.push(s.token.to_string());
    }
    for t in &sessions {
        let (s, _) = call(&w.router, t, "GET", "/v1/purposes", None, false).await;
        assert_eq!(s, StatusCode::OK);
    }
    let new = zeroize::Zeroizing::new("a different and longer passphrase".to_owned());
    w.vault
        .identity()
        .set_staff_password(crate::support::op(), alice, "alice.seller", new.clone())
        .await
        .unwrap();
    for t in &sessions {
        let (s, _) = call(&w.router, t, "GET", "/v1/purposes", None, false).await;
        assert_eq!(
            s,
            StatusCode::UNAUTHORIZED,
            "a session outlived the password"
        );
    }
    // Revoked in the database too, so other server processes drop them on their next check.
    let live: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_tokens WHERE expires_at IS NOT NULL AND revoked_at IS NULL",
    )
    .fetch_one(&db.raw().await)
    .await
    .unwrap();
    assert_eq!(live, 0);
    // Her API token (not a sign-in session) still works; a new sign-in too.
    let (s, _) = call(&w.router, &w.alice, "GET", "/v1/purposes", None, false).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        w.vault
            .identity()
            .sign_in("alice.seller", new)
            .await
            .unwrap()
            .is_some()
    );
}

/// Finding 12: a customer's data-subject export carried spreadsheet formulas through unchanged.
async fn exported_csv_opens_no_formula(db: TestDb) {
    use std::io::Read;
    let w = world(&db).await;
    let formula = "=HYPERLINK(\"http://evil.example\",\"open\")";
    let (s, p) = call(
        &w.router,
        &w.alice,
        "POST",
        &format!("/v1/customers/{}/interactions", w.customer),
        Some(json!({"channel": "in_store", "text": formula, "source": "-till"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let out = db.dir.path().join("carla.zip");
    let (code, _, err) = crate::support::run(
        &[
            "export",
            "--customer",
            &w.customer,
            "--out",
            out.to_str().unwrap(),
        ],
        &db,
    );
    assert_eq!(code, 0, "{err}");
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&out).unwrap()).unwrap();
    let mut read = |name: &str| {
        let mut text = String::new();
        zip.by_name(name)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    };
    let csv = read("interactions.csv");
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    let cells: Vec<String> = r
        .records()
        .flat_map(|rec| rec.unwrap().iter().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert!(cells.contains(&format!("'{formula}")), "{csv}");
    assert!(
        cells.iter().all(|c| !c.starts_with(['=', '+', '-', '@'])),
        "{csv}"
    );
    // The JSON keeps the value as it was given.
    assert!(read("interactions.json").contains("=HYPERLINK("));
}

/// Messages sent to `to` so far (codes, or the subject of a notice).
fn mail_to(mail: &Mailbox, to: &str) -> Vec<String> {
    mail.0
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| t == to)
        .map(|(_, m)| m.clone())
        .collect()
}

/// Waits until `to` has received `n` messages (they are sent off the request's path).
async fn wait_mail(mail: &Mailbox, to: &str, n: usize) -> Vec<String> {
    for _ in 0..300 {
        let got = mail_to(mail, to);
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{to} received {:?}, not {n} messages", mail_to(mail, to));
}

/// Finding 1 (critical): staff replaced a customer's e-mail address with their own, signed in to
/// the customer's portal, read and erased everything — and, after the first fix, confirmed their
/// own mailbox (the pen test of that fix). A change staff ask for is now approved from the address
/// on record; until then nothing changes and codes go to the old address; an erasure soon after a
/// change needs a fresh code sent to the address on record before it.
async fn a_new_address_waits_for_its_owner(db: TestDb) {
    use crate::console::{csrf_in, pair, send, set_cookie};
    let w = world(&db).await;
    let mail = std::sync::Arc::new(Mailbox::default());
    w.vault.use_notifier(mail.clone());
    let path = format!("/v1/customers/{}", w.customer);
    let read = format!("{path}?purpose=service");
    let (carla, attacker, moved) = (
        "carla@example.com",
        "mallory@example.net",
        "carla.new@example.org",
    );

    // The attack: support sets the address to a mailbox of their own. The mailbox gets nothing;
    // Carla is asked to approve; guessing at the confirmation page gets nowhere.
    let (s, p) = call(
        &w.router,
        &w.support,
        "PATCH",
        &path,
        Some(json!({"email": attacker, "name": "Carla C. Collector"})),
        false,
    )
    .await;
    assert_eq!(
        (s, &p["pending"]),
        (StatusCode::ACCEPTED, &json!(["email"])),
        "{p}"
    );
    let (_, v) = call(&w.router, &w.support, "GET", &read, None, false).await;
    assert_eq!(
        v["email"],
        steward_domain::view::mask_email(carla),
        "the address changed before its owner approved"
    );
    assert_eq!(
        v["name"], "Carla C. Collector",
        "the rest of the patch applies"
    );
    let asked = wait_mail(&mail, carla, 1).await;
    assert_eq!(asked[0].len(), 8, "Carla gets the approval code: {asked:?}");
    for guess in ["00000000", "12345678", asked[0].as_str()] {
        assert!(
            w.vault
                .portal_access()
                .confirm_email_change(attacker, guess)
                .await
                .is_err()
        );
    }
    w.vault
        .portal_access()
        .portal_send_code(attacker)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        mail_to(&mail, attacker).is_empty(),
        "the attacker's mailbox got mail"
    );

    // Carla's own change, asked in store: she approves it on the page from her mailbox.
    let (s, _) = call(
        &w.router,
        &w.alice,
        "PATCH",
        &path,
        Some(json!({"email": moved})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let approve = wait_mail(&mail, carla, 2).await[1].clone();
    assert!(
        mail_to(&mail, moved).is_empty(),
        "the new address is told only once it applies"
    );
    let app = w.router.clone();
    let (s, h, page) = send(&app, "GET", "/portal/confirm-address", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let (pre, csrf) = (pair(set_cookie(&h, "steward_portal_csrf")), csrf_in(&page));
    let wrong = if approve == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let (s, h, page) = send(
        &app,
        "POST",
        "/portal/confirm-address",
        Some(&pre),
        Some(&[("csrf", &csrf), ("email", carla), ("code", wrong)]),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains(&format!("value=\"{carla}\"")),
        "the form lost the address"
    );
    let (pre, csrf) = (pair(set_cookie(&h, "steward_portal_csrf")), csrf_in(&page));
    let (s, _, page) = send(
        &app,
        "POST",
        "/portal/confirm-address",
        Some(&pre),
        Some(&[("csrf", &csrf), ("email", carla), ("code", &approve)]),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("Your new address is confirmed"), "{page}");
    let (_, v) = call(&w.router, &w.support, "GET", &read, None, false).await;
    assert_eq!(v["email"], steward_domain::view::mask_email(moved));
    assert_eq!(
        wait_mail(&mail, moved, 1).await,
        ["Your e-mail address was changed"]
    );
    assert!(
        w.vault
            .portal_access()
            .confirm_email_change(carla, &approve)
            .await
            .is_err(),
        "a code works once"
    );
    // The attacker's change, never approved, cannot be confirmed with Carla's code either.
    assert!(
        w.vault
            .portal_access()
            .confirm_email_change(carla, &asked[0])
            .await
            .is_err()
    );

    // Signed in with the new address within 15 minutes of the change, an erasure needs a fresh
    // code, and it goes to the address on record before the change.
    let challenge = w
        .vault
        .portal_access()
        .portal_send_code(moved)
        .await
        .unwrap();
    let code = wait_mail(&mail, moved, 2).await[1].clone();
    let (_, session) = w
        .vault
        .portal_access()
        .portal_sign_in(challenge, &code)
        .await
        .unwrap();
    let refused = w.vault.portal_erase(&session, None).await.unwrap_err();
    assert!(
        matches!(refused, steward_service::ServiceError::Validation(ref v) if v.field == "code"),
        "{refused:?}"
    );
    let before = mail_to(&mail, carla).len();
    let fresh = w
        .vault
        .portal_access()
        .portal_fresh_code(&session)
        .await
        .unwrap();
    let fresh_code = wait_mail(&mail, carla, before + 1).await[before].clone();
    assert!(
        w.vault
            .portal_erase(&session, Some((fresh, "00000001")))
            .await
            .is_err()
    );
    let (s, _) = call(&w.router, &w.support, "GET", &read, None, false).await;
    assert_eq!(s, StatusCode::OK, "a wrong fresh code erased the customer");
    let fresh = w
        .vault
        .portal_access()
        .portal_fresh_code(&session)
        .await
        .unwrap();
    let fresh_code2 = wait_mail(&mail, carla, before + 2).await[before + 1].clone();
    assert_ne!(fresh_code, fresh_code2);
    let erased = w
        .vault
        .portal_erase(&session, Some((fresh, &fresh_code2)))
        .await
        .unwrap();
    assert_eq!(erased.status, steward_domain::RequestStatus::Fulfilled);
}

/// Finding 9: a portal e-mail correction took another customer's address, locking them out.
async fn an_address_is_nobody_elses(db: TestDb) {
    let w = world(&db).await;
    let mail = std::sync::Arc::new(Mailbox::default());
    w.vault.use_notifier(mail.clone());
    let (s, other) = call(
        &w.router,
        &w.support,
        "POST",
        "/v1/customers",
        Some(json!({"name": "Olga Other", "email": "olga@example.com"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{other}");
    // Staff are told, naming the field.
    let (s, p) = call(
        &w.router,
        &w.support,
        "PATCH",
        &format!("/v1/customers/{}", w.customer),
        Some(json!({"email": "olga@example.com"})),
        false,
    )
    .await;
    assert_eq!(
        (s, &p["field"]),
        (StatusCode::CONFLICT, &json!("email")),
        "{p}"
    );
    // In the portal Carla gets the answer any change gets, and no code goes anywhere.
    let challenge = w
        .vault
        .portal_access()
        .portal_send_code("carla@example.com")
        .await
        .unwrap();
    let code = wait_mail(&mail, "carla@example.com", 1).await[0].clone();
    let (_, session) = w
        .vault
        .portal_access()
        .portal_sign_in(challenge, &code)
        .await
        .unwrap();
    let r = w
        .vault
        .portal_request(
            &session,
            steward_domain::RequestType::Rectification,
            Some(json!({"email": "olga@example.com"})),
        )
        .await
        .unwrap();
    assert_eq!(r.status, steward_domain::RequestStatus::Fulfilled);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(mail_to(&mail, "olga@example.com").is_empty());
    assert_eq!(
        mail_to(&mail, "carla@example.com").len(),
        1,
        "told of a change that cannot happen"
    );
    // Olga still signs in.
    w.vault
        .portal_access()
        .portal_send_code("olga@example.com")
        .await
        .unwrap();
    wait_mail(&mail, "olga@example.com", 1).await;
}

/// The actions of the audit log's entries, in order.
async fn actions(db: &TestDb, w: &World) -> Vec<String> {
    w.vault.audit().flush().await.unwrap();
    let leaves: Vec<Vec<u8>> = sqlx::query_scalar("SELECT leaf FROM audit_entries ORDER BY idx")
        .fetch_all(&db.raw_log().await)
        .await
        .unwrap();
    leaves
        .iter()
        .map(|l| steward_domain::AuditLeaf::from_bytes(l).unwrap().action)
        .collect()
}

/// Finding 10: the consent ledger, the access log, the request queue and a request, the alerts,
/// look-ups that found nobody and backups were read with no audit entry.
async fn every_read_is_an_entry(db: TestDb) {
    let w = world(&db).await;
    let dpo = token(&w.vault, TokenOwner::Role(Role::Dpo)).await;
    let id = &w.customer;
    let (s, r) = call(
        &w.router,
        &dpo,
        "POST",
        "/v1/requests",
        Some(json!({"type": "access", "customer_id": id, "identity_verified": "in_person"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let rid = r["id"].as_str().unwrap().to_owned();
    let before = actions(&db, &w).await.len();
    let reads: [(&str, &str, String, Option<Value>); 6] = [
        (
            "read_consents",
            "GET",
            format!("/v1/customers/{id}/consents"),
            None,
        ),
        (
            "read_access_log",
            "GET",
            format!("/v1/customers/{id}/access-log"),
            None,
        ),
        ("read_requests", "GET", "/v1/requests".to_owned(), None),
        ("read_request", "GET", format!("/v1/requests/{rid}"), None),
        ("read_alerts", "GET", "/v1/alerts".to_owned(), None),
        (
            "lookup",
            "POST",
            "/v1/customers/lookup?purpose=service&reason=checking%20a%20caller".to_owned(),
            Some(json!({"email": "nobody.here@example.com"})),
        ),
    ];
    for (action, method, path, body) in reads {
        let (s, v) = call(&w.router, &dpo, method, &path, body, false).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        let all = actions(&db, &w).await;
        assert!(
            all[before..].iter().any(|a| a == action),
            "{path} left no {action} entry: {:?}",
            &all[before..]
        );
    }
    if db.kind != crate::support::Kind::Sqlite {
        return;
    }
    let out = db.dir.path().join("backup.zip");
    let (code, _, err) = crate::support::run(&["backup", out.to_str().unwrap()], &db);
    assert_eq!(code, 0, "{err}");
    assert!(actions(&db, &w).await.iter().any(|a| a == "backup"));
}

/// The pen test of the fix: staff removed the address first (it applied at once), then added
/// their own as a "first" address confirmed from itself; and a data-subject request right after
/// a change sent its code to the new address and erased the customer.
async fn removal_and_requests_wait_for_the_old_address(db: TestDb) {
    let w = world(&db).await;
    let mail = std::sync::Arc::new(Mailbox::default());
    w.vault.use_notifier(mail.clone());
    let path = format!("/v1/customers/{}", w.customer);
    let read = format!("{path}?purpose=service");
    let (carla, moved) = ("carla@example.com", "carla.new@example.org");
    // A removal asked by staff waits for Carla's approval, like any change.
    let (s, p) = call(
        &w.router,
        &w.support,
        "PATCH",
        &path,
        Some(json!({"email": null})),
        false,
    )
    .await;
    assert_eq!(
        (s, &p["pending"]),
        (StatusCode::ACCEPTED, &json!(["email"])),
        "{p}"
    );
    let (_, v) = call(&w.router, &w.support, "GET", &read, None, false).await;
    assert_eq!(
        v["email"],
        steward_domain::view::mask_email(carla),
        "a removal applied before its owner approved"
    );
    let (s, _) = call(
        &w.router,
        &w.support,
        "PATCH",
        &path,
        Some(json!({"email": "mallory@example.net"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(mail_to(&mail, "mallory@example.net").is_empty());
    assert_eq!(
        wait_mail(&mail, carla, 2).await.len(),
        2,
        "both went to Carla for approval"
    );

    // Carla's own change, approved; then a request made right after it asks the old address.
    let (s, _) = call(
        &w.router,
        &w.alice,
        "PATCH",
        &path,
        Some(json!({"email": moved})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let approve = wait_mail(&mail, carla, 3).await[2].clone();
    w.vault
        .portal_access()
        .confirm_email_change(carla, &approve)
        .await
        .unwrap();
    let (_, v) = call(&w.router, &w.support, "GET", &read, None, false).await;
    assert_eq!(v["email"], steward_domain::view::mask_email(moved));
    wait_mail(&mail, moved, 1).await;
    let before = (mail_to(&mail, carla).len(), mail_to(&mail, moved).len());
    let (s, r) = call(
        &w.router,
        &w.support,
        "POST",
        "/v1/requests",
        Some(json!({"type": "erasure", "customer_id": w.customer})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let code = wait_mail(&mail, carla, before.0 + 1).await[before.0].clone();
    assert_eq!(code.len(), 8);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        mail_to(&mail, moved).len(),
        before.1,
        "the request's code went to the new address"
    );
}
