//! Anonymous surveys (issue 21, point 5).
//!
//! Marketing (or the DPO) composes a survey and sends it to a segment under a purpose: the
//! segment is evaluated as for a campaign, and each member is invited (one row: survey,
//! customer, token issued or not). An invited customer, signed in to the portal, gets one
//! response token: their browser blinds a random message, Steward signs the blinded value
//! (RFC 9474) and records "token issued to this customer for this survey" — participation,
//! never an answer. The browser unblinds the signature and submits it with the answers to an
//! endpoint that takes no session and no cookie; Steward checks the signature is its own and
//! the token unused, and stores the answers with a random id and the day only. Nothing links
//! an answer to the customer: the signature was made blind, the answer carries no id, session,
//! address or time of day, and each answer moves a few earlier ones to fresh random ids.
//! Results leave only as noisy totals from at least [`MIN_RESPONSES`] answers, through the
//! analytics budget.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use steward_crypto::{FieldAad, SurveyKey};
use steward_domain::analytics::Scale;
use steward_domain::survey::{MIN_RESPONSES, Question, SurveyInput, check_answers, counts};
use steward_domain::{CustomerId, SegmentSize, SurveyId, Timestamp, ValidationError};
use steward_policy::Action;
use steward_store::{Stored, SurveyRow};
use uuid::Uuid;

use crate::analytics::{Release, noisy};
use crate::door::About;
use crate::error::{ServiceError, ServiceResult};
use crate::portal::PortalSession;
use crate::{Actor, Principal};

/// A survey as its authors and analysts see it: never who was asked or who answered.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SurveyView {
    /// Id.
    pub id: SurveyId,
    /// Title.
    pub title: String,
    /// The questions.
    pub questions: Vec<Question>,
    /// The segment it goes to.
    pub segment_id: steward_domain::SegmentId,
    /// The purpose its sending is decided under.
    pub purpose: String,
    /// When it was composed.
    pub created_at: Timestamp,
    /// When it was sent, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Timestamp>,
    /// Customers asked, or `"fewer than N"`.
    #[schema(value_type = serde_json::Value, example = 120)]
    pub invited: SegmentSize,
    /// Answers received, or `"fewer than 10"`.
    #[schema(value_type = serde_json::Value, example = 42)]
    pub responses: SegmentSize,
}

/// A survey as the portal shows it to an invited customer.
#[derive(Debug, Clone)]
pub struct PortalSurvey {
    /// Id.
    pub id: SurveyId,
    /// Title.
    pub title: String,
    /// Questions.
    pub questions: Vec<Question>,
    /// The blind-signature key: modulus and public exponent, base64url.
    pub key_n: String,
    /// The public exponent, base64url.
    pub key_e: String,
    /// Whether the customer's token was issued already.
    pub issued: bool,
}

/// One question's released totals.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct QuestionResult {
    /// The question.
    pub question: String,
    /// Each answer with its noisy count and 95 % half-width.
    pub rows: Vec<AnswerCount>,
}

/// One answer's noisy count.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AnswerCount {
    /// The answer: a choice, or a point of the scale.
    pub answer: String,
    /// The noisy count.
    pub value: i64,
    /// Half-width of the 95 % interval.
    pub ci95: u64,
}

/// A survey's released results.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SurveyResults {
    /// Per question.
    pub questions: Vec<QuestionResult>,
    /// ε this request spent (0 when the stored release was returned).
    pub epsilon_spent: f64,
    /// ε left in the caller's budget.
    pub budget_left: f64,
    /// When released.
    pub released_at: Timestamp,
}

fn key_aad(id: SurveyId) -> FieldAad<'static> {
    FieldAad {
        table: "surveys",
        column: "secret_key",
        customer: Uuid::nil(),
        record: id.0,
    }
}

/// A waiting answer is sealed under the installation's directory key, bound to its survey and
/// its pending id.
fn pending_aad(id: SurveyId, pending: [u8; 16]) -> FieldAad<'static> {
    FieldAad {
        table: "survey_pending",
        column: "answers",
        customer: id.0,
        record: Uuid::from_bytes(pending),
    }
}

