//! Data-subject requests: taken, verified (a one-time code to the customer's e-mail, or in
//! person by the DPO), then fulfilled — access and export, rectification, erasure, restriction,
//! objection — or denied with a DRP reason, revoked, or expired past their deadline.

use serde::Serialize;
use steward_domain::{
    ConsentAction, ConsentInput, ConsentSource, CustomerId, IdentityCheck, RequestId, RequestInput,
    RequestReason, RequestStatus, RequestType, Timestamp, ValidationError,
};
use steward_policy::Action;
use steward_store::RequestRow;

use crate::auth::{Actor, Principal};
use crate::door::About;
use crate::error::{ServiceError, ServiceResult};
use crate::seal;
use crate::vault::Vault;

/// Days a request may take unless configured otherwise (GDPR: one month).
pub const DEFAULT_DEADLINE_DAYS: i64 = 30;
const DAY_MS: i64 = 86_400_000;
/// Digits of a one-time code, how long it works, and how many wrong tries end the request.
const CODE_DIGITS: usize = 8;
const CODE_TTL_MS: i64 = 30 * 60 * 1000;
const CODE_TRIES: i64 = 5;

/// A request as the API shows it: states and times, never a value.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RequestView {
    /// The request.
    #[schema(value_type = String, format = Uuid)]
    pub id: RequestId,
    /// What is asked for.
    #[serde(rename = "type")]
    pub kind: RequestType,
    /// Whose data.
    #[schema(value_type = String, format = Uuid)]
    pub customer_id: CustomerId,
    /// DRP status.
    pub status: RequestStatus,
    /// DRP reason (e.g. `need_user_verification`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<RequestReason>,
    /// How the customer's identity was verified.
    pub identity: IdentityCheck,
    /// When received.
    pub created_at: Timestamp,
    /// When it must be done by.
    pub deadline: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// `staff_confirmation` while a verified customer's correction of a verified field waits
    /// for staff to confirm it (`POST /v1/requests/{id}/confirm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub awaiting: Option<&'static str>,
    /// For a fulfilled access or export request: where the DPO or customer service downloads
    /// the export (built on demand).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<String>,
}

pub(crate) fn view(r: &RequestRow) -> ServiceResult<RequestView> {
    let bad = || ServiceError::from(steward_store::StoreError::Corrupt("request row"));
    let kind = RequestType::parse(&r.kind).ok_or_else(bad)?;
    let status = RequestStatus::parse(&r.status).ok_or_else(bad)?;
    let downloadable = status == RequestStatus::Fulfilled
        && matches!(kind, RequestType::Access | RequestType::Export);
    Ok(RequestView {
        id: r.id,
        kind,
        customer_id: r.customer_id,
        status,
        reason: r.reason.as_deref().and_then(RequestReason::parse),
        identity: IdentityCheck::parse(&r.identity).ok_or_else(bad)?,
        created_at: Timestamp(r.created_at),
        deadline: Timestamp(r.deadline_at),
        updated_at: Timestamp(r.updated_at),
        export: downloadable.then(|| format!("/v1/requests/{}/export", r.id)),
        awaiting: (status == RequestStatus::InProgress
            && r.identity != IdentityCheck::Unverified.as_str())
        .then_some("staff_confirmation"),
    })
}

/// What a request of `kind` does, as its code message says it.
fn request_verb(kind: RequestType) -> &'static str {
    match kind {
        RequestType::Access => "see",
        RequestType::Export => "export",
        RequestType::Rectification => "correct",
        RequestType::Erasure => "erase",
        RequestType::Restriction => "restrict the use of",
        RequestType::Objection => "object to the use of",
    }
}

pub(crate) fn one_time_code() -> ServiceResult<String> {
    let mut bytes = [0u8; CODE_DIGITS];
    steward_crypto::random_bytes(&mut bytes)?;
    // 250 is the largest multiple of 10 below 256: reject above it so each digit is uniform.
    let mut code = String::with_capacity(CODE_DIGITS);
    let mut pool = bytes.to_vec();
    while code.len() < CODE_DIGITS {
        match pool.pop() {
            Some(b) if b < 250 => code.push(char::from(b'0' + b % 10)),
            Some(_) => {}
            None => {
                let mut more = [0u8; CODE_DIGITS];
                steward_crypto::random_bytes(&mut more)?;
                pool.extend_from_slice(&more);
            }
        }
    }
    Ok(code)
}

