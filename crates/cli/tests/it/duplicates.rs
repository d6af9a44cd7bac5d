//! Duplicates are no longer silent (issue 17, point 3): creating a customer whose e-mail or phone
//! another holds (through the blind indexes) is a 409 naming the field and the existing customer,
//! unless `allow_duplicate`; an import reports them by line like invalid rows. Both backends.

use axum::http::StatusCode;
use serde_json::json;
use steward_domain::Role;
use steward_service::TokenOwner;

use crate::access::{call, token};
use crate::support::{TestDb, backend_tests};

backend_tests!(duplicates_are_refused_by_the_api_and_the_import);

async fn duplicates_are_refused_by_the_api_and_the_import(db: TestDb) {
    let (v, _, _) = db.open().await;
    let support = token(&v, TokenOwner::Role(Role::SupportAgent)).await;
    let app = steward_api::router(v.clone());
    let (s, first) = call(
        &app,
        &support,
        "POST",
        "/v1/customers",
        Some(json!({"name": "Dora Double", "email": "dora@example.com", "phone": "+44 20 7946 0301"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let first = first["id"].as_str().unwrap().to_owned();

    // The same address in another spelling: the blind index finds it.
    let (s, p) = call(
        &app,
        &support,
        "POST",
        "/v1/customers",
        Some(json!({"name": "Dora Again", "email": "DORA@Example.com"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    assert_eq!(
        (
            p["type"].as_str(),
            p["field"].as_str(),
            p["existing_id"].as_str()
        ),
        (
            Some("/problems/duplicate"),
            Some("email"),
            Some(first.as_str())
        )
    );
    assert!(!p.to_string().contains("dora@"), "{p}");
    // A caller who may not work on that customer (an associate of no outlet of theirs) is told
    // the address is taken, not whose it is.
    let associate = token(&v, TokenOwner::Role(Role::SalesAssociate)).await;
    let (s, p) = call(
        &app,
        &associate,
        "POST",
        "/v1/customers",
        Some(json!({"name": "Dora Probe", "email": "dora@example.com"})),
        false,
    )
    .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::CONFLICT, Some("email"))
    );
    assert!(p.get("existing_id").is_none(), "{p}");
    let (s, p) = call(
        &app,
        &support,
        "POST",
        "/v1/customers",
        Some(json!({"name": "Dora's Husband", "phone": "0044 20 7946 0301"})),
        false,
    )
    .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::CONFLICT, Some("phone"))
    );
    // A household sharing a phone: told, and chosen.
    let (s, b) = call(
        &app,
        &support,
        "POST",
        "/v1/customers",
        Some(json!({"name": "Dora's Husband", "phone": "0044 20 7946 0301", "allow_duplicate": true})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(v.records().count_customers().await.unwrap(), 2);

    // The import: a stored customer's address, and two lines with the same phone.
    drop((app, v));
    let csv = db.dir.path().join("dupes.csv");
    std::fs::write(
        &csv,
        "Name,Email,Phone\n\
         Eve Fresh,eve@example.com,\n\
         Dora Copy,dora@example.com,\n\
         Finn Twin,,+44 20 7946 0302\n\
         Finn Twin Again,,+44 20 7946 0302\n",
    )
    .unwrap();
    let (code, _, err) = crate::support::run(&["import", csv.to_str().unwrap()], &db);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("line 3: email: another customer has it ({first})")),
        "{err}"
    );
    assert!(err.contains("line 5: phone: the same as line 4"), "{err}");
    assert!(!err.contains("dora@") && !err.contains("7946"), "{err}");
    let (code, _, err) =
        crate::support::run(&["import", csv.to_str().unwrap(), "--skip-invalid"], &db);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Imported 2 customers"), "{err}");
    let (code, _, err) = crate::support::run(
        &["import", csv.to_str().unwrap(), "--allow-duplicates"],
        &db,
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Imported 4 customers"), "{err}");
    let v = db.vault().await;
    assert_eq!(v.records().count_customers().await.unwrap(), 8);
}
