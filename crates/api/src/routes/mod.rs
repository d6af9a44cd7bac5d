//! Handlers, one module per resource family.

pub mod activity;
pub mod admin;
pub mod analytics;
pub mod audit;
pub mod campaigns;
pub mod customers;
pub mod erasure;
pub mod messages;
pub mod notice;
pub mod personalisation;
pub mod pii;
pub mod purposes;
pub mod requests;
pub mod segments;
pub mod sessions;
pub mod sharing;
pub mod social;
pub mod surveys;
pub mod system;

use serde::Serialize;

/// Every documented route of the API (under `/v1`, and `/healthz`, `/metrics`), with the OpenAPI
/// paths the handlers' annotations give them.
pub(crate) fn api() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .merge(customers::routes())
        .merge(activity::routes())
        .merge(erasure::routes())
        .merge(requests::routes())
        .merge(purposes::routes())
        .merge(notice::routes())
        .merge(segments::routes())
        .merge(campaigns::routes())
        .merge(messages::routes())
        .merge(personalisation::routes())
        .merge(pii::routes())
        .merge(social::routes())
        .merge(analytics::routes())
        .merge(surveys::routes())
        .merge(sharing::routes())
        .merge(admin::routes())
        .merge(audit::routes())
        .merge(sessions::routes())
        .merge(system::routes())
}

/// A page of items with the cursor for the next page (absent on the last page).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PageOf<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `?cursor=` to get the next page; absent when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> PageOf<T> {
    /// A page; `next_cursor` is set when the page is full.
    pub fn new(items: Vec<T>, limit: u32, id: impl Fn(&T) -> String) -> Self {
        let next_cursor = if items.len() as u32 == limit {
            items.last().map(&id)
        } else {
            None
        };
        Self { items, next_cursor }
    }
}

/// The id of a newly created resource.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Created {
    /// The new id (UUIDv7).
    pub id: String,
}

/// Parses a path id, naming the parameter on failure.
pub fn path_id<T: std::str::FromStr>(raw: &str) -> Result<T, crate::Problem> {
    raw.parse()
        .map_err(|_| crate::Problem::invalid_parameter("id", "not a valid id"))
}
