//! Sharing only under agreement (issue 22), through the API on both backends: recipients and
//! agreements refused on bad input with nothing stored; a recipient's reads decided inside and
//! outside its agreement (purpose, category, consent, restriction, expiry, ending); pseudonyms
//! stable per recipient, unlinkable across two, unmappable after erasure; every disclosure in the
//! audit log, the customer's export and consent receipts; and a notification queued for each
//! change that touches what a recipient received.

use serde_json::{Value, json};
use steward_domain::{CustomerId, Role, Timestamp};
use steward_service::{Actor, TokenOwner};

use crate::support::{TestDb, backend_tests, json_call as call, operator_customer};

backend_tests!(a_recipient_reads_only_under_its_agreement);

/// An agreement body for `recipient`.
fn agreement(recipient: &str, purposes: &[&str], categories: &[&str], extra: Value) -> Value {
    let now = Timestamp::now().millis();
    let mut body = json!({
        "recipient_id": recipient,
        "purposes": purposes,
        "categories": categories,
        "lawful_basis": "contract",
        "document_sha256": "9f".repeat(32),
        "identity": "identified",
        "starts_at": Timestamp(now - 3_600_000).to_rfc3339(),
        "expires_at": Timestamp(now + 86_400_000).to_rfc3339(),
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    body
}

/// Records a grant or withdrawal of consent to marketing e-mail as `agent`; the answer.
async fn consent(app: &axum::Router, agent: &str, id: &str, action: &str) -> Value {
    let (s, v) = call(
        app,
        agent,
        "POST",
        &format!("/v1/customers/{id}/consents"),
        Some(json!({"purpose": "marketing_email", "action": action, "source": "in_store"})),
        &[],
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v
}

/// A recipient's agreements, as the DPO lists them.
async fn agreements_of(app: &axum::Router, dpo: &str, recipient: &str) -> Value {
    let uri = format!("/v1/agreements?recipient_id={recipient}");
    let (s, v) = call(app, dpo, "GET", &uri, None, &[]).await;
    assert_eq!(s, 200, "{v}");
    v
}

/// The notifications queued so far, as the DPO sees them: (type, recipient, customer ref).
async fn notified(app: &axum::Router, dpo: &str) -> Vec<(String, String, String)> {
    let (s, v) = call(app, dpo, "GET", "/v1/notifications?limit=500", None, &[]).await;
    assert_eq!(s, 200, "{v}");
    let mut out: Vec<(String, String, String)> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["type"].as_str().unwrap().to_owned(),
                n["recipient_id"].as_str().unwrap().to_owned(),
                n["customer"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The pseudonyms a pseudonymous recipient lists under `purpose`, every page.
async fn listed(app: &axum::Router, token: &str, purpose: &str) -> Vec<Value> {
    let (mut out, mut cursor) = (Vec::new(), String::new());
    loop {
        let (s, v) = call(
            app,
            token,
            "GET",
            &format!("/v1/shared?purpose={purpose}&limit=2&cursor={cursor}"),
            None,
            &[],
        )
        .await;
        assert_eq!(s, 200, "{v}");
        out.extend(v["items"].as_array().unwrap().iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => return out,
        }
    }
}

async fn a_recipient_reads_only_under_its_agreement(db: TestDb) {
    let (vault, op, store) = db.open().await;
    let app = steward_api::router(vault.clone());
    let outlet = vault
        .directory()
        .create_outlet(op.into(), "Shop")
        .await
        .unwrap();
    let person = async |name: &str, email: &str, phone: &str| {
        operator_customer(
            &vault,
            op,
            json!({"name": name, "email": email, "phone": phone, "outlet_id": outlet,
                   "address": {"street": "Bahnhofstrasse 1", "postal_code": "8001", "city": "Zürich", "country": "CH"}}),
        )
        .await
    };
    let ann = person("Ann Share", "ann.share@example.com", "+41 44 555 01 01").await;
    // One purchase of Ann's, sold by a staff member: a recipient never learns who sold it.
    let seller = vault
        .directory()
        .create_staff(
            op.into(),
            "Seller Person",
            &[Role::SalesAssociate],
            &[outlet],
        )
        .await
        .unwrap();
    let sale: steward_domain::PurchaseInput = serde_json::from_value(json!({"item": "Gold Ring", "category": "rings", "outlet_id": outlet, "seller_id": seller, "amount_minor": 125000, "currency": "CHF"})).unwrap();
    vault
        .add_purchase(
            Actor::Operator(op),
            ann,
            &sale.validate(Timestamp::now()).unwrap(),
        )
        .await
        .unwrap();
    let bob = person("Bob Share", "bob.share@example.com", "+41 44 555 01 02").await;
    let cara = person("Cara Share", "cara.share@example.com", "+41 44 555 01 03").await;
    let token = async |owner| {
        vault
            .identity()
            .create_token(op, "t", owner)
            .await
            .unwrap()
            .1
    };
    let dpo = token(TokenOwner::Role(Role::Dpo)).await;
    let agent = token(TokenOwner::Role(Role::SupportAgent)).await;
    // Ann consents to marketing e-mail; Bob and Cara do not.
    consent(&app, &agent, &ann.to_string(), "grant").await;

    // ---- Bad input: problem+json naming the field, nothing stored. ----
    let recipient = |name: &str, url: &str| json!({"name": name, "kind": "processor", "country": "de", "contact": "dpo@parcel.example", "webhook_url": url});
    let (s, v) = call(
        &app,
        &dpo,
        "POST",
        "/v1/recipients",
        Some(recipient("Parcel Co", "http://parcel.example/hooks")),
        &[],
    )
    .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("webhook_url")), "{v}");
    let (s, v) = call(
        &app,
        &dpo,
        "POST",
        "/v1/recipients",
        Some(recipient("Parcel Co", "http://127.0.0.1:9/hooks")),
        &[],
    )
    .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (422, Some("webhook_url")),
        "loopback needs the flag: {v}"
    );
    let (s, _) = call(
        &app,
        &agent,
        "POST",
        "/v1/recipients",
        Some(recipient("Parcel Co", "https://parcel.example/hooks")),
        &[],
    )
    .await;
    assert_eq!(s, 403, "only the DPO registers recipients");
    let (_, v) = call(&app, &dpo, "GET", "/v1/recipients", None, &[]).await;
    assert_eq!(v["items"], json!([]), "nothing stored");

    let mut ids = Vec::new();
    for (name, kind) in [
        ("Parcel Co", "processor"),
        ("Ad Partner", "third_party"),
        ("Insight Lab", "processor"),
        ("Metrics Ltd", "processor"),
    ] {
        let mut body = recipient(
            name,
            &format!(
                "https://{}.example/hooks",
                name.to_lowercase().replace(' ', "-")
            ),
        );
        body["kind"] = json!(kind);
        let (s, v) = call(&app, &dpo, "POST", "/v1/recipients", Some(body), &[]).await;
        assert_eq!(s, 201, "{v}");
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let (parcel, ads, insight, metrics) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let (_, v) = call(&app, &dpo, "GET", "/v1/recipients", None, &[]).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 4);
    assert_eq!(v["items"][0]["country"], "DE", "normalised");

    for (body, field) in [
        (
            agreement(parcel, &["no_such_purpose"], &["user.name"], json!({})),
            "purposes",
        ),
        (
            agreement(
                parcel,
                &["order_fulfilment"],
                &["user.content.private"],
                json!({}),
            ),
            "categories",
        ),
        (
            agreement(
                parcel,
                &["order_fulfilment"],
                &["user.name"],
                json!({"expires_at": "2020-01-01T00:00:00Z"}),
            ),
            "expires_at",
        ),
        (
            agreement(
                parcel,
                &["order_fulfilment"],
                &["user.name"],
                json!({"document_sha256": "abc"}),
            ),
            "document_sha256",
        ),
        (
            agreement(parcel, &["marketing_email"], &["user.name"], json!({})),
            "lawful_basis",
        ),
        (
            agreement(
                insight,
                &["analytics"],
                &["user.name"],
                json!({"identity": "pseudonymous"}),
            ),
            "categories",
        ),
        (
            agreement(
                &CustomerId::new().to_string(),
                &["order_fulfilment"],
                &["user.name"],
                json!({}),
            ),
            "recipient_id",
        ),
    ] {
        let (s, v) = call(&app, &dpo, "POST", "/v1/agreements", Some(body), &[]).await;
        assert_eq!((s, v["field"].as_str()), (422, Some(field)), "{v}");
    }
    let (s, v) = call(
        &app,
        &dpo,
        "POST",
        "/v1/agreements",
        Some(agreement(
            parcel,
            &["order_fulfilment"],
            &["user.shoe_size"],
            json!({}),
        )),
        &[],
    )
    .await;
    assert!(matches!(s, 400 | 422), "{v}");
    assert!(v.to_string().contains("categories"), "{v}");
    let (_, v) = call(&app, &dpo, "GET", "/v1/agreements", None, &[]).await;
    assert_eq!(v["items"], json!([]), "nothing stored");

    // ---- Agreements. ----
    let create = async |body: Value| {
        let (s, v) = call(&app, &dpo, "POST", "/v1/agreements", Some(body), &[]).await;
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().unwrap().to_owned()
    };
    let fulfilment = create(agreement(
        parcel,
        &["order_fulfilment"],
        &[
            "user.name",
            "user.contact.address",
            "user.behavior.purchase_history",
        ],
        json!({}),
    ))
    .await;
    create(agreement(
        ads,
        &["marketing_email"],
        &["user.name", "user.contact.email"],
        json!({"lawful_basis": "consent"}),
    ))
    .await;
    for r in [insight, metrics] {
        create(agreement(
            r,
            &["analytics"],
            &["user.behavior.purchase_history"],
            json!({"identity": "pseudonymous", "lawful_basis": "legitimate_interest"}),
        ))
        .await;
    }
    // A recipient receives identities or pseudonyms, never both.
    let (s, v) = call(
        &app,
        &dpo,
        "POST",
        "/v1/agreements",
        Some(agreement(
            insight,
            &["order_fulfilment"],
            &["user.name"],
            json!({}),
        )),
        &[],
    )
    .await;
    assert_eq!((s, v["field"].as_str()), (422, Some("identity")), "{v}");
    let recipient_token = async |id: &str| token(TokenOwner::Recipient(id.parse().unwrap())).await;
    let (parcel_t, ads_t, insight_t, metrics_t) = (
        recipient_token(parcel).await,
        recipient_token(ads).await,
        recipient_token(insight).await,
        recipient_token(metrics).await,
    );
    let read = async |t: &str, id: CustomerId, purpose: &str| {
        call(
            &app,
            t,
            "GET",
            &format!("/v1/customers/{id}?purpose={purpose}"),
            None,
            &[],
        )
        .await
    };

    // ---- Inside and outside the agreement. ----
    let (s, v) = read(&parcel_t, ann, "order_fulfilment").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["name"], "Ann Share");
    assert_eq!(v["address"]["city"], "Zürich");
    assert!(
        v.get("email").is_none() && v.get("phone").is_none(),
        "not in the agreement: {v}"
    );
    let (s, v) = call(
        &app,
        &parcel_t,
        "GET",
        &format!("/v1/customers/{ann}/purchases?purpose=order_fulfilment"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["items"][0]["item"], "Gold Ring", "{v}");
    assert!(
        v["items"][0].get("seller_id").is_none(),
        "who sold it is not the recipient's: {v}"
    );
    let (s, _) = call(
        &app,
        &parcel_t,
        "GET",
        &format!("/v1/customers/{ann}/interactions?purpose=order_fulfilment"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 403, "communications are not in the agreement");
    let (s, _) = read(&parcel_t, ann, "service").await;
    assert_eq!(s, 403, "no agreement for that purpose");
    let (s, _) = call(&app, &parcel_t, "GET", &format!("/v1/customers/{ann}?purpose=order_fulfilment&reason=an%20urgent%20delivery%20question&break_glass=true"), None, &[]).await;
    assert_eq!(s, 403, "no break-glass for a recipient");
    for (method, uri, body) in [
        (
            "POST",
            "/v1/customers".to_owned(),
            Some(json!({"name": "New One", "email": "new@example.com"})),
        ),
        (
            "PATCH",
            format!("/v1/customers/{ann}"),
            Some(json!({"name": "Changed"})),
        ),
        ("GET", "/v1/recipients".to_owned(), None),
        ("GET", format!("/v1/customers/{ann}/disclosures"), None),
        ("GET", format!("/v1/customers/{ann}/access-log"), None),
    ] {
        let (s, v) = call(&app, &parcel_t, method, &uri, body, &[]).await;
        assert_eq!(s, 403, "{method} {uri}: {v}");
    }
    // Consent: the third party reads for marketing only those who consented.
    let (s, v) = read(&ads_t, ann, "marketing_email").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["email"], "ann.share@example.com",
        "in full: the agreement covers it"
    );
    let (s, _) = read(&ads_t, bob, "marketing_email").await;
    assert_eq!(s, 403, "no consent");
    // Restriction: nothing, whatever the purpose.
    let (s, _) = read(&parcel_t, bob, "order_fulfilment").await;
    assert_eq!(s, 200);
    store.set_restricted(bob, true, &[]).await.unwrap();
    let (s, _) = read(&parcel_t, bob, "order_fulfilment").await;
    assert_eq!(s, 403, "restricted");

    // ---- Expiry: an agreement read under until the clock passes its end. ----
    let now = Timestamp::now().millis();
    create(agreement(
        parcel,
        &["fraud_prevention"],
        &["user.name"],
        json!({"lawful_basis": "legitimate_interest", "expires_at": Timestamp(now + 2_500).to_rfc3339()}),
    ))
    .await;
    let (s, v) = read(&parcel_t, cara, "fraud_prevention").await;
    assert_eq!((s, v["name"].as_str()), (200, Some("Cara Share")), "{v}");
    tokio::time::sleep(std::time::Duration::from_millis(
        u64::try_from(now + 2_600 - Timestamp::now().millis()).unwrap_or(0),
    ))
    .await;
    let (s, _) = read(&parcel_t, cara, "fraud_prevention").await;
    assert_eq!(s, 403, "expired");
    let v = agreements_of(&app, &dpo, parcel).await;
    let statuses: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["in_force", "expired"], "{v}");

    // ---- Pseudonyms: stable per recipient, unlinkable across two. ----
    let first = listed(&app, &insight_t, "analytics").await;
    assert_eq!(
        first.len(),
        2,
        "Ann and Cara (Bob is restricted): {first:?}"
    );
    let again = listed(&app, &insight_t, "analytics").await;
    // Sorted: a page comes shuffled, so that positions link nothing across recipients.
    let refs = |v: &[Value]| {
        let mut r = v
            .iter()
            .map(|r| r["customer"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>();
        r.sort();
        r
    };
    assert_eq!(refs(&first), refs(&again), "stable");
    let other = refs(&listed(&app, &metrics_t, "analytics").await);
    assert!(
        refs(&first).iter().all(|p| !other.contains(p)),
        "unlinkable"
    );
    for r in &first {
        assert!(r["customer"].as_str().unwrap().starts_with("psn_"));
        let text = r.to_string();
        for id in [ann, bob, cara] {
            assert!(
                !text.contains(&id.to_string()),
                "no id in a shared record: {text}"
            );
        }
        assert!(
            r["fields"].get("name").is_none() && r["fields"].get("email").is_none(),
            "{r}"
        );
    }
    let ann_psn = {
        let (_, ann_view) = read(&parcel_t, ann, "order_fulfilment").await;
        assert_eq!(ann_view["name"], "Ann Share");
        // The one with Ann's purchase count: both are empty here, so ask by pseudonym instead.
        let mut found = None;
        for r in refs(&first) {
            let (s, v) = call(
                &app,
                &insight_t,
                "GET",
                &format!("/v1/shared/{r}?purpose=analytics"),
                None,
                &[],
            )
            .await;
            assert_eq!(s, 200, "{v}");
            assert_eq!(v["customer"], r.as_str());
            assert!(v["purchases"].is_array(), "{v}");
            found = Some(r);
        }
        found.unwrap()
    };
    let (s, _) = call(
        &app,
        &metrics_t,
        "GET",
        &format!("/v1/shared/{ann_psn}?purpose=analytics"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 404, "another recipient's pseudonym means nothing");
    let (s, _) = read(&insight_t, ann, "analytics").await;
    assert_eq!(s, 403, "a pseudonymous recipient never reads by id");
    let (s, _) = read(&insight_t, CustomerId::new(), "analytics").await;
    assert_eq!(s, 403, "nor learns which ids exist (403, not 404)");
    for uri in [
        "/v1/customers?purpose=analytics".to_owned(),
        format!("/v1/customers/{ann}/purchases?purpose=analytics"),
        format!("/v1/customers/{ann}/interactions?purpose=analytics"),
    ] {
        let (s, v) = call(&app, &insight_t, "GET", &uri, None, &[]).await;
        assert_eq!(s, 403, "{uri}: {v}");
    }
    let with_ring = first
        .iter()
        .find(|r| r["purchases"].as_array().is_some_and(|p| !p.is_empty()))
        .expect("Ann's record, with her purchase");
    let bought = &with_ring["purchases"][0];
    assert_eq!(bought["item"], "Gold Ring");
    assert_eq!(
        bought["occurred_on"].as_str().map(str::len),
        Some(10),
        "a day, no finer: {bought}"
    );
    assert!(
        bought.get("occurred_at").is_none() && bought.get("seller_id").is_none(),
        "{bought}"
    );
    let (s, _) = call(
        &app,
        &parcel_t,
        "GET",
        "/v1/shared?purpose=order_fulfilment",
        None,
        &[],
    )
    .await;
    assert_eq!(s, 403, "an identified recipient reads by id");
    let (s, v) = call(
        &app,
        &insight_t,
        "GET",
        "/v1/shared/nope?purpose=analytics",
        None,
        &[],
    )
    .await;
    assert_eq!((s, v["field"].as_str()), (400, Some("pseudonym")), "{v}");

    // ---- Every disclosure recorded and shown. ----
    let (s, v) = call(
        &app,
        &dpo,
        "GET",
        &format!("/v1/customers/{ann}/disclosures"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let to: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["recipient"].as_str().unwrap())
        .collect();
    for name in ["Parcel Co", "Ad Partner"] {
        assert!(to.contains(&name), "{v}");
    }
    let parcel_row = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["recipient"] == "Parcel Co")
        .unwrap();
    assert_eq!(parcel_row["agreement_id"], fulfilment.as_str());
    assert_eq!(parcel_row["purpose"], "order_fulfilment");
    vault.audit().flush().await.unwrap();
    let (s, log) = call(
        &app,
        &dpo,
        "GET",
        &format!("/v1/customers/{ann}/access-log"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 200, "{log}");
    let disclose = log
        .to_string()
        .matches("\\\"action\\\":\\\"disclose\\\"")
        .count()
        + log.to_string().matches("\"action\":\"disclose\"").count();
    assert!(disclose >= 3, "one entry per disclosure: {log}");
    assert!(
        log.to_string().contains(&format!("agreement:{fulfilment}")),
        "{log}"
    );
    let export = vault.operator_export_subject(op, ann).await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(export.zip)).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("recipients.json").unwrap(), &mut text).unwrap();
    let recipients: Value = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = recipients["disclosures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["recipient"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Parcel Co") && names.contains(&"Ad Partner"),
        "{recipients}"
    );
    // A consent receipt for a purpose shared under an agreement names the recipient.
    let v = consent(&app, &agent, &cara.to_string(), "grant").await;
    let jws = v["events"][0]["receipt"].as_str().unwrap();
    let payload = jws.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    let p = &claims["services"][0]["purposes"][0];
    assert_eq!(
        (
            p["thirdPartyDisclosure"].as_bool(),
            p["thirdPartyName"].as_str()
        ),
        (Some(true), Some("Ad Partner")),
        "{claims}"
    );

    // The customer sees it in the portal, beside who looked at her data.
    let mail = std::sync::Arc::new(crate::portal::Mailbox::default());
    vault.use_notifier(mail.clone());
    let (session, _) =
        crate::portal_rights::portal_session(&app, &mail, "cara.share@example.com", 0).await;
    let (s, _, page) =
        crate::console::send(&app, "GET", "/portal/access-log", Some(&session), None).await;
    assert_eq!(s, axum::http::StatusCode::OK);
    assert!(
        page.contains("Who outside the business received your data")
            && page.contains("Parcel Co")
            && page.contains("Fraud prevention")
            && page.contains("processor"),
        "{page}"
    );

    // ---- Changes follow the data, to those who received what changed. ----
    let before = notified(&app, &dpo).await;
    assert_eq!(
        before,
        vec![(
            "customer.restricted".to_owned(),
            parcel.clone(),
            bob.to_string()
        )],
        "Bob's restriction, to the one recipient that received his data"
    );
    // Restricting again changes nothing, and tells no one again.
    store.set_restricted(bob, true, &[]).await.unwrap();
    assert_eq!(notified(&app, &dpo).await, before);
    store.set_restricted(bob, false, &[]).await.unwrap();
    assert!(
        notified(&app, &dpo).await.contains(&(
            "customer.unrestricted".to_owned(),
            parcel.clone(),
            bob.to_string()
        )),
        "and when it is lifted"
    );
    let (s, v) = call(
        &app,
        &agent,
        "PATCH",
        &format!("/v1/customers/{ann}"),
        Some(json!({"address": {"street": "Seestrasse 2", "postal_code": "8002", "city": "Zürich", "country": "CH"}})),
        &[],
    )
    .await;
    assert_eq!(s, 204, "{v}");
    consent(&app, &agent, &ann.to_string(), "withdraw").await;
    let now_notified = notified(&app, &dpo).await;
    let ann_s = ann.to_string();
    assert!(
        now_notified.contains(&("customer.rectified".into(), parcel.clone(), ann_s.clone())),
        "{now_notified:?}"
    );
    assert!(
        !now_notified.contains(&("customer.rectified".into(), ads.clone(), ann_s.clone())),
        "Ad Partner received no address: {now_notified:?}"
    );
    assert!(
        now_notified.contains(&("consent.withdrawn".into(), ads.clone(), ann_s.clone())),
        "{now_notified:?}"
    );
    assert!(
        !now_notified.contains(&("consent.withdrawn".into(), parcel.clone(), ann_s.clone())),
        "{now_notified:?}"
    );
    // Erasure: every recipient told (the pseudonymous ones by their pseudonym), then the
    // pseudonyms map to nothing.
    vault
        .erase_customer(Actor::Operator(op), ann)
        .await
        .unwrap();
    let after = notified(&app, &dpo).await;
    let erased: Vec<&(String, String, String)> =
        after.iter().filter(|n| n.0 == "customer.erased").collect();
    assert!(
        erased.contains(&&("customer.erased".into(), parcel.clone(), ann_s.clone())),
        "{after:?}"
    );
    assert!(
        erased.contains(&&("customer.erased".into(), ads.clone(), ann_s.clone())),
        "{after:?}"
    );
    let insight_refs: Vec<&str> = erased
        .iter()
        .filter(|n| &n.1 == insight)
        .map(|n| n.2.as_str())
        .collect();
    assert_eq!(insight_refs.len(), 1, "{after:?}");
    assert!(
        insight_refs[0].starts_with("psn_") && refs(&first).contains(&insight_refs[0].to_owned())
    );
    let gone = insight_refs[0];
    let (s, _) = call(
        &app,
        &insight_t,
        "GET",
        &format!("/v1/shared/{gone}?purpose=analytics"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 404, "unmappable after erasure");
    assert_eq!(
        listed(&app, &insight_t, "analytics").await.len(),
        2,
        "Bob (his restriction lifted) and Cara; Ann is gone"
    );
    let (s, v) = call(
        &app,
        &dpo,
        "GET",
        &format!("/v1/customers/{ann}/disclosures"),
        None,
        &[],
    )
    .await;
    assert!(s == 404 || v["items"] == json!([]), "forgotten: {s} {v}");

    // A merge that brings a withdrawal onto a customer a recipient received follows too.
    let (s, v) = read(&ads_t, cara, "marketing_email").await;
    assert_eq!(s, 200, "{v}");
    let (s, dup) = call(
        &app,
        &agent,
        "POST",
        "/v1/customers",
        Some(json!({"name": "Cara Share", "phone": "+41 44 555 01 03", "allow_duplicate": true})),
        &[],
    )
    .await;
    assert_eq!(s, 201, "{dup}");
    let dup = dup["id"].as_str().unwrap().to_owned();
    consent(&app, &agent, &dup, "withdraw").await;
    let (s, v) = call(
        &app,
        &agent,
        "POST",
        &format!("/v1/customers/{cara}/merge"),
        Some(json!({"other_id": dup})),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(
        notified(&app, &dpo).await.contains(&(
            "consent.withdrawn".to_owned(),
            ads.clone(),
            cara.to_string()
        )),
        "the merged withdrawal reached the recipient"
    );

    // ---- Ending an agreement: recorded, never deleted, nothing more under it. ----
    let (s, _) = call(
        &app,
        &dpo,
        "POST",
        &format!("/v1/agreements/{fulfilment}/end"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = read(&parcel_t, cara, "order_fulfilment").await;
    assert_eq!(s, 403, "ended");
    let (s, v) = call(
        &app,
        &dpo,
        "POST",
        &format!("/v1/agreements/{fulfilment}/end"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 409, "{v}");
    let v = agreements_of(&app, &dpo, parcel).await;
    assert_eq!(v["items"][0]["status"], "ended", "{v}");
}
