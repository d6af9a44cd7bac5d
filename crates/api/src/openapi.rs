//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{self, PageOf};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = doc.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Steward", description = "A privacy-by-design CRM core. Every read of personal data declares `?purpose=`."),
    components(schemas(crate::Problem, PageOf<steward_domain::CustomerView>)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// The media type of every error (RFC 9457).
const PROBLEM_JSON: &str = "application/problem+json";

/// Every error is `application/problem+json`, whatever its status: the handlers' annotations say
/// `body = Problem`, which utoipa documents as `application/json`, so the document is corrected
/// here, and each operation gets a `default` response for the statuses any request can meet
/// (401, 408, 413, 415, 429, …). Found by schemathesis's content-type check.
fn problems_as_problem_json(doc: &mut serde_json::Value) {
    let problem = serde_json::json!({"$ref": "#/components/schemas/Problem"});
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for item in paths.values_mut().filter_map(|i| i.as_object_mut()) {
        for op in item.values_mut().filter_map(|o| o.as_object_mut()) {
            let Some(responses) = op.get_mut("responses").and_then(|r| r.as_object_mut()) else {
                continue;
            };
            for response in responses.values_mut() {
                let Some(content) = response.get_mut("content").and_then(|c| c.as_object_mut())
                else {
                    continue;
                };
                let is_problem = content
                    .get("application/json")
                    .is_some_and(|c| c.get("schema") == Some(&problem));
                if is_problem && let Some(c) = content.remove("application/json") {
                    content.insert(PROBLEM_JSON.into(), c);
                }
            }
            responses.entry("default").or_insert_with(|| {
                serde_json::json!({
                    "description": "An error, as RFC 9457 problem details",
                    "content": {PROBLEM_JSON: {"schema": problem}},
                })
            });
        }
    }
}

/// The document as JSON, built once.
pub fn openapi_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.merge(routes::api().into_openapi());
        let mut doc = serde_json::to_value(doc).unwrap_or_default();
        problems_as_problem_json(&mut doc);
        serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into())
    })
}
