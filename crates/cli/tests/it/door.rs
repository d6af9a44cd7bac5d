//! The authorisation matrix of the console's and the portal's state-changing routes (issue 16,
//! part 6): the same table-against-behaviour check as `matrix.rs`, through the HTML doors. Every
//! role signs in to the console as a staff member of the customer's own outlet and posts every
//! form; the outcomes are written out by hand from the policy's rules. The portal's forms act only
//! for the customer signed in: without a portal session (or with a staff member's console cookie)
//! none of them acts.

use axum::http::StatusCode;
use steward_domain::Role;

use crate::console::{csrf_in, pair, send, set_cookie};
use crate::support::{TestDb, backend_tests};

backend_tests!(console_forms_by_role, portal_forms_need_the_customer);

/// Signs `login` in to the console: the session cookie and the session's form token.
pub(crate) async fn console_session(
    app: &axum::Router,
    login: &str,
    password: &str,
) -> (String, String) {
    let (_, h, page) = send(app, "GET", "/console/sign-in", None, None).await;
    let pre = pair(set_cookie(&h, "steward_csrf"));
    let form = [
        ("csrf", csrf_in(&page)),
        ("login", login.to_owned()),
        ("password", password.to_owned()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, h, _) = send(app, "POST", "/console/sign-in", Some(&pre), Some(&form)).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{login} could not sign in");
    let session = pair(set_cookie(&h, "steward_session"));
    // Any signed-in page carries the session's form token (the sign-out form); the purposes page
    // is shown even to whom must first acknowledge the confidentiality notice.
    let (_, _, page) = send(app, "GET", "/console/purposes", Some(&session), None).await;
    (session, csrf_in(&page))
}

/// A console form: its path under the customer, its fields, the roles it succeeds for and the
/// status of success.
type FormCase = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    Vec<Role>,
    StatusCode,
);

fn forms() -> Vec<FormCase> {
    use Role::*;
    let recorders = vec![SalesAssociate, StoreManager, SupportAgent, Dpo];
    vec![
        (
            "interactions",
            vec![("channel", "in_store"), ("text", "Asked about a strap")],
            recorders.clone(),
            StatusCode::SEE_OTHER,
        ),
        (
            // At the staff member's own outlet, sold by them: outlet staff only.
            "purchases",
            vec![
                ("item", "Door Watch"),
                ("category", "watches"),
                ("amount", "12.50"),
                ("currency", "EUR"),
            ],
            vec![SalesAssociate, StoreManager],
            StatusCode::SEE_OTHER,
        ),
        (
            // A correction: decided like a full read (outlet staff at their own outlet).
            "edit",
            vec![("name", "Door Renamed"), ("was_name", "Door Customer")],
            recorders.clone(),
            StatusCode::SEE_OTHER,
        ),
        (
            // A grant given in store; marketing may withdraw, never grant.
            "consents",
            vec![("consent_purpose", "personalisation"), ("action", "grant")],
            recorders.clone(),
            StatusCode::SEE_OTHER,
        ),
        (
            // A message to the customer: outlet staff of the customer's outlet and support
            // agents (the mail goes to a file here).
            "messages",
            vec![("subject", "Your strap"), ("text", "It has arrived.")],
            vec![SalesAssociate, StoreManager, SupportAgent],
            StatusCode::SEE_OTHER,
        ),
        (
            // A read beyond the rules with a reason: the page, for those who may read the
            // customer for `service` at all; break-glass never widens who declares a purpose.
            "break-glass",
            vec![("reason", "customer called about a disputed charge")],
            recorders,
            StatusCode::OK,
        ),
    ]
}

