//! Staff write to one customer by id (issue 18, point 5): decided by the policy like a read of
//! the contact details (`send_message`), sent by Steward, which opens the address itself; the
//! writer sees the message and the thread, never the address. Each thread has a reply alias of
//! 160 random bits (`reply-…@REPLY_DOMAIN`), kept sealed under the customer's key and found
//! again only by its keyed MAC; replies to it come back as interactions (see `inbound`).
//!
//! A message is stored (`queued`) with its decision in one transaction, then handed to the mail
//! server off the request: marked `sending` (committed durably) first, so a process killed during
//! the hand-over leaves it `uncertain`, never sent twice; one killed before leaves it queued, and
//! the sender's sweep sends it.

use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, dkim};
use steward_domain::message::{BOUNCE_PREFIX, REPLY_PREFIX};
use steward_domain::{
    Channel, CustomerId, Direction, InteractionId, LawfulBasis, NewInteraction, NewMessage,
    ProfileField, Thread, ThreadId, ThreadMessage, Timestamp,
};

use steward_store::{MessageRow, ThreadRow};

use super::Outreach;
use crate::door::About;
use crate::error::{ServiceError, ServiceResult};
use crate::notify::Handoff;
use crate::{Access, Actor};

/// How long a thread accepts replies after its last message was written.
pub const REPLY_WINDOW: Duration = Duration::from_secs(90 * 86_400);

/// A queued message older than this is the sweep's to send (its own task died or never ran).
const SWEEP_AFTER_MS: i64 = 30_000;

/// Where a sealed thread text lives: (table, column).
pub(crate) const THREAD_SUBJECT: (&str, &str) = ("message_threads", "subject");
pub(crate) const THREAD_ALIAS: (&str, &str) = ("message_threads", "alias");
pub(crate) const MESSAGE_SUBJECT: (&str, &str) = ("thread_messages", "subject");

/// The categories a message uses: the address Steward opens, and the message itself.
const MESSAGE_FIELDS: [&str; 2] = ["email", "communications"];

/// A bounce address's kinds: a campaign delivery or a staff message.
pub(crate) const BOUNCE_DELIVERY: u8 = b'd';
pub(crate) const BOUNCE_MESSAGE: u8 = b'm';

/// Lower-case base32 without padding (RFC 4648): survives relays that fold the case of local
/// parts, and uses only letters and digits.
fn base32(bytes: &[u8]) -> String {
    data_encoding::BASE32_NOPAD
        .encode(bytes)
        .to_ascii_lowercase()
}

