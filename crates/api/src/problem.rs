//! RFC 9457 problem details. Every error the API returns goes through [`Problem`], which never
//! carries a stack trace, an internal error text or a personal value.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use steward_domain::ValidationError;
use steward_service::ServiceError;

/// An `application/problem+json` body.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A stable URI reference naming the kind of problem, e.g. `/problems/invalid-field`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// A short human summary of the kind.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong in this case; names the field, never its value.
    pub detail: String,
    /// The offending field or parameter, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The customer who already holds the value, on a duplicate (409).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_id: Option<steward_domain::CustomerId>,
    /// Seconds to wait before retrying, sent as `Retry-After` (429s).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            title,
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            existing_id: None,
            retry_after: None,
        }
    }

    /// A body field failed validation (422).
    pub fn invalid_field(e: &ValidationError) -> Self {
        let mut p = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-field",
            "A field is invalid",
            format!("{}: {}", e.field, e.reason),
        );
        p.field = Some(e.field.to_string());
        p
    }

    /// A query parameter is missing or invalid (400).
    pub fn invalid_parameter(name: &str, reason: &str) -> Self {
        let mut p = Self::new(
            StatusCode::BAD_REQUEST,
            "/problems/invalid-parameter",
            "A query parameter is missing or invalid",
            format!("{name}: {reason}"),
        );
        p.field = Some(name.to_owned());
        p
    }

    /// The body is not valid JSON for this request (400).
    pub fn malformed_body(field: Option<String>, reason: String) -> Self {
        let detail = match &field {
            Some(f) => format!("{f}: {reason}"),
            None => reason,
        };
        let mut p = Self::new(
            StatusCode::BAD_REQUEST,
            "/problems/malformed-body",
            "The request body could not be read",
            detail,
        );
        p.field = field;
        p
    }

    /// No valid bearer token (401).
    pub fn unauthorized() -> Self {
        let mut p = Self::new(
            StatusCode::UNAUTHORIZED,
            "/problems/unauthorized",
            "Authentication required",
            "send a valid API token as `Authorization: Bearer <token>`",
        );
        p.field = Some("Authorization".into());
        p
    }

    /// A sign-in with a wrong login or password (401); says neither which nor whether the login
    /// exists.
    pub fn sign_in_failed() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "/problems/sign-in-failed",
            "Sign-in failed",
            "the login or the password is wrong",
        )
    }

    /// The access policy refused (403); `field` names the part of the request to blame.
    pub fn forbidden(field: &str, detail: String) -> Self {
        let mut p = Self::new(
            StatusCode::FORBIDDEN,
            "/problems/forbidden",
            "Not allowed",
            detail,
        );
        p.field = Some(field.to_owned());
        p
    }

    /// The staff member must acknowledge the current confidentiality notice first (403).
    pub fn acknowledgement_required() -> Self {
        let mut p = Self::new(
            StatusCode::FORBIDDEN,
            "/problems/acknowledgement-required",
            "Acknowledge the confidentiality notice first",
            "read GET /v1/confidentiality-notice and acknowledge it with POST /v1/acknowledgements {\"notice_version\"} (in the console: at sign-in) before reading personal data",
        );
        p.field = Some("notice_version".to_owned());
        p
    }

    /// 429: too many segment sizes in an hour (differencing segments reveals individuals).
    pub fn segment_budget() -> Self {
        let mut p = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "/problems/segment-budget",
            "Too many segment sizes",
            "this caller sized more segments in the last hour than allowed; sizes are refused for the rest of the hour and the DPO has been alerted",
        );
        p.field = Some("Authorization".into());
        p.retry_after = Some(3600);
        p
    }

    /// 403: an analytics release would exceed the caller's privacy budget (issue 21).
    pub fn privacy_budget(field: &str, detail: String) -> Self {
        let mut p = Self::new(
            StatusCode::FORBIDDEN,
            "/problems/privacy-budget",
            "Privacy budget exceeded",
            detail,
        );
        p.field = Some(field.to_owned());
        p
    }

    /// The bulk-access guard refused (429).
    pub fn bulk_access() -> Self {
        let mut p = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "/problems/bulk-access",
            "Too many customers",
            "this caller read more distinct customers in the last hour than its role allows; reads are refused for an hour and the DPO has been alerted",
        );
        p.field = Some("Authorization".into());
        p.retry_after = Some(3600);
        p
    }

    /// The request took longer than the server allows (408): a slow body, usually.
    pub fn timed_out() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "/problems/timeout",
            "Request timeout",
            "the request took too long to arrive or to be answered",
        )
    }

    /// The caller's token has used up its request rate (429, with `Retry-After`).
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        let mut p = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "/problems/rate-limited",
            "Too many requests",
            "this token sent more requests than its role's rate allows; retry after the time given",
        );
        p.field = Some("Authorization".into());
        p.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
        p
    }

    /// Too many bad tokens came from this client address (429, with `Retry-After`).
    pub fn auth_brake(wait: std::time::Duration) -> Self {
        let mut p = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "/problems/too-many-failed-sign-ins",
            "Too many failed attempts",
            "too many invalid tokens came from this address; retry after the time given",
        );
        p.field = Some("Authorization".into());
        p.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
        p
    }

    /// The resource does not exist (404).
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "/problems/not-found",
            "Not found",
            format!("{what} not found"),
        )
    }

    /// A unique field is taken (409).
    pub fn conflict(field: &str) -> Self {
        let mut p = Self::new(
            StatusCode::CONFLICT,
            "/problems/conflict",
            "Already exists",
            format!("{field}: already in use"),
        );
        p.field = Some(field.to_owned());
        p
    }

    /// Another customer holds this e-mail or phone (409), naming the field and, when the caller
    /// may work on them, that customer.
    pub fn duplicate(field: &str, existing: Option<steward_domain::CustomerId>) -> Self {
        let mut p = Self::new(
            StatusCode::CONFLICT,
            "/problems/duplicate",
            "Another customer has this contact detail",
            format!(
                "{field}: another customer has it; send \"allow_duplicate\": true to create one more"
            ),
        );
        p.field = Some(field.to_owned());
        p.existing_id = existing;
        p
    }

    /// The resource is not in a state that allows the call (409).
    pub fn wrong_state(detail: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "/problems/wrong-state",
            "Not allowed in this state",
            detail.to_owned(),
        )
    }

    /// A legal hold blocks the erasure (409); names the hold's case reference.
    pub fn legal_hold(reference: &str) -> Self {
        let mut p = Self::new(
            StatusCode::CONFLICT,
            "/problems/legal-hold",
            "Under legal hold",
            format!("a legal hold (case {reference}) blocks erasing this customer; lift it first"),
        );
        p.field = Some("id".to_owned());
        p
    }

    /// The body is larger than allowed (413).
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "/problems/body-too-large",
            "The request body is too large",
            format!("the limit is {limit} bytes"),
        )
    }

    /// The body is not of the media type the operation takes (415).
    pub fn unsupported_media_type_of(expected: &'static str) -> Self {
        let mut p = Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "/problems/unsupported-media-type",
            "Unexpected media type",
            format!("send `Content-Type: {expected}`"),
        );
        p.field = Some("Content-Type".into());
        p
    }

    /// The body is not JSON (415).
    pub fn unsupported_media_type() -> Self {
        let mut p = Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "/problems/unsupported-media-type",
            "Expected JSON",
            "send `Content-Type: application/json`",
        );
        p.field = Some("Content-Type".into());
        p
    }

    /// Stored data failed its integrity check (500): tampering or a ciphertext moved between
    /// fields or customers. No data is returned.
    pub fn integrity() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "/problems/integrity",
            "Stored data failed its integrity check",
            "the record could not be authenticated and was not returned; the incident was logged",
        )
    }

    /// This server cannot serve now (503): `/readyz` while the database or the audit writer is
    /// unavailable. `detail` names which; a load balancer sends the traffic elsewhere.
    pub fn not_ready(detail: String) -> Self {
        let mut p = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "/problems/not-ready",
            "Not ready",
            detail,
        );
        p.retry_after = Some(1);
        p
    }

    /// Any other server failure (500). Details go to the log, not to the client.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "/problems/internal",
            "Internal error",
            "the server could not complete the request; it was logged",
        )
    }

    /// No route (404).
    pub fn no_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "/problems/not-found",
            "Not found",
            "no such endpoint",
        )
    }

    /// Method not allowed (405).
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "/problems/method-not-allowed",
            "Method not allowed",
            "this endpoint does not accept that method",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry = self.retry_after;
        let mut res = (status, axum::Json(self)).into_response();
        if let Some(secs) = retry {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        res
    }
}

