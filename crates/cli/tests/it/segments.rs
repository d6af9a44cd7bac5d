//! Segments (issue 18, point 1): marketing defines rules and learns a size, never a member; the
//! size counts only customers the policy lets marketing use for the purpose (consent,
//! restriction), hides small sizes, and is one audit entry. Both backends.

use axum::http::StatusCode;
use serde_json::{Value, json};
use steward_domain::Role;
use steward_service::TokenOwner;

use crate::access::{call, new_customer, token, world};
use crate::support::{TestDb, backend_tests};

backend_tests!(segments_are_sized_within_the_policy);

async fn segments_are_sized_within_the_policy(db: TestDb) {
    let w = world(&db).await;
    let app = &w.router;
    let marketing = token(&w.vault, TokenOwner::Role(Role::Marketing)).await;
    let analyst = token(&w.vault, TokenOwner::Role(Role::Analyst)).await;
    let a = w.outlet_a;
    // Twelve watch buyers at outlet A this year, two strap buyers two years ago.
    let mut buyers = Vec::new();
    for n in 0..14 {
        let id = new_customer(
            app,
            &w.alice,
            json!({"name": format!("Buyer {n}"), "outlet_id": a, "preferred_language": if n % 2 == 0 { "fr-CH" } else { "en-GB" }}),
        )
        .await;
        let (category, days_ago) = if n < 12 {
            ("Watch", 30)
        } else {
            ("strap", 800)
        };
        let at = steward_domain::Timestamp(
            steward_domain::Timestamp::now().millis() - days_ago * 86_400_000,
        );
        let p = json!({"item": "Model", "category": category, "outlet_id": a, "amount_minor": 100_000 * (n + 1), "currency": "CHF", "occurred_at": at});
        let (s, body) = call(
            app,
            &w.alice,
            "POST",
            &format!("/v1/customers/{id}/purchases"),
            Some(p),
            false,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        buyers.push(id);
    }
    // Eleven of the watch buyers consent to personalisation; the twelfth does not.
    for id in &buyers[..11] {
        let (s, body) = call(
            app,
            &w.support,
            "POST",
            &format!("/v1/customers/{id}/consents"),
            Some(json!({"purpose": "personalisation", "action": "grant", "source": "in_store"})),
            false,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
    }
    let define = |rules: Value| {
        let body = json!({"name": "Watch buyers this year", "rules": rules});
        let t = marketing.clone();
        async move { call(app, &t, "POST", "/v1/segments", Some(body), false).await }
    };
    let size = |id: String, purpose: &'static str| {
        let t = marketing.clone();
        async move {
            call(
                app,
                &t,
                "GET",
                &format!("/v1/segments/{id}?purpose={purpose}"),
                None,
                false,
            )
            .await
        }
    };

    // The contract's example.
    let (s, created) =
        define(json!({"purchased": {"category": "watch", "within_days": 365}})).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let watches = created["id"].as_str().unwrap().to_owned();

    // marketing_email does not cover the purchase history: refused, naming the rule and purpose.
    let (s, p) = size(watches.clone(), "marketing_email").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{p}");
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("purchased") && detail.contains("marketing_email"),
        "{p}"
    );

    // Under personalisation: the eleven who consented, not the twelfth.
    let audit_before = {
        w.vault.audit().flush().await.unwrap();
        w.store.audit_size().await.unwrap()
    };
    let (s, p) = size(watches.clone(), "personalisation").await;
    assert_eq!((s, &p["size"]), (StatusCode::OK, &json!(11)), "{p}");
    assert_eq!(p["purpose"], "personalisation");
    // One audit entry for the evaluation, not one per customer; it says what was used.
    w.vault.audit().flush().await.unwrap();
    assert_eq!(w.store.audit_size().await.unwrap(), audit_before + 1);
    let dpo = token(&w.vault, TokenOwner::Role(Role::Dpo)).await;
    let (s, page) = call(
        app,
        &dpo,
        "GET",
        &format!(
            "/v1/audit/entries?start={audit_before}&end={}",
            audit_before + 1
        ),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let e = &page["entries"][0];
    assert_eq!(
        (
            e["action"].as_str(),
            e["subject"].as_str(),
            e["purpose"].as_str()
        ),
        (
            Some("evaluate_segment"),
            Some(watches.as_str()),
            Some("personalisation")
        ),
        "{e}"
    );
    assert_eq!(e["customer"], Value::Null);
    assert_eq!(e["categories"]["size"], "11");
    assert_eq!(e["categories"]["user.behavior.purchase_history"], "used");

    // A restricted customer is used for nothing: ten, and ten is still shown.
    let restricted: steward_domain::CustomerId = buyers[0].parse().unwrap();
    assert!(w.store.set_restricted(restricted, true, &[]).await.unwrap());
    let (_, p) = size(watches.clone(), "personalisation").await;
    assert_eq!(p["size"], json!(10), "{p}");
    // A withdrawal between two evaluations is honoured: nine is "fewer than 10".
    let (s, body) = call(
        app,
        &marketing,
        "POST",
        &format!("/v1/customers/{}/consents", buyers[1]),
        Some(json!({"purpose": "personalisation", "action": "withdraw", "source": "api"})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (_, p) = size(watches.clone(), "personalisation").await;
    assert_eq!(p["size"], json!("fewer than 10"), "{p}");

    // Rules over other facts: the language (sealed, opened inside), the outlet, consent states,
    // under marketing_email (which covers the language). Buyers 2 to 13 consent to it.
    for id in &buyers[2..] {
        let (s, body) = call(
            app,
            &w.support,
            "POST",
            &format!("/v1/customers/{id}/consents"),
            Some(json!({"purpose": "marketing_email", "action": "grant", "source": "in_store"})),
            false,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
    }
    let (_, c) = define(json!({"all": [{"language": "fr"}, {"not": {"language": "de"}}]})).await;
    let french = c["id"].as_str().unwrap().to_owned();
    // Where a customer registered is shown only with the purchase history: an outlet rule is
    // refused under marketing_email, allowed under personalisation.
    let (_, c) = define(json!({"outlet": a})).await;
    let at_a = c["id"].as_str().unwrap().to_owned();
    let (s, p) = size(at_a.clone(), "marketing_email").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("outlet"), "{p}");
    // Buyers 2 to 10 still consent (1 withdrew, 0 is restricted): nine.
    let (s, p) = size(at_a, "personalisation").await;
    assert_eq!(
        (s, &p["size"]),
        (StatusCode::OK, &json!("fewer than 10")),
        "{p}"
    );
    // French speakers who consented: buyers 2, 4, 6, 8, 10 and 12 — six, under the threshold.
    let (s, p) = size(french.clone(), "marketing_email").await;
    assert_eq!(
        (s, &p["size"]),
        (StatusCode::OK, &json!("fewer than 10")),
        "{p}"
    );
    // With the threshold at its floor the figure shows.
    w.vault
        .segments()
        .set_segment_threshold(crate::support::op(), 5);
    let (_, p) = size(french, "marketing_email").await;
    assert_eq!(p["size"], json!(6), "{p}");
    // Of them, those whose personalisation consent stands (1 withdrew, 0 is restricted): five.
    let (_, c) = define(json!({"all": [{"language": "fr"}, {"consent": {"purpose": "personalisation", "state": "granted"}}]})).await;
    let (_, p) = size(c["id"].as_str().unwrap().to_owned(), "marketing_email").await;
    assert_eq!(p["size"], json!(5), "{p}");
    // The tier is purchase history, which marketing_email does not cover.
    let (_, c) = define(json!({"not": {"tier": "gold"}})).await;
    let (s, p) = size(c["id"].as_str().unwrap().to_owned(), "marketing_email").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("tier"), "{p}");

    // Spending needs financial data: personalisation does not cover it.
    let (_, c) = define(json!({"spent": {"currency": "CHF", "min_minor": 500000}})).await;
    let spent = c["id"].as_str().unwrap().to_owned();
    let (s, p) = size(spent.clone(), "personalisation").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("user.financial"),
        "{p}"
    );

    // Bad input: 422 naming the rule, nothing stored.
    let (_, before) = call(app, &marketing, "GET", "/v1/segments", None, false).await;
    for (rules, field) in [
        // An unknown rule is the client's text: the error names what holds it (issue 25).
        (json!({"any": [{"birthday": {}}]}), "rules.any[0]"),
        (
            json!({"all": [{"tier": "gold"}, {"purchased": {"within_days": -3}}]}),
            "rules.all[1].purchased.within_days",
        ),
        (json!({"outlet": "not-a-uuid"}), "rules.outlet"),
        (
            json!({"consent": {"purpose": "nope", "state": "granted"}}),
            "rules.consent.purpose",
        ),
    ] {
        let (s, p) = define(rules).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
        assert_eq!(p["field"], field, "{p}");
    }
    let (_, after) = call(app, &marketing, "GET", "/v1/segments", None, false).await;
    assert_eq!(
        before.as_array().unwrap().len(),
        after.as_array().unwrap().len()
    );
    // A segment's definition lists no member; an unknown segment is a 404.
    for s in after.as_array().unwrap() {
        let text = s.to_string();
        assert!(!buyers.iter().any(|b| text.contains(b.as_str())), "{text}");
    }
    let (s, _) = size(
        steward_domain::SegmentId::new().to_string(),
        "personalisation",
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Roles outside marketing and the DPO neither define nor size segments.
    let (s, _) = call(
        app,
        &analyst,
        "POST",
        "/v1/segments",
        Some(json!({"name": "x", "rules": {"all": []}})),
        false,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        app,
        &w.alice,
        "GET",
        &format!("/v1/segments/{watches}?purpose=service"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Marketing may not size under a purpose it may not declare; the refusal is recorded.
    w.vault.audit().flush().await.unwrap();
    let before = w.store.audit_size().await.unwrap();
    let (s, p) = size(watches, "service").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{p}");
    w.vault.audit().flush().await.unwrap();
    assert_eq!(w.store.audit_size().await.unwrap(), before + 1);

    // A caller sizes at most 60 segments an hour; past it they are refused and the DPO alerted.
    let eager = token(&w.vault, TokenOwner::Role(Role::Marketing)).await;
    let everyone = define_everyone(app, &eager).await;
    let uri = format!("/v1/segments/{everyone}?purpose=personalisation");
    for _ in 0..steward_service::EVALUATIONS_PER_HOUR {
        let (s, p) = call(app, &eager, "GET", &uri, None, false).await;
        assert_eq!(s, StatusCode::OK, "{p}");
    }
    let (s, p) = call(app, &eager, "GET", &uri, None, false).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{p}");
    let (_, alerts) = call(app, &dpo, "GET", "/v1/alerts", None, false).await;
    assert!(
        alerts.to_string().contains("segment_evaluations"),
        "{alerts}"
    );
    // Another caller's budget is their own.
    let (s, _) = size(everyone, "personalisation").await;
    assert_eq!(s, StatusCode::OK);
}

backend_tests!(marketing_defines_and_sizes_segments_in_the_console);

async fn marketing_defines_and_sizes_segments_in_the_console(db: TestDb) {
    use crate::console::send;
    let (vault, op, _) = db.open().await;
    let password = "a long enough password";
    for (name, role, login) in [
        ("Max Marketing", Role::Marketing, "max"),
        ("Sue Support", Role::SupportAgent, "sue"),
    ] {
        let _ =
            crate::support::staff_member(&vault, op, (name, role, &[]), (login, password)).await;
    }
    let app = steward_api::router(vault.clone());
    let (max, csrf) = crate::door::console_session(&app, "max", password).await;
    let (_, _, home) = send(&app, "GET", "/console", Some(&max), None).await;
    assert!(home.contains("href=\"/console/segments\""), "{home}");
    let (s, _, page) = send(&app, "GET", "/console/segments", Some(&max), None).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("No segment is defined yet"), "{page}");

    // A bad currency: refused, naming the condition by its label, what was typed kept.
    let bad = [
        ("csrf", csrf.as_str()),
        ("name", "Big spenders"),
        ("spent_min", "5000"),
        ("currency", "Swiss francs"),
    ];
    let (s, _, page) = send(&app, "POST", "/console/segments", Some(&max), Some(&bad)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(
        page.contains("Spent at least: must be an ISO 4217 code"),
        "{page}"
    );
    assert!(
        page.contains("value=\"Big spenders\"") && page.contains("value=\"Swiss francs\""),
        "{page}"
    );

    let good = [
        ("csrf", csrf.as_str()),
        ("name", "Watch buyers"),
        ("category", "Watch"),
        ("within_days", "365"),
        ("language", "fr"),
    ];
    let (s, headers, _) = send(&app, "POST", "/console/segments", Some(&max), Some(&good)).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let to = headers[axum::http::header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let (_, _, page) = send(&app, "GET", &to, Some(&max), None).await;
    assert!(page.contains("The segment is saved."), "{page}");
    assert!(
        page.contains("bought watch in the last 365 days, and prefers language fr"),
        "{page}"
    );
    let id = to.rsplit('=').next().unwrap().to_owned();

    // Sized under personalisation: purchase history is covered, the language is not.
    let (s, _, page) = send(
        &app,
        "GET",
        &format!("/console/segments?size={id}&purpose=personalisation"),
        Some(&max),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{page}");
    assert!(
        page.contains("language rule") && page.contains("does not cover"),
        "{page}"
    );
    let (_, _, c) = send(
        &app,
        "POST",
        "/console/segments",
        Some(&max),
        Some(&[
            ("csrf", csrf.as_str()),
            ("name", "French speakers"),
            ("language", "fr"),
        ]),
    )
    .await;
    assert!(c.is_empty() || !c.contains("error"), "{c}");
    let segments = vault
        .segments()
        .segments(&crate::support::principal(&vault, op, Role::Marketing).await)
        .await
        .unwrap();
    let french = segments
        .iter()
        .find(|s| s.name == "French speakers")
        .unwrap()
        .id;
    let (s, _, page) = send(
        &app,
        "GET",
        &format!("/console/segments?size={french}&purpose=marketing_email"),
        Some(&max),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(
        page.contains("“French speakers” reaches fewer than 10 customers for Marketing email"),
        "{page}"
    );
    // The size form offers only the purposes marketing may declare.
    assert!(!page.contains("value=\"service\""), "{page}");

    // A support agent is offered no segments and may not define one.
    let (sue, sue_csrf) = crate::door::console_session(&app, "sue", password).await;
    let (_, _, home) = send(&app, "GET", "/console", Some(&sue), None).await;
    assert!(!home.contains("/console/segments"), "{home}");
    let (s, _, _) = send(
        &app,
        "POST",
        "/console/segments",
        Some(&sue),
        Some(&[("csrf", sue_csrf.as_str()), ("name", "x")]),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = send(&app, "GET", "/console/segments", Some(&sue), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

backend_tests!(campaigns_are_composed_within_the_purpose);

async fn campaigns_are_composed_within_the_purpose(db: TestDb) {
    let w = world(&db).await;
    let app = &w.router;
    let marketing = token(&w.vault, TokenOwner::Role(Role::Marketing)).await;
    let dpo = token(&w.vault, TokenOwner::Role(Role::Dpo)).await;
    let (_, c) = call(
        app,
        &marketing,
        "POST",
        "/v1/segments",
        Some(json!({"name": "Everyone", "rules": {"all": []}})),
        false,
    )
    .await;
    let segment = c["id"].as_str().unwrap().to_owned();
    let compose = |body: Value| {
        let t = marketing.clone();
        async move { call(app, &t, "POST", "/v1/campaigns", Some(body), false).await }
    };
    let (s, c) = compose(json!({"segment_id": segment, "purpose": "marketing_email", "subject": "Autumn news, {{ first_name }}", "body": "Dear {{name}},\nour autumn collection is in."})).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let id = c["id"].as_str().unwrap().to_owned();
    let (s, v) = call(
        app,
        &marketing,
        "GET",
        &format!("/v1/campaigns/{id}"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "draft");
    assert_eq!(
        v["counts"],
        json!({"queued": 0, "sent": 0, "skipped": 0, "failed": 0, "unsubscribed": 0, "uncertain": 0, "sending": 0})
    );
    // The preview is a fictional customer's, never a real one's.
    assert_eq!(v["preview"]["subject"], "Autumn news, Alex");
    assert_eq!(
        v["preview"]["body"],
        "Dear Alex Example,\nour autumn collection is in."
    );
    assert!(!v.to_string().contains("Carla"), "{v}");

    // Bad input: a 422 naming the field, nothing stored.
    let (_, before) = call(app, &marketing, "GET", "/v1/campaigns", None, false).await;
    for (body, field) in [
        (
            json!({"segment_id": segment, "purpose": "marketing_email", "subject": "Hi", "body": "Hi {{nickname}}"}),
            "body",
        ),
        (
            json!({"segment_id": segment, "purpose": "marketing_email", "subject": "Hi {{phone}}", "body": "Hi"}),
            "subject",
        ),
        (
            json!({"segment_id": segment, "purpose": "marketing_email", "subject": "Hi", "body": "Hi {{first_name"}),
            "body",
        ),
        (
            json!({"segment_id": segment, "purpose": "personalisation", "subject": "Hi", "body": "Hi"}),
            "purpose",
        ),
        (
            json!({"segment_id": segment, "purpose": "marketing_email", "subject": "s".repeat(201), "body": "Hi"}),
            "subject",
        ),
        (
            json!({"segment_id": segment, "purpose": "marketing_email", "subject": "Hi", "body": "b".repeat(10_001)}),
            "body",
        ),
        (
            json!({"segment_id": steward_domain::SegmentId::new(), "purpose": "marketing_email", "subject": "Hi", "body": "Hi"}),
            "segment_id",
        ),
        (
            json!({"segment_id": segment, "purpose": "nope", "subject": "Hi", "body": "Hi"}),
            "purpose",
        ),
    ] {
        let (s, p) = compose(body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
        assert_eq!(p["field"], field, "{p}");
    }
    // A purpose whose categories leave out the name: {{name}} is refused there.
    let (s, p) = call(app, &dpo, "POST", "/v1/purposes", Some(json!({"key": "newsletter_plain", "lawful_basis": "consent", "data_use": "marketing.communications.email", "categories": ["user.contact.email"], "retention_days": 365, "notice_text": "A newsletter, without your name.", "roles": ["marketing"]})), false).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let (s, p) = compose(json!({"segment_id": segment, "purpose": "newsletter_plain", "subject": "Hi", "body": "Dear {{first_name}}"})).await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("body")),
        "{p}"
    );
    // Marketing by e-mail on legitimate interest: refused, every campaign must rest on consent
    // (its unsubscribe link withdraws it).
    let (s, p) = call(app, &dpo, "POST", "/v1/purposes", Some(json!({"key": "customer_news", "lawful_basis": "legitimate_interest", "data_use": "marketing.communications.email", "categories": ["user.contact.email", "user.name"], "retention_days": 365, "notice_text": "News for customers.", "roles": ["marketing"]})), false).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let (s, p) = compose(
        json!({"segment_id": segment, "purpose": "customer_news", "subject": "Hi", "body": "Hi"}),
    )
    .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("purpose")),
        "{p}"
    );
    let (_, after) = call(app, &marketing, "GET", "/v1/campaigns", None, false).await;
    assert_eq!(
        before.as_array().unwrap().len(),
        after.as_array().unwrap().len()
    );
    // Only marketing composes and reads campaigns.
    let (s, _) = call(
        app,
        &dpo,
        "GET",
        &format!("/v1/campaigns/{id}"),
        None,
        false,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(app, &w.support, "POST", "/v1/campaigns", Some(json!({"segment_id": segment, "purpose": "marketing_email", "subject": "Hi", "body": "Hi"})), false).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

backend_tests!(the_hourly_sizing_budget_is_the_operators_to_set);

/// Defines the segment of every customer; its id.
async fn define_everyone(app: &axum::Router, token: &str) -> String {
    let (_, c) = call(
        app,
        token,
        "POST",
        "/v1/segments",
        Some(json!({"name": "Everyone", "rules": {"all": []}})),
        false,
    )
    .await;
    c["id"].as_str().unwrap_or_default().to_owned()
}

/// `steward serve --segment-evaluations-per-hour N` sets the budget (issue 25: the API fuzzer
/// lifts it, as it lifts the other brakes).
async fn the_hourly_sizing_budget_is_the_operators_to_set(db: TestDb) {
    let (vault, op, _) = db.open().await;
    vault.segments().set_segment_evaluations_per_hour(op, 2);
    let marketing = token(&vault, TokenOwner::Role(Role::Marketing)).await;
    let app = steward_api::router(vault.clone());
    let everyone = define_everyone(&app, &marketing).await;
    let uri = format!("/v1/segments/{everyone}?purpose=personalisation");
    for want in [
        StatusCode::OK,
        StatusCode::OK,
        StatusCode::TOO_MANY_REQUESTS,
    ] {
        let (s, p) = call(&app, &marketing, "GET", &uri, None, false).await;
        assert_eq!(s, want, "{p}");
    }
    vault.segments().set_segment_evaluations_per_hour(op, 1000);
    let (s, p) = call(&app, &marketing, "GET", &uri, None, false).await;
    assert_eq!(s, StatusCode::OK, "{p}");
}
