//! The authorisation matrix: every endpoint × every default role × every purpose, with and
//! without consent, against a table written out by hand from the policy's rules — not computed
//! from the policy, which would only test it against itself. Roles act as service clients (no
//! outlets), so outlet staff see customers as "another outlet's".

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use steward_domain::Role;
use steward_service::TokenOwner;
use tower::ServiceExt;

use crate::support::{TestDb, backend_tests};

backend_tests!(authorisation_matrix, recipient_matrix);

/// The reads the matrix drives for every role, purpose and consent state.
const READS: [&str; 3] = [
    "GET /v1/customers/{id}",
    "GET /v1/customers/{id}/purchases",
    "GET /v1/customers/{id}/interactions",
];

/// `/v1` operations the matrix does not drive, each with where its decision is tested instead.
/// A new operation fails `every_v1_operation_has_matrix_rows` until it has rows above or a line
/// here saying why not.
const NOT_IN_THE_MATRIX: [(&str, &str); 11] = [
    (
        "POST /v1/sessions",
        "signs a staff member in: no decision before it (sign_in.rs)",
    ),
    (
        "DELETE /v1/sessions/current",
        "ends the caller's own session (sign_in.rs)",
    ),
    (
        "GET /v1/alerts/{id}",
        "needs an alert first: read_alerts, DPO only (access.rs, holes.rs)",
    ),
    (
        "GET /v1/requests/{id}",
        "a request's own state decides it (requests.rs)",
    ),
    (
        "GET /v1/requests/{id}/export",
        "a fulfilled request only (requests.rs)",
    ),
    (
        "POST /v1/requests/{id}/verify",
        "a request's own state decides it (requests.rs)",
    ),
    (
        "POST /v1/requests/{id}/deny",
        "a request's own state decides it (requests.rs)",
    ),
    (
        "POST /v1/requests/{id}/revoke",
        "a request's own state decides it (requests.rs)",
    ),
    (
        "POST /v1/requests/{id}/confirm",
        "the customer's code decides it (requests.rs)",
    ),
    (
        "GET /v1/surveys/{id}/key",
        "a survey's public key: no caller, nothing personal (surveys.rs)",
    ),
    (
        "POST /v1/surveys/{id}/responses",
        "anonymous by design: no caller, a blind-signed one-time token decides it (surveys.rs)",
    ),
];

