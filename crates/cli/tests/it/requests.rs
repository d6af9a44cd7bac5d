//! Data-subject requests end to end through the HTTP API, on both backends: every type, both
//! ways of verifying identity, denial, revocation, expiry, and the export ZIP with its manifest.

use std::io::Read;

use axum::http::StatusCode;
use serde_json::{Value, json};
use steward_domain::Role;
use steward_service::TokenOwner;

use crate::access::{call, new_customer, token};
use crate::support::{TestDb, backend_tests, customer_json};

backend_tests!(
    access_by_emailed_code_then_export_zip,
    in_person_requests_rectify_restrict_object_and_erase,
    requests_are_denied_revoked_expired_and_listed_by_deadline,
    a_correction_of_a_verified_field_waits_for_staff
);

struct World {
    vault: steward_service::Vault,
    router: axum::Router,
    support: String,
    dpo: String,
    mail: std::path::PathBuf,
}

/// Downloads a fulfilled request's export (`r["export"]`) as `token`: status, content type, ZIP.
async fn export(
    w: &World,
    token: &str,
    r: &serde_json::Value,
) -> (
    StatusCode,
    String,
    zip::ZipArchive<std::io::Cursor<Vec<u8>>>,
) {
    let (s, ct, bytes) = crate::support::oneshot_raw(
        &w.router,
        Some(token),
        "GET",
        r["export"].as_str().unwrap(),
        None,
        None,
        &[],
    )
    .await;
    let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a ZIP");
    (s, ct, zip)
}

async fn world(db: &TestDb) -> World {
    let v = db.vault().await;
    let mail = db.dir.path().join("mail-sink.txt");
    v.use_notifier(std::sync::Arc::new(
        steward_service::notify::FileNotifier::new(mail.clone()),
    ));
    World {
        vault: v.clone(),
        router: steward_api::router(v.clone()),
        support: token(&v, TokenOwner::Role(Role::SupportAgent)).await,
        dpo: token(&v, TokenOwner::Role(Role::Dpo)).await,
        mail,
    }
}

/// The last code the mail sink received for `to`.
pub(crate) fn last_code(mail: &std::path::Path, to: &str) -> String {
    let text = std::fs::read_to_string(mail).unwrap();
    let message = text
        .split("\n.\n")
        .filter(|m| m.starts_with(&format!("To: {to}\n")))
        .last()
        .unwrap_or_else(|| panic!("no message to {to}"));
    message
        .lines()
        .find(|l| l.len() == 8 && l.chars().all(|c| c.is_ascii_digit()))
        .expect("a code line")
        .to_owned()
}

