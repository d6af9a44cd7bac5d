//! Personal data in free text (issue 23), through the API on both backends: the Presidio-shaped
//! detector (code-point offsets, filters, bad input as problem+json, who may call it), and every
//! interaction examined before it is sealed — the kinds found recorded with it, the declared
//! purpose's rule keeping, masking or redacting what was found, and card, account and identity
//! numbers shown masked to every reader but the DPO.

use serde_json::{Value, json};
use steward_domain::Role;
use steward_service::TokenOwner;

use crate::support::{TestDb, backend_tests, json_call as call, oneshot_raw, operator_customer};

backend_tests!(texts_are_examined_before_they_are_stored);

const CARD: &str = "4111 1111 1111 1111";
const IBAN: &str = "CH93 0076 2011 6238 5295 7";

async fn texts_are_examined_before_they_are_stored(db: TestDb) {
    let (vault, op, _) = db.open().await;
    let app = steward_api::router(vault.clone());
    let token = async |role| crate::access::token(&vault, TokenOwner::Role(role)).await;
    let (support, dpo, marketing) = (
        token(Role::SupportAgent).await,
        token(Role::Dpo).await,
        token(Role::Marketing).await,
    );

    // The detector, as Presidio's analyzer answers: offsets in code points, end exclusive.
    let text = format!("🙂 顾客说：我的卡号是{CARD}，邮箱 li.wei@example.cn");
    let (s, found) = call(
        &app,
        &support,
        "POST",
        "/v1/pii/analyze",
        Some(json!({"text": text, "language": "zh"})),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{found}");
    let chars: Vec<char> = text.chars().collect();
    let spans: Vec<(String, String, f64)> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let (a, b) = (
                f["start"].as_u64().unwrap() as usize,
                f["end"].as_u64().unwrap() as usize,
            );
            (
                f["entity_type"].as_str().unwrap().to_owned(),
                chars[a..b].iter().collect(),
                f["score"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        spans,
        [
            ("CREDIT_CARD".into(), CARD.into(), 1.0),
            ("EMAIL_ADDRESS".into(), "li.wei@example.cn".into(), 1.0)
        ]
    );
    // Filters by type and score, as Presidio's request allows.
    let (s, only) = call(
        &app,
        &dpo,
        "POST",
        "/v1/pii/analyze",
        Some(json!({"text": text, "language": "en", "entities": ["EMAIL_ADDRESS"], "score_threshold": 0.5})),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{only}");
    assert_eq!(only.as_array().unwrap().len(), 1, "{only}");

    // Bad input names its field; nothing is examined.
    for (body, field) in [
        (json!({"text": "x", "language": "xx"}), "language"),
        (json!({"text": "x"}), "language"),
        (
            json!({"text": "x", "language": "en", "score_threshold": 2}),
            "score_threshold",
        ),
        (
            json!({"text": "x", "language": "en", "entities": ["NAME"]}),
            "entities",
        ),
        (
            json!({"text": "x".repeat(1_100_000), "language": "en"}),
            "text",
        ),
    ] {
        let (s, p) = call(&app, &support, "POST", "/v1/pii/analyze", Some(body), &[]).await;
        assert!(s == 400 || s == 422, "{field}: {s} {p}");
        assert!(
            p["field"].as_str().is_some_and(|f| f.starts_with(field)),
            "{field}: {p}"
        );
    }
    // Not UTF-8, and ten megabytes: refused as problem+json.
    let mut not_utf8 = br#"{"text": "caf"#.to_vec();
    not_utf8.extend_from_slice(&[0xff, 0xfe]);
    not_utf8.extend_from_slice(br#"", "language": "en"}"#);
    let (s, ct) = post_bytes(&app, &support, not_utf8).await;
    assert_eq!((s, ct.as_str()), (400, "application/problem+json"));
    let ten_mb = json!({"text": "a".repeat(10 << 20), "language": "en"}).to_string();
    let (s, ct, _) = oneshot_raw(
        &app,
        Some(&support),
        "POST",
        "/v1/pii/analyze",
        Some(ten_mb),
        Some("application/json"),
        &[],
    )
    .await;
    assert_eq!((s.as_u16(), ct.as_str()), (413, "application/problem+json"));
    let (s, _) = call(
        &app,
        "not-a-token",
        "POST",
        "/v1/pii/analyze",
        Some(json!({"text": "x", "language": "en"})),
        &[],
    )
    .await;
    assert_eq!(s, 401);

    // Interactions: examined before they are sealed, whoever records them.
    let customer = operator_customer(&vault, op, json!({"name": "Pia Payer"})).await;
    let record = async |token: &str, purpose: Option<&str>, text: &str| {
        let uri = match purpose {
            Some(p) => format!("/v1/customers/{customer}/interactions?purpose={p}"),
            None => format!("/v1/customers/{customer}/interactions"),
        };
        call(
            &app,
            token,
            "POST",
            &uri,
            Some(json!({"channel": "phone", "text": text, "source": "helpdesk"})),
            &[],
        )
        .await
    };
    let said =
        format!("Customer read out card {CARD} and IBAN {IBAN}; call back on +41 44 668 18 00.");
    let (s, kept) = record(&support, None, &said).await;
    assert_eq!(s, 201, "{kept}");
    let (s, masked) = record(&dpo, Some("marketing_email"), &said).await;
    assert_eq!(s, 201, "{masked}");
    // A purpose the DPO registers to redact.
    let (s, p) = call(
        &app,
        &dpo,
        "POST",
        "/v1/purposes",
        Some(json!({"key": "complaints", "lawful_basis": "legitimate_interest", "data_use": "essential.service.operations.support", "categories": ["user.content.private"], "retention_days": 365, "notice_text": "We keep complaints to resolve them.", "roles": ["support_agent", "dpo"], "pii_rule": "redact"})),
        &[],
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let (s, redacted) = record(&support, Some("complaints"), &said).await;
    assert_eq!(s, 201, "{redacted}");
    // A purpose the caller may not declare, and one that does not exist: refused, nothing stored.
    let (s, p) = record(&support, Some("marketing_email"), &said).await;
    assert_eq!((s, p["field"].as_str()), (403, Some("purpose")), "{p}");
    let (s, p) = record(&support, Some("nonsense"), &said).await;
    assert_eq!((s, p["field"].as_str()), (422, Some("purpose")), "{p}");

    let list = async |token: &String| -> Vec<Value> {
        let (s, page) = call(
            &app,
            token,
            "GET",
            &format!(
                "/v1/customers/{customer}/interactions?purpose=service{}",
                if *token == dpo {
                    // The DPO reads a customer only with a stated reason.
                    "&reason=Reviewing%20a%20complaint%20about%20a%20card%20payment"
                } else {
                    ""
                }
            ),
            None,
            &[],
        )
        .await;
        assert_eq!(s, 200, "{page}");
        page["items"].as_array().unwrap().clone()
    };
    let full = list(&dpo).await;
    assert_eq!(full.len(), 3, "{full:?}");
    let types = json!(["CREDIT_CARD", "IBAN_CODE", "PHONE_NUMBER"]);
    for i in &full {
        assert_eq!(i["pii_types"], types, "{i}");
    }
    // The DPO sees what was kept as said; the marketing purpose's text was stored masked, the
    // complaint's redacted.
    assert_eq!(full[0]["text"], said.as_str());
    assert_eq!(full[0]["masked"], false);
    assert_eq!(
        full[1]["text"],
        "Customer read out card •••• 1111 and IBAN CH•• •••• 2957; call back on ••• ••• •• 00."
    );
    assert_eq!(
        full[2]["text"],
        "Customer read out card <CREDIT_CARD> and IBAN <IBAN_CODE>; call back on <PHONE_NUMBER>."
    );
    // A support agent reads the kept text with the card and the account masked (the phone
    // number, which they need to call back, as said).
    let shown = list(&support).await;
    assert_eq!(
        shown[0]["text"],
        "Customer read out card •••• 1111 and IBAN CH•• •••• 2957; call back on +41 44 668 18 00."
    );
    assert_eq!(shown[0]["masked"], true);
    assert_eq!(shown[2]["masked"], false, "nothing left to mask");
    let _ = marketing;

    // Nothing of the text reached the audit log (entries name actions, never values).
    vault.audit().flush().await.unwrap();
    let log = db.raw_log().await;
    let leaves: Vec<Vec<u8>> = sqlx::query_scalar("SELECT leaf FROM audit_entries")
        .fetch_all(&log)
        .await
        .unwrap();
    for leaf in leaves {
        let s = String::from_utf8_lossy(&leaf);
        assert!(!s.contains("4111") && !s.contains("CH93"), "{s}");
    }
}

/// Posts raw bytes (not necessarily UTF-8) to the detector: (status, content type).
async fn post_bytes(app: &axum::Router, token: &str, body: Vec<u8>) -> (u16, String) {
    use tower::ServiceExt;
    let req = axum::http::Request::post("/v1/pii/analyze")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (res.status().as_u16(), ct)
}

/// The OpenAPI document describes the detector in Presidio's shape.
#[tokio::test]
async fn the_detector_is_in_the_openapi_document() {
    let db = TestDb::new(crate::support::Kind::Sqlite).await;
    let router = steward_api::router(db.vault().await);
    let (_, _, body) = oneshot_raw(&router, None, "GET", "/openapi.json", None, None, &[]).await;
    let doc: Value = serde_json::from_slice(&body).unwrap();
    let op = &doc["paths"]["/v1/pii/analyze"]["post"];
    assert!(op.is_object(), "{op}");
    let result = &doc["components"]["schemas"]["AnalyzerResult"];
    for field in ["entity_type", "start", "end", "score"] {
        assert!(
            result["required"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == field),
            "{result}"
        );
    }
    let types: Vec<&str> = doc["components"]["schemas"]["EntityType"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for t in [
        "CREDIT_CARD",
        "IBAN_CODE",
        "EMAIL_ADDRESS",
        "PHONE_NUMBER",
        "SG_NRIC_FIN",
        "UK_NINO",
        "US_SSN",
        "IP_ADDRESS",
    ] {
        assert!(types.contains(&t), "{types:?}");
    }
    let request = &doc["components"]["schemas"]["AnalyzeRequest"];
    assert!(
        request["required"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "text")
    );
}
