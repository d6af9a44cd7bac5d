//! The staff console over HTTP: sign-in with a password and a session cookie, CSRF on every
//! form, security headers, search by e-mail (POSTed, never in a URL), the customer page marking
//! masked, abstracted and withheld fields, sign-out. (The browser journeys come with issue 6's
//! Chromium tests.)

use axum::http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt;
use steward_domain::Role;
use tower::ServiceExt;

use crate::support::{TestDb, backend_tests};

/// One request: (status, headers, body text).
pub async fn send(
    app: &axum::Router,
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    form: Option<&[(&str, &str)]>,
) -> (StatusCode, HeaderMap, String) {
    send_with(app, method, uri, cookie, form, &[]).await
}

/// [`send`] with extra request headers.
pub async fn send_with(
    app: &axum::Router,
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    form: Option<&[(&str, &str)]>,
    extra: &[(&str, &str)],
) -> (StatusCode, HeaderMap, String) {
    let mut req = axum::http::Request::builder().method(method).uri(uri);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let body = match form {
        Some(f) => {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(f)
                .finish()
        }
        None => String::new(),
    };
    let res = app
        .clone()
        .oneshot(req.body(axum::body::Body::from(body)).unwrap())
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// The value of the hidden `csrf` field of a page.
pub fn csrf_in(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

/// `name=value` of the Set-Cookie header setting `name`, with its attributes.
pub fn set_cookie<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie set"))
}

pub fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// Two outlets; a staff member of the first with `role`, signing in with `login` and
/// `password`; a customer registered at the second (so the staff member sees them masked).
pub async fn another_outlets_customer(
    vault: &steward_service::Vault,
    op: steward_service::Operator,
    (staff_name, role, login, password): (&str, Role, &str, &str),
    (name, email, phone): (&str, &str, &str),
) -> steward_domain::CustomerId {
    let mine = vault
        .directory()
        .create_outlet(op.into(), "Geneva")
        .await
        .unwrap();
    let theirs = vault
        .directory()
        .create_outlet(op.into(), "Zurich")
        .await
        .unwrap();
    let _ = crate::support::staff_member(vault, op, (staff_name, role, &[mine]), (login, password))
        .await;
    let input: steward_domain::CustomerInput = serde_json::from_value(serde_json::json!({
        "name": name, "email": email, "phone": phone, "outlet_id": theirs,
    }))
    .unwrap();
    vault
        .records()
        .create_customer(op.into(), &input.validate().unwrap())
        .await
        .unwrap()
}

backend_tests!(console_sign_in_search_and_read);

async fn console_sign_in_search_and_read(db: TestDb) {
    let (vault, op, _) = db.open().await;
    let customer = another_outlets_customer(
        &vault,
        op,
        (
            "Bea Seller",
            Role::SalesAssociate,
            "bea",
            "a long enough password",
        ),
        (
            "Carla Customer",
            "carla.console@example.com",
            "+41 44 555 0101",
        ),
    )
    .await;
    let app = steward_api::router(vault.clone());

    // Signed out: every page leads to the sign-in form, with the security headers.
    let (s, h, _) = send(&app, "GET", "/console", None, None).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h[header::LOCATION], "/console/sign-in");
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
    assert_eq!(h[header::REFERRER_POLICY], "no-referrer");

    let (s, h, page) = send(&app, "GET", "/console/sign-in", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("<label for=\"login\">") && page.contains("<label for=\"password\">"));
    let pre = set_cookie(&h, "steward_csrf");
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/console"] {
        assert!(pre.contains(attr), "{pre}");
    }
    let (pre, token) = (pair(pre), csrf_in(&page));

    // A sign-in form posted from elsewhere (no matching cookie) is refused.
    let right = [
        ("csrf", token.as_str()),
        ("login", "bea"),
        ("password", "a long enough password"),
    ];
    let (s, _, _) = send(&app, "POST", "/console/sign-in", None, Some(&right)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // A wrong password.
    let wrong = [
        ("csrf", token.as_str()),
        ("login", "bea"),
        ("password", "not the password!!"),
    ];
    let (s, _, page) = send(&app, "POST", "/console/sign-in", Some(&pre), Some(&wrong)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(page.contains("The login or the password is wrong."));
    // The right one: a session cookie, HTTP-only, Secure, SameSite=Strict.
    let (s, h, _) = send(&app, "POST", "/console/sign-in", Some(&pre), Some(&right)).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h[header::LOCATION], "/console");
    let session = set_cookie(&h, "steward_session");
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Max-Age="] {
        assert!(session.contains(attr), "{session}");
    }
    let session = pair(session);

    let (s, _, home) = send(&app, "GET", "/console", Some(&session), None).await;
    assert_eq!(s, StatusCode::OK);
    // Not `contains("Bea")`: the page's random CSRF token may hold any three letters.
    assert!(home.contains("Signed in (sales_associate)") && !home.contains("Bea Seller"));
    assert!(!home.contains(">Bea") && !home.contains(" Bea"));
    assert!(home.contains("<option value=\"service\">"));
    let csrf = csrf_in(&home);

    // Search: POSTed, CSRF-checked; the e-mail appears in no link.
    let query = [
        ("csrf", "forged"),
        ("query", "Carla.Console@example.com"),
        ("purpose", "service"),
    ];
    let (s, _, _) = send(
        &app,
        "POST",
        "/console/search",
        Some(&session),
        Some(&query),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let query = [
        ("csrf", csrf.as_str()),
        ("query", "Carla.Console@example.com"),
        ("purpose", "service"),
    ];
    let (s, _, found) = send(
        &app,
        "POST",
        "/console/search",
        Some(&session),
        Some(&query),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{found}");
    let link = format!("/console/customers/{customer}?purpose=service");
    assert!(found.contains(&link), "{found}");
    // The query is not echoed: the e-mail is nowhere in the page, links included.
    assert!(!found.to_lowercase().contains("carla.console@example.com"));

    // Another outlet's customer: the name, a masked e-mail and phone, the purchase abstraction.
    let (s, _, page) = send(&app, "GET", &link, Some(&session), None).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("Carla Customer"));
    assert!(
        !page.contains("carla.console@example.com"),
        "the e-mail is shown in clear"
    );
    assert!(
        page.contains("c•••@example.com") || page.contains("•••@example.com"),
        "{page}"
    );
    assert!(
        page.contains("<dd class=\"mask\">") && page.contains("<span class=\"badge\">mask</span>")
    );
    assert!(page.contains("decided by"));

    // Recording on the customer's behalf: an interaction, a purchase, a consent given in store;
    // each answers with a redirect back to the page (a reload repeats nothing).
    let base = format!("/console/customers/{customer}");
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut f = vec![("csrf", csrf.clone()), ("purpose", "service".to_owned())];
        f.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        f
    };
    let post = |path: String, f: Vec<(&'static str, String)>| {
        let (app, session) = (app.clone(), session.clone());
        async move {
            let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            send(&app, "POST", &path, Some(&session), Some(&pairs)).await
        }
    };
    let interaction = with(&[("channel", "in_store"), ("text", "Asked about a strap")]);
    let (s, h, _) = post(format!("{base}/interactions"), interaction).await;
    assert_eq!(
        (s, h[header::LOCATION].to_str().unwrap()),
        (StatusCode::SEE_OTHER, link.as_str())
    );
    let purchase = with(&[
        ("item", "Chronograph 42"),
        ("category", "watches"),
        ("amount", "1250.50"),
        ("currency", "CHF"),
    ]);
    let (s, _, _) = post(format!("{base}/purchases"), purchase).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    // A decimal comma is a decimal point (issue 17); an amount that is none is refused, unechoed.
    let comma = with(&[
        ("item", "Strap"),
        ("category", "watches"),
        ("amount", "12,50"),
        ("currency", "CHF"),
    ]);
    let (s, _, _) = post(format!("{base}/purchases"), comma).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let bad = with(&[
        ("item", "Strap"),
        ("category", "watches"),
        ("amount", "12;50"),
        ("currency", "CHF"),
    ]);
    let (s, _, page) = post(format!("{base}/purchases"), bad).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("amount") && !page.contains("12;50"));
    let (_, _, page) = send(&app, "GET", &link, Some(&session), None).await;
    assert!(
        page.contains("Marketing email: <strong>never</strong>"),
        "{page}"
    );
    let grant = with(&[("consent_purpose", "marketing_email"), ("action", "grant")]);
    let (s, _, _) = post(format!("{base}/consents"), grant).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, _, page) = send(&app, "GET", &link, Some(&session), None).await;
    assert!(
        page.contains("Marketing email: <strong>granted</strong>"),
        "{page}"
    );
    let forged = vec![
        ("csrf", "forged".to_owned()),
        ("purpose", "service".to_owned()),
        ("channel", "web".to_owned()),
        ("text", "x".to_owned()),
    ];
    let (s, _, _) = post(format!("{base}/interactions"), forged).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    {
        use sqlx::Row;
        let raw = db.raw().await;
        let count = |table: &'static str| {
            let raw = raw.clone();
            async move {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT COUNT(*) FROM {table} WHERE customer_id = $1"
                )))
                .bind(customer.as_bytes().to_vec())
                .fetch_one(&raw)
                .await
                .unwrap()
                .get::<i64, _>(0)
            }
        };
        // One note; two sales (1250.50 and 12,50); nothing of the refused forms.
        assert_eq!(
            (count("interactions").await, count("purchases").await),
            (1, 2)
        );
        let source: String =
            sqlx::query("SELECT source FROM consent_events WHERE customer_id = $1")
                .bind(customer.as_bytes().to_vec())
                .fetch_one(&raw)
                .await
                .unwrap()
                .get(0);
        assert_eq!(source, "in_store");
    }

    // Sign-out: CSRF-checked, the cookie cleared, the session dead.
    let (s, _, _) = send(
        &app,
        "POST",
        "/console/sign-out",
        Some(&session),
        Some(&[("csrf", "x")]),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, h, _) = send(
        &app,
        "POST",
        "/console/sign-out",
        Some(&session),
        Some(&[("csrf", csrf.as_str())]),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(set_cookie(&h, "steward_session").contains("Max-Age=0"));
    let (s, h, _) = send(&app, "GET", "/console", Some(&session), None).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h[header::LOCATION], "/console/sign-in");
}

