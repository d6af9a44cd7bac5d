//! Social CRM without shadow profiles (issue 23, point 1), through the API and the binary on
//! both backends: handles on create and patch (sealed, blind-indexed), events kept only for a
//! consenting customer (text screened by the purpose's rule, place coarsened, repeats ignored),
//! every other event dropped with the same 202 and nothing of it at rest.

use serde_json::{Value, json};
use steward_domain::Role;
use steward_service::TokenOwner;

use crate::support::{TestDb, backend_tests, json_call as call};

backend_tests!(events_are_kept_only_for_consenting_customers);

async fn events_are_kept_only_for_consenting_customers(db: TestDb) {
    let vault = db.vault().await;
    let app = steward_api::router(vault.clone());
    let token = async |role| crate::access::token(&vault, TokenOwner::Role(role)).await;
    let (support, dpo, connector) = (
        token(Role::SupportAgent).await,
        token(Role::Dpo).await,
        token(Role::SocialConnector).await,
    );
    // The DPO registers social listening, on consent, masking what it finds in posts.
    let (s, p) = call(
        &app,
        &dpo,
        "POST",
        "/v1/purposes",
        Some(json!({"key": "social_listening", "lawful_basis": "consent", "data_use": "marketing.insights.social", "categories": ["user.social", "user.content.private", "user.location"], "retention_days": 365, "notice_text": "With your agreement we read what you post about us.", "roles": ["marketing", "support_agent"], "pii_rule": "mask"})),
        &[],
    )
    .await;
    assert_eq!(s, 201, "{p}");

    let create = async |body: Value| {
        let (s, c) = call(&app, &support, "POST", "/v1/customers", Some(body), &[]).await;
        assert_eq!(s, 201, "{c}");
        c["id"].as_str().unwrap().to_owned()
    };
    let anna = create(json!({"name": "Anna Muster", "social_handles": [{"platform": "Instagram", "handle": "@Anna.Muster"}]})).await;
    let ben = create(json!({"name": "Ben Quiet", "social_handles": [{"platform": "instagram", "handle": "@ben.quiet"}]})).await;
    let carla = create(json!({"name": "Carla Later"})).await;
    // Handles on patch; bad ones name the field.
    let (s, p) = call(
        &app,
        &support,
        "PATCH",
        &format!("/v1/customers/{carla}"),
        Some(json!({"social_handles": "tiktok @carla.later, x:carla_l"})),
        &[],
    )
    .await;
    assert_eq!(s, 204, "{p}");
    let (s, p) = call(
        &app,
        &support,
        "PATCH",
        &format!("/v1/customers/{carla}"),
        Some(json!({"social_handles": [{"platform": "tik tok", "handle": "x"}]})),
        &[],
    )
    .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (422, Some("social_handles")),
        "{p}"
    );
    for who in [&anna, &carla] {
        let (s, c) = call(
            &app,
            &support,
            "POST",
            &format!("/v1/customers/{who}/consents"),
            Some(json!({"purpose": "social_listening", "action": "grant", "source": "api"})),
            &[],
        )
        .await;
        assert_eq!(s, 201, "{c}");
    }

    let report = async |token: &str, body: Value| {
        call(&app, token, "POST", "/v1/social/events", Some(body), &[]).await
    };
    let post = |handle: &str, id: &str, text: &str| {
        json!({"platform": "instagram", "handle": handle, "event_id": id, "text": text,
               "url": format!("https://instagram.example/p/{id}"), "occurred_at": "2026-12-01T10:00:00Z",
               "location": {"city": "Zürich", "country": "CH", "latitude": 47.376_887, "longitude": 8.541_694,
                            "street": "Bahnhofstrasse 1", "postal_code": "8001"}})
    };
    // Anna's post is kept: the card she pasted masked, the place coarsened, the URL (which names
    // her handle) not kept.
    let kept = post(
        "@ANNA.muster",
        "p-100",
        "Loving the new shop! My card 4111 1111 1111 1111 was charged twice though",
    );
    for _ in 0..2 {
        let (s, r) = report(&connector, kept.clone()).await;
        assert_eq!((s, &r), (202, &json!({"accepted": true})));
    }
    // Ben never agreed; nobody holds the third handle: the same answer, nothing kept.
    let dropped_text = "Quietly-dropped-words about the shop";
    for body in [
        post("@ben.quiet", "p-200", dropped_text),
        post("@nobody.here", "p-300", dropped_text),
    ] {
        let (s, r) = report(&connector, body).await;
        assert_eq!((s, &r), (202, &json!({"accepted": true})));
    }
    // Carla's handle came by patch.
    let (s, _) = report(
        &connector,
        json!({"platform": "x", "handle": "carla_l", "event_id": "x-1", "text": "Great service"}),
    )
    .await;
    assert_eq!(s, 202);
    // Only a social connector reports; bad input names its field.
    let (s, p) = report(&support, post("@anna.muster", "p-101", "hi")).await;
    assert_eq!(
        (s, p["field"].as_str()),
        (403, Some("Authorization")),
        "{p}"
    );
    let (s, p) = report(
        &connector,
        json!({"platform": "instagram", "handle": "@a", "event_id": "", "text": "x"}),
    )
    .await;
    assert_eq!((s, p["field"].as_str()), (422, Some("event_id")), "{p}");
    for (body, field) in [
        (
            json!({"platform": "instagram", "handle": "@a", "event_id": "1", "text": "x", "url": "javascript:alert(1)"}),
            "url",
        ),
        (
            json!({"platform": "instagram", "handle": "@a", "event_id": "1", "text": "x", "location": {"city": "Bahnhofstrasse 1"}}),
            "location.city",
        ),
        (
            json!({"platform": "instagram", "handle": "@a", "event_id": "1", "text": "x", "occurred_at": "2099-01-01T00:00:00Z"}),
            "occurred_at",
        ),
        (
            json!({"platform": "instagram", "handle": "@a\u{200b}b", "event_id": "1", "text": "x"}),
            "handle",
        ),
    ] {
        let (s, p) = report(&connector, body).await;
        assert_eq!((s, p["field"].as_str()), (422, Some(field)), "{p}");
    }

    let interactions = async |who: &str| -> Vec<Value> {
        // Events are taken in the background: wait for them.
        vault.records().social_settled().await;
        let (s, page) = call(
            &app,
            &dpo,
            "GET",
            &format!("/v1/customers/{who}/interactions?purpose=service&reason=Checking%20the%20social%20listening%20records"),
            None,
            &[],
        )
        .await;
        assert_eq!(s, 200, "{page}");
        page["items"].as_array().unwrap().clone()
    };
    let a = interactions(&anna).await;
    assert_eq!(a.len(), 1, "a repeated event is stored once: {a:?}");
    assert_eq!(
        (a[0]["channel"].as_str(), a[0]["source"].as_str()),
        (Some("social"), Some("instagram"))
    );
    assert_eq!(
        a[0]["text"],
        "Loving the new shop! My card •••• 1111 was charged twice though\nPosted from Zürich, CH"
    );
    assert_eq!(a[0]["pii_types"], json!(["CREDIT_CARD"]));
    assert!(interactions(&ben).await.is_empty());
    assert_eq!(interactions(&carla).await.len(), 1);

    // A support agent sees the handles masked (a contact detail), under a purpose that names them.
    let (s, c) = call(
        &app,
        &support,
        "GET",
        &format!("/v1/customers/{anna}?purpose=service"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 200, "{c}");
    assert!(
        c.get("social_handles").is_none(),
        "service does not name user.social: {c}"
    );

    // Nothing of the dropped events, the coordinates or the street, and no handle in clear.
    vault.audit().flush().await.unwrap();
    let forms: Vec<String> = [
        dropped_text,
        "nobody.here",
        "ben.quiet",
        "anna.muster",
        "carla_l",
        "Bahnhofstrasse",
        "47.376887",
        "8.541694",
    ]
    .map(str::to_owned)
    .to_vec();
    crate::plaintext::scan_store(&db, &forms, "after social events");

    // Withdrawal stops the next post being kept.
    let (s, _) = call(
        &app,
        &support,
        "POST",
        &format!("/v1/customers/{anna}/consents"),
        Some(json!({"purpose": "social_listening", "action": "withdraw", "source": "api"})),
        &[],
    )
    .await;
    assert_eq!(s, 201);
    let (s, _) = report(&connector, post("@anna.muster", "p-102", "Another post")).await;
    assert_eq!(s, 202);
    assert_eq!(interactions(&anna).await.len(), 1);

    // The same from a file, through the binary.
    let csv = db.dir.path().join("social.csv");
    std::fs::write(
        &csv,
        "platform,handle,event_id,text,url,occurred_at,city,country\n\
         x,@carla_l,x-2,From the export,,2026-12-02T09:00:00Z,Basel,CH\n\
         x,@carla_l,x-2,From the export,,2026-12-02T09:00:00Z,Basel,CH\n\
         instagram,@ben.quiet,p-201,Not kept,,,,\n",
    )
    .unwrap();
    let (code, out, err) = crate::support::run(&["import", "--social", csv.to_str().unwrap()], &db);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.trim(),
        "3 events read: dropped_not_consented 1, repeated 1, stored 1"
    );
    let c = interactions(&carla).await;
    assert_eq!(c.len(), 2, "{c:?}");
    assert_eq!(c[1]["text"], "From the export\nPosted from Basel, CH");
}
