//! Merging duplicates (issue 17, point 3): the other's purchases, interactions and consents move
//! to the survivor under its data key; the other is crypto-shredded with a disposal record, and
//! nothing of it is left at rest. Both backends.

use axum::http::StatusCode;
use serde_json::json;
use sqlx::Row;
use steward_domain::Role;
use steward_service::TokenOwner;

use crate::access::{call, new_customer, token, world};
use crate::support::{TestDb, backend_tests};

backend_tests!(
    a_duplicate_is_merged_into_the_survivor_and_shredded,
    the_console_offers_a_merge_of_customers_sharing_a_contact
);

async fn a_duplicate_is_merged_into_the_survivor_and_shredded(db: TestDb) {
    let w = world(&db).await;
    let app = &w.router;
    let other = w.customer.clone();
    let survivor = new_customer(
        app,
        &w.support,
        // The same person registered twice: the phone is the same.
        json!({"name": "Carla C.", "email": "carla.c@example.com", "phone": "+44 20 7946 0555", "outlet_id": w.outlet_a, "allow_duplicate": true}),
    )
    .await;
    let stranger = new_customer(
        app,
        &w.support,
        json!({"name": "Stella Stranger", "outlet_id": w.outlet_a}),
    )
    .await;
    for text in [
        "Asked about a Xylophonic strap",
        "Called back about the strap",
    ] {
        let (s, _) = call(
            app,
            &w.support,
            "POST",
            &format!("/v1/customers/{other}/interactions"),
            Some(json!({"channel": "phone", "text": text, "source": "test"})),
            false,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    // A grant, then a withdrawal, under the duplicate: the withdrawal moves, the grant does not.
    for action in ["grant", "withdraw"] {
        let (s, _) = call(
            app,
            &w.support,
            "POST",
            &format!("/v1/customers/{other}/consents"),
            Some(json!({"purpose": "personalisation", "action": action, "source": "api"})),
            false,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    // The other's sealed name as stored: it must be gone after the merge.
    let raw = db.raw().await;
    let sealed_name: Vec<u8> = sqlx::query("SELECT name FROM customers WHERE id = $1")
        .bind(uuid::Uuid::parse_str(&other).unwrap().as_bytes().to_vec())
        .fetch_one(&raw)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();

    // Refused: into itself, an unknown customer, a role that may not merge.
    let merge = |id: &str| format!("/v1/customers/{id}/merge");
    let (s, p) = call(
        app,
        &w.support,
        "POST",
        &merge(&survivor),
        Some(json!({"other_id": survivor})),
        false,
    )
    .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("other_id")),
        "{p}"
    );
    // Not a duplicate (nothing shared): refused, nothing erased.
    let (s, p) = call(
        app,
        &w.support,
        "POST",
        &merge(&survivor),
        Some(json!({"other_id": stranger})),
        false,
    )
    .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("other_id")),
        "{p}"
    );
    let (s, _) = call(
        app,
        &w.support,
        "GET",
        &format!("/v1/customers/{stranger}?purpose=service"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, p) = call(
        app,
        &w.support,
        "POST",
        &merge(&survivor),
        Some(json!({"other_id": "nope"})),
        false,
    )
    .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("other_id")),
        "{p}"
    );
    let (s, _) = call(
        app,
        &w.alice,
        "POST",
        &merge(&survivor),
        Some(json!({"other_id": other})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let (s, done) = call(
        app,
        &w.support,
        "POST",
        &merge(&survivor),
        Some(json!({"other_id": other})),
        false,
    )
    .await;
    assert_eq!(
        (s, done["id"].as_str()),
        (StatusCode::OK, Some(survivor.as_str())),
        "{done}"
    );

    // The survivor holds the history, readable under its own key; the other is gone.
    let (_, purchases) = call(
        app,
        &w.support,
        "GET",
        &format!("/v1/customers/{survivor}/purchases?purpose=service"),
        None,
        false,
    )
    .await;
    assert_eq!(
        purchases["items"].as_array().map(Vec::len),
        Some(3),
        "{purchases}"
    );
    let (_, messages) = call(
        app,
        &w.support,
        "GET",
        &format!("/v1/customers/{survivor}/interactions?purpose=service"),
        None,
        false,
    )
    .await;
    assert!(
        messages.to_string().contains("Xylophonic strap"),
        "{messages}"
    );
    let (_, consents) = call(
        app,
        &w.support,
        "GET",
        &format!("/v1/customers/{survivor}/consents"),
        None,
        false,
    )
    .await;
    let history = consents["history"].as_array().cloned().unwrap_or_default();
    let moved: Vec<&str> = history
        .iter()
        .filter(|e| e["purpose"] == "personalisation")
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(moved, ["withdraw"], "{consents}");
    let (s, _) = call(
        app,
        &w.support,
        "GET",
        &format!("/v1/customers/{other}?purpose=service"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, found) = call(
        app,
        &w.support,
        "POST",
        "/v1/customers/lookup?purpose=service",
        Some(json!({"email": "carla@example.com"})),
        false,
    )
    .await;
    assert_eq!(found["items"].as_array().map(Vec::len), Some(0), "{found}");
    // Alice's own-outlet view still sees her sales, now the survivor's.
    let (_, mine) = call(
        app,
        &w.alice,
        "GET",
        &format!("/v1/customers/{survivor}/purchases?purpose=service"),
        None,
        false,
    )
    .await;
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(3), "{mine}");

    // A disposal record for the other, and an audit entry naming the merge.
    let other_b = uuid::Uuid::parse_str(&other).unwrap().as_bytes().to_vec();
    let erased: i64 = sqlx::query("SELECT COUNT(*) FROM erasures WHERE customer_id = $1")
        .bind(other_b.clone())
        .fetch_one(&raw)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(erased, 1);
    w.vault.audit().flush().await.unwrap();
    let dpo = token(&w.vault, TokenOwner::Role(Role::Dpo)).await;
    // The survivor's access log shows the merge (the other's is gone with it).
    let (_, log) = call(
        app,
        &dpo,
        "GET",
        &format!("/v1/customers/{survivor}/access-log"),
        None,
        false,
    )
    .await;
    assert!(log.to_string().contains("\"merge\""), "{log}");
    let (s, _) = call(
        app,
        &dpo,
        "GET",
        &format!("/v1/customers/{other}/access-log"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Nothing of the other is left at rest: not its values, not even its ciphertext.
    let forms = vec!["Carla Collector".to_owned(), "carla@example.com".to_owned()];
    crate::plaintext::scan_store(&db, &forms, "after the merge");
    let hex: String = sealed_name.iter().map(|b| format!("{b:02x}")).collect();
    crate::plaintext::scan_store(&db, &[hex], "the other's sealed name after the merge");
    if let crate::support::Kind::Sqlite = db.kind {
        let file = std::fs::read(db.dir.path().join("steward.db")).unwrap();
        assert!(
            !file
                .windows(sealed_name.len())
                .any(|w| w == sealed_name.as_slice()),
            "the other's sealed name is still in the file"
        );
    }
}

async fn the_console_offers_a_merge_of_customers_sharing_a_contact(db: TestDb) {
    use crate::console::send;
    let (vault, op, _) = db.open().await;
    let password = "a long enough password";
    let outlet = vault
        .directory()
        .create_outlet(op.into(), "Merge Outlet")
        .await
        .unwrap();
    for (name, role, login) in [
        ("Sam Support", Role::SupportAgent, "sam"),
        ("Ann Associate", Role::SalesAssociate, "ann"),
    ] {
        let _ =
            crate::support::staff_member(&vault, op, (name, role, &[outlet]), (login, password))
                .await;
    }
    let body = |name: &str| json!({"name": name, "email": "twice@example.com", "outlet_id": outlet, "allow_duplicate": true});
    let survivor = crate::support::operator_customer(&vault, op, body("Tess Twice")).await;
    let input: steward_domain::CustomerInput = serde_json::from_value(body("Tess T.")).unwrap();
    let other = vault
        .records()
        .create_customer_allowing_duplicate(op.into(), &input.validate().unwrap())
        .await
        .unwrap();
    let app = steward_api::router(vault.clone());
    let page_url = format!("/console/customers/{survivor}?purpose=service");

    // Outlet staff may not merge: no offer, and the form is refused.
    let (ann, ann_csrf) = crate::door::console_session(&app, "ann", password).await;
    let (_, _, page) = send(&app, "GET", &page_url, Some(&ann), None).await;
    assert!(!page.contains("Possible duplicates"), "{page}");
    let other_s = other.to_string();
    let form = [
        ("csrf", ann_csrf.as_str()),
        ("purpose", "service"),
        ("other_id", other_s.as_str()),
    ];
    let (s, _, _) = send(
        &app,
        "POST",
        &format!("/console/customers/{survivor}/merge"),
        Some(&ann),
        Some(&form),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let (sam, csrf) = crate::door::console_session(&app, "sam", password).await;
    let (_, _, page) = send(&app, "GET", &page_url, Some(&sam), None).await;
    assert!(
        page.contains("Possible duplicates") && page.contains("Merge Tess T. into this customer"),
        "{page}"
    );
    let form = [
        ("csrf", csrf.as_str()),
        ("purpose", "service"),
        ("other_id", other_s.as_str()),
    ];
    let (s, h, _) = send(
        &app,
        "POST",
        &format!("/console/customers/{survivor}/merge"),
        Some(&sam),
        Some(&form),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, _, page) = send(
        &app,
        "GET",
        h[axum::http::header::LOCATION].to_str().unwrap(),
        Some(&sam),
        None,
    )
    .await;
    assert!(
        page.contains("The duplicate is merged into this customer"),
        "{page}"
    );
    assert!(!page.contains("Possible duplicates"), "{page}");
}