impl Outreach {
    /// Writes to customer `id` by e-mail under `access`'s purpose, in a new thread or one of
    /// theirs; returns the message and thread ids. Decided (`send_message`) and recorded before
    /// anything is stored; sent off the request.
    pub async fn send_message(
        &self,
        access: &Access<'_>,
        id: CustomerId,
        m: &NewMessage,
    ) -> ServiceResult<(InteractionId, ThreadId)> {
        self.records.check_declarable(access)?;
        let facts = self.door().access_facts(id).await?;
        // Writing opens the address: it counts against the bulk guard like a read.
        self.records.count_read(&access.flagged(), id).await?;
        let purpose = access.purpose;
        let consented = purpose.lawful_basis == LawfulBasis::Consent
            && self.consents().active(id, &purpose.key).await?;
        let now = Timestamp::now();
        let req =
            self.records
                .plain_request(access.principal, (id, &facts), purpose, consented, now);
        let allowed = self.door().policy().decide_message(&req);
        let record = |outcome: &str| {
            crate::door::leaf(
                self.door().actor_parts(Actor::Principal(access.principal)),
                "send_message",
                Some(id),
                &MESSAGE_FIELDS,
                About {
                    subject: None,
                    purpose: Some(&purpose.key),
                },
                "used",
                outcome,
            )
        };
        if !allowed {
            self.door().audit().append(&record("deny")).await?;
            if !req.acknowledged {
                return Err(ServiceError::AcknowledgementRequired);
            }
            return Err(ServiceError::Forbidden {
                field: "purpose",
                detail: format!(
                    "no policy lets this caller write to this customer for purpose {}",
                    purpose.key
                ),
            });
        }
        // Only a caller who may write learns whether mail is set up.
        let mail = self.mail()?;
        let dk = self.keys().of(id).await?;
        let message_id = InteractionId::new();
        let expires = now.millis() + REPLY_WINDOW.as_millis() as i64;
        let new_thread = match m.thread_id {
            Some(t) => {
                let thread = self
                    .messages
                    .thread(t)
                    .await?
                    .filter(|row| row.customer_id == id)
                    .ok_or(ServiceError::NotFound("thread"))?;
                // A closed thread stays closed: its alias may have reached others since (an
                // old mailbox, a forward). Write in a new one.
                if thread.expires_at <= now.millis() {
                    return Err(steward_domain::ValidationError::new(
                        "thread_id",
                        "the thread no longer takes replies; start a new one (leave thread_id out)",
                    )
                    .into());
                }
                if thread.purpose != purpose.key {
                    return Err(steward_domain::ValidationError::new(
                        "thread_id",
                        format!(
                            "the thread was written under purpose {}; continue it under that purpose",
                            thread.purpose
                        ),
                    )
                    .into());
                }
                None
            }
            None => Some(self.new_thread(&dk, id, &purpose.key, &m.subject, now, expires)?),
        };
        let thread_id = new_thread
            .as_ref()
            .map(|t| t.id)
            .or(m.thread_id)
            .ok_or(ServiceError::NotFound("thread"))?;
        let interaction = crate::seal::seal_interaction(
            &dk,
            id,
            message_id,
            &NewInteraction {
                channel: Channel::Email,
                text: m.text.clone(),
                source: "message".to_owned(),
                occurred_at: now,
            },
        )?;
        let row = MessageRow {
            id: message_id,
            thread_id,
            customer_id: id,
            direction: Direction::Out.as_str().to_owned(),
            subject: crate::seal::seal_thread_text(
                &dk,
                MESSAGE_SUBJECT,
                id,
                message_id.0,
                &m.subject,
            )?,
            state: "queued".to_owned(),
            reason: None,
            sender_staff: access.principal.staff_id,
            sender_token: Some(access.principal.token_id),
            created_at: now.millis(),
        };
        let stored = self
            .messages
            .insert_message(
                new_thread.as_ref(),
                &interaction,
                &row,
                expires,
                &[crate::door::row_of(record("done"))],
            )
            .await?;
        if !stored {
            return Err(ServiceError::NotFound(if m.thread_id.is_some() {
                "thread"
            } else {
                "customer"
            }));
        }
        let vault = self.clone();
        tokio::spawn(async move {
            if let Err(e) = vault.deliver_message(&mail, message_id).await {
                tracing::warn!(error = %e, "a staff message could not be sent now; the sweep retries");
            }
        });
        Ok((message_id, thread_id))
    }

    /// A new thread for customer `id`: its alias drawn, sealed and MACed.
    fn new_thread(
        &self,
        dk: &steward_crypto::DataKey,
        id: CustomerId,
        purpose: &str,
        subject: &str,
        now: Timestamp,
        expires: i64,
    ) -> ServiceResult<ThreadRow> {
        let mut random = [0u8; 20];
        steward_crypto::random_bytes(&mut random)?;
        let alias = base32(&random);
        let thread = ThreadId::new();
        Ok(ThreadRow {
            id: thread,
            customer_id: id,
            purpose: purpose.to_owned(),
            subject: crate::seal::seal_thread_text(dk, THREAD_SUBJECT, id, thread.0, subject)?,
            alias: crate::seal::seal_thread_text(dk, THREAD_ALIAS, id, thread.0, &alias)?,
            alias_mac: self.door().mac("reply_alias", &alias).to_vec(),
            created_at: now.millis(),
            expires_at: expires,
        })
    }

    /// The bounce address of a delivery or message: its kind, id and a keyed tag, so a
    /// delivery status notification names what bounced and cannot be forged for another.
    pub(crate) fn bounce_address(&self, kind: u8, id: &[u8; 16], domain: &str) -> String {
        let mut raw = Vec::with_capacity(27);
        raw.push(kind);
        raw.extend_from_slice(id);
        raw.extend_from_slice(&self.bounce_tag(kind, id));
        format!("{BOUNCE_PREFIX}{}@{domain}", base32(&raw))
    }

    fn bounce_tag(&self, kind: u8, id: &[u8; 16]) -> [u8; 10] {
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let mac = self
            .door()
            .mac("bounce", &format!("{}:{hex}", char::from(kind)));
        let mut tag = [0u8; 10];
        tag.copy_from_slice(&mac[..10]);
        tag
    }

