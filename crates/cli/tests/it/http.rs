//! The HTTP API, in process, on both backends.

use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;
use steward_domain::Role;
use steward_service::TokenOwner;

use crate::support::{TestDb, backend_tests, customer_json};

struct Api {
    router: axum::Router,
    /// A support agent: creates and reads customers.
    token: String,
    /// An admin: outlets and staff.
    admin: String,
    /// A sales associate (service client, no outlet): records purchases.
    sales: String,
}

impl Api {
    async fn new(db: &TestDb) -> Self {
        let vault = db.vault().await;
        let mut tokens = Vec::new();
        for role in [Role::SupportAgent, Role::Admin, Role::SalesAssociate] {
            tokens.push(
                vault
                    .identity()
                    .create_token(crate::support::op(), "http-test", TokenOwner::Role(role))
                    .await
                    .unwrap()
                    .1
                    .to_string(),
            );
        }
        let [token, admin, sales] = <[String; 3]>::try_from(tokens).unwrap();
        Api {
            router: steward_api::router(vault),
            token,
            admin,
            sales,
        }
    }

    async fn call(
        &self,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, String, Value) {
        self.call_as(&self.token, method, uri, body).await
    }

    async fn call_as(
        &self,
        token: &str,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, String, Value) {
        self.request(
            Some(token),
            method,
            uri,
            body.map(|b| b.to_string()),
            Some("application/json"),
        )
        .await
    }

    async fn raw(
        &self,
        method: &str,
        uri: &str,
        body: Option<String>,
        content_type: Option<&str>,
        auth: bool,
    ) -> (StatusCode, String, Value) {
        let token = auth.then(|| self.token.clone());
        self.request(token.as_deref(), method, uri, body, content_type)
            .await
    }

    async fn request(
        &self,
        token: Option<&str>,
        method: &str,
        uri: &str,
        body: Option<String>,
        content_type: Option<&str>,
    ) -> (StatusCode, String, Value) {
        crate::support::oneshot(&self.router, token, method, uri, body, content_type, &[]).await
    }
}

fn assert_problem(res: &(StatusCode, String, Value), status: StatusCode, field: &str) {
    assert_eq!(res.0, status, "{:?}", res.2);
    assert_eq!(res.1, "application/problem+json");
    assert_eq!(res.2["status"], status.as_u16());
    if field.is_empty() {
        assert!(res.2.get("field").is_none(), "{:?}", res.2);
    } else {
        assert_eq!(res.2["field"], field, "{:?}", res.2);
    }
    assert!(res.2["type"].as_str().unwrap().starts_with("/problems/"));
    assert!(res.2["title"].is_string() && res.2["detail"].is_string());
}

backend_tests!(
    merge_patch_media_type,
    customers_over_http,
    bad_input_is_refused_and_changes_nothing,
    activity_over_http,
    integrity_error_over_http,
    system_endpoints
);

