//! A profile field added by one declaration (issue 16, part 4): the preferred language, end to
//! end on both backends — created, read as the policy decides, corrected, refused when it is no
//! language tag, imported from a `Language` column, exported, edited in the console, corrected
//! by the customer in the portal, and sealed at rest (the no-plaintext scan plants one too).

use axum::http::StatusCode;
use serde_json::json;
use steward_domain::Role;
use steward_service::TokenOwner;

use crate::access::{call, token};
use crate::console::send;
use crate::support::{TestDb, backend_tests};

backend_tests!(preferred_language_end_to_end);

async fn preferred_language_end_to_end(db: TestDb) {
    let (v, op, _) = db.open().await;
    let outlet = v
        .directory()
        .create_outlet(op.into(), "Language Outlet")
        .await
        .unwrap();
    let support = token(&v, TokenOwner::Role(Role::SupportAgent)).await;
    let other = token(&v, TokenOwner::Role(Role::SalesAssociate)).await;
    let router = steward_api::router(v.clone());

    // Created through the API in any case, kept canonical.
    let (s, created) = call(
        &router,
        &support,
        "POST",
        "/v1/customers",
        Some(json!({"name": "Lena Lingua", "email": "lena.lingua@example.com", "preferred_language": "DE-ch", "outlet_id": outlet})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (s, c) = call(
        &router,
        &support,
        "GET",
        &format!("/v1/customers/{id}?purpose=service"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["preferred_language"], "de-CH");
    // Decided like the rest of the record: an associate of another outlet does not see it.
    let (s, c) = call(
        &router,
        &other,
        "GET",
        &format!("/v1/customers/{id}?purpose=service"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert!(c.get("preferred_language").is_none(), "{c}");
    assert!(
        c["decision"]["withheld"]
            .as_array()
            .unwrap()
            .contains(&json!("preferred_language")),
        "{c}"
    );

    // A correction, and a refused one that names the field and changes nothing.
    let (s, b) = call(
        &router,
        &support,
        "PATCH",
        &format!("/v1/customers/{id}"),
        Some(json!({"preferred_language": "fr-CH"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (s, problem) = call(
        &router,
        &support,
        "PATCH",
        &format!("/v1/customers/{id}"),
        Some(json!({"preferred_language": "Klingon, mostly"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["field"], "preferred_language");
    assert!(!problem.to_string().contains("Klingon"), "{problem}");
    let got = crate::support::operator_read(&v, op, id.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(got.preferred_language.as_deref(), Some("fr-CH"));

    // The console: the edit form offers the field filled in; a change there is kept and shown.
    let staff = v
        .directory()
        .create_staff(op.into(), "Lisa Lang", &[Role::SupportAgent], &[outlet])
        .await
        .unwrap();
    let password = "a long enough password";
    v.identity()
        .set_staff_password(op, staff, "lisa", zeroize::Zeroizing::new(password.into()))
        .await
        .unwrap();
    let (session, csrf) = crate::door::console_session(&router, "lisa", password).await;
    let edit = format!("/console/customers/{id}/edit");
    let (s, _, form) = send(
        &router,
        "GET",
        &format!("{edit}?purpose=service"),
        Some(&session),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{form}");
    assert!(
        form.contains("name=\"preferred_language\"") && form.contains("value=\"fr-CH\""),
        "{form}"
    );
    let body = [
        ("csrf", csrf.as_str()),
        ("purpose", "service"),
        ("preferred_language", "rm-ch"),
        ("was_preferred_language", "fr-CH"),
    ];
    let (s, _, page) = send(&router, "POST", &edit, Some(&session), Some(&body)).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{page}");
    let (_, _, page) = send(
        &router,
        "GET",
        &format!("/console/customers/{id}?purpose=service"),
        Some(&session),
        None,
    )
    .await;
    assert!(page.contains("rm-CH"), "{page}");
    let bad = [
        ("csrf", csrf.as_str()),
        ("purpose", "service"),
        ("preferred_language", "Klingon, mostly"),
        ("was_preferred_language", "rm-CH"),
    ];
    let (s, _, page) = send(&router, "POST", &edit, Some(&session), Some(&bad)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    // The form keeps what was typed and names the field.
    assert!(
        page.contains("Klingon, mostly") && page.contains("must be a BCP 47 language tag"),
        "{page}"
    );

    // The portal: the customer sees their language and corrects it themself.
    let mail = std::sync::Arc::new(crate::portal::Mailbox::default());
    v.use_notifier(mail.clone());
    let (session, csrf, home) =
        crate::portal::portal_session(&router, &mail, "lena.lingua@example.com").await;
    assert!(home.contains("rm-CH"), "{home}");
    assert!(
        home.contains("value=\"preferred_language\""),
        "not correctable: {home}"
    );
    let fix = [
        ("csrf", csrf.as_str()),
        ("field", "preferred_language"),
        ("value", "de-at"),
    ];
    let (s, _, page) = send(
        &router,
        "POST",
        "/portal/requests/correction",
        Some(&session),
        Some(&fix),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("de-AT"), "{page}");
    let bad = [
        ("csrf", csrf.as_str()),
        ("field", "preferred_language"),
        ("value", "Klingon, mostly"),
    ];
    let (s, _, page) = send(
        &router,
        "POST",
        "/portal/requests/correction",
        Some(&session),
        Some(&bad),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(
        !page.contains("Klingon"),
        "the portal echoes the refused value: {page}"
    );

    // Imported from a `Language` column, exported with the rest of the record.
    drop(v);
    let csv = db.dir.path().join("language.csv");
    std::fs::write(
        &csv,
        "Name,Email,Language\nIgor Import,igor@example.com,it-ch\n",
    )
    .unwrap();
    let (code, o, e) = crate::support::run(&["import", csv.to_str().unwrap()], &db);
    assert_eq!(code, 0, "{o}{e}");
    let out = db.dir.path().join("everything.jsonl");
    let (code, o, e) = crate::support::run(&["export", "--out", out.to_str().unwrap()], &db);
    assert_eq!(code, 0, "{o}{e}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let language_of = |name: &str| {
        lines
            .iter()
            .find(|l| l["customer"]["name"] == name)
            .map(|l| l["customer"]["preferred_language"].clone())
    };
    assert_eq!(language_of("Lena Lingua"), Some(json!("de-AT")));
    assert_eq!(language_of("Igor Import"), Some(json!("it-CH")));
}