    /// What a bounce address's tagged id names, if its tag is ours.
    pub(crate) fn open_bounce(&self, tagged: &str) -> Option<(u8, [u8; 16])> {
        let raw = data_encoding::BASE32_NOPAD
            .decode(tagged.to_ascii_uppercase().as_bytes())
            .ok()?;
        if raw.len() != 27 {
            return None;
        }
        let kind = raw[0];
        let id: [u8; 16] = raw[1..17].try_into().ok()?;
        let ok: bool =
            subtle::ConstantTimeEq::ct_eq(&self.bounce_tag(kind, &id)[..], &raw[17..]).into();
        ok.then_some((kind, id))
    }

    /// Hands one queued message to the mail server, if it is still queued and its customer can
    /// still be written to.
    pub(crate) async fn deliver_message(
        &self,
        mail: &crate::sending::Mail,
        id: InteractionId,
    ) -> ServiceResult<()> {
        let store = &self.messages;
        let Some(row) = store.message(id).await? else {
            return Ok(());
        };
        if row.state != "queued" {
            return Ok(());
        }
        let fail = |reason: &'static str| async move {
            store
                .settle_message(
                    id,
                    &["queued"],
                    "failed",
                    Some(reason),
                    Timestamp::now().millis(),
                )
                .await
                .map(|_| ())
        };
        let customer = row.customer_id;
        let Some((c, facts, dk)) = self
            .records
            .open_for_use(customer, |f| f == ProfileField::Email)
            .await?
        else {
            return Ok(fail("erased").await?);
        };
        if facts.restricted {
            return Ok(fail("restricted").await?);
        }
        let (Some(thread), Some(body)) = (
            store.thread(row.thread_id).await?,
            store.message_body(id).await?,
        ) else {
            return Ok(fail("erased").await?);
        };
        let Some(address) = c.email.clone() else {
            return Ok(fail("undeliverable").await?);
        };
        let bounced = store.undeliverable(&[customer]).await?;
        let mac = self.door().mac("email", &address);
        if bounced.iter().any(|(_, m)| m.as_slice() == mac.as_slice()) {
            return Ok(fail("undeliverable").await?);
        }
        let Ok(to) = address.parse::<lettre::Address>() else {
            return Ok(fail("undeliverable").await?);
        };
        let text = crate::seal::open_interaction(&dk, &body)?.text;
        let subject =
            crate::seal::open_thread_text(&dk, MESSAGE_SUBJECT, customer, id.0, &row.subject)?;
        let alias =
            crate::seal::open_thread_text(&dk, THREAD_ALIAS, customer, thread.id.0, &thread.alias)?;
        let reply_to: Mailbox = format!("{REPLY_PREFIX}{alias}@{}", mail.reply_domain)
            .parse()
            .map_err(|_| ServiceError::WrongState("the reply domain does not form an address"))?;
        let bounce: lettre::Address = self
            .bounce_address(BOUNCE_MESSAGE, id.as_bytes(), &mail.reply_domain)
            .parse()
            .map_err(|_| ServiceError::WrongState("the reply domain does not form an address"))?;
        let envelope = lettre::address::Envelope::new(Some(bounce), vec![to.clone()])
            .map_err(|_| ServiceError::WrongState("the message has no recipient"))?;
        let message = lettre::Message::builder()
            .from(mail.from.clone())
            .to(Mailbox::new(None, to))
            .reply_to(reply_to)
            .subject(subject)
            .date_now()
            .message_id(Some(format!("<{}@{}>", id.0.simple(), mail.domain)))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("References"),
                format!("<{}@{}>", thread.id.0.simple(), mail.domain),
            ))
            .header(lettre::message::header::MIME_VERSION_1_0)
            .header(ContentType::TEXT_PLAIN)
            .envelope(envelope)
            .body(text);
        let Ok(mut message) = message else {
            return Ok(fail("undeliverable").await?);
        };
        dkim::dkim_sign(&mut message, &mail.dkim);
        if !store.begin_handover(id, Timestamp::now().millis()).await? {
            return Ok(());
        }
        let notifier = self.notifier()?;
        let handed = tokio::task::spawn_blocking(move || notifier.deliver(&message))
            .await
            .unwrap_or(Handoff::Uncertain);
        let (state, reason) = match handed {
            Handoff::Accepted => ("sent", None),
            Handoff::Refused => ("failed", Some("refused")),
            Handoff::Uncertain => ("uncertain", None),
        };
        store
            .settle_message(id, &["sending"], state, reason, Timestamp::now().millis())
            .await?;
        Ok(())
    }

    /// The sender's sweep: hand-overs left unsettled past the lease are uncertain; messages
    /// left queued (a process stopped before sending them) are sent.
    pub(crate) async fn sweep_messages(&self, mail: &crate::sending::Mail) -> ServiceResult<()> {
        let now = Timestamp::now().millis();
        let lease = i64::try_from(mail.lease.as_millis()).unwrap_or(i64::MAX);
        let (queued, uncertain) = self
            .messages
            .pending_messages(now - SWEEP_AFTER_MS, now - lease, now)
            .await?;
        if uncertain > 0 {
            tracing::warn!(
                messages = uncertain,
                "staff messages whose hand-over was interrupted are marked uncertain (not resent)"
            );
        }
        // One message that cannot be sent now does not hold up the others.
        for id in queued {
            if let Err(e) = self.deliver_message(mail, id).await {
                tracing::warn!(error = %e, "a staff message could not be sent; retried next round");
            }
        }
        Ok(())
    }

    /// A customer's threads with their messages, if the policy lets `access` read their
    /// communications (decided and recorded like `GET …/interactions`).
    pub async fn read_threads(
        &self,
        access: &Access<'_>,
        id: CustomerId,
    ) -> ServiceResult<Vec<Thread>> {
        self.records.check_communications(access, id).await?;
        let mut threads = self.threads_of(id).await?;
        if !self.records.clears_sensitive(access.principal).await {
            for t in &mut threads {
                if let Some(s) = crate::pii::masked(&t.subject) {
                    t.subject = s;
                }
                for m in &mut t.messages {
                    for text in [&mut m.subject, &mut m.text] {
                        if let Some(s) = crate::pii::masked(text) {
                            *text = s;
                            m.masked = true;
                        }
                    }
                }
            }
        }
        Ok(threads)
    }

    /// A customer's threads, undecided: for the service's own use after a decision (the read
    /// above, the customer's own export).
    pub(crate) async fn threads_of(&self, id: CustomerId) -> ServiceResult<Vec<Thread>> {
        let (threads, messages) = self.messages.customer_threads(id).await?;
        if threads.is_empty() {
            return Ok(Vec::new());
        }
        let dk = self.keys().of(id).await?;
        let mut out = Vec::with_capacity(threads.len());
        for t in &threads {
            let mut items = Vec::new();
            for m in messages.iter().filter(|m| m.thread_id == t.id) {
                let Some(body) = self.messages.message_body(m.id).await? else {
                    continue;
                };
                let text = crate::seal::open_interaction(&dk, &body)?.text;
                items.push(ThreadMessage {
                    id: m.id,
                    direction: Direction::parse(&m.direction).ok_or(ServiceError::Integrity)?,
                    state: m.state.clone(),
                    reason: m.reason.clone(),
                    subject: crate::seal::open_thread_text(
                        &dk,
                        MESSAGE_SUBJECT,
                        id,
                        m.id.0,
                        &m.subject,
                    )?,
                    text,
                    at: Timestamp(m.created_at),
                    masked: false,
                });
            }
            out.push(Thread {
                id: t.id,
                subject: crate::seal::open_thread_text(
                    &dk,
                    THREAD_SUBJECT,
                    id,
                    t.id.0,
                    &t.subject,
                )?,
                purpose: t.purpose.clone(),
                started_at: Timestamp(t.created_at),
                replies_until: Timestamp(t.expires_at),
                messages: items,
            });
        }
        Ok(out)
    }

    /// Whether the policy would let `principal` write to customer `id` under `purpose`: the
    /// console offers the form only then. Hypothetical: nothing opened, nothing recorded.
    pub async fn may_send_message(
        &self,
        principal: &crate::Principal,
        purpose: &steward_domain::Purpose,
        id: CustomerId,
    ) -> bool {
        let Ok(facts) = self.door().access_facts(id).await else {
            return false;
        };
        let consented = purpose.lawful_basis != LawfulBasis::Consent
            || self
                .consents()
                .active(id, &purpose.key)
                .await
                .unwrap_or(false);
        let now = Timestamp::now();
        self.mail.get().is_some()
            && self
                .door()
                .policy()
                .decide_message(&self.records.plain_request(
                    principal,
                    (id, &facts),
                    purpose,
                    consented,
                    now,
                ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_is_lower_case_letters_and_digits() {
        let s = base32(&[0xff; 20]);
        assert_eq!(s.len(), 32);
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        );
        assert_eq!(
            base32(&[0u8; 27]).len(),
            steward_domain::message::BOUNCE_TAG_CHARS
        );
    }
}