async fn console_forms_by_role(db: TestDb) {
    let (vault, op, _) = db.open().await;
    let outlet = vault.create_outlet(op.into(), "Door Outlet").await.unwrap();
    let customer = crate::support::operator_customer(
        &vault,
        op,
        serde_json::json!({"name": "Door Customer", "email": "door@example.com", "outlet_id": outlet}),
    )
    .await;
    vault.use_notifier(std::sync::Arc::new(
        steward_service::notify::FileNotifier::new(db.dir.path().join("mail.txt")),
    ));
    vault
        .configure_mail(
            op,
            steward_service::sending::MailSettings {
                public_url: "https://crm.shop.example".into(),
                from: "Shop <news@shop.example>".into(),
                cap: Default::default(),
                lease: std::time::Duration::from_secs(60),
                reply_domain: None,
            },
        )
        .unwrap();
    let app = steward_api::router(vault.clone());
    let password = "a long enough password";
    let mut wrong = Vec::new();
    let mut checked = 0;
    for role in Role::ALL {
        let staff = vault
            .create_staff(op.into(), &format!("Door {role:?}"), &[role], &[outlet])
            .await
            .unwrap();
        let login = format!("door.{}", role.as_str().replace('_', "."));
        vault
            .set_staff_password(op, staff, &login, zeroize::Zeroizing::new(password.into()))
            .await
            .unwrap();
        let (session, csrf) = console_session(&app, &login, password).await;
        for (form, fields, roles, success) in forms() {
            let mut body = vec![("csrf", csrf.as_str()), ("purpose", "service")];
            body.extend(fields);
            let path = format!("/console/customers/{customer}/{form}");
            let (got, _, page) = send(&app, "POST", &path, Some(&session), Some(&body)).await;
            let want = if roles.contains(&role) {
                success
            } else {
                StatusCode::FORBIDDEN
            };
            if got != want {
                let title = page.split("<title>").nth(1).unwrap_or("").split('<').next();
                wrong.push(format!(
                    "{role:?} POST {form}: got {got}, want {want} ({title:?})"
                ));
            }
            checked += 1;
        }
        // The customer's page offers a recording form only to whom the policy lets use it.
        let (read, _, page) = send(
            &app,
            "GET",
            &format!("/console/customers/{customer}?purpose=service"),
            Some(&session),
            None,
        )
        .await;
        for (form, _, roles, _) in forms()
            .into_iter()
            .filter(|f| ["interactions", "purchases", "messages"].contains(&f.0))
        {
            let offered =
                page.contains(&format!("action=\"/console/customers/{customer}/{form}\""));
            let want = read == StatusCode::OK && roles.contains(&role);
            if offered != want {
                wrong.push(format!(
                    "{role:?} page offers {form}: {offered}, want {want}"
                ));
            }
            checked += 1;
        }
        // Search, by the customer's e-mail: the page for who may declare `service`.
        let body = [
            ("csrf", csrf.as_str()),
            ("purpose", "service"),
            ("query", "door@example.com"),
        ];
        let (got, _, _) = send(&app, "POST", "/console/search", Some(&session), Some(&body)).await;
        let declares = matches!(
            role,
            Role::SalesAssociate | Role::StoreManager | Role::SupportAgent | Role::Dpo
        );
        let want = if declares {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        if got != want {
            wrong.push(format!("{role:?} POST search: got {got}, want {want}"));
        }
        checked += 1;
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked} console cells differ from the table:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(checked, Role::ALL.len() * (forms().len() + 4));
}

/// Every state-changing portal form, posted without a portal session (and with a staff member's
/// console session cookie instead), acts for nobody: it answers with the sign-in page or a
/// refusal, and changes nothing the customer's own session would see.
async fn portal_forms_need_the_customer(db: TestDb) {
    let (vault, op, _) = db.open().await;
    let outlet = vault.create_outlet(op.into(), "Portal Door").await.unwrap();
    let _ = crate::support::staff_member(
        &vault,
        op,
        ("Door Agent", Role::SupportAgent, &[outlet]),
        ("door.agent", "a long enough password"),
    )
    .await;
    let customer = crate::support::operator_customer(
        &vault,
        op,
        serde_json::json!({"name": "Portal Door", "email": "portal.door@example.com", "outlet_id": outlet}),
    )
    .await;
    let app = steward_api::router(vault.clone());
    let (console_cookie, _) = console_session(&app, "door.agent", "a long enough password").await;
    let before = crate::support::operator_read(&vault, op, customer)
        .await
        .unwrap();
    let forms: [(&str, Vec<(&str, &str)>); 5] = [
        (
            "/portal/consents",
            vec![("purpose", "personalisation"), ("action", "grant")],
        ),
        ("/portal/export", vec![]),
        (
            "/portal/requests/correction",
            vec![("field", "name"), ("value", "Changed By Nobody")],
        ),
        ("/portal/requests/erasure", vec![("confirm", "yes")]),
        ("/portal/sign-out", vec![]),
    ];
    for cookie in [None, Some(console_cookie.as_str())] {
        for (path, fields) in &forms {
            let mut body = vec![("csrf", "anything")];
            body.extend(fields.iter().copied());
            let (s, h, page) = send(&app, "POST", path, cookie, Some(&body)).await;
            let to_sign_in =
                s == StatusCode::SEE_OTHER && h.get("location").is_some_and(|l| l == "/portal");
            let refused = matches!(s, StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED);
            let sign_in_page = s == StatusCode::OK && page.contains("Send me a code");
            assert!(
                to_sign_in || refused || sign_in_page,
                "POST {path} without the customer's session answered {s}: {page}"
            );
            assert!(!page.contains("portal.door@example.com"), "{path}: {page}");
        }
    }
    // Nothing changed: the customer is there, as before, and gave no consent.
    let after = crate::support::operator_read(&vault, op, customer)
        .await
        .unwrap();
    assert_eq!(before, after);
    let agent = crate::support::principal(&vault, op, Role::SupportAgent).await;
    let consents = vault.consent_state(&agent, customer).await.unwrap();
    assert!(consents.current.is_empty(), "{:?}", consents.current);
}
