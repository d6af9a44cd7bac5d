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
    paths(
        routes::customers::create, routes::customers::get_one, routes::customers::list, routes::customers::update, routes::customers::lookup,
        routes::erasure::erase, routes::erasure::set_hold, routes::erasure::lift_hold,
        routes::requests::create, routes::requests::list, routes::requests::get_one, routes::requests::verify,
        routes::requests::deny, routes::requests::revoke, routes::requests::export, routes::requests::confirm,
        routes::customers::set_verified_fields,
        routes::activity::add_interaction, routes::activity::list_interactions, routes::activity::add_purchase, routes::activity::list_purchases,
        routes::activity::record_consent, routes::activity::consents,
        routes::purposes::list, routes::purposes::create, routes::purposes::update, routes::admin::list_alerts, routes::admin::create_outlet, routes::admin::list_outlets, routes::admin::create_staff, routes::admin::list_staff,
        routes::audit::checkpoint, routes::audit::public_key, routes::audit::entries, routes::audit::inclusion, routes::audit::consistency, routes::audit::access_log,
        routes::system::healthz, routes::system::metrics,
    ),
    components(schemas(crate::Problem, PageOf<steward_domain::CustomerView>)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// The document as JSON, built once.
pub fn openapi_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|_| "{}".into())
    })
}
