//! Registering and correcting customers in the console (issue 17, points 2 and 3): the API's
//! validation and messages, the form keeping what was typed, a duplicate named with a link to the
//! existing customer and a way to save anyway, a confirmation after saving, and the forms offered
//! only to whom the policy lets use them. Both backends.

use axum::http::{StatusCode, header};
use steward_domain::Role;

use crate::console::{csrf_in, send};
use crate::door::console_session;
use crate::support::{TestDb, backend_tests};

backend_tests!(customers_are_registered_and_corrected_in_the_console);

async fn customers_are_registered_and_corrected_in_the_console(db: TestDb) {
    let (vault, op, _) = db.open().await;
    let password = "a long enough password";
    for (name, role, login) in [
        ("Sue Support", Role::SupportAgent, "sue"),
        ("Max Marketing", Role::Marketing, "max"),
    ] {
        let _ =
            crate::support::staff_member(&vault, op, (name, role, &[]), (login, password)).await;
    }
    let app = steward_api::router(vault.clone());
    let (sue, csrf) = console_session(&app, "sue", password).await;

    let (_, _, home) = send(&app, "GET", "/console", Some(&sue), None).await;
    assert!(home.contains("href=\"/console/customers/new\""), "{home}");
    let (s, _, form) = send(&app, "GET", "/console/customers/new", Some(&sue), None).await;
    assert_eq!(s, StatusCode::OK);
    for input in [
        "name=\"name\"",
        "name=\"email\"",
        "name=\"address_city\"",
        "name=\"preferred_language\"",
    ] {
        assert!(form.contains(input), "{input}: {form}");
    }
    let post = |path: String, fields: Vec<(&'static str, &'static str)>| {
        let (app, sue, csrf) = (app.clone(), sue.clone(), csrf.clone());
        async move {
            let mut body = vec![("csrf", csrf.as_str()), ("purpose", "service")];
            body.extend(fields);
            send(&app, "POST", &path, Some(&sue), Some(&body)).await
        }
    };
    let new = || "/console/customers/new".to_owned();

    // A bad e-mail: refused, naming the field by its label, everything typed kept.
    let (s, _, page) = post(
        new(),
        vec![
            ("name", "Walk In"),
            ("email", "walk-in@"),
            ("address_city", "Bern"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("E-mail:"), "{page}");
    assert!(
        page.contains("value=\"Walk In\"")
            && page.contains("value=\"walk-in@\"")
            && page.contains("value=\"Bern\""),
        "{page}"
    );

    // Registered: the customer's page, with a confirmation.
    let fields = vec![
        ("name", "Walk In"),
        ("email", "walk.in@example.com"),
        ("address_city", "Bern"),
        ("address_country", "CH"),
    ];
    let (s, h, _) = post(new(), fields.clone()).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let location = h[header::LOCATION].to_str().unwrap().to_owned();
    assert!(
        location.ends_with("?purpose=service&saved=created"),
        "{location}"
    );
    let id = location
        .trim_start_matches("/console/customers/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let (_, _, page) = send(&app, "GET", &location, Some(&sue), None).await;
    assert!(
        page.contains("The customer is registered.") && page.contains("Walk In"),
        "{page}"
    );
    assert!(page.contains("Bern, CH") || page.contains("Bern"), "{page}");

    // The same address again: a warning with a link to the existing customer, the form kept,
    // and a box to save anyway.
    let again = vec![("name", "Walk In Again"), ("email", "WALK.IN@example.com")];
    let (s, _, page) = post(new(), again.clone()).await;
    assert_eq!(s, StatusCode::CONFLICT, "{page}");
    assert!(
        page.contains("Another customer already has this e-mail address"),
        "{page}"
    );
    assert!(
        page.contains(&format!("href=\"/console/customers/{id}?purpose=service\"")),
        "{page}"
    );
    assert!(
        page.contains("value=\"Walk In Again\"") && page.contains("name=\"allow_duplicate\""),
        "{page}"
    );
    let mut anyway = again.clone();
    anyway.push(("allow_duplicate", "yes"));
    let (s, _, _) = post(new(), anyway).await;
    assert_eq!(s, StatusCode::SEE_OTHER);

    // Correcting: the form is filled with the details; only what changed is saved.
    let (s, _, page) = send(
        &app,
        "GET",
        &format!("/console/customers/{id}/edit?purpose=service"),
        Some(&sue),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(
        page.contains("value=\"Walk In\"") && page.contains("value=\"Bern\""),
        "{page}"
    );
    let edit = format!("/console/customers/{id}/edit");
    let (s, h, _) = post(
        edit.clone(),
        vec![
            ("name", "Walk In"),
            ("was_name", "Walk In"),
            ("email", "walk.in@example.com"),
            ("was_email", "walk.in@example.com"),
            ("address_city", "Thun"),
            ("was_address_city", "Bern"),
            ("address_country", "CH"),
            ("was_address_country", "CH"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, _, page) = send(
        &app,
        "GET",
        h[header::LOCATION].to_str().unwrap(),
        Some(&sue),
        None,
    )
    .await;
    assert!(
        page.contains("The changes are saved.") && page.contains("Thun"),
        "{page}"
    );
    // A bad date keeps what was typed.
    let (s, _, page) = post(
        edit,
        vec![("date_of_birth", "31.02.1990"), ("was_date_of_birth", "")],
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(
        page.contains("Date of birth:") && page.contains("value=\"31.02.1990\""),
        "{page}"
    );

    // Marketing registers nobody: no link, and the form is refused.
    let (max, _) = console_session(&app, "max", password).await;
    let (_, _, home) = send(&app, "GET", "/console", Some(&max), None).await;
    assert!(!home.contains("/console/customers/new"), "{home}");
    let (s, _, _) = send(&app, "GET", "/console/customers/new", Some(&max), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, _, home) = send(&app, "GET", "/console", Some(&max), None).await;
    let token = csrf_in(&home);
    let body = [("csrf", token.as_str()), ("name", "Sneaky")];
    let (s, _, _) = send(
        &app,
        "POST",
        "/console/customers/new",
        Some(&max),
        Some(&body),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