impl Vault {
    /// Sends one-time codes through `notifier` (the development file sink, or SMTP).
    pub fn use_notifier(&self, notifier: std::sync::Arc<dyn crate::notify::Notifier>) {
        self.request_ledger().dpo().use_notifier(notifier.clone());
        let _ = self.inner.notifier.set(notifier);
    }

    /// Tells the DPO a request arrived (by id and type; no customer named).
    pub(crate) fn request_arrived(&self, row: &RequestRow) {
        self.request_ledger().notify_dpo(
            "A privacy request arrived",
            format!(
                "A data-subject request ({}) arrived: request {}, due by {}. Open the console's data protection page: /console/dpo\n\nThis message names no customer.\n",
                row.kind,
                row.id,
                Timestamp(row.deadline_at).to_rfc3339()
            ),
        );
    }

    fn code_mac(&self, request: RequestId, code: &str) -> Vec<u8> {
        self.door()
            .mac("request-code", &format!("{request}\n{code}"))
            .to_vec()
    }

    pub(crate) fn request_entry(
        &self,
        actor: Actor<'_>,
        action: &str,
        r: &RequestRow,
    ) -> steward_store::AuditEntryRow {
        let subject = format!("request {} ({})", r.id, r.kind);
        self.door().write_entry_for(
            actor,
            action,
            Some(r.customer_id),
            &[],
            About {
                subject: Some(&subject),
                purpose: None,
            },
        )
    }

    /// Takes a data-subject request. With `identity_verified: in_person` (the DPO only) it is
    /// fulfilled at once; otherwise a one-time code goes to the customer's recorded e-mail and
    /// the request waits (`in_progress`, `need_user_verification`).
    pub async fn create_request(
        &self,
        p: &Principal,
        input: &RequestInput,
    ) -> ServiceResult<RequestView> {
        input.validate()?;
        let id = input.customer_id;
        self.door()
            .authorize(p, Action::ManageRequests, Some(id))
            .await?;
        let in_person = input.identity_verified == Some(IdentityCheck::InPerson);
        if in_person {
            self.door()
                .authorize(p, Action::VerifyIdentity, Some(id))
                .await?;
        }
        let mut row = self.new_request_row(input).await?;
        let code = if in_person {
            None
        } else {
            self.prepare_code(&mut row).await?
        };
        let entry = self.request_entry(Actor::Principal(p), "request.create", &row);
        self.request_ledger().insert(&row, &[entry]).await?;
        self.request_arrived(&row);
        if let (Some((to, code)), Some(n)) = (code, self.inner.notifier.get().cloned()) {
            // Sent after the request is stored, so a code never refers to a request that is not;
            // on a blocking thread, as SMTP is a network round trip or several. The message says
            // what the code confirms, so nobody reads it out for something else.
            let body = format!(
                "A request to {} your data was made on your behalf (request {}). If you asked for it, this code confirms it:\n\n{code}\n\nIt works for 30 minutes. If you did not ask, give the code to nobody and tell our data protection officer.\n",
                request_verb(input.kind),
                row.id
            );
            let sent = tokio::task::spawn_blocking(move || {
                n.send(&to, "Your code for a privacy request", &body)
            })
            .await;
            if !matches!(sent, Ok(Ok(()))) {
                let error = match sent {
                    Ok(Err(e)) => e,
                    _ => "the sending task failed",
                };
                tracing::warn!(error, "sending a verification code failed");
            }
        }
        if in_person {
            row = self
                .verified(Actor::Principal(p), row, IdentityCheck::InPerson)
                .await?;
        }
        view(&row)
    }

    /// A new request's row for `input` (validated): in progress, waiting for the customer's
    /// identity, its corrections (if any) sealed under the customer's key.
    pub(crate) async fn new_request_row(&self, input: &RequestInput) -> ServiceResult<RequestRow> {
        let id = input.customer_id;
        let now = Timestamp::now().millis();
        let rid = RequestId::new();
        let corrections = match &input.corrections {
            Some(json) => {
                let dk = self.keys().of(id).await?;
                let bytes = serde_json::to_vec(json)
                    .map_err(|_| ValidationError::new("corrections", "not JSON"))?;
                Some(seal::seal_corrections(&dk, id, rid.0, &bytes)?)
            }
            None => None,
        };
        let days = self.request_ledger().deadline_days();
        Ok(RequestRow {
            id: rid,
            customer_id: id,
            kind: input.kind.as_str().to_owned(),
            status: RequestStatus::InProgress.as_str().to_owned(),
            reason: Some(RequestReason::NeedUserVerification.as_str().to_owned()),
            identity: IdentityCheck::Unverified.as_str().to_owned(),
            created_at: now,
            deadline_at: now + days * DAY_MS,
            updated_at: now,
            corrections,
            code_mac: None,
            code_expires_at: None,
            code_attempts: 0,
        })
    }

