//! No address anywhere a staff member can see (issue 18, point 7): after a campaign has gone to
//! every customer and a store manager has written to one and read the reply, every role walks
//! every `GET` route of the API (from `/openapi.json`, its path ids filled with the real ones)
//! and every console page, under every purpose it might declare; no answer holds a customer's
//! e-mail address.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use steward_domain::{ConsentAction, ConsentInput, ConsentSource, Role};
use steward_service::{Actor, TokenOwner};

use crate::console::send;
use crate::door::console_session;
use crate::support::{TestDb, backend_tests, oneshot, operator_customer, principal};

backend_tests!(no_staff_route_or_page_shows_a_recipient_s_address);

/// A JSON call through the router.
async fn call(
    app: &axum::Router,
    token: &str,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (u16, Value) {
    crate::support::json_call(app, token, method, uri, body, &[]).await
}

async fn no_staff_route_or_page_shows_a_recipient_s_address(db: TestDb) {
    let (vault, op, _) = db.open().await;
    let sink = db.dir.path().join("mail.txt");
    vault.use_notifier(std::sync::Arc::new(
        steward_service::notify::FileNotifier::new(sink.clone()),
    ));
    vault
        .outreach()
        .configure_mail(
            op,
            steward_service::sending::MailSettings {
                public_url: "https://crm.shop.example".into(),
                from: "Shop <news@shop.example>".into(),
                cap: Default::default(),
                lease: Duration::from_secs(60),
                reply_domain: None,
            },
        )
        .unwrap();
    vault.outreach().start_sender(op);
    let outlet = vault
        .directory()
        .create_outlet(op.into(), "Walk Outlet")
        .await
        .unwrap();
    let agent = principal(&vault, op, Role::SupportAgent).await;
    let mut emails = Vec::new();
    let mut customers = Vec::new();
    for i in 0..11 {
        let email = format!("walker{i}.secret@example.org");
        let id = operator_customer(
            &vault,
            op,
            json!({"name": format!("Walker Number{i}"), "email": email, "phone": format!("+44 20 7946 09{i:02}"), "outlet_id": outlet}),
        )
        .await;
        vault
            .record_consent(
                &agent,
                id,
                &ConsentInput {
                    purpose: "marketing_email".into(),
                    action: ConsentAction::Grant,
                    source: ConsentSource::InStore,
                },
            )
            .await
            .unwrap();
        emails.push(email);
        customers.push(id);
    }
    let app = steward_api::router(vault.clone());
    let password = "a long enough password";
    // Every role as a staff member of the customers' outlet (console and API alike).
    let mut staff = Vec::new();
    for role in Role::ALL {
        let id = vault
            .directory()
            .create_staff(op.into(), &format!("Walk {role:?}"), &[role], &[outlet])
            .await
            .unwrap();
        let login = format!("walk.{}", role.as_str().replace('_', "."));
        vault
            .identity()
            .set_staff_password(op, id, &login, zeroize::Zeroizing::new(password.into()))
            .await
            .unwrap();
        let (_, token) = vault
            .identity()
            .create_token(op, "walk", TokenOwner::Staff(id))
            .await
            .unwrap();
        let (session, _) = console_session(&app, &login, password).await;
        staff.push((role, token, session));
    }
    let token_of = |r: Role| {
        staff
            .iter()
            .find(|s| s.0 == r)
            .map(|s| s.1.as_str())
            .unwrap()
    };

    // A campaign to everyone.
    let marketing = token_of(Role::Marketing);
    let (s, seg) = call(
        &app,
        marketing,
        "POST",
        "/v1/segments",
        Some(json!({"name": "All", "rules": {"all": []}})),
    )
    .await;
    assert_eq!(s, 201, "{seg}");
    let segment = seg["id"].as_str().unwrap().to_owned();
    let (s, c) = call(
        &app,
        marketing,
        "POST",
        "/v1/campaigns",
        Some(json!({"segment_id": segment, "purpose": "marketing_email", "subject": "Hello {{first_name}}", "body": "News"})),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    let campaign = c["id"].as_str().unwrap().to_owned();
    let (s, started) = call(
        &app,
        marketing,
        "POST",
        &format!("/v1/campaigns/{campaign}/send"),
        None,
    )
    .await;
    assert_eq!(s, 202, "{started}");
    // A store manager writes to one customer, who replies.
    let manager = token_of(Role::StoreManager);
    let ada = customers[0];
    let (s, m) = call(
        &app,
        manager,
        "POST",
        &format!("/v1/customers/{ada}/messages?purpose=service"),
        Some(json!({"subject": "Your order", "text": "It has arrived."})),
    )
    .await;
    assert_eq!(s, 202, "{m}");
    let thread = m["thread_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    let alias = loop {
        let text = std::fs::read_to_string(&sink).unwrap_or_default();
        let done = call(
            &app,
            marketing,
            "GET",
            &format!("/v1/campaigns/{campaign}"),
            None,
        )
        .await
        .1;
        let alias = text
            .lines()
            .find_map(|l| l.strip_prefix("Reply-To: "))
            .map(|a| a.trim_matches(['<', '>']).to_owned());
        if let (Some(a), "sent") = (alias, done["status"].as_str().unwrap_or("")) {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "campaign and message not sent: {done}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let reply = format!(
        "From: {}\r\nTo: {alias}\r\nSubject: Re: Your order\r\n\r\nThanks! Write to {} or call +44 20 7946 0900.\r\n",
        emails[0], emails[0]
    );
    let got = vault
        .outreach()
        .receive_mail(Actor::Operator(op), reply.as_bytes(), &[])
        .await
        .unwrap();
    assert!(matches!(
        got,
        steward_service::inbound::Received::Reply { .. }
    ));
    // The sink holds the messages as the mail server received them: addresses and all.
    assert!(std::fs::read_to_string(&sink).unwrap().contains(&emails[1]));

    // Every GET route of the API, for every role, under every purpose.
    let (s, _, spec) = oneshot(&app, None, "GET", "/openapi.json", None, None, &[]).await;
    assert_eq!(s.as_u16(), 200);
    let paths: Vec<String> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, ops)| ops.get("get").is_some())
        .map(|(p, _)| p.clone())
        .collect();
    assert!(
        paths.iter().any(|p| p == "/v1/customers/{id}/messages"),
        "{paths:?}"
    );
    let fill = |p: &str| {
        let id = if p.starts_with("/v1/campaigns") {
            campaign.clone()
        } else if p.starts_with("/v1/segments") {
            segment.clone()
        } else {
            ada.to_string()
        };
        p.replace("{id}", &id)
            .replace("{key}", "service")
            .replace("{thread_id}", &thread)
    };
    let purposes = [
        "service",
        "marketing_email",
        "order_fulfilment",
        "fraud_prevention",
        "analytics",
        "personalisation",
    ];
    let lower: Vec<String> = emails.iter().map(|e| e.to_ascii_lowercase()).collect();
    let mut leaks = Vec::new();
    let mut walked = 0;
    let mut shown = 0;
    for (role, token, session) in &staff {
        for p in &paths {
            for purpose in purposes {
                let uri = format!("{}?purpose={purpose}", fill(p));
                let (s, body) = call(&app, token, "GET", &uri, None).await;
                walked += 1;
                if s == 200 {
                    shown += 1;
                }
                let text = body.to_string().to_ascii_lowercase();
                if let Some(e) = lower.iter().find(|e| text.contains(e.as_str())) {
                    leaks.push(format!("{role:?} GET {uri} ({s}) shows {e}"));
                }
            }
        }
        // Every console page the role can reach.
        let pages = [
            "/console".to_owned(),
            "/console/campaigns".to_owned(),
            "/console/segments".to_owned(),
            "/console/directory".to_owned(),
            "/console/purposes".to_owned(),
            "/console/notice".to_owned(),
            "/console/dpo".to_owned(),
        ]
        .into_iter()
        .chain(
            purposes
                .iter()
                .map(|p| format!("/console/customers/{ada}?purpose={p}")),
        );
        for page in pages {
            let (s, _, html) = send(&app, "GET", &page, Some(session), None).await;
            walked += 1;
            if s.as_u16() == 200 {
                shown += 1;
            }
            let text = html.to_ascii_lowercase();
            if let Some(e) = lower.iter().find(|e| text.contains(e.as_str())) {
                leaks.push(format!("{role:?} page {page} ({s}) shows {e}"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} of {walked} answers show an address:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
    // The walk reached real pages: the store manager's customer page shows the thread.
    assert!(
        shown > staff.len() * 10,
        "only {shown} of {walked} answers were pages"
    );
    let manager_session = &staff.iter().find(|s| s.0 == Role::StoreManager).unwrap().2;
    let (_, _, page) = send(
        &app,
        "GET",
        &format!("/console/customers/{ada}?purpose=service"),
        Some(manager_session),
        None,
    )
    .await;
    assert!(
        page.contains("It has arrived.") && page.contains("[e-mail address removed]"),
        "{page}"
    );
    assert!(page.contains("[phone number removed]"), "{page}");
}