/// One key generation at a time: composing surveys cannot take every core.
static KEYGEN: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// A survey's public key as (modulus, exponent), base64url: what the portal page gives the
/// browser, and the same the public endpoint gives anyone.
fn public_key_of(row: &SurveyRow) -> ServiceResult<(String, String)> {
    let (n, e) =
        steward_crypto::survey_public_components(&row.public_key).ok_or(ServiceError::Integrity)?;
    Ok((URL_SAFE_NO_PAD.encode(n), URL_SAFE_NO_PAD.encode(e)))
}

fn questions_of(row: &SurveyRow) -> ServiceResult<Vec<Question>> {
    serde_json::from_str(&row.questions).map_err(|_| ServiceError::Integrity)
}

/// Surveys: questions put to a segment's consenting customers, answered in the portal, totals
/// released with noise once enough have answered; answers sealed under a key of the survey's.
#[derive(Clone)]
pub struct Surveys {
    door: Arc<crate::door::Door>,
    store: Arc<dyn steward_store::SurveyStore>,
    segments: crate::segments::Segments,
    analytics: crate::analytics::Analytics,
    records: Arc<crate::records::Records>,
    purposes: Arc<crate::purposes::Purposes>,
    consents: Arc<crate::consent::Consents>,
    /// Seals each survey's own key, and answers waiting to be counted.
    directory_key: Arc<steward_crypto::DataKey>,
}

/// What surveys are wired to.
pub(crate) struct SurveysParts {
    pub(crate) door: Arc<crate::door::Door>,
    pub(crate) store: Arc<dyn steward_store::SurveyStore>,
    pub(crate) segments: crate::segments::Segments,
    pub(crate) analytics: crate::analytics::Analytics,
    pub(crate) records: Arc<crate::records::Records>,
    pub(crate) purposes: Arc<crate::purposes::Purposes>,
    pub(crate) consents: Arc<crate::consent::Consents>,
    pub(crate) directory_key: Arc<steward_crypto::DataKey>,
}

impl Surveys {
    /// The surveys customer `id` was asked to answer: the title, the purpose, when, and whether
    /// they took their token (their answers were never kept under their name). Undecided: for
    /// the customer's own export, after its decision.
    pub(crate) async fn asked(&self, id: CustomerId) -> ServiceResult<Vec<serde_json::Value>> {
        let mut surveys = Vec::new();
        for (survey, invited_at, issued) in self.store.invitations(id).await? {
            if let Some(row) = self.store.survey(survey).await? {
                surveys.push(serde_json::json!({
                    "survey": row.title,
                    "purpose": row.purpose,
                    "asked_at": Timestamp(invited_at).to_rfc3339_millis(),
                    "token_issued": issued,
                }));
            }
        }
        Ok(surveys)
    }

    /// Wires surveys to their store and the services they ask.
    pub(crate) fn new(p: SurveysParts) -> Self {
        Surveys {
            door: p.door,
            store: p.store,
            segments: p.segments,
            analytics: p.analytics,
            records: p.records,
            purposes: p.purposes,
            consents: p.consents,
            directory_key: p.directory_key,
        }
    }

    fn door(&self) -> &crate::door::Door {
        &self.door
    }

    fn purposes(&self) -> &crate::purposes::Purposes {
        &self.purposes
    }

    fn consents(&self) -> &crate::consent::Consents {
        &self.consents
    }
}

impl Surveys {
    /// The audit leaf of a staff act on a survey: who, which survey, under which purpose.
    fn survey_leaf(
        &self,
        principal: &Principal,
        action: &str,
        id: SurveyId,
        purpose: &str,
        mark: &str,
    ) -> steward_domain::AuditLeaf {
        let id_text = id.to_string();
        crate::door::leaf(
            self.door().actor_parts(Actor::Principal(principal)),
            action,
            None,
            &[],
            About {
                subject: Some(&id_text),
                purpose: Some(purpose),
            },
            mark,
            "done",
        )
    }

    /// Whether `principal` may compose and send surveys (the console offers them only then).
    pub async fn may_manage_surveys(&self, principal: &Principal) -> bool {
        self.door()
            .authorize(principal, Action::ManageSurveys, None)
            .await
            .is_ok()
    }