    /// Puts a fresh code's MAC on the row; returns where to send it, if the customer has an
    /// e-mail on record and a notifier is configured.
    async fn prepare_code(&self, row: &mut RequestRow) -> ServiceResult<Option<(String, String)>> {
        if self.inner.notifier.get().is_none() {
            return Ok(None);
        }
        // The address on record — or, soon after a contact change, the one before it.
        let Some(email) = self.portal_access().code_address(row.customer_id).await? else {
            return Ok(None);
        };
        let code = one_time_code()?;
        row.code_mac = Some(self.code_mac(row.id, &code));
        row.code_expires_at = Some(Timestamp::now().millis() + CODE_TTL_MS);
        Ok(Some((email, code)))
    }

    /// Checks a one-time code, or records an in-person check (the DPO), then fulfils.
    pub async fn verify_request(
        &self,
        p: &Principal,
        id: RequestId,
        code: Option<&str>,
    ) -> ServiceResult<RequestView> {
        let row = self.request_row(p, id).await?;
        self.door()
            .authorize(p, Action::ManageRequests, Some(row.customer_id))
            .await?;
        if row.status != RequestStatus::InProgress.as_str()
            || row.identity != IdentityCheck::Unverified.as_str()
        {
            return Err(ServiceError::WrongState(
                "the request is closed or no longer waits for this",
            ));
        }
        let Some(code) = code else {
            self.door()
                .authorize(p, Action::VerifyIdentity, Some(row.customer_id))
                .await?;
            let row = self
                .verified(Actor::Principal(p), row, IdentityCheck::InPerson)
                .await?;
            return view(&row);
        };
        let now = Timestamp::now().millis();
        // The try is counted before the code is compared, in one atomic step (an increment, not
        // an overwrite): concurrent wrong codes each count (issue 15, finding 7).
        let Some(tries) = self.request_ledger().claim_code_try(id, CODE_TRIES).await? else {
            return Err(ServiceError::WrongState(
                "the request is closed or no longer waits for this",
            ));
        };
        let good = match (&row.code_mac, row.code_expires_at) {
            (Some(mac), Some(until)) if now <= until => {
                use subtle::ConstantTimeEq;
                bool::from(self.code_mac(id, code.trim()).ct_eq(mac))
            }
            _ => false,
        };
        if good {
            let row = self
                .verified(Actor::Principal(p), row, IdentityCheck::EmailCode)
                .await?;
            return view(&row);
        }
        let mut next = row.clone();
        next.code_attempts = tries;
        next.updated_at = now;
        let spent = tries >= CODE_TRIES;
        let entry = self.request_entry(Actor::Principal(p), "request.code_rejected", &next);
        if spent {
            // The last try: the request is denied (once, whichever try came last).
            next.status = RequestStatus::Denied.as_str().to_owned();
            next.reason = Some(RequestReason::InsufficientVerification.as_str().to_owned());
            next.code_mac = None;
            let denied = self.request_entry(Actor::Principal(p), "request.denied", &next);
            self.request_ledger()
                .update(&next, &row.status, &[entry, denied])
                .await?;
        } else {
            self.door().record(&[entry]).await?;
        }
        Err(ValidationError::new(
            "code",
            if spent {
                "is wrong; too many tries, the request is denied"
            } else {
                "is wrong or has expired"
            },
        )
        .into())
    }

    /// Stores a request's move from `row` to `next` with its audit entry, if nobody moved it
    /// meanwhile.
    async fn save_transition(
        &self,
        actor: Actor<'_>,
        row: &RequestRow,
        next: &RequestRow,
    ) -> ServiceResult<()> {
        let entry = self.request_entry(actor, &format!("request.{}", next.status), next);
        if self
            .request_ledger()
            .update(next, &row.status, &[entry])
            .await?
        {
            Ok(())
        } else {
            Err(ServiceError::WrongState(
                "the request is closed or no longer waits for this",
            ))
        }
    }

