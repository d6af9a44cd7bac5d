//! The purpose registry through the API: the DPO registers and changes purposes, every change is
//! a new notice version kept beside the old ones, and a new purpose is enforced like the shipped
//! ones (categories, consent, GPC).

use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;
use steward_domain::Role;
use steward_service::TokenOwner;

use crate::access::{call, token};
use crate::support::{TestDb, backend_tests};

backend_tests!(purposes_are_managed_by_the_dpo);

fn loyalty() -> Value {
    json!({
        "key": "loyalty_sms",
        "lawful_basis": "consent",
        "data_use": "marketing.communications.sms",
        "categories": ["user.name", "user.contact.phone_number"],
        "retention_days": 365,
        "notice_text": "With your consent we text you loyalty offers.",
        "roles": ["marketing", "support_agent"],
    })
}

/// The registered `loyalty_sms`, as the DPO lists it.
async fn listed_loyalty(r: &axum::Router, dpo: &str) -> Value {
    let (_, listed) = call(r, dpo, "GET", "/v1/purposes", None, false).await;
    listed
        .as_array()
        .and_then(|l| l.iter().find(|p| p["key"] == "loyalty_sms"))
        .cloned()
        .unwrap_or(Value::Null)
}

async fn purposes_are_managed_by_the_dpo(db: TestDb) {
    let v = db.vault().await;
    let dpo = token(&v, TokenOwner::Role(Role::Dpo)).await;
    let admin = token(&v, TokenOwner::Role(Role::Admin)).await;
    let support = token(&v, TokenOwner::Role(Role::SupportAgent)).await;
    let r = steward_api::router(v.clone());
    let keys = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|p| p["key"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, before) = call(&r, &dpo, "GET", "/v1/purposes", None, false).await;

    // Only the DPO manages purposes; bad input names its field and changes nothing.
    for t in [&admin, &support] {
        let (s, _) = call(&r, t, "POST", "/v1/purposes", Some(loyalty()), false).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let mut bad = loyalty();
    bad["data_use"] = json!("selling.lists");
    let (s, p) = call(&r, &dpo, "POST", "/v1/purposes", Some(bad), false).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["field"], "data_use");
    let (_, after_bad) = call(&r, &dpo, "GET", "/v1/purposes", None, false).await;
    assert_eq!(keys(&after_bad), keys(&before));

    let (s, created) = call(&r, &dpo, "POST", "/v1/purposes", Some(loyalty()), false).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["notice_version"], 1);
    let (s, p) = call(&r, &dpo, "POST", "/v1/purposes", Some(loyalty()), false).await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    assert_eq!(p["field"], "key");

    // A change raises the notice version; a patch that changes nothing does not.
    let text = json!({"notice_text": "With your consent we text you loyalty offers and events."});
    let (s, changed) = call(
        &r,
        &dpo,
        "PATCH",
        "/v1/purposes/loyalty_sms",
        Some(text.clone()),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{changed}");
    assert_eq!(changed["notice_version"], 2);
    let (_, same) = call(
        &r,
        &dpo,
        "PATCH",
        "/v1/purposes/loyalty_sms",
        Some(text),
        false,
    )
    .await;
    assert_eq!(same["notice_version"], 2);
    // A change of the PII rule alone is no new notice, and it is kept (found by API fuzzing: it
    // recorded notice version 2 a second time, a 500).
    for rule in ["redact", "keep"] {
        let (s, ruled) = call(
            &r,
            &dpo,
            "PATCH",
            "/v1/purposes/loyalty_sms",
            Some(json!({"pii_rule": rule})),
            false,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{ruled}");
        assert_eq!(
            (ruled["pii_rule"].as_str(), ruled["notice_version"].as_i64()),
            (Some(rule), Some(2))
        );
    }
    assert_eq!(listed_loyalty(&r, &dpo).await["pii_rule"], "keep");
    // Two servers on one database: one changes the PII rule; the other, whose registry still
    // holds the old rule, changes the notice. That change is refused (409), not made on top of
    // the old rule, which would silently undo the first (found by review of issue 25).
    let other = db.vault().await;
    let other_dpo = token(&other, TokenOwner::Role(Role::Dpo)).await;
    let r2 = steward_api::router(other.clone());
    let (_, seen) = call(&r2, &other_dpo, "GET", "/v1/purposes", None, false).await;
    assert!(seen.to_string().contains("loyalty_sms"));
    let (s, _) = call(
        &r,
        &dpo,
        "PATCH",
        "/v1/purposes/loyalty_sms",
        Some(json!({"pii_rule": "redact"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, p) = call(
        &r2,
        &other_dpo,
        "PATCH",
        "/v1/purposes/loyalty_sms",
        Some(json!({"notice_text": "With your consent we text you offers."})),
        false,
    )
    .await;
    // (Its registry refreshes every few seconds: a refresh in between would make the change one
    // made knowingly on top of the new rule, a 200. Either way the rule stays.)
    assert!(
        matches!(s, StatusCode::CONFLICT | StatusCode::OK),
        "{s} {p}"
    );
    // A change made knowingly is a third notice version; a refused one leaves two. Either way
    // this server learns it within seconds (waited for, so what follows is the same both ways).
    let notices = if s == StatusCode::OK { 3 } else { 2 };
    for _ in 0..200 {
        if v.purposes()
            .get("purpose", "loyalty_sms")
            .unwrap()
            .notice_version
            == notices
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        v.purposes()
            .get("purpose", "loyalty_sms")
            .unwrap()
            .notice_version,
        notices
    );
    let now = listed_loyalty(&r, &dpo).await;
    assert_eq!(now["pii_rule"], "redact", "{now}");
    let (s, _) = call(
        &r,
        &dpo,
        "PATCH",
        "/v1/purposes/no_such",
        Some(json!({"retention_days": 9})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, p) = call(
        &r,
        &dpo,
        "PATCH",
        "/v1/purposes/loyalty_sms",
        Some(json!({})),
        false,
    )
    .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("body"))
    );
    let (s, p) = call(
        &r,
        &dpo,
        "PATCH",
        "/v1/purposes/loyalty_sms",
        Some(json!({"key": "renamed"})),
        false,
    )
    .await;
    // The key cannot change: an unknown field is a malformed body naming the object that holds
    // it, never the key itself (a key can be personal; issue 15, finding 15).
    assert_eq!(s, StatusCode::BAD_REQUEST, "{p}");
    assert_eq!(p["field"], "body", "{p}");
    let versions: Vec<(i64, String)> = sqlx::query(
        "SELECT notice_version, notice_text FROM purpose_versions WHERE key = 'loyalty_sms' ORDER BY notice_version",
    )
    .fetch_all(&db.raw().await)
    .await
    .unwrap()
    .iter()
    .map(|row| (row.get(0), row.get(1)))
    .collect();
    assert_eq!(versions.len() as i64, notices, "{versions:?}");
    assert_eq!(
        versions[0].1,
        "With your consent we text you loyalty offers."
    );

    // The new purpose is enforced: consent first, then only its categories.
    let (s, c) = call(
        &r,
        &support,
        "POST",
        "/v1/customers",
        Some(
            json!({"name": "Pia Purpose", "email": "pia@example.com", "phone": "+44 20 7946 0999"}),
        ),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let id = c["id"].as_str().unwrap();
    let read = format!("/v1/customers/{id}?purpose=loyalty_sms");
    let (s, p) = call(&r, &support, "GET", &read, None, false).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(p["detail"].as_str().unwrap().contains("loyalty_sms"), "{p}");
    let grant = json!({"purpose": "loyalty_sms", "action": "grant", "source": "in_store"});
    let (s, e) = call(
        &r,
        &support,
        "POST",
        &format!("/v1/customers/{id}/consents"),
        Some(grant),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    assert_eq!(e["events"][0]["notice_version"], notices, "{e}");
    let (s, view) = call(&r, &support, "GET", &read, None, false).await;
    assert_eq!(s, StatusCode::OK, "{view}");
    assert_eq!(view["name"], "Pia Purpose");
    assert_eq!(view["phone"], "+442079460999");
    assert!(view.get("email").is_none(), "{view}");
    // GPC withdraws it, as a marketing purpose resting on consent.
    let (s, _) = call(
        &r,
        &support,
        "POST",
        &format!("/v1/customers/{id}/consents"),
        Some(json!({"purpose": "loyalty_sms", "action": "grant", "source": "in_store"})),
        true,
    )
    .await;
    assert!(s.is_success());
    let (s, _) = call(&r, &support, "GET", &read, None, false).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // A vault opened afresh (a restart) has the registry as changed, and a vault already open
    // (another server on the same database) sees later changes within seconds.
    let again = db.vault().await;
    let p = again.purposes().get("purpose", "loyalty_sms").unwrap();
    assert_eq!(p.notice_version, notices);
    let (s, _) = call(
        &r,
        &dpo,
        "PATCH",
        "/v1/purposes/loyalty_sms",
        Some(json!({"retention_days": 30})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    while again
        .purposes()
        .get("purpose", "loyalty_sms")
        .unwrap()
        .notice_version
        != notices + 1
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the other vault never saw the change"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
