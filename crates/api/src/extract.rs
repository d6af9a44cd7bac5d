//! Request extractors: the bearer principal, the declared purpose, pagination, JSON bodies.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use steward_service::Principal;

use crate::{AppState, Problem};

/// The authenticated caller.
pub struct Auth(pub Principal);

impl<S> FromRequestParts<S> for Auth
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let state = AppState::from_ref(state);
        let token = bearer(&parts.headers).ok_or_else(Problem::unauthorized)?;
        let principal = authenticate(&state, token, client_ip(parts)).await?;
        principal.map(Auth).ok_or_else(Problem::unauthorized)
    }
}

/// The bearer token of a request's `Authorization` header, trimmed, if it has one.
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme name is case-insensitive (RFC 9110 §11.1).
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim())
        })
}

/// The client's address, when the server knows it (`steward serve` does).
pub(crate) fn client_ip(parts: &Parts) -> Option<std::net::IpAddr> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Authenticates a token (bearer or console session) under the abuse limits: the address brake
/// first, the token's rate after; a token that is none counts against its address. `None` for
/// an unknown token.
pub(crate) async fn authenticate(
    state: &AppState,
    token: &str,
    addr: Option<std::net::IpAddr>,
) -> Result<Option<Principal>, Problem> {
    let found = under_brake(state, addr, state.vault.identity().authenticate(token)).await?;
    if let Some(p) = &found {
        state
            .limits
            .take_shared(p.token_id(), p.roles(), std::time::Instant::now())
            .await
            .map_err(Problem::rate_limited)?;
    }
    Ok(found)
}

/// Looks up a presented secret (a token, a session cookie) under the address brake: a braked
/// address gets no lookup, and a secret that opens nothing counts against its address.
pub(crate) async fn under_brake<T>(
    state: &AppState,
    addr: Option<std::net::IpAddr>,
    lookup: impl Future<Output = Result<Option<T>, steward_service::ServiceError>>,
) -> Result<Option<T>, Problem> {
    let now = std::time::Instant::now();
    if let Some(ip) = addr {
        state
            .limits
            .check_address(ip, now)
            .map_err(Problem::auth_brake)?;
    }
    let found = lookup.await?;
    if found.is_none()
        && let Some(ip) = addr
        && let Some(wait) = state.limits.failed(ip, now).await
    {
        return Err(Problem::auth_brake(wait));
    }
    Ok(found)
}

/// The client's address, when the server knows it (`steward serve` does; embedded routers may
/// not).
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_ip(parts)))
    }
}

/// Query parameters as decoded pairs. Parsed here, not by serde, so that errors name the
/// parameter and never echo its value.
fn query_pairs(parts: &Parts) -> Vec<(String, String)> {
    form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// What a read declares: `?purpose=` (required for every read of personal data) and, where the
/// policy asks for one, `?reason=`.
pub struct ReadScope {
    /// The declared purpose, from the registry.
    pub purpose: std::sync::Arc<steward_domain::Purpose>,
    /// The stated reason.
    pub reason: Option<String>,
    /// `?break_glass=true`: read beyond the normal rules, for roles allowed to, with a reason of
    /// at least 20 characters; flagged for the DPO.
    pub break_glass: bool,
}

impl ReadScope {
    /// Counts a read of `resource` under this purpose (`steward_personal_reads_total`). The
    /// purpose was checked against the registry, so interning it is bounded.
    pub fn record(&self, resource: &'static str) {
        metrics::counter!("steward_personal_reads_total", "purpose" => crate::metrics::intern(&self.purpose.key), "resource" => resource).increment(1);
    }

    /// The access this scope grants `principal`.
    pub fn access<'a>(
        &'a self,
        principal: &'a steward_service::Principal,
    ) -> steward_service::Access<'a> {
        steward_service::Access {
            principal,
            purpose: &self.purpose,
            reason: self.reason.as_deref(),
            break_glass: self.break_glass,
        }
    }
}

impl<S> FromRequestParts<S> for ReadScope
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let state = AppState::from_ref(state);
        let pairs = query_pairs(parts);
        let key = param(&pairs, "purpose")
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                Problem::invalid_parameter(
                    "purpose",
                    "every read of personal data must declare its purpose, e.g. ?purpose=service",
                )
            })?;
        let purpose = state
            .vault
            .purposes()
            .get("purpose", key)
            .map_err(|e| Problem::invalid_parameter("purpose", &e.reason))?;
        let reason = match param(&pairs, "reason") {
            None => None,
            Some(r) => {
                let r = r.trim();
                if r.is_empty() || r.chars().count() > REASON_MAX || r.chars().any(char::is_control)
                {
                    return Err(Problem::invalid_parameter(
                        "reason",
                        "must be 1 to 500 characters without control characters",
                    ));
                }
                Some(r.to_owned())
            }
        };
        let break_glass = match param(&pairs, "break_glass") {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(Problem::invalid_parameter(
                    "break_glass",
                    "must be true or false",
                ));
            }
        };
        Ok(ReadScope {
            purpose,
            reason,
            break_glass,
        })
    }
}