backend_tests!(the_dpo_page_shows_requests_alerts_and_the_signed_head);

async fn the_dpo_page_shows_requests_alerts_and_the_signed_head(db: TestDb) {
    let (vault, op, _) = db.open().await;
    let customer = another_outlets_customer(
        &vault,
        op,
        ("Dana Officer", Role::Dpo, "dana", "protect the data 1"),
        ("Erin Example", "erin.dpo@example.com", "+41 44 555 0111"),
    )
    .await;
    let session = vault
        .identity()
        .sign_in("dana", zeroize::Zeroizing::new("protect the data 1".into()))
        .await
        .unwrap()
        .unwrap();
    let dpo = session.principal.clone();
    // An erasure request waiting for the customer's identity, and a break-glass read.
    let request: steward_domain::RequestInput =
        serde_json::from_value(serde_json::json!({"type": "erasure", "customer_id": customer}))
            .unwrap();
    vault.create_request(&dpo, &request).await.unwrap();
    let purpose = vault.purposes().get("purpose", "service").unwrap();
    let access = steward_service::Access {
        principal: &dpo,
        purpose: &purpose,
        reason: Some("The customer disputes a charge at the counter"),
        break_glass: true,
    };
    vault
        .records()
        .read_customer(&access, customer)
        .await
        .unwrap();
    let consent: steward_domain::ConsentInput = serde_json::from_value(
        serde_json::json!({"purpose": "marketing_email", "action": "grant", "source": "in_store"}),
    )
    .unwrap();
    vault
        .record_consent(&dpo, customer, &consent)
        .await
        .unwrap();
    vault.audit().flush().await.unwrap();

    let app = steward_api::router(vault.clone());
    let cookie = format!("steward_session={}", session.token.as_str());
    let (s, _, home) = send(&app, "GET", "/console", Some(&cookie), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(home.contains("href=\"/console/dpo\""));
    let (s, _, page) = send(&app, "GET", "/console/dpo", Some(&cookie), None).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(
        page.contains("<td>Erasure</td>") && page.contains("<td>In progress</td>"),
        "{page}"
    );
    assert!(page.contains("<strong>Break glass</strong>"), "{page}");
    assert!(
        page.contains("marketing_email: <strong>1</strong> consenting now"),
        "{page}"
    );
    assert!(page.contains("<polyline points=\"0.0,60.0 "), "{page}");
    assert!(
        page.contains("aria-label=\"Latest signed head\">steward/audit/"),
        "{page}"
    );
    assert!(page.contains("<td>sign_in</td>"), "{page}");
    assert!(page.contains("<td>read</td>"), "{page}");
    // Nothing personal on the page: ids and pseudonyms only.
    assert!(!page.contains("Erin") && !page.contains("erin.dpo") && !page.contains("Dana"));
    let link = |page: &str, prefix: &str| {
        let at = page
            .find(prefix)
            .unwrap_or_else(|| panic!("no {prefix} in {page}"));
        page[at..].split('"').next().unwrap().to_owned()
    };

    // The break-glass reason, readable by the DPO alone.
    let alert = link(&page, "/console/dpo/alerts/");
    let (s, _, opened) = send(&app, "GET", &alert, Some(&cookie), None).await;
    assert_eq!(s, StatusCode::OK, "{opened}");
    assert!(
        opened.contains("The customer disputes a charge at the counter"),
        "{opened}"
    );

    // The DPO finds a customer by name with a reason, and opens them with it (in a body).
    let csrf = crate::console::csrf_in(&page);
    let reason = "Checking the erasure request before fulfilling it";
    let search = [
        ("csrf", csrf.as_str()),
        ("query", "erin ex"),
        ("purpose", "service"),
        ("reason", reason),
    ];
    let (s, _, found) = send(
        &app,
        "POST",
        "/console/search",
        Some(&cookie),
        Some(&search),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{found}");
    assert!(
        found.contains("Erin Example")
            && found.contains(&format!("action=\"/console/customers/{customer}/read\"")),
        "{found}"
    );
    let open = [
        ("csrf", csrf.as_str()),
        ("purpose", "service"),
        ("reason", reason),
    ];
    let (s, _, opened) = send(
        &app,
        "POST",
        &format!("/console/customers/{customer}/read"),
        Some(&cookie),
        Some(&open),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{opened}");
    assert!(
        opened.contains("Erin Example") && opened.contains("Read with your stated reason"),
        "{opened}"
    );
    // A note logged from that page comes back to it, read with the same reason (the reason
    // never goes into a URL, so no redirect could carry it).
    assert!(
        opened.contains(
            "name=\"reason\" value=\"Checking the erasure request before fulfilling it\""
        ),
        "{opened}"
    );
    let note = [
        ("csrf", csrf.as_str()),
        ("purpose", "service"),
        ("reason", reason),
        ("channel", "phone"),
        ("text", "Called to confirm the erasure request"),
    ];
    let (s, _, after) = send(
        &app,
        "POST",
        &format!("/console/customers/{customer}/interactions"),
        Some(&cookie),
        Some(&note),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{after}");
    assert!(
        after.contains("Recorded.") && after.contains("Called to confirm the erasure request"),
        "{after}"
    );
    // Without a reason the DPO's search is refused, saying why.
    let bare = [
        ("csrf", csrf.as_str()),
        ("query", "erin"),
        ("purpose", "service"),
    ];
    let (s, _, _) = send(&app, "POST", "/console/search", Some(&cookie), Some(&bare)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The log searched by action; a bad date is named and changes nothing else.
    let (_, _, found) = send(
        &app,
        "GET",
        "/console/dpo?action=sign_in",
        Some(&cookie),
        None,
    )
    .await;
    assert!(
        found.contains("<td>sign_in</td>") && !found.contains("<td>read</td>"),
        "{found}"
    );
    assert!(
        found.contains("value=\"sign_in\""),
        "the search is kept: {found}"
    );
    let (s, _, bad) = send(
        &app,
        "GET",
        "/console/dpo?since=yesterday",
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(bad.contains("From: give a date"), "{bad}");

    // The queue acts: the identity checked in person fulfils the erasure.
    let verify = link(&page, "/console/dpo/requests/");
    let verify = format!("{}/verify", verify.rsplit_once('/').unwrap().0);
    let (s, h, _) = send(
        &app,
        "POST",
        &verify,
        Some(&cookie),
        Some(&[("csrf", csrf.as_str())]),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h[header::LOCATION], "/console/dpo?done=verified");
    let (_, _, after) = send(
        &app,
        "GET",
        "/console/dpo?done=verified",
        Some(&cookie),
        None,
    )
    .await;
    assert!(
        after.contains("The identity check is recorded") && after.contains("No open request."),
        "{after}"
    );

    // Anyone else is refused the page.
    let _ = crate::support::staff_member(
        &vault,
        op,
        ("Sid Seller", Role::SalesAssociate, &[]),
        ("sid", "selling all day long"),
    )
    .await;
    let other = vault
        .identity()
        .sign_in(
            "sid",
            zeroize::Zeroizing::new("selling all day long".into()),
        )
        .await
        .unwrap()
        .unwrap();
    let cookie = format!("steward_session={}", other.token.as_str());
    let (s, _, home) = send(&app, "GET", "/console", Some(&cookie), None).await;
    assert!(s == StatusCode::OK && !home.contains("/console/dpo"));
    let (s, _, _) = send(&app, "GET", "/console/dpo", Some(&cookie), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
