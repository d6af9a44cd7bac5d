//! The console's directory and purposes (issue 17, point 5): outlets, staff (roles, outlets,
//! disable), tokens (revoke) and the DPO's purpose editor, each part and form shown only to
//! whom the policy lets use it; a disabled staff member's open session fails at once. Both
//! backends.

use axum::http::{StatusCode, header};
use steward_domain::Role;
use steward_service::TokenOwner;

use crate::console::{csrf_in, send};
use crate::door::console_session;
use crate::support::{TestDb, backend_tests};

backend_tests!(the_directory_and_purposes_are_run_from_the_console);

async fn the_directory_and_purposes_are_run_from_the_console(db: TestDb) {
    let (vault, op, _) = db.open().await;
    let password = "a long enough password";
    let home = vault
        .directory()
        .create_outlet(op.into(), "Home Outlet")
        .await
        .unwrap();
    for (name, role, login) in [
        ("Ada Admin", Role::Admin, "ada"),
        ("Mo Manager", Role::StoreManager, "moe"),
        ("Mark Marketing", Role::Marketing, "mark"),
        ("Dee Dpo", Role::Dpo, "dee"),
        ("Lou Leaving", Role::SalesAssociate, "lou"),
    ] {
        let _ = crate::support::staff_member(&vault, op, (name, role, &[home]), (login, password))
            .await;
    }
    let app = steward_api::router(vault.clone());
    let (ada, csrf) = console_session(&app, "ada", password).await;
    let (_, _, start) = send(&app, "GET", "/console", Some(&ada), None).await;
    assert!(start.contains("href=\"/console/directory\""), "{start}");
    let post = |path: &'static str, fields: Vec<(&'static str, String)>| {
        let (app, ada, csrf) = (app.clone(), ada.clone(), csrf.clone());
        async move {
            let mut body: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
            body.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
            send(&app, "POST", path, Some(&ada), Some(&body)).await
        }
    };

    // An outlet, then a staff member with a role and that outlet.
    let (s, h, _) = post(
        "/console/directory/outlets",
        vec![("name", "Bern Outlet".into())],
    )
    .await;
    assert_eq!(
        (s, h[header::LOCATION].to_str().unwrap()),
        (StatusCode::SEE_OTHER, "/console/directory?done=outlet")
    );
    let (_, _, page) = send(
        &app,
        "GET",
        "/console/directory?done=outlet",
        Some(&ada),
        None,
    )
    .await;
    assert!(
        page.contains("The outlet is added.") && page.contains("<li>Bern Outlet</li>"),
        "{page}"
    );
    let bern = vault
        .directory()
        .list_outlets(op.into())
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.name == "Bern Outlet")
        .unwrap()
        .id;
    let (s, _, page) = post("/console/directory/staff", vec![("name", "Nia New".into())]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains("Roles: choose at least one.") && page.contains("value=\"Nia New\""),
        "{page}"
    );
    let (s, _, _) = post(
        "/console/directory/staff",
        vec![
            ("name", "Nia New".into()),
            ("roles", "store_manager".into()),
            ("roles", "support_agent".into()),
            ("outlet_ids", bern.to_string()),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, _, page) = send(&app, "GET", "/console/directory", Some(&ada), None).await;
    assert!(
        page.contains("<td>Nia New</td><td>Store manager, Support agent</td><td>Bern Outlet</td>"),
        "{page}"
    );

    // Lou leaves: disabled from the console, their open session fails at once.
    let (lou, _) = console_session(&app, "lou", password).await;
    let lou_id = vault
        .directory()
        .list_staff(op.into())
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.name == "Lou Leaving")
        .unwrap()
        .id;
    let path: &'static str =
        Box::leak(format!("/console/directory/staff/{lou_id}/disabled").into_boxed_str());
    let (s, _, _) = post(path, vec![("disabled", "true".into())]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, h, _) = send(&app, "GET", "/console", Some(&lou), None).await;
    assert_eq!(
        (s, h[header::LOCATION].to_str().unwrap()),
        (StatusCode::SEE_OTHER, "/console/sign-in")
    );
    let (_, _, page) = send(&app, "GET", "/console/directory", Some(&ada), None).await;
    assert!(page.contains("Enable Lou Leaving"), "{page}");

    // Nobody disables themself (the admin would lock the door behind them).
    let ada_id = vault
        .directory()
        .list_staff(op.into())
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.name == "Ada Admin")
        .unwrap()
        .id;
    let path: &'static str =
        Box::leak(format!("/console/directory/staff/{ada_id}/disabled").into_boxed_str());
    let (s, _, _) = post(path, vec![("disabled", "true".into())]).await;
    assert_eq!(s, StatusCode::CONFLICT);

    // A token listed and revoked: refused from the next request on.
    let (token_id, token) = vault
        .identity()
        .create_token(op, "till 3", TokenOwner::Role(Role::SupportAgent))
        .await
        .unwrap();
    assert!(
        page.contains("till 3")
            || send(&app, "GET", "/console/directory", Some(&ada), None)
                .await
                .2
                .contains("till 3")
    );
    let path: &'static str =
        Box::leak(format!("/console/directory/tokens/{token_id}/revoke").into_boxed_str());
    let (s, _, _) = post(path, vec![]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, _) =
        crate::access::call(&app, token.as_ref(), "GET", "/v1/purposes", None, false).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // A store manager reads the directory, changes nothing; marketing does not see it.
    let (mo, mo_csrf) = console_session(&app, "moe", password).await;
    let (s, _, page) = send(&app, "GET", "/console/directory", Some(&mo), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("Bern Outlet")
            && !page.contains("Add the outlet")
            && !page.contains("API tokens"),
        "{page}"
    );
    let (s, _, _) = send(
        &app,
        "POST",
        "/console/directory/outlets",
        Some(&mo),
        Some(&[("csrf", mo_csrf.as_str()), ("name", "Sneaky")]),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (mark, _) = console_session(&app, "mark", password).await;
    let (s, _, _) = send(&app, "GET", "/console/directory", Some(&mark), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Purposes: readable titles for everyone; the DPO registers and changes them.
    let (_, _, page) = send(&app, "GET", "/console/purposes", Some(&mark), None).await;
    assert!(
        page.contains("Marketing email <span class=\"why\">(marketing_email)</span>")
            && !page.contains("Register a purpose"),
        "{page}"
    );
    let (dee, dee_csrf) = console_session(&app, "dee", password).await;
    let register = |key: &'static str| {
        vec![
            ("csrf", dee_csrf.clone()),
            ("key", key.into()),
            ("lawful_basis", "consent".into()),
            ("data_use", "marketing.communications.sms".into()),
            ("categories", "user.name".into()),
            ("categories", "user.contact.phone_number".into()),
            ("retention_days", "365".into()),
            (
                "notice_text",
                "With your consent we text you loyalty offers.".into(),
            ),
            ("roles", "marketing".into()),
        ]
    };
    let bad = register("Loyalty SMS!");
    let bad: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, _, page) = send(&app, "POST", "/console/purposes", Some(&dee), Some(&bad)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains("Key:") && page.contains("value=\"Loyalty SMS!\""),
        "{page}"
    );
    let good = register("loyalty_sms");
    let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, h, _) = send(&app, "POST", "/console/purposes", Some(&dee), Some(&good)).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, _, page) = send(
        &app,
        "GET",
        h[header::LOCATION].to_str().unwrap(),
        Some(&dee),
        None,
    )
    .await;
    assert!(
        page.contains("“Loyalty sms” is saved") && page.contains("Notice (version 1)"),
        "{page}"
    );
    let change = [
        ("csrf", dee_csrf.as_str()),
        ("notice_text", "We text you loyalty offers and events."),
        ("retention_days", "180"),
        ("categories", "user.name"),
        ("categories", "user.contact.phone_number"),
        ("roles", "marketing"),
    ];
    let (s, _, _) = send(
        &app,
        "POST",
        "/console/purposes/loyalty_sms",
        Some(&dee),
        Some(&change),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let p = vault.purposes().get("purpose", "loyalty_sms").unwrap();
    assert_eq!((p.notice_version, p.retention_days), (2, 180));
    let (_, _, mark_home) = send(&app, "GET", "/console", Some(&mark), None).await;
    let (s, _, _) = send(
        &app,
        "POST",
        "/console/purposes",
        Some(&mark),
        Some(&[("csrf", csrf_in(&mark_home).as_str()), ("key", "x")]),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