/// The longest stated reason (characters).
pub const REASON_MAX: usize = 500;

/// Characters a free-text query parameter may not hold: C0 and C1 controls and DEL
/// (`char::is_control`), as a JSON Schema (ECMA-262) character class.
const NO_CONTROL: &str = r"[^\u0000-\u001f\u007f-\u009f]";

/// The OpenAPI schema of a query parameter these extractors check, by its name, built from the
/// same constants as the checks: `openapi.rs` puts it on every operation that declares the
/// parameter, so the document cannot say less than the server checks. `None` for parameters
/// checked elsewhere (their handler's annotation states them).
pub(crate) fn query_parameter_schema(name: &str) -> Option<serde_json::Value> {
    use serde_json::json;
    let any = NO_CONTROL;
    Some(match name {
        // A registered purpose: the served document lists the registry's keys (`openapi.rs`).
        "purpose" => json!({"$ref": "#/components/schemas/PurposeKey"}),
        "reason" => json!({
            "type": "string", "minLength": 1, "maxLength": REASON_MAX,
            "pattern": format!(r"^{any}*[^\s\u0000-\u001f\u007f-\u009f]{any}*$"),
        }),
        "break_glass" => json!({"type": "string", "enum": ["true", "false"]}),
        "q" => json!({
            "type": "string", "maxLength": steward_domain::MAX_QUERY_CHARS,
            // At least one word of two letters or digits.
            "pattern": format!("^{any}*[A-Za-z0-9]{{2}}{any}*$"),
        }),
        "tier" => json!({"type": "string", "enum": steward_domain::TIERS}),
        "consent" => json!({"$ref": "#/components/schemas/ConsentPurposeKey"}),
        "active_since" => json!({
            "type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
        }),
        _ => return None,
    })
}

/// A customer list's filters: `?q=` (the beginning of a name's words), `?outlet_id=`, `?tier=`,
/// `?consent=` (a consent-based purpose) and `?active_since=` (a date).
pub struct Filter(pub steward_domain::CustomerFilter);

impl<S: Send + Sync> FromRequestParts<S> for Filter {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let pairs = query_pairs(parts);
        let outlet = match param(&pairs, "outlet_id").filter(|o| !o.is_empty()) {
            Some(o) => Some(steward_domain::OutletId(uuid::Uuid::try_parse(o).map_err(
                |_| Problem::invalid_parameter("outlet_id", "not an outlet id"),
            )?)),
            None => None,
        };
        steward_domain::CustomerFilter::parse(param(&pairs, "q"), outlet, param(&pairs, "tier"))
            .and_then(|f| f.with_activity(param(&pairs, "consent"), param(&pairs, "active_since")))
            .map(Filter)
            .map_err(|e| Problem::invalid_parameter(&e.field, &e.reason))
    }
}

/// Cursor pagination: `?cursor=<id of the last item seen>&limit=N` (1 to 500, default 50).
pub struct Page {
    /// Return items after this id.
    pub after: Option<uuid::Uuid>,
    /// At most this many items.
    pub limit: u32,
}

/// The largest page.
pub const MAX_PAGE: u32 = 500;

impl<S: Send + Sync> FromRequestParts<S> for Page {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let pairs = query_pairs(parts);
        let after = match param(&pairs, "cursor").filter(|c| !c.is_empty()) {
            Some(c) => Some(uuid::Uuid::try_parse(c).map_err(|_| {
                Problem::invalid_parameter("cursor", "not a cursor returned by this endpoint")
            })?),
            None => None,
        };
        let limit = match param(&pairs, "limit") {
            Some(l) => l
                .parse::<u32>()
                .ok()
                .filter(|l| (1..=MAX_PAGE).contains(l))
                .ok_or_else(|| {
                    Problem::invalid_parameter("limit", "must be an integer from 1 to 500")
                })?,
            None => 50,
        };
        Ok(Page { after, limit })
    }
}

/// A JSON body whose errors name the offending field and never repeat a submitted value. A
/// route that takes more than [`BODY_LIMIT`] raises its `DefaultBodyLimit` to the `LIMIT` it
/// names here, so the refusal states the right figure.
pub struct JsonBody<T, const LIMIT: usize = BODY_LIMIT>(pub T);

/// The body limit in bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