async fn customers_over_http(db: TestDb) {
    let api = Api::new(&db).await;
    let (s, _, created) = api
        .call(
            "POST",
            "/v1/customers",
            Some(customer_json(
                "Hattie Example",
                "Hattie@Example.net",
                "+44 20 7946 0123",
                "9 Http Street",
            )),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);

    let (s, _, c) = api
        .call("GET", &format!("/v1/customers/{id}?purpose=service"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(c["name"], "Hattie Example");
    // Masked to the support agent: Steward writes to the customer, staff never need the address.
    assert_eq!(
        c["email"],
        steward_domain::view::mask_email("hattie@example.net")
    );
    assert_eq!(c["phone"], "+442079460123");
    assert_eq!(c["address"]["street"], "9 Http Street");

    assert_problem(
        &api.call("GET", &format!("/v1/customers/{id}"), None).await,
        StatusCode::BAD_REQUEST,
        "purpose",
    );
    assert_problem(
        &api.call(
            "GET",
            &format!("/v1/customers/{id}?purpose=curiosity"),
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "purpose",
    );
    assert_problem(
        &api.call("GET", "/v1/customers", None).await,
        StatusCode::BAD_REQUEST,
        "purpose",
    );

    let (s, _, _) = api
        .call(
            "PATCH",
            &format!("/v1/customers/{id}"),
            Some(json!({"name": "Hattie Renamed", "address": null})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, _, c) = api
        .call("GET", &format!("/v1/customers/{id}?purpose=service"), None)
        .await;
    assert_eq!(c["name"], "Hattie Renamed");
    assert!(c.get("address").is_none());

    let (s, _, found) = api
        .call(
            "POST",
            "/v1/customers/lookup?purpose=service",
            Some(json!({"phone": "0044 20 7946 0123"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(found["items"][0]["id"], id.as_str());
    let (_, _, none) = api
        .call(
            "POST",
            "/v1/customers/lookup?purpose=service",
            Some(json!({"email": "nobody@example.net"})),
        )
        .await;
    assert_eq!(none["items"], json!([]));
    assert_problem(
        &api.call(
            "POST",
            "/v1/customers/lookup",
            Some(json!({"email": "hattie@example.net"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "purpose",
    );
    assert_problem(
        &api.call(
            "POST",
            "/v1/customers/lookup?purpose=service",
            Some(json!({})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "email",
    );

    for n in 0..4 {
        api.call(
            "POST",
            "/v1/customers",
            Some(json!({"name": format!("Pager {n}")})),
        )
        .await;
    }
    let (_, _, p1) = api
        .call("GET", "/v1/customers?purpose=service&limit=3", None)
        .await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 3);
    let cursor = p1["next_cursor"].as_str().unwrap();
    let (_, _, p2) = api
        .call(
            "GET",
            &format!("/v1/customers?purpose=service&limit=3&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(p2["items"].as_array().unwrap().len(), 2);
    assert!(p2.get("next_cursor").is_none());
    assert_problem(
        &api.call("GET", "/v1/customers?purpose=service&limit=0", None)
            .await,
        StatusCode::BAD_REQUEST,
        "limit",
    );
    assert_problem(
        &api.call("GET", "/v1/customers?purpose=service&cursor=zzz", None)
            .await,
        StatusCode::BAD_REQUEST,
        "cursor",
    );
    assert_problem(
        &api.call(
            "GET",
            &format!("/v1/customers/{}?purpose=service", uuid::Uuid::now_v7()),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "",
    );
}

async fn bad_input_is_refused_and_changes_nothing(db: TestDb) {
    let api = Api::new(&db).await;
    let count = |db: &TestDb| {
        let url = db.url.clone();
        async move {
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&url).await.unwrap();
            let n: i64 = sqlx::query("SELECT (SELECT COUNT(*) FROM customers) + (SELECT COUNT(*) FROM data_keys) + (SELECT COUNT(*) FROM lookup_index)").fetch_one(&pool).await.unwrap().get(0);
            n
        }
    };
    let before = count(&db).await;
    let secret = "Leaky Secretvalue";
    let cases: Vec<(Option<String>, Option<&str>, StatusCode, &str)> = vec![
        (
            Some(json!({"name": secret, "email": "not an email Leaky"}).to_string()),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "email",
        ),
        (
            Some(json!({"name": secret, "phone": "020 7946 0000"}).to_string()),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "phone",
        ),
        (
            Some(json!({"name": secret, "date_of_birth": "Leaky"}).to_string()),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "date_of_birth",
        ),
        (
            Some(json!({"name": 12}).to_string()),
            Some("application/json"),
            StatusCode::BAD_REQUEST,
            "name",
        ),
        (
            Some(json!({"name": secret, "shoe_size": 9}).to_string()),
            Some("application/json"),
            StatusCode::BAD_REQUEST,
            // The object holding the unknown key, never the key (issue 15, finding 15).
            "body",
        ),
        (
            Some(
                json!({"name": secret, "address": {"street": secret, "galaxy": "Leaky"}})
                    .to_string(),
            ),
            Some("application/json"),
            StatusCode::BAD_REQUEST,
            "address",
        ),
        (
            Some(json!({}).to_string()),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            Some(format!("{{\"name\": \"{secret}\"")),
            Some("application/json"),
            StatusCode::BAD_REQUEST,
            "",
        ),
        (
            Some(json!({"name": secret}).to_string()),
            Some("text/plain"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type",
        ),
        (
            Some(json!({"name": "x".repeat(100_000)}).to_string()),
            Some("application/json"),
            StatusCode::PAYLOAD_TOO_LARGE,
            "",
        ),
    ];
    for (body, ct, status, field) in cases {
        let res = api.raw("POST", "/v1/customers", body, ct, true).await;
        assert_eq!(res.0, status, "{:?}", res.2);
        assert_eq!(res.1, "application/problem+json");
        if !field.is_empty() {
            assert_eq!(res.2["field"], field, "{:?}", res.2);
        }
        let text = res.2.to_string();
        assert!(
            !text.contains("Leaky") && !text.contains("Secretvalue"),
            "error echoes input: {text}"
        );
    }
    let unauth = api
        .raw(
            "POST",
            "/v1/customers",
            Some(json!({"name": "x"}).to_string()),
            Some("application/json"),
            false,
        )
        .await;
    assert_problem(&unauth, StatusCode::UNAUTHORIZED, "Authorization");
    assert_eq!(
        count(&db).await,
        before,
        "a refused request changed the database"
    );
}

async fn activity_over_http(db: TestDb) {
    let api = Api::new(&db).await;
    let (_, _, o) = api
        .call_as(
            &api.admin,
            "POST",
            "/v1/outlets",
            Some(json!({"name": "Http Outlet"})),
        )
        .await;
    let outlet = o["id"].as_str().unwrap().to_owned();
    assert_problem(
        &api.call_as(
            &api.admin,
            "POST",
            "/v1/outlets",
            Some(json!({"name": "Http Outlet"})),
        )
        .await,
        StatusCode::CONFLICT,
        "name",
    );
    let (s, _, st) = api
        .call_as(
            &api.admin,
            "POST",
            "/v1/staff",
            Some(
                json!({"name": "Sam Seller", "roles": ["sales_associate"], "outlet_ids": [outlet]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let seller = st["id"].as_str().unwrap().to_owned();
    // Found by API fuzzing: an outlet or a role named twice broke a unique key (a 500).
    let (s, _, twice) = api
        .call_as(
            &api.admin,
            "POST",
            "/v1/staff",
            Some(json!({"name": "Twice Named", "roles": ["marketing", "marketing"], "outlet_ids": [outlet, outlet]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{twice}");
    let (_, _, all) = api.call_as(&api.admin, "GET", "/v1/staff", None).await;
    let made = all
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == twice["id"])
        .unwrap();
    assert_eq!(made["roles"], json!(["marketing"]));
    assert_eq!(made["outlet_ids"], json!([outlet]));
    assert_problem(
        &api.call_as(
            &api.admin,
            "POST",
            "/v1/staff",
            Some(json!({"name": "X", "roles": ["overlord"]})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "roles[0]",
    );
    let (_, _, c) = api
        .call(
            "POST",
            "/v1/customers",
            Some(json!({"name": "Activity Person", "outlet_id": outlet})),
        )
        .await;
    let id = c["id"].as_str().unwrap().to_owned();

    let (s, _, _) = api
        .call(
            "POST",
            &format!("/v1/customers/{id}/interactions"),
            Some(json!({"channel": "email", "text": "Where is my order?", "source": "helpdesk"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_problem(
        &api.call(
            "POST",
            &format!("/v1/customers/{id}/interactions"),
            Some(json!({"channel": "pigeon", "text": "x", "source": "y"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "channel",
    );
    let (_, _, list) = api
        .call(
            "GET",
            &format!("/v1/customers/{id}/interactions?purpose=service"),
            None,
        )
        .await;
    assert_eq!(list["items"][0]["text"], "Where is my order?");
    assert_eq!(list["items"][0]["channel"], "email");
    assert_problem(
        &api.call("GET", &format!("/v1/customers/{id}/interactions"), None)
            .await,
        StatusCode::BAD_REQUEST,
        "purpose",
    );

    let purchase = json!({"item": "Equinox Perpetual", "category": "watches", "outlet_id": outlet, "seller_id": seller, "amount_minor": 5_900_000, "currency": "EUR", "occurred_at": "2026-03-01T12:00:00Z"});
    let (s, _, _) = api
        .call_as(
            &api.sales,
            "POST",
            &format!("/v1/customers/{id}/purchases"),
            Some(purchase.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let mut bad = purchase.clone();
    bad["currency"] = json!("XYZ");
    assert_problem(
        &api.call_as(
            &api.sales,
            "POST",
            &format!("/v1/customers/{id}/purchases"),
            Some(bad),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "currency",
    );
    let mut bad = purchase.clone();
    bad["amount_minor"] = json!(-1);
    assert_problem(
        &api.call_as(
            &api.sales,
            "POST",
            &format!("/v1/customers/{id}/purchases"),
            Some(bad),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "amount_minor",
    );
    let (_, _, list) = api
        .call(
            "GET",
            &format!("/v1/customers/{id}/purchases?purpose=order_fulfilment"),
            None,
        )
        .await;
    let p = &list["items"][0];
    assert_eq!(
        (
            p["item"].as_str(),
            p["amount_minor"].as_i64(),
            p["seller_id"].as_str()
        ),
        (
            Some("Equinox Perpetual"),
            Some(5_900_000),
            Some(seller.as_str())
        )
    );
    assert_eq!(p["occurred_at"], "2026-03-01T12:00:00Z");
    assert_problem(
        &api.call_as(
            &api.sales,
            "POST",
            &format!("/v1/customers/{}/purchases", uuid::Uuid::now_v7()),
            Some(purchase),
        )
        .await,
        StatusCode::NOT_FOUND,
        "",
    );
}

async fn integrity_error_over_http(db: TestDb) {
    let api = Api::new(&db).await;
    let (_, _, a) = api
        .call(
            "POST",
            "/v1/customers",
            Some(customer_json(
                "Swap One",
                "one@example.com",
                "+44 20 7946 0111",
                "1 Swap St",
            )),
        )
        .await;
    let (_, _, b) = api
        .call(
            "POST",
            "/v1/customers",
            Some(customer_json(
                "Swap Two",
                "two@example.com",
                "+44 20 7946 0222",
                "2 Swap St",
            )),
        )
        .await;
    let ids: Vec<Vec<u8>> = [&a, &b]
        .iter()
        .map(|v| {
            uuid::Uuid::parse_str(v["id"].as_str().unwrap())
                .unwrap()
                .as_bytes()
                .to_vec()
        })
        .collect();
    let raw = db.raw().await;
    let rows = sqlx::query("SELECT id, name, email, phone, address FROM customers")
        .fetch_all(&raw)
        .await
        .unwrap();
    let cols =
        |i: usize| -> Vec<Vec<u8>> { (1..5).map(|c| rows[i].get::<Vec<u8>, _>(c)).collect() };
    let (ca, cb) = if rows[0].get::<Vec<u8>, _>(0) == ids[0] {
        (cols(0), cols(1))
    } else {
        (cols(1), cols(0))
    };
    for (id, c) in [(&ids[0], &cb), (&ids[1], &ca)] {
        sqlx::query(
            "UPDATE customers SET name = $1, email = $2, phone = $3, address = $4 WHERE id = $5",
        )
        .bind(c[0].clone())
        .bind(c[1].clone())
        .bind(c[2].clone())
        .bind(c[3].clone())
        .bind(id.clone())
        .execute(&raw)
        .await
        .unwrap();
    }
    for v in [&a, &b] {
        let res = api
            .call(
                "GET",
                &format!(
                    "/v1/customers/{}?purpose=service",
                    v["id"].as_str().unwrap()
                ),
                None,
            )
            .await;
        assert_eq!(res.0, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(res.2["type"], "/problems/integrity");
        let text = res.2.to_string();
        assert!(
            !text.contains("Swap") && !text.contains("example.com"),
            "{text}"
        );
    }
}

async fn system_endpoints(db: TestDb) {
    let api = Api::new(&db).await;
    // People who open the root land on the console (issue 17).
    let (s, _, _) = api.raw("GET", "/", None, None, false).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, _, h) = api.raw("GET", "/healthz", None, None, false).await;
    assert_eq!((s, h["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, _, doc) = api.raw("GET", "/openapi.json", None, None, false).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/v1/customers",
        "/v1/customers/{id}",
        "/v1/customers/lookup",
        "/v1/customers/{id}/interactions",
        "/v1/customers/{id}/purchases",
        "/v1/purposes",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    // Every error is documented as problem details, with a default for any status.
    let get_one = &doc["paths"]["/v1/customers/{id}"]["get"]["responses"];
    for status in ["404", "default"] {
        assert_eq!(
            get_one[status]["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem",
            "{status}"
        );
    }
    assert!(get_one["200"]["content"]["application/json"].is_object());
    let (_, _, purposes) = api.call("GET", "/v1/purposes", None).await;
    assert!(
        purposes
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["key"] == "marketing_email" && p["lawful_basis"] == "consent")
    );
    // Issue 15, finding 15: the metrics need a monitoring (or admin) token on the main address.
    let (s, _, _) = api.raw("GET", "/metrics", None, None, false).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = api.call("GET", "/metrics", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a support agent read the metrics");
    let (s, ct, m) = api
        .request(Some(&api.admin), "GET", "/metrics", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(ct.starts_with("text/plain"));
    assert!(
        m.as_str().unwrap().contains("steward_http_requests_total"),
        "{m}"
    );
    assert_problem(
        &api.call("GET", "/v1/nothing-here", None).await,
        StatusCode::NOT_FOUND,
        "",
    );
    assert_eq!(
        api.call("DELETE", "/v1/purposes", None).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

/// A merge patch may come as RFC 7396's own media type; other methods keep `application/json`.
async fn merge_patch_media_type(db: TestDb) {
    let api = Api::new(&db).await;
    let (s, _, created) = api
        .call("POST", "/v1/customers", Some(json!({"name": "Mona Merge"})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    let patch = json!({"name": "Mona Patched"}).to_string();
    let (s, _, b) = api
        .raw(
            "PATCH",
            &format!("/v1/customers/{id}"),
            Some(patch),
            Some("application/merge-patch+json"),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (_, _, c) = api
        .call("GET", &format!("/v1/customers/{id}?purpose=service"), None)
        .await;
    assert_eq!(c["name"], "Mona Patched");
    let (s, _, b) = api
        .raw(
            "POST",
            "/v1/customers",
            Some(json!({"name": "Not A Patch"}).to_string()),
            Some("application/merge-patch+json"),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{b}");
}