    /// Composes a survey (marketing, the DPO): validated questions, a fresh blind-signature
    /// key sealed under the installation's key, one audit entry.
    pub async fn create_survey(
        &self,
        principal: &Principal,
        input: SurveyInput,
    ) -> ServiceResult<SurveyView> {
        self.door()
            .authorize(principal, Action::ManageSurveys, None)
            .await?;
        let survey = input.validate()?;
        let purpose = self.purposes().get("purpose", &survey.purpose)?;
        // Asking customers for their opinion rests on their agreement: a purpose on another
        // basis would reach people who objected, or never agreed to be asked.
        if purpose.lawful_basis != steward_domain::LawfulBasis::Consent {
            return Err(ValidationError::new(
                "purpose",
                "a survey's purpose must rest on consent (e.g. marketing_email)",
            )
            .into());
        }
        self.segments
            .segment_row(survey.segment_id)
            .await?
            .ok_or_else(|| ValidationError::new("segment_id", "no such segment"))?;
        let key = {
            let _turn = KEYGEN
                .acquire()
                .await
                .map_err(|_| ServiceError::Integrity)?;
            tokio::task::spawn_blocking(SurveyKey::generate)
                .await
                .map_err(|_| ServiceError::Integrity)??
        };
        let id = SurveyId::new();
        let row = SurveyRow {
            id,
            title: survey.title,
            questions: serde_json::to_string(&survey.questions)
                .map_err(|_| ServiceError::Integrity)?,
            segment_id: survey.segment_id,
            purpose: purpose.key.clone(),
            public_key: key.public_spki()?,
            secret_key: self.directory_key.seal(&key_aad(id), &key.to_der()?)?,
            created_by: self.door().pseudonym(&principal.asker().id),
            created_at: Timestamp::now().millis(),
            sent_at: None,
        };
        let mut leaf = self.survey_leaf(principal, "create_survey", id, &purpose.key, "written");
        // The key's fingerprint in the signed log: everyone can check that the key a survey page
        // gives them is the one the survey was made with, not one made for them.
        leaf.categories.insert(
            "key".to_owned(),
            steward_crypto::fingerprint(&row.public_key),
        );
        let store = &self.store;
        store
            .insert_survey(&row, &[crate::door::row_of(leaf)])
            .await?;
        self.survey_view(row).await
    }

    async fn survey_view(&self, row: SurveyRow) -> ServiceResult<SurveyView> {
        let counts = self.store.survey_counts(row.id).await?;
        let threshold = self.segments.segment_threshold();
        Ok(SurveyView {
            id: row.id,
            questions: questions_of(&row)?,
            title: row.title,
            segment_id: row.segment_id,
            purpose: row.purpose,
            created_at: Timestamp(row.created_at),
            sent_at: row.sent_at.map(Timestamp),
            invited: SegmentSize::shown(counts.invited, threshold),
            responses: SegmentSize::shown(counts.responses, MIN_RESPONSES),
        })
    }

    /// Every survey, newest first: for whoever may compose them or analyse under `analytics`.
    pub async fn surveys(&self, principal: &Principal) -> ServiceResult<Vec<SurveyView>> {
        if !self.analytics.may_analyse(principal) {
            self.door()
                .authorize(principal, Action::ManageSurveys, None)
                .await?;
        }
        let mut out = Vec::new();
        for row in self.store.surveys().await? {
            out.push(self.survey_view(row).await?);
        }
        Ok(out)
    }

    /// One survey (whoever may compose surveys or analyse under `analytics`).
    pub async fn survey(&self, principal: &Principal, id: SurveyId) -> ServiceResult<SurveyView> {
        if !self.analytics.may_analyse(principal) {
            self.door()
                .authorize(principal, Action::ManageSurveys, None)
                .await?;
        }
        let row = self
            .store
            .survey(id)
            .await?
            .ok_or(ServiceError::NotFound("survey"))?;
        self.survey_view(row).await
    }