    /// Marks the identity verified and fulfils the request.
    pub(crate) async fn verified(
        &self,
        actor: Actor<'_>,
        row: RequestRow,
        how: IdentityCheck,
    ) -> ServiceResult<RequestRow> {
        let mut next = row.clone();
        next.identity = how.as_str().to_owned();
        next.code_mac = None;
        next.code_expires_at = None;
        next.reason = None;
        next.updated_at = Timestamp::now().millis();
        let kind = RequestType::parse(&row.kind).ok_or(ServiceError::from(
            steward_store::StoreError::Corrupt("request row"),
        ))?;
        let outcome = self.fulfil(actor, kind, &row, false).await;
        match outcome {
            Ok(true) => next.status = RequestStatus::Fulfilled.as_str().to_owned(),
            // A correction of a verified field: staff confirm it first.
            Ok(false) => {}
            Err(ServiceError::LegalHold(_)) => {
                next.status = RequestStatus::Denied.as_str().to_owned();
                next.reason = Some(RequestReason::ClaimNotCovered.as_str().to_owned());
            }
            Err(ServiceError::NotFound(_)) => {
                next.status = RequestStatus::Denied.as_str().to_owned();
                next.reason = Some(RequestReason::NoMatch.as_str().to_owned());
            }
            Err(e) => return Err(e),
        }
        self.save_transition(actor, &row, &next).await?;
        Ok(next)
    }

    /// Does what the request asks; each step writes its own audit entries. Returns false when
    /// a correction of a verified field waits for staff (`confirmed` says they have).
    async fn fulfil(
        &self,
        actor: Actor<'_>,
        kind: RequestType,
        r: &RequestRow,
        confirmed: bool,
    ) -> ServiceResult<bool> {
        let id = r.customer_id;
        let done = match kind {
            // The export is built when it is downloaded; nothing is kept in clear.
            RequestType::Access | RequestType::Export => {
                self.records().get_customer(id).await.map(|_| ())
            }
            RequestType::Erasure => self
                .erase_authorized(actor, id, "request")
                .await
                .map(|_| ()),
            RequestType::Restriction => {
                let e = self.door().write_entry(actor, "restrict", Some(id), &[]);
                if self.records().set_restricted(id, true, &[e]).await? {
                    // A restricted customer's purchases are used for nothing: out of the model.
                    self.personalisation().refresh_basket(id).await;
                    Ok(())
                } else {
                    Err(ServiceError::NotFound("customer"))
                }
            }
            RequestType::Objection => {
                for purpose in self
                    .purposes()
                    .all()
                    .into_iter()
                    .filter(|p| p.withdrawn_by_objection())
                {
                    let input = ConsentInput {
                        purpose: purpose.key.clone(),
                        action: ConsentAction::Withdraw,
                        source: ConsentSource::RightsRequest,
                    };
                    self.write_consent(actor, id, &purpose, &input).await?;
                }
                Ok(())
            }
            RequestType::Rectification => {
                let sealed = r
                    .corrections
                    .as_ref()
                    .ok_or(ValidationError::new("corrections", "none were recorded"))?;
                let dk = self.keys().of(id).await?;
                let json = seal::open_corrections(&dk, id, r.id.0, sealed)?;
                let patch: steward_domain::CustomerPatch = serde_json::from_slice(&json)
                    .map_err(|_| ValidationError::new("corrections", "not a profile patch"))?;
                if !confirmed
                    && self
                        .records()
                        .touches_verified(id, &patch.field_names())
                        .await?
                {
                    return Ok(false);
                }
                // Fulfilled only once the customer's identity was checked: their own change.
                self.update_customer_as(actor, id, &patch, true)
                    .await
                    .map(|_| ())
            }
        };
        done.map(|()| true)
    }

    /// Reads a request row (the caller may see requests), expiring it if its deadline passed
    /// before the customer was verified.
    async fn request_row(&self, p: &Principal, id: RequestId) -> ServiceResult<RequestRow> {
        self.door().authorize(p, Action::ReadRequests, None).await?;
        let row = self
            .request_ledger()
            .get(id)
            .await?
            .ok_or(ServiceError::NotFound("request"))?;
        self.expire_if_due(row).await
    }

    async fn expire_if_due(&self, row: RequestRow) -> ServiceResult<RequestRow> {
        let now = Timestamp::now().millis();
        if now <= row.deadline_at
            || row.status != RequestStatus::InProgress.as_str()
            || row.identity != IdentityCheck::Unverified.as_str()
        {
            return Ok(row);
        }
        let mut next = row.clone();
        next.status = RequestStatus::Expired.as_str().to_owned();
        next.reason = Some(RequestReason::InsufficientVerification.as_str().to_owned());
        next.code_mac = None;
        next.updated_at = now;
        let entry = self.request_entry(
            Actor::Operator(crate::auth::Operator::internal("deadline")),
            "request.expired",
            &next,
        );
        self.request_ledger()
            .update(&next, &row.status, &[entry])
            .await?;
        Ok(next)
    }