/// Every `/v1` operation of the OpenAPI document has matrix rows, or a reason in
/// [`NOT_IN_THE_MATRIX`]: a route added without them fails here (issue 16, part 6).
#[tokio::test]
async fn every_v1_operation_has_matrix_rows() {
    let db = TestDb::new(crate::support::Kind::Sqlite).await;
    let router = steward_api::router(db.vault().await);
    let (s, _, body) =
        crate::support::oneshot_raw(&router, None, "GET", "/openapi.json", None, None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    let mut covered: BTreeSet<String> = READS.iter().map(|r| (*r).to_owned()).collect();
    for (method, template, ..) in writes("o", "s") {
        let path = template
            .split('?')
            .next()
            .unwrap()
            .replace("{fresh_token}", "{id}")
            .replace("{fresh_staff}", "{id}")
            .replace("{segment}", "{id}")
            .replace("{campaign}", "{id}")
            .replace("{survey}", "{id}")
            .replace("{agreement}", "{id}")
            .replace("{fresh}", "{id}");
        covered.insert(format!("{method} {path}"));
    }
    let exempt: BTreeSet<&str> = NOT_IN_THE_MATRIX.iter().map(|(op, _)| *op).collect();
    let mut missing = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/") {
            continue;
        }
        for method in ops.as_object().unwrap().keys() {
            let op = format!("{} {path}", method.to_uppercase())
                .replace("{key}", "analytics")
                .replace("{category}", "matrixcat");
            if !covered.contains(&op) && !exempt.contains(op.as_str()) {
                missing.push(op);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "operations with no matrix rows (add rows, or a reason to NOT_IN_THE_MATRIX): {missing:?}"
    );
    for op in exempt {
        assert!(
            !covered.contains(op),
            "{op} has rows now: take it off NOT_IN_THE_MATRIX"
        );
    }
}

const PURPOSES: [&str; 7] = [
    "service",
    "order_fulfilment",
    "marketing_email",
    "personalisation",
    "fraud_prevention",
    "analytics",
    "allocation",
];
const CONSENT_PURPOSES: [&str; 2] = ["marketing_email", "personalisation"];

/// Purposes for which `role` may read a customer's profile view, purchases and interactions.
/// A consent purpose appears here as allowed; the matrix expects it only with consent.
fn expected_reads(role: Role, endpoint: &str) -> BTreeSet<&'static str> {
    use Role::*;
    let set = |v: &[&'static str]| v.iter().copied().collect::<BTreeSet<_>>();
    // Each role declares only the purposes the registry binds to it (issue 15, finding 3):
    // support agents service and fulfilment; marketing its two consent purposes; associates
    // service, fulfilment and allocation; store managers those and fraud review.
    match (role, endpoint) {
        // The profile view needs a profile field shown or masked, or the purchase abstraction.
        (SupportAgent, "customer" | "purchases") => set(&["service", "order_fulfilment"]),
        (Marketing, "customer") => set(&["marketing_email", "personalisation"]),
        (SalesAssociate, "customer" | "purchases") => {
            set(&["service", "order_fulfilment", "allocation"])
        }
        (StoreManager, "customer" | "purchases") => set(&[
            "service",
            "order_fulfilment",
            "fraud_prevention",
            "allocation",
        ]),
        // Purchases: shown or abstracted, for purposes that cover the purchase history.
        (Marketing, "purchases") => set(&["personalisation"]),
        // Messages: support agents only, for purposes that cover communications.
        (SupportAgent, "interactions") => set(&["service"]),
        // The DPO reads only with a reason (none given here); admins and analysts never.
        _ => set(&[]),
    }
}

/// A write or other endpoint: method, path template, body, roles allowed, success status.
type WriteCase = (
    &'static str,
    &'static str,
    Option<Value>,
    Vec<Role>,
    StatusCode,
);

/// Writes and other endpoints.
fn writes(outlet: &str, seller: &str) -> Vec<WriteCase> {
    use Role::*;
    let recorders = vec![SalesAssociate, StoreManager, SupportAgent, Dpo];
    vec![
        (
            "POST",
            "/v1/customers",
            Some(json!({"name": "Matrix Person"})),
            recorders.clone(),
            StatusCode::CREATED,
        ),
        (
            "PATCH",
            "/v1/customers/{id}",
            Some(json!({"name": "Matrix Renamed"})),
            // Changed like a full read: outlet staff only at their own outlets (none here).
            vec![SupportAgent, Dpo],
            StatusCode::NO_CONTENT,
        ),
        (
            "POST",
            "/v1/customers/{id}/interactions",
            Some(json!({"channel": "web", "text": "matrix", "source": "test"})),
            recorders.clone(),
            StatusCode::CREATED,
        ),
        (
            "POST",
            "/v1/customers/{id}/purchases",
            Some(
                json!({"item": "Matrix Watch", "category": "watches", "outlet_id": outlet, "seller_id": seller, "amount_minor": 100, "currency": "EUR"}),
            ),
            vec![SalesAssociate, StoreManager],
            StatusCode::CREATED,
        ),
        (
            "POST",
            "/v1/customers/{id}/consents",
            Some(json!({"purpose": "personalisation", "action": "grant", "source": "api"})),
            recorders.clone(),
            StatusCode::CREATED,
        ),
        (
            "GET",
            "/v1/customers/{id}/consents",
            None,
            vec![SalesAssociate, StoreManager, SupportAgent, Dpo, Marketing],
            StatusCode::OK,
        ),
        (
            "POST",
            "/v1/outlets",
            Some(json!({"name": "Matrix Outlet {n}"})),
            vec![Admin],
            StatusCode::CREATED,
        ),
        (
            "GET",
            "/v1/outlets",
            None,
            vec![Admin, Dpo, StoreManager],
            StatusCode::OK,
        ),
        (
            "POST",
            "/v1/staff",
            Some(json!({"name": "Matrix Staff", "roles": ["support_agent"]})),
            vec![Admin],
            StatusCode::CREATED,
        ),
        (
            "GET",
            "/v1/staff",
            None,
            vec![Admin, Dpo, StoreManager],
            StatusCode::OK,
        ),
        ("GET", "/v1/alerts", None, vec![Dpo], StatusCode::OK),
        (
            "GET",
            "/v1/purposes",
            None,
            Role::ALL.to_vec(),
            StatusCode::OK,
        ),
        (
            "POST",
            "/v1/purposes",
            Some(
                json!({"key": "matrix_{n}", "lawful_basis": "consent", "data_use": "marketing.communications.email", "categories": ["user.contact.email"], "retention_days": 30, "notice_text": "Matrix notice {n}"}),
            ),
            vec![Dpo],
            StatusCode::CREATED,
        ),
        (
            "GET",
            "/v1/customers/{id}/access-log",
            None,
            vec![SupportAgent, Dpo],
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/audit/entries?start=0&end=10",
            None,
            vec![Dpo],
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/audit/proof/inclusion?index=0&tree_size=1",
            None,
            vec![Dpo],
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/audit/proof/consistency?first=1&second=1",
            None,
            vec![Dpo],
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/audit/checkpoint",
            None,
            Role::ALL.to_vec(),
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/audit/public-key",
            None,
            Role::ALL.to_vec(),
            StatusCode::OK,
        ),
        (
            "PATCH",
            "/v1/purposes/analytics",
            Some(json!({"notice_text": "Matrix notice {n}"})),
            vec![Dpo],
            StatusCode::OK,
        ),
        (
            "PUT",
            "/v1/customers/{id}/legal-hold",
            Some(json!({"reference": "CASE-{n}"})),
            vec![Dpo],
            StatusCode::NO_CONTENT,
        ),
        (
            "DELETE",
            "/v1/customers/{id}/legal-hold",
            None,
            vec![Dpo],
            StatusCode::NO_CONTENT,
        ),
        (
            "POST",
            "/v1/requests",
            Some(json!({"type": "access", "customer_id": "{id}"})),
            vec![SupportAgent, Dpo],
            StatusCode::CREATED,
        ),
        (
            "PUT",
            "/v1/customers/{id}/verified-fields",
            Some(json!({"fields": ["date_of_birth"]})),
            vec![SupportAgent, Dpo],
            StatusCode::NO_CONTENT,
        ),
        (
            "GET",
            "/v1/requests",
            None,
            vec![SupportAgent, Dpo],
            StatusCode::OK,
        ),
        // A list under a purpose the caller's roles may not declare is refused as a whole, and so
        // is one under which the caller could see nobody (the DPO without a reason). A look-up
        // that finds nobody the DPO may see is an empty answer.
        (
            "GET",
            "/v1/customers?purpose=service",
            None,
            vec![SalesAssociate, StoreManager, SupportAgent],
            StatusCode::OK,
        ),
        (
            "POST",
            "/v1/customers/lookup?purpose=service",
            Some(json!({"email": "m@example.com"})),
            vec![SalesAssociate, StoreManager, SupportAgent, Dpo],
            StatusCode::OK,
        ),
        // Accounts with an end: each cell ends a token or staff member of its own.
        ("GET", "/v1/tokens", None, vec![Admin], StatusCode::OK),
        (
            "DELETE",
            "/v1/tokens/{fresh_token}",
            None,
            vec![Admin],
            StatusCode::NO_CONTENT,
        ),
        (
            "PATCH",
            "/v1/staff/{fresh_staff}",
            Some(json!({"disabled": true})),
            vec![Admin],
            StatusCode::NO_CONTENT,
        ),
        // The confidentiality notice (one is published before the rows run): the DPO publishes,
        // everyone reads; a service client's token acknowledges nothing (staff do, with their
        // own session: `notice.rs`).
        (
            "PUT",
            "/v1/confidentiality-notice",
            Some(json!({"text": "Matrix notice {n}"})),
            vec![Dpo],
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/confidentiality-notice",
            None,
            Role::ALL.to_vec(),
            StatusCode::OK,
        ),
        (
            "POST",
            "/v1/acknowledgements",
            Some(json!({"notice_version": 1})),
            vec![],
            StatusCode::NO_CONTENT,
        ),
        // Segments (issue 18): marketing and the DPO define them and see their sizes, under a
        // purpose both may declare; everyone else is refused.
        (
            "POST",
            "/v1/segments",
            Some(json!({"name": "Matrix {n}", "rules": {"all": []}})),
            vec![Marketing, Dpo],
            StatusCode::CREATED,
        ),
        (
            "GET",
            "/v1/segments",
            None,
            vec![Marketing, Dpo],
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/segments/{segment}?purpose=marketing_email",
            None,
            vec![Marketing, Dpo],
            StatusCode::OK,
        ),
        // Campaigns (issue 18) are marketing's alone.
        (
            "POST",
            "/v1/campaigns",
            Some(
                json!({"segment_id": "{segment}", "purpose": "marketing_email", "subject": "Hello {{first_name}}", "body": "News {n}"}),
            ),
            vec![Marketing],
            StatusCode::CREATED,
        ),
        (
            "GET",
            "/v1/campaigns",
            None,
            vec![Marketing],
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/campaigns/{campaign}",
            None,
            vec![Marketing],
            StatusCode::OK,
        ),
        // Only marketing gets past the door; this in-process server has no mail server, so
        // its answer is 409 (sending itself: mail.rs, against a real SMTP server).
        (
            "POST",
            "/v1/campaigns/{campaign}/send",
            None,
            vec![Marketing],
            StatusCode::CONFLICT,
        ),
        // Staff messages (issue 18): written like a read of the contact details. Service
        // clients work at no outlet, so of them only support agents may write; this in-process
        // server has no mail server, so that answer is 409 (sending itself: messages.rs).
        (
            "POST",
            "/v1/customers/{id}/messages?purpose=service",
            Some(json!({"subject": "Matrix", "text": "Hello {n}"})),
            vec![SupportAgent],
            StatusCode::CONFLICT,
        ),
        (
            "GET",
            "/v1/customers/{id}/messages?purpose=service",
            None,
            vec![SupportAgent],
            StatusCode::OK,
        ),
        // Inbound mail is the gateway's alone; a body that is not a message is 415.
        (
            "POST",
            "/v1/inbound/email",
            None,
            vec![MailGateway],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        // Personalisation (issue 20): marketing alone gets past the door (the rows above grant
        // the customer's consent); this in-process server built no model, so that answer is 409
        // (answers themselves: personalisation.rs).
        (
            "GET",
            "/v1/customers/{id}/recommendations?purpose=personalisation",
            None,
            vec![Marketing],
            StatusCode::CONFLICT,
        ),
        // Marking purchase categories is the DPO's; no purchase is in this one (404).
        (
            "PUT",
            "/v1/purchase-categories/matrixcat",
            Some(json!({"data_category": "user.health_and_medical"})),
            vec![Dpo],
            StatusCode::NOT_FOUND,
        ),
        (
            "GET",
            "/v1/purchase-categories",
            None,
            vec![Dpo],
            StatusCode::OK,
        ),
        // Analytics (issue 21): analysts and the DPO, under the analytics purpose; everyone's
        // budget use is the DPO's alone.
        (
            "POST",
            "/v1/analytics/queries?purpose=analytics",
            Some(json!({"metric": "count", "of": "customers", "epsilon": 0.01})),
            vec![Analyst, Dpo],
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/analytics/budget?purpose=analytics",
            None,
            vec![Analyst, Dpo],
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/analytics/releases?purpose=analytics",
            None,
            vec![Analyst, Dpo],
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/analytics/budgets",
            None,
            vec![Dpo],
            StatusCode::OK,
        ),
        // Surveys (issue 21): composed and sent by marketing and the DPO (this segment reaches
        // too few for a survey: 422 past the door); results are the analysts' and the DPO's
        // (no answers yet: 409 past the door).
        (
            "POST",
            "/v1/surveys",
            Some(
                json!({"title": "Matrix survey", "segment_id": "{segment}", "purpose": "marketing_email", "questions": [{"kind": "scale", "text": "How was it?"}]}),
            ),
            vec![Marketing, Dpo],
            StatusCode::CREATED,
        ),
        (
            "GET",
            "/v1/surveys",
            None,
            vec![Marketing, Analyst, Dpo],
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/surveys/{survey}",
            None,
            vec![Marketing, Analyst, Dpo],
            StatusCode::OK,
        ),
        (
            "POST",
            "/v1/surveys/{survey}/send",
            None,
            vec![Marketing, Dpo],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/v1/surveys/{survey}/results?purpose=analytics",
            Some(json!({"epsilon": 0.01})),
            vec![Analyst, Dpo],
            StatusCode::CONFLICT,
        ),
        // Sharing (issue 22): recipients, agreements and notifications are the DPO's; a
        // customer's disclosures are read like their access log; only a recipient under a
        // pseudonymous agreement lists or reads by pseudonym (none of these roles).
        (
            "POST",
            "/v1/recipients",
            Some(
                json!({"name": "Matrix Recipient {n}", "kind": "processor", "country": "DE", "webhook_url": "https://matrix.example/hooks"}),
            ),
            vec![Dpo],
            StatusCode::CREATED,
        ),
        ("GET", "/v1/recipients", None, vec![Dpo], StatusCode::OK),
        (
            "POST",
            "/v1/agreements",
            Some(
                json!({"recipient_id": "{recipient}", "purposes": ["order_fulfilment"], "categories": ["user.name"], "lawful_basis": "contract", "document_sha256": "ab".repeat(32), "identity": "identified", "starts_at": "2026-01-01T00:00:00Z", "expires_at": "2099-01-01T00:00:00Z"}),
            ),
            vec![Dpo],
            StatusCode::CREATED,
        ),
        ("GET", "/v1/agreements", None, vec![Dpo], StatusCode::OK),
        (
            "POST",
            "/v1/agreements/{agreement}/end",
            None,
            vec![Dpo],
            StatusCode::NO_CONTENT,
        ),
        ("GET", "/v1/notifications", None, vec![Dpo], StatusCode::OK),
        // Social events (issue 23): social connectors only; kept or dropped, the same 202.
        (
            "POST",
            "/v1/social/events",
            Some(
                json!({"platform": "instagram", "handle": "@matrix", "event_id": "m-{n}", "text": "hello"}),
            ),
            vec![SocialConnector],
            StatusCode::ACCEPTED,
        ),
        // The PII detector (issue 23): any staff role or service client; it reads no customer.
        (
            "POST",
            "/v1/pii/analyze",
            Some(json!({"text": "mail a@example.com, card 4111 1111 1111 1111", "language": "en"})),
            Role::ALL.to_vec(),
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/customers/{id}/disclosures",
            None,
            vec![SupportAgent, Dpo],
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/shared?purpose=analytics",
            None,
            vec![],
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/shared/{pseudonym}?purpose=analytics",
            None,
            vec![],
            StatusCode::NOT_FOUND,
        ),
        // A merge, of two customers of its own: the other is erased.
        (
            "POST",
            "/v1/customers/{fresh}/merge",
            Some(json!({"other_id": "{fresh_other}"})),
            vec![SupportAgent, Dpo],
            StatusCode::OK,
        ),
        // Each erasure cell gets a customer of its own ({fresh}): an erased one is gone.
        (
            "DELETE",
            "/v1/customers/{fresh}",
            None,
            vec![Dpo],
            StatusCode::OK,
        ),
    ]
}

async fn status(
    router: &axum::Router,
    token: &str,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> StatusCode {
    let ct = body.is_some().then_some("application/json");
    crate::support::oneshot(
        router,
        Some(token),
        method,
        uri,
        body.map(|b| b.to_string()),
        ct,
        &[],
    )
    .await
    .0
}

async fn authorisation_matrix(db: TestDb) {
    let (v, op, _) = db.open().await;
    let outlet = v
        .directory()
        .create_outlet(op.into(), "Matrix Outlet")
        .await
        .unwrap();
    let seller = v
        .directory()
        .create_staff(
            op.into(),
            "Matrix Seller",
            &[Role::SalesAssociate],
            &[outlet],
        )
        .await
        .unwrap();
    let mut tokens = Vec::new();
    for role in Role::ALL {
        tokens.push((
            role,
            v.identity()
                .create_token(op, "matrix", TokenOwner::Role(role))
                .await
                .unwrap()
                .1
                .to_string(),
        ));
    }
    let support = tokens
        .iter()
        .find(|(r, _)| *r == Role::SupportAgent)
        .unwrap()
        .1
        .clone();
    let router = steward_api::router(v.clone());
    // Two customers, registered at the outlet, with a purchase and a message each; one has
    // consented to every consent purpose.
    let mut customers = Vec::new();
    for consented in [false, true] {
        let (s, id) = {
            // The two customers share their contact details on purpose.
            let req = json!({"name": "Matrix Customer", "email": "m@example.com", "phone": "+44 20 7946 0777", "address": "1 Matrix Road", "outlet_id": outlet, "allow_duplicate": true});
            let res = router
                .clone()
                .oneshot(
                    Request::post("/v1/customers")
                        .header(header::AUTHORIZATION, format!("Bearer {support}"))
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Body::from(req.to_string()))
                        .unwrap(),
                )
                .await
                .unwrap();
            let s = res.status();
            let b: Value = serde_json::from_slice(
                &http_body_util::BodyExt::collect(res.into_body())
                    .await
                    .unwrap()
                    .to_bytes(),
            )
            .unwrap();
            (s, b["id"].as_str().unwrap().to_owned())
        };
        assert_eq!(s, StatusCode::CREATED);
        assert_eq!(
            status(
                &router,
                &support,
                "POST",
                &format!("/v1/customers/{id}/interactions"),
                Some(json!({"channel": "email", "text": "hello", "source": "m"}))
            )
            .await,
            StatusCode::CREATED
        );
        if consented {
            for p in CONSENT_PURPOSES {
                let c = json!({"purpose": p, "action": "grant", "source": "in_store"});
                assert_eq!(
                    status(
                        &router,
                        &support,
                        "POST",
                        &format!("/v1/customers/{id}/consents"),
                        Some(c)
                    )
                    .await,
                    StatusCode::CREATED
                );
            }
        }
        customers.push((consented, id));
    }

    let mut checked = 0;
    let mut wrong = Vec::new();
    for (role, token) in &tokens {
        for (consented, id) in &customers {
            for endpoint in ["customer", "purchases", "interactions"] {
                let allowed = expected_reads(*role, endpoint);
                for purpose in PURPOSES {
                    let ok = allowed.contains(purpose)
                        && (*consented || !CONSENT_PURPOSES.contains(&purpose));
                    let path = match endpoint {
                        "customer" => format!("/v1/customers/{id}?purpose={purpose}"),
                        other => format!("/v1/customers/{id}/{other}?purpose={purpose}"),
                    };
                    let got = status(&router, token, "GET", &path, None).await;
                    let want = if ok {
                        StatusCode::OK
                    } else {
                        StatusCode::FORBIDDEN
                    };
                    if got != want {
                        wrong.push(format!("{role:?} GET {endpoint} for {purpose} (consented: {consented}): got {got}, want {want}"));
                    }
                    checked += 1;
                }
            }
        }
    }
    // A confidentiality notice exists, so that reading it is a 200 for every role.
    let dpo_token = tokens
        .iter()
        .find(|(r, _)| *r == Role::Dpo)
        .unwrap()
        .1
        .clone();
    let notice = json!({"text": "Matrix notice"});
    assert_eq!(
        status(
            &router,
            &dpo_token,
            "PUT",
            "/v1/confidentiality-notice",
            Some(notice)
        )
        .await,
        StatusCode::OK
    );
    // A segment for the rows that size one.
    let segment = {
        let (s, _, body) = crate::support::oneshot(
            &router,
            Some(&dpo_token),
            "POST",
            "/v1/segments",
            Some(json!({"name": "Matrix segment", "rules": {"all": []}}).to_string()),
            Some("application/json"),
            &[],
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    };
    // A campaign for the row that reads one.
    let campaign = {
        let marketing = &tokens
            .iter()
            .find(|(r, _)| *r == Role::Marketing)
            .unwrap()
            .1;
        let body = json!({"segment_id": segment, "purpose": "marketing_email", "subject": "Matrix", "body": "Matrix campaign"});
        let (s, _, body) = crate::support::oneshot(
            &router,
            Some(marketing),
            "POST",
            "/v1/campaigns",
            Some(body.to_string()),
            Some("application/json"),
            &[],
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    };
    // A survey for the rows that send one and release its results.
    let survey = {
        let body = json!({"title": "Matrix", "segment_id": segment, "purpose": "marketing_email", "questions": [{"kind": "scale", "text": "How was it?"}]});
        let (s, _, body) = crate::support::oneshot(
            &router,
            Some(&dpo_token),
            "POST",
            "/v1/surveys",
            Some(body.to_string()),
            Some("application/json"),
            &[],
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    };
    // A recipient for the agreement rows, and an agreement for the row that ends one.
    let (recipient, agreement) = matrix_recipient(&router, &dpo_token).await;
    // Writes after every read: they change the customers (a consent grant among them).
    for (role, token) in &tokens {
        for (n, (method, template, body, roles, success)) in
            writes(&outlet.to_string(), &seller.to_string())
                .into_iter()
                .enumerate()
        {
            let mut path = template
                .replace("{id}", &customers[0].1)
                .replace("{segment}", &segment)
                .replace("{campaign}", &campaign)
                .replace("{survey}", &survey)
                .replace("{agreement}", &agreement)
                .replace("{pseudonym}", MATRIX_PSEUDONYM);
            if template.contains("{fresh_token}") {
                let (fresh, _) = v
                    .identity()
                    .create_token(op, "matrix fresh", TokenOwner::Role(Role::SupportAgent))
                    .await
                    .unwrap();
                path = template.replace("{fresh_token}", &fresh.to_string());
            }
            if template.contains("{fresh_staff}") {
                let fresh = v
                    .directory()
                    .create_staff(
                        op.into(),
                        "Matrix Leaver",
                        &[Role::SalesAssociate],
                        &[outlet],
                    )
                    .await
                    .unwrap();
                path = template.replace("{fresh_staff}", &fresh.to_string());
            }
            if template.contains("{fresh}") {
                // A phone it shares with `{fresh_other}`: a merge takes real duplicates only.
                let fresh = crate::access::new_customer(
                    &router,
                    &support,
                    json!({"name": "Matrix Erasable", "phone": "+44 20 7946 0998", "outlet_id": outlet, "allow_duplicate": true}),
                )
                .await;
                path = template.replace("{fresh}", &fresh);
            }
            let mut other = String::new();
            if body
                .as_ref()
                .is_some_and(|b| b.to_string().contains("{fresh_other}"))
            {
                other = crate::access::new_customer(
                    &router,
                    &support,
                    json!({"name": "Matrix Duplicate", "phone": "+44 20 7946 0998", "outlet_id": outlet, "allow_duplicate": true}),
                )
                .await;
            }
            let body = body.map(|b| {
                serde_json::from_str(
                    &b.to_string()
                        .replace("{n}", &format!("{role:?}{n}").to_lowercase())
                        .replace("{id}", &customers[0].1)
                        .replace("{segment}", &segment)
                        .replace("{recipient}", &recipient)
                        .replace("{fresh_other}", &other),
                )
                .unwrap()
            });
            let got = status(&router, token, method, &path, body).await;
            let want = if roles.contains(role) {
                success
            } else {
                StatusCode::FORBIDDEN
            };
            if got != want {
                wrong.push(format!(
                    "{role:?} {method} {template}: got {got}, want {want}"
                ));
            }
            checked += 1;
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked} cells differ from the table:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(checked, Role::ALL.len() * (2 * 3 * 7 + 68));
}

/// Rows every staff role may use that a recipient may not, though they read no customer.
const STAFF_ONLY: [&str; 1] = [
    // The PII detector: a recipient reads under its agreements and nothing else.
    "/v1/pii/analyze",
];

/// A pseudonym no recipient was given.
const MATRIX_PSEUDONYM: &str = "psn_aaaaaaaaaaaaaaaaaaaaaaaaaa";

/// Registers a recipient with an agreement (as the DPO): their ids.
async fn matrix_recipient(router: &axum::Router, dpo: &str) -> (String, String) {
    let call = async |uri: &str, body: Value| {
        let (s, _, v) = crate::support::oneshot(
            router,
            Some(dpo),
            "POST",
            uri,
            Some(body.to_string()),
            Some("application/json"),
            &[],
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().to_owned()
    };
    let recipient = call(
        "/v1/recipients",
        json!({"name": "Matrix Setup", "kind": "processor", "country": "DE", "webhook_url": "https://setup.example/hooks"}),
    )
    .await;
    let agreement = call(
        "/v1/agreements",
        json!({"recipient_id": recipient, "purposes": ["order_fulfilment"], "categories": ["user.name"], "lawful_basis": "contract", "document_sha256": "cd".repeat(32), "identity": "identified", "starts_at": "2026-01-01T00:00:00Z", "expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    (recipient, agreement)
}

/// What a recipient reads, written out by hand from its agreements: `Parcel` holds two in
/// force — `order_fulfilment` for the name, address and purchase history (identified), and
/// `marketing_email` for the name and e-mail address (consent); `Lapsed` one that expired and
/// `Ended` one the DPO ended, both for `order_fulfilment`. Nothing else is ever read, a
/// restricted customer never, and no write of the matrix is a recipient's.
fn expected_recipient_read(recipient: &str, endpoint: &str, purpose: &str) -> bool {
    recipient == "Parcel"
        && matches!(
            (endpoint, purpose),
            ("customer", "order_fulfilment")
                | ("purchases", "order_fulfilment")
                | ("customer", "marketing_email")
        )
}

/// The matrix for recipients (issue 22): every read endpoint × purpose × consent state and a
/// restricted customer, for a recipient inside and outside its agreements, and every write row
/// of the staff matrix refused.
async fn recipient_matrix(db: TestDb) {
    use Role::*;
    let (v, op, store) = db.open().await;
    let router = steward_api::router(v.clone());
    let token = async |owner| {
        v.identity()
            .create_token(op, "matrix", owner)
            .await
            .unwrap()
            .1
            .to_string()
    };
    let (dpo, support) = (
        token(TokenOwner::Role(Dpo)).await,
        token(TokenOwner::Role(SupportAgent)).await,
    );
    let outlet = v
        .directory()
        .create_outlet(op.into(), "Matrix Outlet")
        .await
        .unwrap();
    let post = async |t: &str, uri: &str, body: Value| {
        let (s, _, b) = crate::support::oneshot(
            &router,
            Some(t),
            "POST",
            uri,
            Some(body.to_string()),
            Some("application/json"),
            &[],
        )
        .await;
        (s, b)
    };
    let mut recipients = Vec::new();
    for name in ["Parcel", "Lapsed", "Ended"] {
        let (s, b) = post(
            &dpo,
            "/v1/recipients",
            json!({"name": name, "kind": "processor", "country": "DE", "webhook_url": "https://r.example/hooks"}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let id = b["id"].as_str().unwrap().to_owned();
        let agreement = |purposes: &[&str],
                         categories: &[&str],
                         basis: &str,
                         from: &str,
                         to: &str| {
            json!({"recipient_id": id, "purposes": purposes, "categories": categories, "lawful_basis": basis,
                   "document_sha256": "ef".repeat(32), "identity": "identified", "starts_at": from, "expires_at": to})
        };
        let (from, to) = if name == "Lapsed" {
            ("2020-01-01T00:00:00Z", "2020-12-31T00:00:00Z")
        } else {
            ("2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z")
        };
        let (s, b) = post(
            &dpo,
            "/v1/agreements",
            agreement(
                &["order_fulfilment"],
                &[
                    "user.name",
                    "user.contact.address",
                    "user.behavior.purchase_history",
                ],
                "contract",
                from,
                to,
            ),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        if name == "Ended" {
            let end = format!("/v1/agreements/{}/end", b["id"].as_str().unwrap());
            assert_eq!(post(&dpo, &end, json!({})).await.0, StatusCode::NO_CONTENT);
        }
        if name == "Parcel" {
            let (s, b) = post(
                &dpo,
                "/v1/agreements",
                agreement(
                    &["marketing_email"],
                    &["user.name", "user.contact.email"],
                    "consent",
                    from,
                    to,
                ),
            )
            .await;
            assert_eq!(s, StatusCode::CREATED, "{b}");
        }
        let rid = id.parse().unwrap();
        recipients.push((name, token(TokenOwner::Recipient(rid)).await));
    }
    // Three customers: without consent, with consent to every consent purpose, and restricted.
    let mut customers = Vec::new();
    for (consented, restricted) in [(false, false), (true, false), (true, true)] {
        let id = crate::access::new_customer(
            &router,
            &support,
            json!({"name": "Matrix Shared", "email": "s@example.com", "phone": "+44 20 7946 0555", "outlet_id": outlet, "allow_duplicate": true}),
        )
        .await;
        if consented {
            for p in CONSENT_PURPOSES {
                let c = json!({"purpose": p, "action": "grant", "source": "in_store"});
                let (s, b) = post(&support, &format!("/v1/customers/{id}/consents"), c).await;
                assert_eq!(s, StatusCode::CREATED, "{b}");
            }
        }
        if restricted {
            store
                .set_restricted(id.parse().unwrap(), true, &[])
                .await
                .unwrap();
        }
        customers.push((consented, restricted, id));
    }
    let (mut checked, mut wrong) = (0, Vec::new());
    for (name, t) in &recipients {
        for (consented, restricted, id) in &customers {
            for endpoint in ["customer", "purchases", "interactions"] {
                for purpose in PURPOSES {
                    let ok = expected_recipient_read(name, endpoint, purpose)
                        && !restricted
                        && (*consented || !CONSENT_PURPOSES.contains(&purpose));
                    let path = match endpoint {
                        "customer" => format!("/v1/customers/{id}?purpose={purpose}"),
                        other => format!("/v1/customers/{id}/{other}?purpose={purpose}"),
                    };
                    let got = status(&router, t, "GET", &path, None).await;
                    let want = if ok {
                        StatusCode::OK
                    } else {
                        StatusCode::FORBIDDEN
                    };
                    if got != want {
                        wrong.push(format!("{name} GET {endpoint} for {purpose} (consented: {consented}, restricted: {restricted}): got {got}, want {want}"));
                    }
                    checked += 1;
                }
            }
        }
        // No write, no administration: every row of the staff matrix is refused, but the
        // public checkpoint and key any caller may fetch.
        for (method, template, body, roles, _) in writes(&outlet.to_string(), &uuid_like()) {
            let path = template
                .replace("{id}", &customers[0].2)
                .replace("{pseudonym}", MATRIX_PSEUDONYM)
                .replace("{fresh_token}", &uuid_like())
                .replace("{fresh_staff}", &uuid_like())
                .replace("{fresh}", &customers[0].2)
                .replace("{segment}", &uuid_like())
                .replace("{campaign}", &uuid_like())
                .replace("{survey}", &uuid_like())
                .replace("{agreement}", &uuid_like());
            let body = body.map(|b| {
                serde_json::from_str(
                    &b.to_string()
                        .replace("{n}", "recipient0")
                        .replace("{id}", &customers[0].2)
                        .replace("{segment}", &uuid_like())
                        .replace("{recipient}", &uuid_like())
                        .replace("{fresh_other}", &customers[1].2),
                )
                .unwrap()
            });
            let public = roles.len() == Role::ALL.len() && !STAFF_ONLY.contains(&template);
            let got = status(&router, t, method, &path, body).await;
            let refused = got == StatusCode::FORBIDDEN;
            if public == refused {
                wrong.push(format!("{name} {method} {template}: got {got}"));
            }
            checked += 1;
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked} recipient cells differ from the table:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(checked, 3 * (3 * 3 * 7 + writes("o", "s").len()));
}

/// A syntactically valid id that names nothing.
fn uuid_like() -> String {
    uuid::Uuid::now_v7().to_string()
}