    /// Sends a survey (marketing, the DPO): its segment is evaluated under its purpose as for a
    /// campaign (consent, restriction, the size threshold), and each member is invited; those
    /// invited before stay as they are. How many it reaches, as a size.
    pub async fn send_survey(
        &self,
        principal: &Principal,
        id: SurveyId,
    ) -> ServiceResult<SurveyView> {
        self.door()
            .authorize(principal, Action::ManageSurveys, None)
            .await?;
        let store = &self.store;
        let row = store
            .survey(id)
            .await?
            .ok_or(ServiceError::NotFound("survey"))?;
        let purpose = self.purposes().get("purpose", &row.purpose)?;
        let members = self.segments.audience(
                principal,
                &purpose,
                row.segment_id,
                &[],
                "the segment reaches too few customers under this purpose for an anonymous survey (fewer than the size threshold): their answers could not stay anonymous",
            )
            .await?;
        let mut leaf = self.survey_leaf(principal, "send_survey", id, &purpose.key, "used");
        let shown = SegmentSize::shown(members.len() as u64, self.segments.segment_threshold());
        leaf.categories.insert("size".to_owned(), shown.to_string());
        store
            .invite(
                id,
                &members,
                Timestamp::now().millis(),
                &[crate::door::row_of(leaf)],
            )
            .await?;
        self.survey_view(
            store
                .survey(id)
                .await?
                .ok_or(ServiceError::NotFound("survey"))?,
        )
        .await
    }

    /// The surveys a signed-in customer was invited to, with whether they have their token.
    pub async fn portal_surveys(&self, s: &PortalSession) -> ServiceResult<Vec<PortalSurvey>> {
        let store = &self.store;
        let mut out = Vec::new();
        for (id, _, issued) in store.invitations(s.customer_id()).await? {
            if let Some(row) = store.survey(id).await? {
                out.push(self.portal_survey_of(row, issued)?);
            }
        }
        Ok(out)
    }

    /// One survey the signed-in customer was invited to; `NotFound` for any other.
    pub async fn portal_survey(
        &self,
        s: &PortalSession,
        id: SurveyId,
    ) -> ServiceResult<PortalSurvey> {
        self.portal_surveys(s)
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or(ServiceError::NotFound("survey"))
    }

    fn portal_survey_of(&self, row: SurveyRow, issued: bool) -> ServiceResult<PortalSurvey> {
        let (key_n, key_e) = public_key_of(&row)?;
        Ok(PortalSurvey {
            id: row.id,
            questions: questions_of(&row)?,
            title: row.title,
            key_n,
            key_e,
            issued,
        })
    }

    fn survey_key(&self, row: &SurveyRow) -> ServiceResult<SurveyKey> {
        let der =
            zeroize::Zeroizing::new(self.directory_key.open(&key_aad(row.id), &row.secret_key)?);
        Ok(SurveyKey::from_der(&der)?)
    }

    /// A survey's public key as (modulus, exponent), base64url: public, so that a customer's
    /// browser can check, without sending any cookie, that the key it blinds with is the one
    /// everyone gets (a key made for one customer would mark their answer).
    pub async fn survey_public_key(&self, id: SurveyId) -> ServiceResult<(String, String)> {
        let row = self
            .store
            .survey(id)
            .await?
            .ok_or(ServiceError::NotFound("survey"))?;
        public_key_of(&row)
    }