    /// One request.
    pub async fn request(&self, p: &Principal, id: RequestId) -> ServiceResult<RequestView> {
        let row = self.request_row(p, id).await?;
        self.door()
            .record_read(
                Actor::Principal(p),
                "read_request",
                Some(row.customer_id),
                &[],
            )
            .await?;
        view(&row)
    }

    /// Open and in-progress requests due before `due_before`, soonest deadline first.
    pub async fn requests(
        &self,
        p: &Principal,
        due_before: Option<Timestamp>,
        limit: u32,
    ) -> ServiceResult<Vec<RequestView>> {
        self.door().authorize(p, Action::ReadRequests, None).await?;
        let rows = self
            .request_ledger()
            .list(due_before.map(Timestamp::millis), limit)
            .await?;
        self.door()
            .record_read(Actor::Principal(p), "read_requests", None, &[])
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(view(&self.expire_if_due(r).await?)?);
        }
        Ok(out)
    }

    /// Denies a request with a DRP reason (the DPO).
    pub async fn deny_request(
        &self,
        p: &Principal,
        id: RequestId,
        reason: RequestReason,
    ) -> ServiceResult<RequestView> {
        let row = self.request_row(p, id).await?;
        self.door()
            .authorize(p, Action::VerifyIdentity, Some(row.customer_id))
            .await?;
        self.close_request(
            Actor::Principal(p),
            row,
            RequestStatus::Denied,
            Some(reason),
        )
        .await
    }

    /// Revokes a request at the customer's wish.
    pub async fn revoke_request(&self, p: &Principal, id: RequestId) -> ServiceResult<RequestView> {
        let row = self.request_row(p, id).await?;
        self.door()
            .authorize(p, Action::ManageRequests, Some(row.customer_id))
            .await?;
        self.close_request(Actor::Principal(p), row, RequestStatus::Revoked, None)
            .await
    }

    async fn close_request(
        &self,
        actor: Actor<'_>,
        row: RequestRow,
        status: RequestStatus,
        reason: Option<RequestReason>,
    ) -> ServiceResult<RequestView> {
        if !matches!(row.status.as_str(), "open" | "in_progress") {
            return Err(ServiceError::WrongState(
                "the request is closed or no longer waits for this",
            ));
        }
        let mut next = row.clone();
        next.status = status.as_str().to_owned();
        next.reason = reason.map(|r| r.as_str().to_owned());
        next.code_mac = None;
        next.updated_at = Timestamp::now().millis();
        self.save_transition(actor, &row, &next).await?;
        view(&next)
    }

    /// Confirms a verified customer's correction of verified fields (staff who may change the
    /// profile), applying it.
    pub async fn confirm_request(
        &self,
        p: &Principal,
        id: RequestId,
    ) -> ServiceResult<RequestView> {
        let row = self.request_row(p, id).await?;
        if view(&row)?.awaiting.is_none() {
            return Err(ServiceError::WrongState(
                "the request waits for no confirmation",
            ));
        }
        self.door()
            .authorize(p, Action::UpdateCustomer, Some(row.customer_id))
            .await?;
        let actor = Actor::Principal(p);
        self.fulfil(actor, RequestType::Rectification, &row, true)
            .await?;
        let mut next = row.clone();
        next.status = RequestStatus::Fulfilled.as_str().to_owned();
        next.updated_at = Timestamp::now().millis();
        self.save_transition(actor, &row, &next).await?;
        view(&next)
    }

    /// The export of a fulfilled access or export request, built now.
    pub async fn request_export(
        &self,
        p: &Principal,
        id: RequestId,
    ) -> ServiceResult<crate::subject_export::SubjectExport> {
        let row = self.request_row(p, id).await?;
        self.door()
            .authorize(p, Action::ManageRequests, Some(row.customer_id))
            .await?;
        if view(&row)?.export.is_none() {
            return Err(ServiceError::WrongState(
                "the request is closed or no longer waits for this",
            ));
        }
        self.export_subject(Actor::Principal(p), row.customer_id)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_eight_digits_and_vary() {
        let a = one_time_code().unwrap();
        let b = one_time_code().unwrap();
        assert_eq!(a.len(), CODE_DIGITS);
        assert!(a.chars().all(|c| c.is_ascii_digit()));
        assert_ne!(a, b, "two codes in a row are equal one time in 10^8");
    }
}