impl From<ValidationError> for Problem {
    fn from(e: ValidationError) -> Self {
        Problem::invalid_field(&e)
    }
}

impl From<ServiceError> for Problem {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Validation(v) => Problem::invalid_field(&v),
            ServiceError::NotFound(what) => Problem::not_found(what),
            ServiceError::Conflict(field) => Problem::conflict(field),
            ServiceError::Duplicate { field, existing } => Problem::duplicate(field, existing),
            ServiceError::Forbidden { field, detail } => Problem::forbidden(field, detail),
            e @ ServiceError::PurposeNotDeclarable(_) => {
                Problem::forbidden("purpose", e.to_string())
            }
            ServiceError::BulkAccess => Problem::bulk_access(),
            ServiceError::SegmentBudget => Problem::segment_budget(),
            ServiceError::PrivacyBudget { field, detail } => Problem::privacy_budget(field, detail),
            ServiceError::AcknowledgementRequired => Problem::acknowledgement_required(),
            ServiceError::DecisionLog => Problem::internal(),
            ServiceError::LegalHold(reference) => Problem::legal_hold(&reference),
            ServiceError::WrongState(detail) => Problem::wrong_state(detail),
            ServiceError::Integrity => {
                tracing::error!(kind = "integrity", "a stored record failed authentication");
                Problem::integrity()
            }
            other => {
                // Store and crypto errors name no personal values (see their docs), so they may be
                // logged; they are never sent to the client.
                tracing::error!(error = %other, "request failed");
                Problem::internal()
            }
        }
    }
}