    /// Signs the signed-in customer's blinded token for a survey they were invited to, once:
    /// the issue is recorded ("token issued to this customer for this survey") in the same
    /// transaction that marks it, and the signature is returned only then. Steward never sees
    /// the token itself.
    pub async fn issue_survey_token(
        &self,
        s: &PortalSession,
        id: SurveyId,
        blinded: &[u8],
    ) -> ServiceResult<Vec<u8>> {
        let store = &self.store;
        let customer = s.customer_id();
        let invited = store
            .invitations(customer)
            .await?
            .into_iter()
            .find(|(survey, _, _)| *survey == id);
        match invited {
            None => return Err(ServiceError::NotFound("survey")),
            Some((_, _, true)) => {
                return Err(ServiceError::WrongState(
                    "your response token for this survey was issued already",
                ));
            }
            Some((_, _, false)) => {}
        }
        let row = store
            .survey(id)
            .await?
            .ok_or(ServiceError::NotFound("survey"))?;
        self.check_still_askable(customer, &row).await?;
        let key = self.survey_key(&row)?;
        let blinded = blinded.to_vec();
        let signature = tokio::task::spawn_blocking(move || key.blind_sign(&blinded))
            .await
            .map_err(|_| ServiceError::Integrity)?
            .ok_or_else(|| {
                ValidationError::new("blinded", "not a blinded message for this survey's key")
            })?;
        let id_text = id.to_string();
        let entry = self.door().write_entry_for(
            Actor::Subject(crate::auth::Myself(customer)),
            "survey_token_issued",
            Some(customer),
            &[],
            About {
                subject: Some(&id_text),
                purpose: Some(&row.purpose),
            },
        );
        if !store.issue_token(id, customer, &[entry]).await? {
            return Err(ServiceError::WrongState(
                "your response token for this survey was issued already",
            ));
        }
        Ok(signature)
    }

    /// Refuses a token to a customer the survey may no longer ask: restricted since, or (for
    /// a purpose resting on consent) no longer consenting.
    async fn check_still_askable(
        &self,
        customer: steward_domain::CustomerId,
        row: &SurveyRow,
    ) -> ServiceResult<()> {
        let purpose = self.purposes().get("purpose", &row.purpose)?;
        let facts = self
            .records
            .access_facts(customer)
            .await?
            .ok_or(ServiceError::NotFound("survey"))?;
        if facts.restricted {
            return Err(ServiceError::Forbidden {
                field: "survey",
                detail: "your data's processing is restricted: this survey is not asked of you"
                    .into(),
            });
        }
        if purpose.lawful_basis == steward_domain::LawfulBasis::Consent
            && !self
                .consents()
                .ledger(customer)
                .await?
                .granted(&purpose.key)
        {
            return Err(ServiceError::Forbidden {
                field: "survey",
                detail: format!(
                    "you no longer agree to {}, which this survey was sent under",
                    purpose.key
                ),
            });
        }
        Ok(())
    }

    /// Stores an anonymous response: the token (message, randomizer, signature) must be this
    /// survey's key's signature and unused; the answers one per question. Nothing of who sent
    /// it is taken or kept, and no audit entry is written (its time would be a link).
    pub async fn submit_survey_response(
        &self,
        id: SurveyId,
        message: &[u8],
        randomizer: &[u8],
        signature: &[u8],
        answers: &[u32],
    ) -> ServiceResult<()> {
        let store = &self.store;
        let row = store
            .survey(id)
            .await?
            .ok_or(ServiceError::NotFound("survey"))?;
        let answers = check_answers(&questions_of(&row)?, answers)?;
        if !(16..=64).contains(&message.len()) {
            return Err(ValidationError::new("message", "16 to 64 bytes").into());
        }
        let (spki, m, r, sig) = (
            row.public_key.clone(),
            message.to_vec(),
            randomizer.to_vec(),
            signature.to_vec(),
        );
        let valid = tokio::task::spawn_blocking(move || {
            steward_crypto::verify_survey_token(&spki, &r, &m, &sig)
        })
        .await
        .map_err(|_| ServiceError::Integrity)?;
        if !valid {
            return Err(ServiceError::Forbidden {
                field: "signature",
                detail: "not a response token of this survey".into(),
            });
        }
        let token_hash = steward_crypto::fingerprint(message).into_bytes();
        let mut pending_id = [0u8; 16];
        steward_crypto::random_bytes(&mut pending_id)?;
        let sealed = self
            .directory_key
            .seal(&pending_aad(id, pending_id), &answers)?;
        match store
            .record_pending(id, &token_hash, pending_id, &sealed)
            .await?
        {
            Stored::TokenUsed => return Err(ServiceError::Conflict("token")),
            Stored::Waiting => {}
        }
        // INVARIANT: the answer is stored (sealed, in the pool) from here on; nothing below may
        // fail the request. Ten or more waiting join the totals together; two submissions at
        // once both try, and the one that takes the rows moves them.
        let directory = &self.directory_key;
        let open = move |pending: &[u8], sealed: &[u8]| {
            let pending: [u8; 16] = pending.try_into().ok()?;
            directory.open(&pending_aad(id, pending), sealed).ok()
        };
        match store.flush_pending(id, MIN_RESPONSES, &open).await {
            Ok((_, 0)) => {}
            Ok((_, dropped)) => tracing::error!(
                dropped,
                "survey answers waiting in the pool failed their integrity check and were dropped"
            ),
            Err(e) => tracing::error!(error = %e, "survey answers could not join the totals yet"),
        }
        Ok(())
    }

