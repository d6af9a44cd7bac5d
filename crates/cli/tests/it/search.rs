//! Customer search (issue 17, point 1): by the beginning of a name's words, case and accents
//! ignored, over sealed names; filtered by outlet and tier; decided per customer; refused where
//! the caller is not shown what they search by. Both backends.

use axum::http::StatusCode;
use serde_json::{Value, json};
use steward_domain::Role;
use steward_service::TokenOwner;

use crate::access::{call, token, world};
use crate::support::{TestDb, backend_tests};

backend_tests!(customers_are_found_by_name_outlet_and_tier);

/// The names of a page's items, sorted.
fn names(page: &Value) -> Vec<String> {
    let mut v: Vec<String> = page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {page}"))
        .iter()
        .map(|c| c["name"].as_str().unwrap_or("(no name)").to_owned())
        .collect();
    v.sort();
    v
}

async fn customers_are_found_by_name_outlet_and_tier(db: TestDb) {
    let w = world(&db).await;
    let app = &w.router;
    for name in [
        "Zoë O'Brien-Smith",
        "Ada Lovelace",
        "Adam Ant",
        "Lin Li",
        "Grace Hopper",
    ] {
        let (s, p) = call(
            app,
            &w.support,
            "POST",
            "/v1/customers",
            Some(json!({"name": name})),
            false,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
    }
    let (s, p) = call(
        app,
        &w.bob,
        "POST",
        "/v1/customers",
        Some(json!({"name": "Carlos Carter"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let search = |who: &'static str, q: &str| {
        let t = match who {
            "support" => w.support.clone(),
            "alice" => w.alice.clone(),
            _ => w.bob.clone(),
        };
        let uri = format!("/v1/customers?purpose=service&{q}");
        async move { call(app, &t, "GET", &uri, None, false).await }
    };
    for (q, want) in [
        ("q=zoe", vec!["Zoë O'Brien-Smith"]),
        ("q=OBRI", vec!["Zoë O'Brien-Smith"]),
        ("q=ada", vec!["Ada Lovelace", "Adam Ant"]),
        ("q=ada%20lov", vec!["Ada Lovelace"]),
        ("q=lovelace%20A", vec!["Ada Lovelace"]),
        ("q=li", vec!["Lin Li"]),
        ("q=car", vec!["Carla Collector", "Carlos Carter"]),
        ("q=velace", vec![]),
    ] {
        let (s, page) = search("support", q).await;
        assert_eq!(
            (s, names(&page)),
            (StatusCode::OK, want.iter().map(|s| s.to_string()).collect()),
            "{q}"
        );
    }
    let outlet_a = w.outlet_a.to_string();
    let (_, page) = search("support", &format!("q=car&outlet_id={outlet_a}")).await;
    assert_eq!(names(&page), ["Carla Collector"]);

    // An outlet filter tells who belongs to the outlet: refused to whom the policy does not show
    // that outlet's customers' purchase history (Bob, of another outlet).
    let (s, p) = search("bob", &format!("q=car&outlet_id={outlet_a}")).await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::FORBIDDEN, Some("outlet_id")),
        "{p}"
    );

    // Under a purpose resting on consent, customers who have not consented are passed over
    // unread: not listed, and no refusal about them is recorded.
    let marketing = token(&w.vault, TokenOwner::Role(Role::Marketing)).await;
    w.vault.audit().flush().await.unwrap();
    let entries = || async {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) FROM audit_entries")
            .fetch_one(&db.raw_log().await)
            .await
            .unwrap()
            .get::<i64, _>(0)
    };
    let before = entries().await;
    let (s, page) = call(
        app,
        &marketing,
        "GET",
        "/v1/customers?purpose=marketing_email&q=ada",
        None,
        false,
    )
    .await;
    assert_eq!(
        (s, names(&page)),
        (StatusCode::OK, Vec::<String>::new()),
        "{page}"
    );
    w.vault.audit().flush().await.unwrap();
    assert_eq!(
        entries().await,
        before,
        "a search recorded reads of customers it did not show"
    );

    // Tiers as the caller may know them: Carla bought three watches (silver). Bob, at another
    // outlet, knows her tier from the abstraction; nobody is gold.
    let (_, page) = search("bob", "q=car&tier=silver").await;
    assert_eq!(names(&page), ["Carla Collector"]);
    assert_eq!(
        page["items"][0]["purchase_summary"]["tier"], "silver",
        "{page}"
    );
    let (_, page) = search("alice", "tier=gold").await;
    assert_eq!(names(&page), Vec::<String>::new());
    let (_, page) = search("support", "tier=none&q=ada").await;
    assert_eq!(names(&page), ["Ada Lovelace", "Adam Ant"]);

    // By consent (where the caller may read consents) and by last activity (where the caller
    // is shown purchases or interactions).
    let ada = {
        let (_, page) = search("support", "q=ada%20lov").await;
        page["items"][0]["id"].as_str().unwrap().to_owned()
    };
    let (s, _) = call(
        app,
        &w.support,
        "POST",
        &format!("/v1/customers/{ada}/consents"),
        Some(json!({"purpose": "marketing_email", "action": "grant", "source": "api"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, page) = search("support", "q=ada&consent=marketing_email").await;
    assert_eq!(names(&page), ["Ada Lovelace"]);
    let today = &steward_domain::Timestamp::now().to_rfc3339()[..10];
    let (_, page) = search("support", &format!("q=car&active_since={today}")).await;
    assert_eq!(names(&page), ["Carla Collector"], "Carlos has no activity");
    let (_, page) = search("support", "q=car&active_since=2999-01-01").await;
    assert_eq!(names(&page), Vec::<String>::new());
    let (s, p) = search("support", "consent=service").await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("consent")),
        "{p}"
    );
    let (s, p) = search("support", "active_since=01.11.2026").await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("active_since")),
        "{p}"
    );
    // Bob is shown his own outlet's activity, not Carla's (another outlet's): she is passed over.
    let (s, page) = search("bob", &format!("q=car&active_since={today}")).await;
    assert_eq!(
        (s, names(&page)),
        (StatusCode::OK, Vec::<String>::new()),
        "{page}"
    );

    // A rename moves the customer in the index.
    let (_, page) = search("support", "q=grace").await;
    let grace = page["items"][0]["id"].as_str().unwrap().to_owned();
    let (s, _) = call(
        app,
        &w.support,
        "PATCH",
        &format!("/v1/customers/{grace}"),
        Some(json!({"name": "Amazing Grace"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, page) = search("support", "q=hopper").await;
    assert_eq!(names(&page), Vec::<String>::new());
    let (_, page) = search("support", "q=amaz").await;
    assert_eq!(names(&page), ["Amazing Grace"]);

    // Bad input names its field.
    for (q, status, field) in [
        ("q=a", StatusCode::BAD_REQUEST, "q"),
        ("q=%20-%20", StatusCode::BAD_REQUEST, "q"),
        ("tier=platinum", StatusCode::BAD_REQUEST, "tier"),
        ("outlet_id=nope", StatusCode::BAD_REQUEST, "outlet_id"),
        (
            "outlet_id=01890000-0000-7000-8000-000000000000",
            StatusCode::UNPROCESSABLE_ENTITY,
            "outlet_id",
        ),
    ] {
        let (s, p) = search("support", q).await;
        assert_eq!((s, p["field"].as_str()), (status, Some(field)), "{q}: {p}");
    }

    // Under a purpose that shows no names or purchases, searching by them is refused (it would
    // tell what the caller may not read), naming the parameter.
    let dpo = token(&w.vault, TokenOwner::Role(Role::Dpo)).await;
    let phone_line = json!({
        "key": "phone_line", "lawful_basis": "contract", "data_use": "essential.service",
        "categories": ["user.contact.phone_number"], "retention_days": 365,
        "notice_text": "We call you back about your order.", "roles": ["support_agent"],
    });
    let (s, p) = call(app, &dpo, "POST", "/v1/purposes", Some(phone_line), false).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    for (q, field) in [("q=ada", "q"), ("tier=gold", "tier")] {
        let uri = format!("/v1/customers?purpose=phone_line&{q}");
        let (s, p) = call(app, &w.support, "GET", &uri, None, false).await;
        assert_eq!(
            (s, p["field"].as_str()),
            (StatusCode::FORBIDDEN, Some(field)),
            "{q}: {p}"
        );
    }

    // Pages: thirty Marks, ten at a time, each once.
    for i in 0..30 {
        let (s, _) = call(
            app,
            &w.support,
            "POST",
            "/v1/customers",
            Some(json!({"name": format!("Mark Number{i}")})),
            false,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let (s, page) = search("support", &format!("q=mark%20num&limit=10&cursor={cursor}")).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        for n in names(&page) {
            assert!(seen.insert(n.clone()), "{n} twice");
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 30);
}

backend_tests!(the_console_lists_and_searches_keeping_what_was_typed);

async fn the_console_lists_and_searches_keeping_what_was_typed(db: TestDb) {
    use crate::console::send;
    let (vault, op, _) = db.open().await;
    let password = "a long enough password";
    crate::console::another_outlets_customer(
        &vault,
        op,
        ("Bea Seller", Role::SalesAssociate, "bea", password),
        (
            "Carla Customer",
            "carla.list@example.com",
            "+41 44 555 0102",
        ),
    )
    .await;
    let outlets = vault.directory().list_outlets(op.into()).await.unwrap();
    let geneva = outlets
        .iter()
        .find(|o| o.name == "Geneva")
        .unwrap()
        .id
        .to_string();
    let input: steward_domain::CustomerInput = serde_json::from_value(
        json!({"name": "Carl Genevois", "email": "carl@example.com", "outlet_id": geneva}),
    )
    .unwrap();
    vault
        .records()
        .create_customer(op.into(), &input.validate().unwrap())
        .await
        .unwrap();
    let app = steward_api::router(vault.clone());
    let (session, csrf) = crate::door::console_session(&app, "bea", password).await;

    // Outlet staff start from their own outlet, and are offered only theirs.
    let (_, _, home) = send(&app, "GET", "/console", Some(&session), None).await;
    assert!(
        home.contains(&format!(
            "<option value=\"{geneva}\" selected>Geneva</option>"
        )),
        "{home}"
    );
    assert!(!home.contains("Zurich"), "{home}");

    let search = |query: &'static str, outlet: String| {
        let (app, session, csrf) = (app.clone(), session.clone(), csrf.clone());
        async move {
            let form = [
                ("csrf", csrf.as_str()),
                ("query", query),
                ("purpose", "service"),
                ("outlet_id", outlet.as_str()),
                ("tier", ""),
            ];
            send(&app, "POST", "/console/search", Some(&session), Some(&form)).await
        }
    };
    // All outlets, as the policy shows them: the address masked for every customer (staff write
    // through Steward, which opens it itself).
    let (s, _, page) = search("carl", String::new()).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(
        page.contains("Carl Genevois")
            && page.contains("c•••@example.com")
            && !page.contains("carl@example.com"),
        "{page}"
    );
    assert!(
        page.contains("Carla Customer") && !page.contains("carla.list@example.com"),
        "{page}"
    );
    assert!(page.contains("value=\"carl\""), "the query is kept: {page}");
    assert!(
        page.contains("<option value=\"service\" selected>Service</option>"),
        "{page}"
    );
    let (_, _, page) = search("carl", geneva.clone()).await;
    assert!(
        page.contains("Carl Genevois") && !page.contains("Carla Customer"),
        "{page}"
    );
    // An empty query lists; a one-letter one is refused, and the form keeps it.
    let (_, _, page) = search("", geneva.clone()).await;
    assert!(page.contains("Carl Genevois"), "{page}");
    let (s, _, page) = search("c", geneva.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("Type at least two letters") && page.contains("value=\"c\""),
        "{page}"
    );
    assert!(
        page.contains("<option value=\"service\" selected>"),
        "{page}"
    );
}

backend_tests!(national_phone_numbers_are_found_where_the_outlets_country_is_known);

async fn national_phone_numbers_are_found_where_the_outlets_country_is_known(db: TestDb) {
    let (vault, op, _) = db.open().await;
    let app = steward_api::router(vault.clone());
    let admin = token(&vault, TokenOwner::Role(Role::Admin)).await;
    let (s, p) = call(
        &app,
        &admin,
        "POST",
        "/v1/outlets",
        Some(json!({"name": "Zurich", "country": "CHE"})),
        false,
    )
    .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("country")),
        "{p}"
    );
    let (s, p) = call(
        &app,
        &admin,
        "POST",
        "/v1/outlets",
        Some(json!({"name": "Zurich", "country": "ch"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let zurich: steward_domain::OutletId = p["id"].as_str().unwrap().parse().unwrap();
    let (_, list) = call(&app, &admin, "GET", "/v1/outlets", None, false).await;
    assert_eq!(list[0]["country"], "CH", "{list}");
    let elsewhere = vault
        .directory()
        .create_outlet(op.into(), "Nowhere")
        .await
        .unwrap();
    let here = vault
        .directory()
        .create_staff(op.into(), "Zoe Zurich", &[Role::SalesAssociate], &[zurich])
        .await
        .unwrap();
    let there = vault
        .directory()
        .create_staff(
            op.into(),
            "Nils Nowhere",
            &[Role::SalesAssociate],
            &[elsewhere],
        )
        .await
        .unwrap();
    crate::support::operator_customer(
        &vault,
        op,
        json!({"name": "Ueli Local", "phone": "+41 44 555 01 01", "outlet_id": zurich}),
    )
    .await;
    let (zoe, nils) = (
        token(&vault, TokenOwner::Staff(here)).await,
        token(&vault, TokenOwner::Staff(there)).await,
    );
    let lookup = |t: String| {
        let app = app.clone();
        async move {
            call(
                &app,
                &t,
                "POST",
                "/v1/customers/lookup?purpose=service",
                Some(json!({"phone": "044 555 01 01"})),
                false,
            )
            .await
        }
    };
    let (s, found) = lookup(zoe).await;
    assert_eq!(s, StatusCode::OK, "{found}");
    assert_eq!(found["items"][0]["name"], "Ueli Local", "{found}");
    // An outlet of no known country: the number must be international, as before.
    let (s, p) = lookup(nils).await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("phone")),
        "{p}"
    );
}
