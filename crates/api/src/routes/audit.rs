//! `/v1/audit/…`: the verifiable audit log. The checkpoint and the verifier key are public (so
//! anyone can check what the DPO is shown); entries and proofs are the DPO's.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use steward_domain::AuditLeaf;

use crate::extract::Auth;
use crate::{AppState, Problem};

/// A required non-negative integer query parameter.
fn number(query: &Option<String>, name: &str) -> Result<u64, Problem> {
    let raw = query
        .as_deref()
        .and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        })
        .ok_or_else(|| Problem::invalid_parameter(name, "is required"))?;
    raw.parse()
        .map_err(|_| Problem::invalid_parameter(name, "must be a non-negative integer"))
}

/// The latest signed tree head: a C2SP `tlog-checkpoint` in a C2SP `signed-note`.
#[utoipa::path(get, path = "/v1/audit/checkpoint", tag = "audit",
    responses((status = 200, description = "text/plain signed note", content_type = "text/plain")))]
pub async fn checkpoint(State(s): State<AppState>) -> Result<impl IntoResponse, Problem> {
    let note = s.vault.audit().checkpoint().await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note))
}

/// The note verifier key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PublicKey {
    /// C2SP vkey form: `name+keyid+base64(0x01 ‖ Ed25519 public key)`.
    pub verifier_key: String,
}

/// The key that verifies the checkpoints.
#[utoipa::path(get, path = "/v1/audit/public-key", tag = "audit", responses((status = 200, body = PublicKey)))]
pub async fn public_key(State(s): State<AppState>) -> Json<PublicKey> {
    Json(PublicKey {
        verifier_key: s.vault.audit().verifier_key().to_owned(),
    })
}

/// One entry: the hashed bytes and, beside them, what they say.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EntryView {
    /// Position in the log.
    pub index: u64,
    /// Base64 of the exact bytes hashed into the tree (leaf hash = SHA-256(0x00 ‖ bytes)).
    pub leaf: String,
    /// The decoded leaf's fields (those of `AuditLeaf`), beside `index` and `leaf`; absent
    /// when the stored bytes do not decode. Documented as an open object: `AuditLeaf` itself
    /// admits no unknown field, which a flattened schema cannot express next to `index`.
    #[serde(flatten)]
    #[schema(value_type = Option<Object>)]
    pub entry: Option<AuditLeaf>,
}

/// A page of entries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Entries {
    /// Entries `start` to `end - 1` that exist.
    pub entries: Vec<EntryView>,
}

/// Entries `[start, end)` (at most 1,000), for the DPO.
#[utoipa::path(get, path = "/v1/audit/entries", tag = "audit",
    params(("start" = u64, Query), ("end" = u64, Query)),
    responses((status = 200, body = Entries), (status = 403, body = Problem), (status = 400, body = Problem)),
    security(("bearer" = [])))]
pub async fn entries(
    State(s): State<AppState>,
    Auth(p): Auth,
    RawQuery(q): RawQuery,
) -> Result<Json<Entries>, Problem> {
    let (start, end) = (number(&q, "start")?, number(&q, "end")?);
    let rows = s.vault.audit().entries(&p, start, end).await?;
    Ok(Json(Entries {
        entries: rows
            .into_iter()
            .map(|e| EntryView {
                index: e.index,
                entry: e.decoded(),
                leaf: STANDARD.encode(&e.leaf),
            })
            .collect(),
    }))
}

/// Proof hashes, as in RFC 9162 section 2.1.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Proof {
    /// Base64 SHA-256 hashes, in the RFC's order.
    pub hashes: Vec<String>,
}

fn proof(hashes: Vec<[u8; 32]>) -> Json<Proof> {
    Json(Proof {
        hashes: hashes.iter().map(|h| STANDARD.encode(h)).collect(),
    })
}

