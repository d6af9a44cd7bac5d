//! The portal's rights beyond access and erasure (issue 17, point 7): an address corrected in
//! its parts (no longer flattened into the street), an objection and a restriction wired to the
//! rights API, each taking effect at once for the signed-in customer. Both backends.

use std::sync::Arc;

use axum::http::StatusCode;
use steward_domain::Role;

use crate::console::{csrf_in, pair, send, set_cookie};
use crate::portal::{Mailbox, consenting_customer};
use crate::support::{TestDb, backend_tests};

backend_tests!(the_portal_corrects_the_address_in_parts_objects_and_restricts);

/// Signs the customer of `email` in to the portal with the `n`th code the mailbox got: the
/// session cookie and its form token.
pub(crate) async fn portal_session(
    app: &axum::Router,
    mail: &Mailbox,
    email: &str,
    n: usize,
) -> (String, String) {
    let (_, h, page) = send(app, "GET", "/portal", None, None).await;
    let pre = pair(set_cookie(&h, "steward_portal_csrf"));
    let csrf = csrf_in(&page);
    let ask = [("csrf", csrf.as_str()), ("email", email)];
    let (_, h, _) = send(app, "POST", "/portal/code", Some(&pre), Some(&ask)).await;
    let challenge = pair(set_cookie(&h, "steward_portal_code"));
    let (to, code) = mail.nth(n).await;
    assert_eq!(to, email);
    let form = [("csrf", csrf.as_str()), ("code", code.as_str())];
    let cookies = format!("{pre}; {challenge}");
    let (s, h, _) = send(app, "POST", "/portal/sign-in", Some(&cookies), Some(&form)).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let session = pair(set_cookie(&h, "steward_portal"));
    let (_, _, home) = send(app, "GET", "/portal", Some(&session), None).await;
    (session, csrf_in(&home))
}

async fn the_portal_corrects_the_address_in_parts_objects_and_restricts(db: TestDb) {
    let (vault, op, _) = db.open().await;
    let mail = Arc::new(Mailbox::default());
    vault.use_notifier(mail.clone());
    let (customer, dpo) = consenting_customer(
        &vault,
        op,
        ("Rita Rights", "rita.rights@example.com", "+41 21 555 0199"),
    )
    .await;
    let app = steward_api::router(vault.clone());
    let (session, csrf) = portal_session(&app, &mail, "rita.rights@example.com", 0).await;
    let (_, _, home) = send(&app, "GET", "/portal", Some(&session), None).await;
    assert!(
        home.contains("id=\"address_city\"")
            && home.contains("id=\"object\"")
            && home.contains("id=\"restrict\""),
        "{home}"
    );

    // The address, in its parts.
    let form = [
        ("csrf", csrf.as_str()),
        ("field", "address"),
        ("address_street", "4 Rue du Lac"),
        ("address_city", "Vevey"),
        ("address_postal_code", "1800"),
        ("address_country", "CH"),
    ];
    let (s, _, page) = send(
        &app,
        "POST",
        "/portal/requests/correction",
        Some(&session),
        Some(&form),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("Your correction is made."), "{page}");
    let seen = vault
        .records()
        .read_customer(
            &steward_service::Access {
                principal: &dpo,
                purpose: &vault.purposes().get("purpose", "service").unwrap(),
                reason: Some("checking the portal's address correction"),
                break_glass: false,
            },
            customer,
        )
        .await
        .unwrap();
    let a = seen.address.expect("an address");
    assert_eq!(
        (
            a.street.as_deref(),
            a.city.as_deref(),
            a.postal_code.as_deref(),
            a.country.as_deref()
        ),
        (
            Some("4 Rue du Lac"),
            Some("Vevey"),
            Some("1800"),
            Some("CH")
        )
    );

    // An objection withdraws the marketing and profiling consents at once.
    let form = [("csrf", csrf.as_str())];
    let (s, _, page) = send(
        &app,
        "POST",
        "/portal/requests/objection",
        Some(&session),
        Some(&form),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("Your objection is recorded"), "{page}");
    let state = vault.consent_state(&dpo, customer).await.unwrap();
    for purpose in ["marketing_email", "personalisation"] {
        let now = state
            .current
            .iter()
            .find(|c| c.purpose == purpose)
            .map(|c| c.state);
        assert_ne!(
            now,
            Some("granted"),
            "{purpose} still granted after the objection"
        );
    }
    // A restriction stops staff reads.
    let (s, _, page) = send(
        &app,
        "POST",
        "/portal/requests/restriction",
        Some(&session),
        Some(&form),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("Your data is restricted"), "{page}");
    let support = crate::support::principal(&vault, op, Role::SupportAgent).await;
    let read = vault
        .records()
        .read_customer(
            &steward_service::Access {
                principal: &support,
                purpose: &vault.purposes().get("purpose", "service").unwrap(),
                reason: None,
                break_glass: false,
            },
            customer,
        )
        .await;
    assert!(read.is_err(), "a restricted customer was read");
    // Without a portal session the forms act for nobody.
    let (s, _, _) = send(
        &app,
        "POST",
        "/portal/requests/objection",
        None,
        Some(&form),
    )
    .await;
    assert_ne!(s, StatusCode::OK);
}
