//! The console's customer page as a place to work (issue 17, point 2): a timeline of purchases
//! and interactions, newest first and paged, as the policy decides each kind; what a manager
//! records appears on it at once, amounts as people write them. Both backends.

use axum::http::StatusCode;
use steward_domain::Role;

use crate::console::send;
use crate::door::console_session;
use crate::support::{TestDb, backend_tests, operator_customer};

backend_tests!(the_timeline_shows_what_was_recorded_newest_first);

async fn the_timeline_shows_what_was_recorded_newest_first(db: TestDb) {
    let (vault, op, _) = db.open().await;
    let (mine, theirs) = (
        vault
            .directory()
            .create_outlet(op.into(), "Lausanne")
            .await
            .unwrap(),
        vault
            .directory()
            .create_outlet(op.into(), "Basel")
            .await
            .unwrap(),
    );
    let password = "a long enough password";
    for (name, role, outlet, login) in [
        ("Tim Manager", Role::StoreManager, mine, "tim"),
        ("Ola Other", Role::SalesAssociate, theirs, "ola"),
    ] {
        let _ =
            crate::support::staff_member(&vault, op, (name, role, &[outlet]), (login, password))
                .await;
    }
    let customer = operator_customer(
        &vault,
        op,
        serde_json::json!({"name": "Tia Timeline", "outlet_id": mine}),
    )
    .await;
    let app = steward_api::router(vault.clone());
    let (session, csrf) = console_session(&app, "tim", password).await;
    let page_url = format!("/console/customers/{customer}?purpose=service");

    let (_, _, page) = send(&app, "GET", &page_url, Some(&session), None).await;
    assert!(page.contains("Nothing recorded yet."), "{page}");
    // A visit, then a sale: both appear, the sale first.
    let post = |form: &'static str, fields: Vec<(&'static str, &'static str)>| {
        let (app, session, csrf) = (app.clone(), session.clone(), csrf.clone());
        async move {
            let mut body = vec![("csrf", csrf.as_str()), ("purpose", "service")];
            body.extend(fields);
            let path = format!("/console/customers/{customer}/{form}");
            send(&app, "POST", &path, Some(&session), Some(&body))
                .await
                .0
        }
    };
    let s = post(
        "interactions",
        vec![("channel", "in_store"), ("text", "Tried on the blue strap")],
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let s = post(
        "purchases",
        vec![
            ("item", "Blue Strap"),
            ("category", "straps"),
            ("amount", "1250,50"),
            ("currency", "EUR"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, _, page) = send(&app, "GET", &page_url, Some(&session), None).await;
    assert_eq!(s, StatusCode::OK);
    let sale = page
        .find("Blue Strap (straps)")
        .expect("the sale is on the timeline");
    let visit = page
        .find("Tried on the blue strap")
        .expect("the visit is on the timeline");
    assert!(sale < visit, "newest first");
    assert!(page.contains("EUR 1,250.50"), "{page}");
    assert!(
        page.contains("Newest first: purchases and interactions."),
        "{page}"
    );
    assert!(!page.contains("Older events"));

    // Pages of twenty: twenty-five more visits leave the oldest ones for the next page.
    for i in 0..25 {
        let text = format!("Visit number {i:02}");
        let input: steward_domain::InteractionInput = serde_json::from_value(
            serde_json::json!({"channel": "phone", "text": text, "source": "test"}),
        )
        .unwrap();
        let new = input.validate(steward_domain::Timestamp::now()).unwrap();
        vault
            .records()
            .add_interaction(op.into(), customer, &new)
            .await
            .unwrap();
    }
    let (_, _, page) = send(&app, "GET", &page_url, Some(&session), None).await;
    assert!(
        page.contains("Visit number 24") && page.contains("Visit number 05"),
        "{page}"
    );
    assert!(
        !page.contains("Visit number 04") && !page.contains("Blue Strap"),
        "{page}"
    );
    let older = page
        .split("href=\"")
        .find(|h| h.contains("before="))
        .and_then(|h| h.split('"').next())
        .expect("a link to older events")
        .replace("&amp;", "&");
    let (_, _, page) = send(&app, "GET", &older, Some(&session), None).await;
    assert!(
        page.contains("Visit number 04") && page.contains("Visit number 00"),
        "{page}"
    );
    assert!(
        page.contains("Blue Strap") && page.contains("Tried on the blue strap"),
        "{page}"
    );
    assert!(
        !page.contains("Visit number 05") && !page.contains("Older events"),
        "{page}"
    );

    // Another outlet's associate: the abstraction, and only the sales of their own outlet
    // (none) — not the items sold here.
    let (other, _) = console_session(&app, "ola", password).await;
    let (_, _, page) = send(&app, "GET", &page_url, Some(&other), None).await;
    assert!(
        page.contains("the purchases made at your outlets"),
        "{page}"
    );
    assert!(
        !page.contains("Blue Strap") && !page.contains("Visit number"),
        "{page}"
    );
    assert!(
        page.contains("no interactions (withheld for this purpose)"),
        "{page}"
    );
}