/// The newest code sent to `to`, waiting for it (notices are sent off the request's path).
pub(crate) async fn wait_for_code(mail: &std::path::Path, to: &str) -> String {
    let wanted = format!("To: {to}\n");
    for _ in 0..300 {
        if std::fs::read_to_string(mail).is_ok_and(|t| t.contains(&wanted)) {
            return last_code(mail, to);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no message to {to}")
}

/// The customer as customer service reads them for `service`.
async fn profile(w: &World, id: &str) -> Value {
    let (s, c) = call(
        &w.router,
        &w.support,
        "GET",
        &format!("/v1/customers/{id}?purpose=service"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    c
}

/// The customer's e-mail address as the operator reads it (staff see it masked).
async fn address(w: &World, id: &str) -> Option<String> {
    let id = steward_domain::CustomerId(uuid::Uuid::parse_str(id).unwrap());
    crate::support::operator_read(&w.vault, crate::support::op(), id)
        .await
        .unwrap()
        .email
}

async fn request(w: &World, t: &str, body: Value) -> (StatusCode, Value) {
    call(&w.router, t, "POST", "/v1/requests", Some(body), false).await
}

async fn access_by_emailed_code_then_export_zip(db: TestDb) {
    let w = world(&db).await;
    let id = new_customer(
        &w.router,
        &w.support,
        customer_json(
            "Ada Asks",
            "ada.asks@example.org",
            "+44 20 7946 0555",
            "5 Query Road",
        ),
    )
    .await;
    for n in 0..3 {
        let (s, _) = call(
            &w.router,
            &w.support,
            "POST",
            &format!("/v1/customers/{id}/interactions"),
            Some(json!({"channel": "email", "text": format!("Ada's note {n}"), "source": "helpdesk"})),
            false,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let (s, _) = call(
        &w.router,
        &w.support,
        "GET",
        &format!("/v1/customers/{id}?purpose=service"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK);

    let (s, r) = request(&w, &w.support, json!({"type": "access", "customer_id": id})).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(
        (&r["status"], &r["reason"], &r["identity"]),
        (
            &json!("in_progress"),
            &json!("need_user_verification"),
            &json!("unverified")
        )
    );
    let rid = r["id"].as_str().unwrap().to_owned();
    let deadline =
        steward_domain::Timestamp::parse_rfc3339(r["deadline"].as_str().unwrap()).unwrap();
    let created =
        steward_domain::Timestamp::parse_rfc3339(r["created_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        deadline.millis() - created.millis(),
        30 * 86_400_000,
        "30 days by default"
    );
    let verify = format!("/v1/requests/{rid}/verify");

    // No export before the request is fulfilled; a wrong code is refused and counted.
    let (s, _) = call(
        &w.router,
        &w.support,
        "GET",
        &format!("/v1/requests/{rid}/export"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let code = last_code(&w.mail, "ada.asks@example.org");
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let (s, p) = call(
        &w.router,
        &w.support,
        "POST",
        &verify,
        Some(json!({"code": wrong})),
        false,
    )
    .await;
    assert_eq!(
        (s, &p["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("code")),
        "{p}"
    );
    let (s, r) = call(
        &w.router,
        &w.support,
        "POST",
        &verify,
        Some(json!({"code": code})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (&r["status"], &r["identity"]),
        (&json!("fulfilled"), &json!("email_code"))
    );
    assert!(r.get("reason").is_none(), "{r}");
    let (s, _) = call(
        &w.router,
        &w.support,
        "POST",
        &verify,
        Some(json!({"code": code})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "a fulfilled request takes no code");

    // The export: a ZIP whose manifest names every file with its SHA-256.
    let (s, ct, mut zip) = export(&w, &w.support, &r).await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, "application/zip"));
    let mut read = |name: &str| {
        let mut s = Vec::new();
        zip.by_name(name)
            .unwrap_or_else(|_| panic!("{name} in the export"))
            .read_to_end(&mut s)
            .unwrap();
        s
    };
    let manifest: Value = serde_json::from_slice(&read("manifest.json")).unwrap();
    assert_eq!(manifest["format"], "steward-subject-export/1");
    assert_eq!(manifest["customer_id"], id.as_str());
    let files = manifest["files"].as_array().unwrap();
    for name in [
        "profile.json",
        "profile.csv",
        "interactions.json",
        "interactions.csv",
        "purchases.csv",
        "consents.json",
        "purposes.json",
        "usage.json",
        "usage.csv",
        "recipients.json",
    ] {
        let f = files
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed"));
        let content = read(name);
        assert_eq!(f["bytes"], content.len());
        assert_eq!(
            format!("sha256:{}", f["sha256"].as_str().unwrap()),
            steward_crypto::fingerprint(&content),
            "{name}"
        );
    }
    let profile: Value = serde_json::from_slice(&read("profile.json")).unwrap();
    let email = profile["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["field"] == "email")
        .unwrap();
    assert_eq!(email["value"], "ada.asks@example.org");
    assert_eq!(email["category"], "user.contact.email");
    assert!(
        email["purposes"]
            .as_array()
            .unwrap()
            .contains(&json!("service"))
    );
    let csv = String::from_utf8(read("interactions.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        4,
        "a header and three interactions: {csv}"
    );
    assert!(csv.contains("Ada's note 2"));
    let usage: Vec<Value> = serde_json::from_slice(&read("usage.json")).unwrap();
    assert!(
        usage.iter().any(|u| u["action"] == "read"
            && u["roles"] == json!(["support_agent"])
            && u["purpose"] == "service"),
        "the support agent's read is in the record of use: {usage:?}"
    );
    let purposes: Vec<Value> = serde_json::from_slice(&read("purposes.json")).unwrap();
    assert!(
        purposes
            .iter()
            .all(|p| p["notice_text"].is_string() && p["lawful_basis"].is_string())
    );
}

async fn in_person_requests_rectify_restrict_object_and_erase(db: TestDb) {
    let w = world(&db).await;
    let id = new_customer(
        &w.router,
        &w.support,
        customer_json(
            "Rex Wrong",
            "rex.wrong@example.org",
            "+44 20 7946 0444",
            "6 Typo Lane",
        ),
    )
    .await;
    for p in ["marketing_email", "personalisation"] {
        let (s, _) = call(
            &w.router,
            &w.support,
            "POST",
            &format!("/v1/customers/{id}/consents"),
            Some(json!({"purpose": p, "action": "grant", "source": "in_store"})),
            false,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let in_person = |kind: &str, extra: Value| {
        let mut b = json!({"type": kind, "customer_id": id, "identity_verified": "in_person"});
        if let (Some(o), Value::Object(e)) = (b.as_object_mut(), extra) {
            o.extend(e);
        }
        b
    };

    // Only the DPO records an in-person check.
    let (s, _) = request(&w, &w.support, in_person("access", json!({}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Rectification: invalid corrections are refused up front, valid ones applied.
    let (s, p) = request(
        &w,
        &w.dpo,
        in_person(
            "rectification",
            json!({"corrections": {"email": "not an address"}}),
        ),
    )
    .await;
    assert_eq!(
        (s, &p["field"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("corrections.email")
        ),
        "{p}"
    );
    let (s, p) = request(
        &w,
        &w.dpo,
        in_person("erasure", json!({"corrections": {"name": "X"}})),
    )
    .await;
    assert_eq!(
        (s, &p["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("corrections")),
        "{p}"
    );
    let (s, r) = request(
        &w,
        &w.dpo,
        in_person(
            "rectification",
            json!({"corrections": {"name": "Rex Right"}}),
        ),
    )
    .await;
    assert_eq!(
        (s, &r["status"], &r["identity"]),
        (
            StatusCode::CREATED,
            &json!("fulfilled"),
            &json!("in_person")
        ),
        "{r}"
    );
    let c = profile(&w, &id).await;
    assert_eq!(c["name"], "Rex Right");

    // Objection: marketing and personalisation withdrawn at once, by a rights request.
    let (s, r) = request(&w, &w.dpo, in_person("objection", json!({}))).await;
    assert_eq!(
        (s, &r["status"]),
        (StatusCode::CREATED, &json!("fulfilled")),
        "{r}"
    );
    let (_, consents) = call(
        &w.router,
        &w.support,
        "GET",
        &format!("/v1/customers/{id}/consents"),
        None,
        false,
    )
    .await;
    for purpose in ["marketing_email", "personalisation"] {
        let now = consents["current"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["purpose"] == purpose)
            .unwrap();
        assert_eq!(now["state"], "withdrawn", "{consents}");
    }
    assert!(
        consents["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["source"] == "rights_request")
    );

    // Restriction: from now on only legal-obligation purposes read.
    let (s, r) = request(&w, &w.dpo, in_person("restriction", json!({}))).await;
    assert_eq!(
        (s, &r["status"]),
        (StatusCode::CREATED, &json!("fulfilled")),
        "{r}"
    );
    let (s, p) = call(
        &w.router,
        &w.support,
        "GET",
        &format!("/v1/customers/{id}?purpose=service"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{p}");

    // Erasure: done, and the customer is gone.
    let (s, r) = request(&w, &w.dpo, in_person("erasure", json!({}))).await;
    assert_eq!(
        (s, &r["status"]),
        (StatusCode::CREATED, &json!("fulfilled")),
        "{r}"
    );
    let (s, _) = call(
        &w.router,
        &w.dpo,
        "GET",
        &format!("/v1/customers/{id}?purpose=service&reason=checking+erasure"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, r) = call(
        &w.router,
        &w.dpo,
        "GET",
        &format!("/v1/requests/{}", r["id"].as_str().unwrap()),
        None,
        false,
    )
    .await;
    assert_eq!(
        (s, &r["status"]),
        (StatusCode::OK, &json!("fulfilled")),
        "the request outlives the data"
    );
}

async fn requests_are_denied_revoked_expired_and_listed_by_deadline(db: TestDb) {
    let w = world(&db).await;
    let id = new_customer(
        &w.router,
        &w.support,
        customer_json(
            "Dee Nied",
            "dee.nied@example.org",
            "+44 20 7946 0333",
            "7 No Street",
        ),
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        let (s, r) = request(&w, &w.support, json!({"type": "export", "customer_id": id})).await;
        assert_eq!(s, StatusCode::CREATED, "{r}");
        ids.push(r["id"].as_str().unwrap().to_owned());
    }

    let (s, r) = call(
        &w.router,
        &w.support,
        "POST",
        &format!("/v1/requests/{}/deny", ids[0]),
        Some(json!({"reason": "suspected_fraud"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "only the DPO denies: {r}");
    let (s, r) = call(
        &w.router,
        &w.dpo,
        "POST",
        &format!("/v1/requests/{}/deny", ids[0]),
        Some(json!({"reason": "suspected_fraud"})),
        false,
    )
    .await;
    assert_eq!(
        (s, &r["status"], &r["reason"]),
        (StatusCode::OK, &json!("denied"), &json!("suspected_fraud")),
        "{r}"
    );
    let (s, r) = call(
        &w.router,
        &w.support,
        "POST",
        &format!("/v1/requests/{}/revoke", ids[1]),
        None,
        false,
    )
    .await;
    assert_eq!(
        (s, &r["status"]),
        (StatusCode::OK, &json!("revoked")),
        "{r}"
    );
    let (s, _) = call(
        &w.router,
        &w.support,
        "POST",
        &format!("/v1/requests/{}/revoke", ids[1]),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // Five wrong codes end a request.
    let verify = format!("/v1/requests/{}/verify", ids[2]);
    let code = last_code(&w.mail, "dee.nied@example.org");
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    for _ in 0..5 {
        let (s, _) = call(
            &w.router,
            &w.support,
            "POST",
            &verify,
            Some(json!({"code": wrong})),
            false,
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (_, r) = call(
        &w.router,
        &w.support,
        "GET",
        &format!("/v1/requests/{}", ids[2]),
        None,
        false,
    )
    .await;
    assert_eq!(
        (&r["status"], &r["reason"]),
        (&json!("denied"), &json!("insufficient_verification"))
    );

    // Past its deadline, an unverified request expires.
    let raw = db.raw().await;
    sqlx::query("UPDATE rights_requests SET deadline_at = 1 WHERE id = $1")
        .bind(uuid::Uuid::parse_str(&ids[3]).unwrap().as_bytes().to_vec())
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    let (_, r) = call(
        &w.router,
        &w.dpo,
        "GET",
        &format!("/v1/requests/{}", ids[3]),
        None,
        false,
    )
    .await;
    assert_eq!(r["status"], "expired", "{r}");

    // The queue: open requests by deadline; none due before the first was made.
    let (s, _) = request(
        &w,
        &w.support,
        json!({"type": "restriction", "customer_id": id}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, q) = call(&w.router, &w.dpo, "GET", "/v1/requests", None, false).await;
    assert_eq!(s, StatusCode::OK, "{q}");
    let items = q["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "closed requests leave the queue: {q}");
    assert_eq!(items[0]["type"], "restriction");
    let (_, q) = call(
        &w.router,
        &w.dpo,
        "GET",
        "/v1/requests?due_before=2020-01-01T00:00:00Z",
        None,
        false,
    )
    .await;
    assert_eq!(q["items"], json!([]));
    let (s, p) = call(
        &w.router,
        &w.dpo,
        "GET",
        "/v1/requests?due_before=soon",
        None,
        false,
    )
    .await;
    assert_eq!(
        (s, &p["field"]),
        (StatusCode::BAD_REQUEST, &json!("due_before"))
    );
    let (s, _) = call(
        &w.router,
        &token_of_marketing(&db).await,
        "GET",
        "/v1/requests",
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

async fn token_of_marketing(db: &TestDb) -> String {
    token(&db.vault().await, TokenOwner::Role(Role::Marketing)).await
}

/// `steward export --customer ID --out FILE.zip`: the same export through the binary, owner-only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_writes_a_customers_export() {
    let db = TestDb::new(crate::support::Kind::Sqlite).await;
    let v = db.vault().await;
    let router = steward_api::router(v.clone());
    let support = token(&v, TokenOwner::Role(Role::SupportAgent)).await;
    let id = new_customer(
        &router,
        &support,
        customer_json(
            "Bo Binary",
            "bo.binary@example.org",
            "+44 20 7946 0222",
            "8 Shell Road",
        ),
    )
    .await;
    drop(router);
    drop(v);
    let out = db.dir.path().join("bo.zip");
    let (code, _, err) = crate::support::run(
        &["export", "--customer", &id, "--out", out.to_str().unwrap()],
        &db,
    );
    assert_eq!(code, 0, "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&out).unwrap()).unwrap();
    let mut text = String::new();
    zip.by_name("profile.json")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("bo.binary@example.org"));
    let (code, _, err) = crate::support::run(
        &["export", "--customer", &id, "--out", out.to_str().unwrap()],
        &db,
    );
    assert_ne!(code, 0, "an existing file is not overwritten");
    assert!(err.contains("must not exist"), "{err}");
}

async fn a_correction_of_a_verified_field_waits_for_staff(db: TestDb) {
    let w = world(&db).await;
    let id = new_customer(
        &w.router,
        &w.support,
        customer_json(
            "Vera Verified",
            "vera.verified@example.org",
            "+44 20 7946 0111",
            "9 Proof Row",
        ),
    )
    .await;
    let marks = format!("/v1/customers/{id}/verified-fields");
    let (s, p) = call(
        &w.router,
        &w.support,
        "PUT",
        &marks,
        Some(json!({"fields": ["shoe_size"]})),
        false,
    )
    .await;
    assert_eq!(
        (s, &p["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("fields")),
        "{p}"
    );
    let (s, _) = call(
        &w.router,
        &w.support,
        "PUT",
        &marks,
        Some(json!({"fields": ["name", "date_of_birth"]})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // A correction of an unverified field applies at once.
    let (s, r) = request(
        &w,
        &w.dpo,
        json!({"type": "rectification", "customer_id": id, "identity_verified": "in_person",
        "corrections": {"email": "vera.new@example.org"}}),
    )
    .await;
    assert_eq!(
        (s, &r["status"]),
        (StatusCode::CREATED, &json!("fulfilled")),
        "{r}"
    );
    // A new e-mail address takes effect when the customer confirms it from that address.
    assert_eq!(
        address(&w, &id).await.as_deref(),
        Some("vera.verified@example.org")
    );
    let confirm = wait_for_code(&w.mail, "vera.new@example.org").await;
    w.vault
        .portal_access()
        .confirm_email_change("vera.new@example.org", &confirm)
        .await
        .unwrap();
    assert_eq!(
        address(&w, &id).await.as_deref(),
        Some("vera.new@example.org")
    );

    // One touching a verified field waits for staff after the customer's code.
    let (s, r) = request(
        &w,
        &w.support,
        json!({"type": "rectification", "customer_id": id,
        "corrections": {"name": "Vera Renamed"}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let rid = r["id"].as_str().unwrap().to_owned();
    // Within 15 minutes of the change of address, request codes go to the address before it.
    let code = last_code(&w.mail, "vera.verified@example.org");
    let (s, r) = call(
        &w.router,
        &w.support,
        "POST",
        &format!("/v1/requests/{rid}/verify"),
        Some(json!({"code": code})),
        false,
    )
    .await;
    assert_eq!(
        (s, &r["status"], &r["awaiting"]),
        (
            StatusCode::OK,
            &json!("in_progress"),
            &json!("staff_confirmation")
        ),
        "{r}"
    );
    let c = profile(&w, &id).await;
    assert_eq!(
        c["name"], "Vera Verified",
        "not applied before confirmation"
    );
    // A social handle, verified or not, waits for staff too: it decides whose posts are kept
    // (issue 23), so nobody claims another person's handle from the portal.
    let (s, r) = request(
        &w,
        &w.support,
        json!({"type": "rectification", "customer_id": id,
        "corrections": {"social_handles": [{"platform": "instagram", "handle": "@someone.else"}]}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let handle_request = r["id"].as_str().unwrap().to_owned();
    let code = last_code(&w.mail, "vera.verified@example.org");
    let (s, r) = call(
        &w.router,
        &w.support,
        "POST",
        &format!("/v1/requests/{handle_request}/verify"),
        Some(json!({"code": code})),
        false,
    )
    .await;
    assert_eq!(
        (s, &r["awaiting"]),
        (StatusCode::OK, &json!("staff_confirmation")),
        "{r}"
    );
    assert!(profile(&w, &id).await.get("social_handles").is_none());
    let marketing = token_of_marketing(&db).await;
    let (s, _) = call(
        &w.router,
        &marketing,
        "POST",
        &format!("/v1/requests/{rid}/confirm"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, r) = call(
        &w.router,
        &w.support,
        "POST",
        &format!("/v1/requests/{rid}/confirm"),
        None,
        false,
    )
    .await;
    assert_eq!(
        (s, &r["status"]),
        (StatusCode::OK, &json!("fulfilled")),
        "{r}"
    );
    assert!(r.get("awaiting").is_none());
    let c = profile(&w, &id).await;
    assert_eq!(c["name"], "Vera Renamed");

    // The history keeps the previous values, sealed at rest and opened in the export.
    let raw = db.raw().await;
    let sealed: Vec<Vec<u8>> =
        sqlx::query("SELECT previous FROM customer_changes WHERE customer_id = $1 ORDER BY id")
            .bind(uuid::Uuid::parse_str(&id).unwrap().as_bytes().to_vec())
            .fetch_all(&raw)
            .await
            .unwrap()
            .iter()
            .map(|r| sqlx::Row::get(r, 0))
            .collect();
    raw.close().await;
    assert_eq!(sealed.len(), 2);
    for bytes in &sealed {
        assert!(
            !bytes.windows(13).any(|w| w == b"Vera Verified"),
            "a previous value in clear"
        );
    }
    let (s, r) = request(
        &w,
        &w.dpo,
        json!({"type": "export", "customer_id": id, "identity_verified": "in_person"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let (_, _, mut zip) = export(&w, &w.dpo, &r).await;
    let mut text = String::new();
    zip.by_name("changes.json")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let changes: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(changes[0]["fields"], json!(["email"]));
    assert_eq!(changes[0]["previous"]["email"], "vera.verified@example.org");
    assert_eq!(changes[1]["previous"]["name"], "Vera Verified");
}
