//! `/v1/sessions`: staff sign-in with a login and a password, and sign-out.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use steward_domain::{OutletId, Role, Timestamp};
use zeroize::Zeroizing;

use crate::extract::{Auth, ClientAddr, JsonBody};
use crate::{AppState, Problem};

/// The body of `POST /v1/sessions`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The staff member's login.
    pub login: String,
    /// The password.
    #[schema(format = Password)]
    pub password: String,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignIn { .. }")
    }
}

/// A new session.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// The session token: send it as `Authorization: Bearer <token>`. Shown once.
    pub token: String,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// The roles it acts in (the staff member's).
    pub roles: Vec<Role>,
    /// The outlets it works at.
    pub outlet_ids: Vec<OutletId>,
}

/// Signs a staff member in. A wrong login or password is a 401 that does not say which was
/// wrong, and counts towards the per-address brake on failed sign-ins (429 past it).
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body = SignIn,
    responses((status = 201, body = SessionView), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn sign_in(
    State(s): State<AppState>,
    ClientAddr(ip): ClientAddr,
    JsonBody(input): JsonBody<SignIn>,
) -> Result<(StatusCode, Json<SessionView>), Problem> {
    let password = Zeroizing::new(input.password);
    let session = limited_sign_in(&s, ip, &input.login, password)
        .await?
        .ok_or_else(Problem::sign_in_failed)?;
    Ok((
        StatusCode::CREATED,
        Json(SessionView {
            token: session.token.to_string(),
            expires_at: session.expires_at,
            roles: session.principal.roles().to_vec(),
            outlet_ids: session.principal.outlets().to_vec(),
        }),
    ))
}

/// A sign-in under the per-address brake: refused (429) while the address is braked, and a
/// wrong login or password (`None`) counts against it. For the API and the console alike.
pub(crate) async fn limited_sign_in(
    s: &AppState,
    ip: Option<std::net::IpAddr>,
    login: &str,
    password: Zeroizing<String>,
) -> Result<Option<steward_service::sign_in::Session>, Problem> {
    let now = std::time::Instant::now();
    let reserved = match ip {
        Some(ip) => Some(
            s.limits
                .reserve_everywhere(ip, now)
                .await
                .map_err(Problem::auth_brake)?,
        ),
        None => None,
    };
    let session = s.vault.identity().sign_in(login, password).await?;
    if let Some(r) = reserved {
        if session.is_none() {
            r.failed(now).await;
        } else {
            r.succeeded().await;
        }
    }
    Ok(session)
}

/// Ends the session (or revokes the token) the request is made with.
#[utoipa::path(delete, path = "/v1/sessions/current", tag = "sessions",
    responses((status = 204), (status = 401, body = Problem)), security(("bearer" = [])))]
pub async fn sign_out(State(s): State<AppState>, Auth(p): Auth) -> Result<StatusCode, Problem> {
    s.vault.identity().sign_out(&p).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This module's routes, each registered with its OpenAPI path from the handler's annotation
/// (one place per endpoint).
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(sign_in))
        .routes(utoipa_axum::routes!(sign_out))
}