    /// Releases a survey's results as noisy counts per answer (analysts and the DPO, under an
    /// analytics purpose, charged to their budget like any query), once it has at least
    /// [`MIN_RESPONSES`] answers. One response adds one to one answer of each question, so the
    /// noise's sensitivity is the number of questions.
    pub async fn survey_results(
        &self,
        principal: &Principal,
        purpose: &str,
        id: SurveyId,
        epsilon: f64,
    ) -> ServiceResult<SurveyResults> {
        // As for queries: run to the end, so a reserved budget is never left charged and
        // unrecorded by a client that hangs up.
        let (vault, principal, purpose) = (self.clone(), principal.clone(), purpose.to_owned());
        tokio::spawn(async move {
            vault
                .results_to_the_end(&principal, &purpose, id, epsilon)
                .await
        })
        .await
        .map_err(|_| ServiceError::Integrity)?
    }

    async fn results_to_the_end(
        &self,
        principal: &Principal,
        purpose: &str,
        id: SurveyId,
        epsilon: f64,
    ) -> ServiceResult<SurveyResults> {
        let purpose = self.purposes().get("purpose", purpose)?;
        if !epsilon.is_finite() || !(0.001..=1000.0).contains(&epsilon) {
            return Err(ValidationError::new("epsilon", "from 0.001 to 1000").into());
        }
        let epsilon_milli = (epsilon * 1000.0).floor() as u32;
        let store = &self.store;
        let release = Release {
            canonical: serde_json::json!({"survey": id, "epsilon_milli": epsilon_milli})
                .to_string(),
            epsilon_milli: i64::from(epsilon_milli),
            delta_nano: 0,
            categories: Vec::new(),
        };
        let released = self.analytics.release_once(principal, &purpose, release, async || {
                // Looked up after the decision: whether a survey exists is no one else's to learn.
                let row = store
                    .survey(id)
                    .await?
                    .ok_or(ServiceError::NotFound("survey"))?;
                let questions = questions_of(&row)?;
                let (responses, tallies) = store.tallies(id).await?;
                if responses < MIN_RESPONSES {
                    return Err(ServiceError::WrongState(
                        "fewer than 10 responses: no result is released until there are at least 10",
                    ));
                }
                let counts = counts(&questions, &tallies);
                // Who took part is known (the issue of each token is recorded), so the change
                // to guard against is one participant's answers replaced by others: one count
                // down and one up per question.
                let sensitivity = 2 * questions.len().max(1) as u64;
                let scale = Scale::new(sensitivity, epsilon_milli)
                    .map_err(|_| ValidationError::new("epsilon", "out of range"))?;
                let qs = questions.clone();
                let results = noisy(move |rng| {
                    qs.iter()
                        .zip(counts)
                        .map(|(q, counts)| {
                            let rows = q
                                .options()
                                .into_iter()
                                .zip(counts)
                                .map(|(answer, exact)| {
                                    Ok(AnswerCount {
                                        answer,
                                        value: exact + scale.sample(rng)?,
                                        ci95: scale.ci95(),
                                    })
                                })
                                .collect::<Result<Vec<_>, _>>()?;
                            Ok(QuestionResult {
                                question: q.text().to_owned(),
                                rows,
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .await?;
                serde_json::to_string(&results).map_err(|_| ServiceError::Integrity)
            })
            .await?;
        Ok(SurveyResults {
            questions: serde_json::from_str(&released.answer)
                .map_err(|_| ServiceError::Integrity)?,
            epsilon_spent: released.epsilon_spent as f64 / 1000.0,
            budget_left: released.left as f64 / 1000.0,
            released_at: released.at,
        })
    }
}
