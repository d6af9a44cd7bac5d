//! Personalisation that asks first (issue 20), through the API on both backends: the consent
//! gate (grant, withdrawal, Global Privacy Control), the k threshold, explanations that name
//! only the customer's own purchases, a withdrawal and an erasure leaving the model at once, and
//! special categories marked by the DPO never driving a recommendation.

use serde_json::{Value, json};
use steward_domain::{
    ConsentAction, ConsentInput, ConsentSource, CustomerId, PurchaseInput, Role, Timestamp,
};
use steward_service::{Actor, TokenOwner};

use crate::support::{TestDb, backend_tests, operator_customer, principal};

backend_tests!(recommendations_ask_first_and_forget_at_once);

use crate::support::json_call as call;

/// Waits (30 s at most) until the campaign is sent; its view.
async fn sent(app: &axum::Router, token: &str, id: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, v) = call(app, token, "GET", &format!("/v1/campaigns/{id}"), None, &[]).await;
        if v["status"] == "sent" {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "{v}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The recommended item names for `id`, or the refusal.
async fn recommended(
    app: &axum::Router,
    token: &str,
    id: CustomerId,
) -> Result<Vec<String>, (u16, Value)> {
    let (s, v) = call(
        app,
        token,
        "GET",
        &format!("/v1/customers/{id}/recommendations?purpose=personalisation"),
        None,
        &[],
    )
    .await;
    if s != 200 {
        return Err((s, v));
    }
    Ok(v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item"].as_str().unwrap().to_owned())
        .collect())
}

async fn recommendations_ask_first_and_forget_at_once(db: TestDb) {
    let (vault, op, _) = db.open().await;
    let outlet = vault
        .directory()
        .create_outlet(op.into(), "Shop")
        .await
        .unwrap();
    let agent = principal(&vault, op, Role::SupportAgent).await;
    let grant = |purpose: &str, action| ConsentInput {
        purpose: purpose.into(),
        action,
        source: ConsentSource::InStore,
    };
    // A customer who bought `items`, consenting to personalisation or not.
    let shopper = async |name: &str, items: &[(&str, &str)], consents: bool| {
        let email = format!("{}@example.com", name.to_lowercase().replace(' ', "."));
        let id = operator_customer(
            &vault,
            op,
            json!({"name": name, "email": email, "outlet_id": outlet}),
        )
        .await;
        for (item, category) in items {
            let p: PurchaseInput = serde_json::from_value(json!({"item": item, "category": category, "outlet_id": outlet, "amount_minor": 1000, "currency": "EUR"})).unwrap();
            vault
                .add_purchase(
                    Actor::Operator(op),
                    id,
                    &p.validate(Timestamp::now()).unwrap(),
                )
                .await
                .unwrap();
        }
        if consents {
            vault
                .record_consent(&agent, id, &grant("personalisation", ConsentAction::Grant))
                .await
                .unwrap();
        }
        id
    };
    // Eight bought a ring and a chain; six of them a watch too; two a rare brooch; six a
    // pharmacy product; exactly five (Carl, Dora and three more) a gold watch.
    for i in 0..8 {
        let mut items = vec![("Silver Ring", "rings"), ("Silver Chain", "chains")];
        if i < 6 {
            items.push(("Steel Watch", "watches"));
            items.push(("Vitamin D", "pharmacy"));
        }
        if i < 2 {
            items.push(("Rare Brooch", "brooches"));
        }
        shopper(&format!("Shopper Number{i}"), &items, true).await;
    }
    let gold = [("Silver Ring", "rings"), ("Gold Watch", "watches")];
    let carl = shopper("Carl Gold", &gold, true).await;
    let dora = shopper("Dora Gold", &gold, true).await;
    for i in 0..3 {
        shopper(&format!("Gold Buyer{i}"), &gold, true).await;
    }
    // Six who bought a chain and a brooch but never consented: never in the model.
    for i in 0..6 {
        shopper(
            &format!("Silent Number{i}"),
            &[("Silver Chain", "chains"), ("Rare Brooch", "brooches")],
            false,
        )
        .await;
    }
    let ada = shopper("Ada Asker", &[("Silver Ring", "rings")], true).await;
    let bob = shopper("Bob Nope", &[("Silver Ring", "rings")], false).await;
    let size = vault.personalisation().build_recommender(op).await.unwrap();
    assert_eq!(size.customers, 14, "consenting customers only");
    assert!(
        vault
            .personalisation()
            .set_personalisation_k(op, 3)
            .is_err(),
        "k is never below 5"
    );

    let app = steward_api::router(vault.clone());
    let (_, marketing) = vault
        .identity()
        .create_token(op, "mk", TokenOwner::Role(Role::Marketing))
        .await
        .unwrap();
    let (_, dpo) = vault
        .identity()
        .create_token(op, "dpo", TokenOwner::Role(Role::Dpo))
        .await
        .unwrap();
    let (_, support) = vault
        .identity()
        .create_token(op, "sa", TokenOwner::Role(Role::SupportAgent))
        .await
        .unwrap();
    let (marketing, dpo, support) = (marketing.to_string(), dpo.to_string(), support.to_string());

    // The consent gate: Bob never agreed.
    let (s, refusal) = recommended(&app, &marketing, bob).await.unwrap_err();
    assert_eq!(
        (s, refusal["field"].as_str()),
        (403, Some("purpose")),
        "{refusal}"
    );
    assert!(
        refusal["detail"]
            .as_str()
            .unwrap()
            .contains("personalisation"),
        "{refusal}"
    );
    // Nor is it a support agent's to ask.
    assert_eq!(recommended(&app, &support, ada).await.unwrap_err().0, 403);

    // Ada: what others bought with her ring, never the rare brooch, each because of her ring.
    let (s, v) = call(
        &app,
        &marketing,
        "GET",
        &format!("/v1/customers/{ada}/recommendations?purpose=personalisation"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let items: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item"].as_str().unwrap())
        .collect();
    assert!(
        items.contains(&"Silver Chain")
            && items.contains(&"Gold Watch")
            && items.contains(&"Vitamin D"),
        "{v}"
    );
    assert!(
        !items.contains(&"Rare Brooch"),
        "bought by 2 consenting customers, under k: {v}"
    );
    assert!(!items.contains(&"Silver Ring"), "she has it already: {v}");
    for i in v["items"].as_array().unwrap() {
        assert_eq!(i["because"].as_array().map(Vec::len), Some(1), "{v}");
        assert_eq!(
            i["because"][0]["item"], "Silver Ring",
            "only her own purchase: {v}"
        );
        assert!(i["because"][0]["occurred_at"].as_str().is_some(), "{v}");
        assert!(i["category"].as_str().is_some(), "{v}");
    }
    let (s, bad) = call(
        &app,
        &marketing,
        "GET",
        &format!("/v1/customers/{ada}/recommendations?purpose=personalisation&limit=0"),
        None,
        &[],
    )
    .await;
    assert_eq!((s, bad["field"].as_str()), (400, Some("limit")), "{bad}");
    // No other purpose draws on the model, whatever its basis.
    let (s, p) = call(&app, &dpo, "POST", "/v1/purposes", Some(json!({"key": "profiling_li", "lawful_basis": "legitimate_interest", "data_use": "personalize", "categories": ["user.behavior.purchase_history"], "retention_days": 30, "notice_text": "We profile."})), &[]).await;
    assert_eq!(s, 201, "{p}");
    let (s, p) = call(
        &app,
        &dpo,
        "GET",
        &format!("/v1/customers/{ada}/recommendations?purpose=profiling_li"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 403, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("only under purpose personalisation"),
        "{p}"
    );

    // The customer sees what is used, in the portal ("Why you see these").
    let sink = db.dir.path().join("codes.txt");
    vault.use_notifier(std::sync::Arc::new(
        steward_service::notify::FileNotifier::new(sink.clone()),
    ));
    let challenge = vault
        .portal_access()
        .portal_send_code("ada.asker@example.com")
        .await
        .unwrap();
    // The code is sent off the request: wait for it.
    let mut code = None;
    for _ in 0..100 {
        let text = std::fs::read_to_string(&sink).unwrap_or_default();
        code = text
            .lines()
            .find(|l| l.len() == 8 && l.chars().all(|c| c.is_ascii_digit()))
            .map(str::to_owned);
        if code.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let code = code.expect("the sign-in code was sent");
    let (_, session) = vault
        .portal_access()
        .portal_sign_in(challenge, &code)
        .await
        .unwrap();
    let seen = vault.portal_overview(&session).await.unwrap();
    let inputs: Vec<&str> = seen
        .personalisation
        .as_ref()
        .unwrap()
        .iter()
        .map(|(i, _)| i.as_str())
        .collect();
    assert_eq!(inputs, ["Silver Ring"]);

    // A withdrawal takes the customer's basket out before it returns: the gold watch falls
    // under k at once. A grant puts it back; an erasure takes it out for good.
    let started = std::time::Instant::now();
    let (s, w) = call(
        &app,
        &marketing,
        "POST",
        &format!("/v1/customers/{carl}/consents"),
        Some(json!({"purpose": "personalisation", "action": "withdraw", "source": "api"})),
        &[],
    )
    .await;
    assert_eq!(s, 201, "{w}");
    let now = recommended(&app, &marketing, ada).await.unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert!(!now.iter().any(|i| i == "Gold Watch"), "{now:?}");
    vault
        .record_consent(
            &agent,
            carl,
            &grant("personalisation", ConsentAction::Grant),
        )
        .await
        .unwrap();
    assert!(
        recommended(&app, &marketing, ada)
            .await
            .unwrap()
            .iter()
            .any(|i| i == "Gold Watch")
    );
    vault
        .erase_customer(Actor::Operator(op), dora)
        .await
        .unwrap();
    assert!(
        !recommended(&app, &marketing, ada)
            .await
            .unwrap()
            .iter()
            .any(|i| i == "Gold Watch")
    );

    // Global Privacy Control withdraws personalisation too: Ada's own answer is then refused.
    let (s, w) = call(
        &app,
        &marketing,
        "POST",
        &format!("/v1/customers/{ada}/consents"),
        Some(json!({"purpose": "marketing_email", "action": "withdraw", "source": "api"})),
        &[("Sec-GPC", "1")],
    )
    .await;
    assert_eq!(s, 201, "{w}");
    assert_eq!(recommended(&app, &marketing, ada).await.unwrap_err().0, 403);
    vault
        .record_consent(&agent, ada, &grant("personalisation", ConsentAction::Grant))
        .await
        .unwrap();

    // Before the marking, marketing's segments see the pharmacy buyers.
    vault.segments().set_segment_threshold(op, 5);
    let (s, seg) = call(
        &app,
        &marketing,
        "POST",
        "/v1/segments",
        Some(json!({"name": "Pharmacy buyers", "rules": {"purchased": {"category": "pharmacy"}}})),
        &[],
    )
    .await;
    assert_eq!(s, 201, "{seg}");
    let size_uri = format!(
        "/v1/segments/{}?purpose=personalisation",
        seg["id"].as_str().unwrap()
    );
    let (s, size) = call(&app, &marketing, "GET", &size_uri, None, &[]).await;
    assert_eq!((s, size["size"].as_u64()), (200, Some(6)), "{size}");

    // The DPO marks pharmacy as health data: it leaves every recommendation at once.
    for (body, category, status) in [
        (json!({"data_category": "user.name"}), "pharmacy", 422),
        (json!({"data_category": "health"}), "pharmacy", 422),
        (
            json!({"data_category": "user.health_and_medical"}),
            "nothing-sold-here",
            404,
        ),
    ] {
        let (s, p) = call(
            &app,
            &dpo,
            "PUT",
            &format!("/v1/purchase-categories/{category}"),
            Some(body),
            &[],
        )
        .await;
        assert_eq!(s, status, "{p}");
    }
    let (s, _) = call(
        &app,
        &marketing,
        "PUT",
        "/v1/purchase-categories/pharmacy",
        Some(json!({"data_category": "user.health_and_medical"})),
        &[],
    )
    .await;
    assert_eq!(s, 403);
    let (s, m) = call(
        &app,
        &dpo,
        "PUT",
        "/v1/purchase-categories/pharmacy",
        Some(json!({"data_category": "user.health_and_medical"})),
        &[],
    )
    .await;
    assert_eq!(
        (s, m["data_category"].as_str()),
        (200, Some("user.health_and_medical")),
        "{m}"
    );
    let (_, list) = call(&app, &dpo, "GET", "/v1/purchase-categories", None, &[]).await;
    assert_eq!(list["items"][0]["category"], "pharmacy", "{list}");
    let now = recommended(&app, &marketing, ada).await.unwrap();
    assert!(!now.iter().any(|i| i == "Vitamin D"), "{now:?}");
    // And no segment counts it any more.
    let (_, size) = call(&app, &marketing, "GET", &size_uri, None, &[]).await;
    assert_eq!(size["size"], "fewer than 5", "{size}");
    assert!(now.iter().any(|i| i == "Silver Chain"), "{now:?}");

    // A mark a newer version wrote, naming a special category this one does not know, still
    // marks its purchase category (it was dropped, and the category counted again, before).
    let raw = db.raw().await;
    let set = |to: &'static str| {
        sqlx::query("UPDATE purchase_categories SET data_category = $1 WHERE category = 'pharmacy'")
            .bind(to)
    };
    set("user.health_and_medical.from_a_newer_version")
        .execute(&raw)
        .await
        .unwrap();
    let (reopened, reopened_op, _) = db.open().await;
    reopened.segments().set_segment_threshold(reopened_op, 5);
    let again = steward_api::router(reopened.clone());
    let (_, size) = call(&again, &marketing, "GET", &size_uri, None, &[]).await;
    assert_eq!(size["size"], "fewer than 5", "{size}");
    drop((again, reopened));
    set("user.health_and_medical").execute(&raw).await.unwrap();
    raw.close().await;

    // A campaign's {{recommendations}} are filled in only for recipients who agreed to
    // personalisation: Ada gets hers, Bob the campaign without them.
    // (The notifier set for the portal's codes carries the campaign too.)
    let outbox = sink.clone();
    vault
        .outreach()
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
    vault.outreach().start_sender(op);
    let news = grant("marketing_email", ConsentAction::Grant);
    let mut to = vec![ada, bob];
    for i in 0..3 {
        to.push(
            shopper(
                &format!("News Reader{i}"),
                &[("Silver Ring", "rings")],
                false,
            )
            .await,
        );
    }
    for id in &to {
        vault.record_consent(&agent, *id, &news).await.unwrap();
    }
    let (s, seg) = call(&app, &marketing, "POST", "/v1/segments", Some(json!({"name": "News", "rules": {"consent": {"purpose": "marketing_email", "state": "granted"}}})), &[]).await;
    assert_eq!(s, 201, "{seg}");
    let (s, c) = call(&app, &marketing, "POST", "/v1/campaigns", Some(json!({"segment_id": seg["id"], "purpose": "marketing_email", "subject": "News", "body": "Hello {{first_name}}. Picked for you:{{recommendations}}"})), &[]).await;
    assert_eq!(s, 201, "{c}");
    let campaign = c["id"].as_str().unwrap().to_owned();
    let (s, started) = call(
        &app,
        &marketing,
        "POST",
        &format!("/v1/campaigns/{campaign}/send"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 202, "{started}");
    let v = sent(&app, &marketing, &campaign).await;
    assert_eq!(v["counts"]["sent"], 5, "{v}");
    let mail = std::fs::read_to_string(&outbox).unwrap();
    // Campaign messages are whole RFC 5322 texts (CRLF) ended by a lone dot; the sign-in code
    // before them is a short note of the sink's own (LF).
    let message_to = |address: &str| {
        let start = mail
            .find(&format!("To: {address}\r\n"))
            .unwrap_or_else(|| panic!("no campaign message to {address}"));
        let rest = &mail[start..];
        rest[..rest.find("\r\n.\r\n").unwrap_or(rest.len())].to_owned()
    };
    let to_ada = message_to("ada.asker@example.com");
    assert!(
        to_ada.contains("- Silver Chain (because you bought Silver Ring)"),
        "{to_ada}"
    );
    assert!(!to_ada.contains("Vitamin D"), "{to_ada}");
    let to_bob = message_to("bob.nope@example.com");
    assert!(
        to_bob.contains("Picked for you:") && !to_bob.contains("because you bought"),
        "{to_bob}"
    );

    // Or the campaign says to skip those without: only Ada gets this one. (Skip without the
    // placeholder means nothing, and is refused.)
    let (s, bad) = call(&app, &marketing, "POST", "/v1/campaigns", Some(json!({"segment_id": seg["id"], "purpose": "marketing_email", "subject": "News", "body": "Hello", "without_recommendations": "skip"})), &[]).await;
    assert_eq!(
        (s, bad["field"].as_str()),
        (422, Some("without_recommendations")),
        "{bad}"
    );
    let (s, c) = call(&app, &marketing, "POST", "/v1/campaigns", Some(json!({"segment_id": seg["id"], "purpose": "marketing_email", "subject": "Just for you", "body": "Picked for you:{{recommendations}}", "without_recommendations": "skip"})), &[]).await;
    assert_eq!(s, 201, "{c}");
    let only = c["id"].as_str().unwrap().to_owned();
    let (s, started) = call(
        &app,
        &marketing,
        "POST",
        &format!("/v1/campaigns/{only}/send"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 202, "{started}");
    let v = sent(&app, &marketing, &only).await;
    assert_eq!(
        (
            v["counts"]["sent"].as_u64(),
            v["counts"]["skipped"].as_u64()
        ),
        (Some(1), Some(4)),
        "{v}"
    );
}