/// The inclusion proof of entry `index` in the tree of `tree_size` entries.
#[utoipa::path(get, path = "/v1/audit/proof/inclusion", tag = "audit",
    params(("index" = u64, Query), ("tree_size" = u64, Query)),
    responses((status = 200, body = Proof), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn inclusion(
    State(s): State<AppState>,
    Auth(p): Auth,
    RawQuery(q): RawQuery,
) -> Result<Json<Proof>, Problem> {
    let (index, size) = (number(&q, "index")?, number(&q, "tree_size")?);
    Ok(proof(s.vault.audit().inclusion(&p, index, size).await?))
}

/// The consistency proof from the tree of `first` entries to that of `second`.
#[utoipa::path(get, path = "/v1/audit/proof/consistency", tag = "audit",
    params(("first" = u64, Query), ("second" = u64, Query)),
    responses((status = 200, body = Proof), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn consistency(
    State(s): State<AppState>,
    Auth(p): Auth,
    RawQuery(q): RawQuery,
) -> Result<Json<Proof>, Problem> {
    let (first, second) = (number(&q, "first")?, number(&q, "second")?);
    Ok(proof(s.vault.audit().consistency(&p, first, second).await?))
}

/// One access to a customer's data, with its proof.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccessView {
    /// Position in the audit log.
    pub index: u64,
    /// Base64 of the exact bytes hashed into the tree.
    pub leaf: String,
    /// When, who (a stable pseudonym, with role and outlets), for which purpose, which
    /// categories, and the outcome: the decoded leaf's fields (those of `AuditLeaf`), beside
    /// `index`, `leaf` and `proof`. An open object, as in `EntryView` (found by schemathesis).
    #[serde(flatten)]
    #[schema(value_type = Option<Object>)]
    pub entry: Option<AuditLeaf>,
    /// The inclusion proof against `checkpoint` (base64 hashes, RFC 9162 order).
    pub proof: Vec<String>,
}

/// "Who looked at my data".
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccessLogView {
    /// The signed checkpoint (C2SP signed note) every proof is against; verify it with
    /// `GET /v1/audit/public-key`.
    pub checkpoint: String,
    /// The checkpoint's tree size.
    pub tree_size: u64,
    /// Accesses, newest first.
    pub entries: Vec<AccessView>,
    /// Pass as `?before=` for older entries; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<u64>,
}

/// Who accessed a customer's data, when, in which role and outlet, for which purpose, which
/// categories and with which outcome — each with a proof the customer can check.
#[utoipa::path(get, path = "/v1/customers/{id}/access-log", tag = "audit",
    params(("id" = String, Path, format = Uuid), ("before" = Option<u64>, Query), ("limit" = Option<u32>, Query, minimum = 1, maximum = 500)),
    responses((status = 200, body = AccessLogView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn access_log(
    State(s): State<AppState>,
    Auth(p): Auth,
    axum::extract::Path(id): axum::extract::Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<AccessLogView>, Problem> {
    let id = super::path_id(&id)?;
    let has = |name: &str| {
        q.as_deref()
            .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == name))
    };
    let before = if has("before") {
        Some(number(&q, "before")?)
    } else {
        None
    };
    let limit = if has("limit") {
        number(&q, "limit")?
    } else {
        50
    };
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid_parameter("limit", "must be 1 to 500"));
    }
    let log = s
        .vault
        .audit()
        .access_log(&p, id, before, limit as u32)
        .await?;
    let next_before = (log.entries.len() as u64 == limit)
        .then(|| log.entries.last().map(|e| e.entry.index))
        .flatten();
    Ok(Json(AccessLogView {
        checkpoint: log.checkpoint,
        tree_size: log.tree_size,
        next_before,
        entries: log
            .entries
            .into_iter()
            .map(|e| AccessView {
                index: e.entry.index,
                entry: e.entry.decoded(),
                leaf: STANDARD.encode(&e.entry.leaf),
                proof: e.proof.iter().map(|h| STANDARD.encode(h)).collect(),
            })
            .collect(),
    }))
}

/// This module's routes, each registered with its OpenAPI path from the handler's annotation
/// (one place per endpoint).
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(checkpoint))
        .routes(utoipa_axum::routes!(public_key))
        .routes(utoipa_axum::routes!(entries))
        .routes(utoipa_axum::routes!(inclusion))
        .routes(utoipa_axum::routes!(consistency))
        .routes(utoipa_axum::routes!(access_log))
}