impl<S, T, const LIMIT: usize> FromRequest<S> for JsonBody<T, LIMIT>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        // A merge patch may also come as RFC 7396's own media type.
        let patch = req.method() == axum::http::Method::PATCH;
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.split(';').next().is_some_and(|m| {
                    let m = m.trim();
                    m.eq_ignore_ascii_case("application/json")
                        || (patch && m.eq_ignore_ascii_case("application/merge-patch+json"))
                })
            });
        if !is_json {
            return Err(Problem::unsupported_media_type());
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| Problem::too_large(LIMIT))?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses JSON, turning serde's message (which can quote the input) into a field and a reason.
/// Nothing may follow the JSON value but white space.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = parse_value(de)?;
    de.end()
        .map_err(|_| Problem::malformed_body(None, "holds more than one JSON value".into()))?;
    Ok(value)
}

fn parse_value<'de, T: DeserializeOwned>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
) -> Result<T, Problem> {
    serde_path_to_error::deserialize(de).map_err(|e| {
        // The path without its last segment: the object holding the field at fault.
        let segments: Vec<String> = e.path().iter().map(ToString::to_string).collect();
        let parent = match segments.split_last() {
            Some((_, rest)) if !rest.is_empty() => rest.join("."),
            _ => "body".to_owned(),
        };
        let path = e.path().to_string();
        let path = (path != ".").then_some(path);
        let inner = e.into_inner();
        let msg = inner.to_string();
        let join = |p: &Option<String>, f: &str| match p {
            Some(p) => format!("{p}.{f}"),
            None => f.to_owned(),
        };
        if inner.is_syntax() || inner.is_eof() {
            return Problem::malformed_body(
                None,
                format!(
                    "not valid JSON (line {}, column {})",
                    inner.line(),
                    inner.column()
                ),
            );
        }
        if let Some(f) = backticked(&msg, "missing field `") {
            return Problem::malformed_body(Some(join(&path, f)), "is required".into());
        }
        if backticked(&msg, "unknown field `").is_some() {
            // The path ends in the unknown key, which came from the client and may be personal
            // (`{"jane@example.com": …}`): name the object that holds it instead.
            return Problem::malformed_body(
                Some(parent),
                "holds a field that is not known (see the OpenAPI document)".into(),
            );
        }
        // Only the part after "expected" comes from the type, not from the input.
        let expected = msg
            .split_once(", expected ")
            .map(|(_, e)| e.split(" at line ").next().unwrap_or("").to_owned());
        let reason = match expected {
            Some(e) if !e.is_empty() => format!("has the wrong type or value; expected {e}"),
            _ => "has the wrong type or value".into(),
        };
        Problem::malformed_body(Some(path.unwrap_or_else(|| "body".into())), reason)
    })
}

fn backticked<'a>(msg: &'a str, prefix: &str) -> Option<&'a str> {
    msg.strip_prefix(prefix).and_then(|r| r.split('`').next())
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_domain::{CustomerInput, InteractionInput};

    #[test]
    fn json_errors_name_the_field_not_the_value() {
        let p = parse_json::<CustomerInput>(br#"{"name": 42}"#).unwrap_err();
        assert_eq!(p.field.as_deref(), Some("name"));
        let p = parse_json::<InteractionInput>(
            br#"{"channel": "secret-sms", "text": "x", "source": "y"}"#,
        )
        .unwrap_err();
        assert_eq!(p.field.as_deref(), Some("channel"));
        assert!(!p.detail.contains("secret-sms"), "{}", p.detail);
        // Issue 15, finding 15: an unknown key is never repeated (it can be personal).
        let p = parse_json::<CustomerInput>(br#"{"jane.doe@example.com": "x"}"#).unwrap_err();
        assert_eq!(p.field.as_deref(), Some("body"));
        assert!(!p.detail.contains("jane"), "{}", p.detail);
        let p = parse_json::<CustomerInput>(br#"{"address": {"jane.doe": "x"}}"#).unwrap_err();
        assert_eq!(p.field.as_deref(), Some("address"));
        assert!(!p.detail.contains("jane"), "{}", p.detail);
        // Trailing bytes after the value are refused.
        let p = parse_json::<CustomerInput>(br#"{"name": "Ada"} {"name": "Eve"}"#).unwrap_err();
        assert_eq!(p.status, 400);
        assert!(parse_json::<CustomerInput>(b"{\"name\": \"Ada\"}\n ").is_ok());
        let p = parse_json::<InteractionInput>(br#"{"channel": "web"}"#).unwrap_err();
        assert_eq!(p.field.as_deref(), Some("text"));
        let p = parse_json::<CustomerInput>(b"{").unwrap_err();
        assert_eq!(p.status, 400);
        let p = parse_json::<CustomerInput>(
            br#"{"address": {"street": "Secret Street 1", "planet": "x"}}"#,
        )
        .unwrap_err();
        assert!(!p.detail.contains("Secret"), "{}", p.detail);
    }
}
