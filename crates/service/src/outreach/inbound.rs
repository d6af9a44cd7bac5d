//! Inbound mail (issue 18, point 6): replies to staff messages and delivery status
//! notifications, handed in by the mail server (`steward mail receive`, as Postfix or OpenSMTPD
//! hand mail to a local program) or by a mail provider's inbound webhook
//! (`POST /v1/inbound/email`, a `mail_gateway` token). Parsed as real MIME (multipart,
//! quoted-printable, base64, charsets) by `mail-parser`.
//!
//! A reply is accepted only at a live reply alias and becomes an interaction (channel `email`,
//! source `reply`) in that thread, with the customer's own address and phone number scrubbed
//! from its subject and text; nothing else of the message is kept (no headers, no attachments).
//! A delivery status notification (RFC 3464) is accepted only at a bounce address Steward
//! issued (its tag names the delivery or message and cannot be forged); a permanent failure
//! marks the address undeliverable, so later mail skips it. Anything else is refused and
//! nothing is stored.

use mail_parser::{MessageParser, MimeHeaders};
use steward_domain::message::{Issued, REPLY_PREFIX, issued, scrub};
use steward_domain::{
    Channel, CustomerId, DeliveryId, Direction, InteractionId, NewInteraction, ProfileField,
    ThreadId, Timestamp, ValidationError, normalize,
};
use steward_store::{Bounced, MessageRow};

use super::Outreach;
use crate::Actor;
use crate::door::About;
use crate::error::{ServiceError, ServiceResult};
use crate::messages::{BOUNCE_DELIVERY, BOUNCE_MESSAGE, MESSAGE_SUBJECT};

/// The largest message accepted (a reply with its quoted history; attachments are dropped).
pub const MAX_MESSAGE_BYTES: usize = 2 * 1024 * 1024;

/// What became of a message handed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A reply, stored in its thread.
    Reply {
        /// The thread.
        thread: ThreadId,
        /// The reply (also its interaction's id).
        message: InteractionId,
    },
    /// A permanent delivery failure: the address is marked undeliverable.
    Bounce,
    /// A delivery status notification of anything else (delayed, delivered): nothing changes.
    Notice,
}

fn refused(field: &'static str, why: &'static str) -> ServiceError {
    ValidationError::new(field, why).into()
}

impl Outreach {
    /// Refused unless `principal` may hand mail in (a `mail_gateway` token): for the HTTP
    /// layer, to answer the caller before looking at what it sent.
    pub async fn check_mail_gateway(&self, principal: &crate::Principal) -> ServiceResult<()> {
        self.door()
            .authorize(principal, steward_policy::Action::ReceiveMail, None)
            .await
    }

    /// Takes one RFC 5322 message addressed to a reply alias or a bounce address; `recipients`
    /// are the envelope's (tried before the headers' `To`, `Cc`, `Delivered-To`,
    /// `X-Original-To`). Refused (nothing stored) unless it is a reply to a live thread or a
    /// delivery status notification for mail Steward sent.
    pub async fn receive_mail(
        &self,
        actor: Actor<'_>,
        raw: &[u8],
        recipients: &[String],
    ) -> ServiceResult<Received> {
        self.door()
            .authorize_actor(actor, steward_policy::Action::ReceiveMail, None, false)
            .await?;
        if raw.len() > MAX_MESSAGE_BYTES {
            return Err(refused("message", "the message is larger than 2 MiB"));
        }
        let message = MessageParser::default()
            .parse(raw)
            .filter(|m| !m.parts.is_empty() && !m.headers().is_empty())
            .ok_or_else(|| refused("message", "not an RFC 5322 message"))?;
        // The serving process knows its reply domain; the command line accepts the forms at
        // any domain (their random part or tag is what counts).
        let domain = self.mail.get().map(|m| m.reply_domain.clone());
        let mut candidates: Vec<String> = recipients.to_vec();
        for list in [message.to(), message.cc()].into_iter().flatten() {
            candidates.extend(list.iter().filter_map(|a| a.address()).map(str::to_owned));
        }
        for header in ["Delivered-To", "X-Original-To"] {
            if let Some(v) = message.header_raw(header) {
                candidates.push(v.trim().to_owned());
            }
        }
        let target = candidates
            .iter()
            .find_map(|a| issued(a, domain.as_deref()))
            .ok_or_else(|| {
                refused(
                    "recipient",
                    "not addressed to a reply or bounce address Steward issued",
                )
            })?;
        match target {
            Issued::Reply(alias) => self.receive_reply(actor, &message, &alias).await,
            Issued::Bounce(tagged) => self.receive_bounce(actor, &message, &tagged).await,
        }
    }

    async fn receive_reply(
        &self,
        actor: Actor<'_>,
        message: &mail_parser::Message<'_>,
        alias: &str,
    ) -> ServiceResult<Received> {
        let unknown = || refused("recipient", "unknown or expired reply address");
        let store = &self.messages;
        let now = Timestamp::now();
        let thread = store
            .thread_by_alias(&self.door().mac("reply_alias", alias))
            .await?
            .filter(|t| t.expires_at > now.millis())
            .ok_or_else(unknown)?;
        let customer = thread.customer_id;
        let Some((c, _, dk)) = self
            .records
            .open_for_use(customer, |f| {
                matches!(f, ProfileField::Email | ProfileField::Phone)
            })
            .await?
        else {
            return Err(unknown());
        };
        // The sender's addresses (two at most: a header may list many, each costing a pass).
        let senders: Vec<String> = message
            .from()
            .map(|f| {
                f.iter()
                    .filter_map(|a| a.address())
                    .filter(|a| a.len() <= 254)
                    .take(2)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        // Sent from the address Steward holds for the customer? Otherwise staff are told: the
        // alias may have reached someone else (an old mailbox, a forward).
        let from_customer = c.email.as_deref().is_some_and(|held| {
            let held = self.door().mac("email", held);
            senders.iter().any(|a| {
                normalize::email("from", a).is_ok_and(|n| self.door().mac("email", &n) == held)
            })
        });
        // Removed from what is kept: the customer's address as held and as sent from, the
        // alias itself (whoever reads it could write into the thread), the phone number.
        let alias_local = format!("{REPLY_PREFIX}{alias}");
        let mut emails: Vec<&str> = c.email.iter().map(String::as_str).collect();
        emails.extend(senders.iter().map(String::as_str));
        emails.push(&alias_local);
        let phones: Vec<&str> = c.phone.iter().map(String::as_str).collect();
        // The thread's purpose decides what happens to personal data the customer wrote
        // (issue 23), before the text is shortened, so that a cut cannot split a card number
        // into digits the detector no longer recognises.
        let rule = self
            .purposes()
            .get("purpose", &thread.purpose)
            .map(|p| p.pii_rule)
            .unwrap_or_default();
        let clean = |s: &str, max: usize| -> (String, steward_domain::pii::PiiTypes) {
            // Cut before scrubbing (with room for what scrubbing removes): the work stays
            // bounded whatever was sent.
            let s: String = s.chars().take(2 * max).collect();
            let s = scrub(&s, &emails, &phones);
            let s: String = s
                .chars()
                .map(|ch| {
                    if ch.is_control() && !matches!(ch, '\n' | '\t') {
                        ' '
                    } else {
                        ch
                    }
                })
                .collect();
            let (s, types) = crate::pii::screen(s.trim(), rule);
            let s = if s.chars().count() > max {
                let cut: String = s.chars().take(max - 16).collect();
                format!("{cut}\n[… shortened]")
            } else {
                s
            };
            (s, types)
        };
        let (text, in_text) = message
            .body_text(0)
            .map(|t| clean(&t, normalize::MAX_TEXT_CHARS))
            .filter(|(t, _)| !t.is_empty())
            .unwrap_or_else(|| ("(no text)".to_owned(), Default::default()));
        let (subject, in_subject) = message
            .subject()
            .map(|s| clean(s, normalize::MAX_SHORT_CHARS))
            .filter(|(s, _)| !s.is_empty())
            .unwrap_or_else(|| ("(no subject)".to_owned(), Default::default()));
        let found = in_text.union(in_subject);
        let id = InteractionId::new();
        let interaction = crate::seal::seal_screened(
            &dk,
            customer,
            id,
            &NewInteraction {
                channel: Channel::Email,
                text,
                source: "reply".to_owned(),
                occurred_at: now,
            },
            found,
        )?;
        let reply = MessageRow {
            id,
            thread_id: thread.id,
            customer_id: customer,
            direction: Direction::In.as_str().to_owned(),
            subject: crate::seal::seal_thread_text(&dk, MESSAGE_SUBJECT, customer, id.0, &subject)?,
            state: "received".to_owned(),
            reason: (!from_customer).then(|| "other_sender".to_owned()),
            sender_staff: None,
            sender_token: None,
            created_at: now.millis(),
        };
        let thread_text = thread.id.to_string();
        let entry = self.door().write_entry_for(
            actor,
            "receive_reply",
            Some(customer),
            &["communications"],
            About {
                subject: Some(&thread_text),
                purpose: Some(&thread.purpose),
            },
        );
        if !store.insert_reply(&interaction, &reply, &[entry]).await? {
            return Err(unknown());
        }
        Ok(Received::Reply {
            thread: thread.id,
            message: id,
        })
    }

    async fn receive_bounce(
        &self,
        actor: Actor<'_>,
        message: &mail_parser::Message<'_>,
        tagged: &str,
    ) -> ServiceResult<Received> {
        let unknown = || refused("recipient", "unknown bounce address");
        let (kind, id) = self.open_bounce(tagged).ok_or_else(unknown)?;
        let report = delivery_status(message).ok_or_else(|| {
            refused(
                "message",
                "a bounce address takes only delivery status notifications (RFC 3464)",
            )
        })?;
        if !report.failed {
            return Ok(Received::Notice);
        }
        let (customer, bounced): (Option<CustomerId>, Bounced) = match kind {
            BOUNCE_DELIVERY => (
                self.campaigns
                    .delivery(DeliveryId(uuid::Uuid::from_bytes(id)))
                    .await?
                    .and_then(|d| d.customer_id),
                Bounced::Delivery(id),
            ),
            BOUNCE_MESSAGE => {
                let mid = InteractionId(uuid::Uuid::from_bytes(id));
                (
                    self.messages.message(mid).await?.map(|m| m.customer_id),
                    Bounced::Message(mid),
                )
            }
            _ => return Err(unknown()),
        };
        // Erased (or merged away) since: there is nothing left to mark.
        let Some(customer) = customer else {
            return Ok(Received::Notice);
        };
        // Only the address the customer has now, and only when the report names it: a late
        // report about an address since replaced, or one naming another address, changes
        // nothing.
        let Some(address) = self
            .records
            .open_for_use(customer, |f| f == ProfileField::Email)
            .await?
            .and_then(|(c, _, _)| c.email)
        else {
            return Ok(Received::Notice);
        };
        let named = report.recipients.iter().any(|r| {
            normalize::email(
                "recipient",
                r.trim().trim_start_matches('<').trim_end_matches('>'),
            )
            .is_ok_and(|n| n == address)
        });
        if !named {
            return Ok(Received::Notice);
        }
        let entry =
            self.door()
                .write_entry(actor, "mark_undeliverable", Some(customer), &["email"]);
        self.messages
            .mark_undeliverable(
                customer,
                &self.door().mac("email", &address),
                bounced,
                Timestamp::now().millis(),
                &[entry],
            )
            .await?;
        Ok(Received::Bounce)
    }
}

/// What a delivery status notification reports.
#[derive(Debug, Default, PartialEq, Eq)]
struct Report {
    /// Some recipient's address failed for good (`Action: failed`, status 5.1.x or 5.2.1).
    failed: bool,
    /// The failed recipients' addresses (`Final-Recipient: rfc822; …`).
    recipients: Vec<String>,
}

/// The report of a `multipart/report; report-type=delivery-status` message, if it is one.
fn delivery_status(message: &mail_parser::Message<'_>) -> Option<Report> {
    let ct = message.content_type()?;
    let is_report = ct.ctype().eq_ignore_ascii_case("multipart")
        && ct
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        && ct.attribute("report-type").is_some_and(|t| {
            t.eq_ignore_ascii_case("delivery-status")
                || t.eq_ignore_ascii_case("global-delivery-status")
        });
    if !is_report {
        return None;
    }
    let part = message.parts.iter().find(|p| {
        p.content_type().is_some_and(|c| {
            c.ctype().eq_ignore_ascii_case("message")
                && c.subtype().is_some_and(|s| {
                    s.eq_ignore_ascii_case("delivery-status")
                        || s.eq_ignore_ascii_case("global-delivery-status")
                })
        })
    })?;
    Some(parse_status(&String::from_utf8_lossy(part.contents())))
}

/// The per-recipient fields of a `message/delivery-status` body (RFC 3464 §2.3): groups of
/// header fields separated by blank lines, the first about the message.
fn parse_status(body: &str) -> Report {
    let mut report = Report::default();
    let unfolded = body.replace("\r\n", "\n");
    for group in unfolded.split("\n\n") {
        let mut action = None;
        let mut recipient = None;
        let mut status = String::new();
        for line in group.lines() {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "action" => action = Some(value.to_ascii_lowercase()),
                "status" => status = value.to_owned(),
                "final-recipient" => {
                    recipient = value
                        .split_once(';')
                        .map(|(_, a)| a.trim().to_owned())
                        .or_else(|| Some(value.to_owned()));
                }
                _ => {}
            }
        }
        // A failure of the address itself (RFC 3463: 5.1.x bad mailbox or domain, 5.2.1
        // mailbox disabled); a refusal for policy or content (5.7.x) or a full mailbox says
        // nothing lasting about the address.
        let permanent = status.starts_with("5.1.") || status.starts_with("5.2.1");
        if action.as_deref() == Some("failed") && permanent {
            report.failed = true;
            report.recipients.extend(recipient);
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSN: &[u8] = b"From: MAILER-DAEMON@mx.example.net\r\n\
To: bounce-x@reply.example.com\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\
\r\n\
--B\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
The mail system could not deliver your message.\r\n\
--B\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.net\r\n\
\r\n\
Final-Recipient: rfc822; Ada@Example.com\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
--B--\r\n";

    #[test]
    fn a_failure_report_names_the_failed_recipient() {
        let m = MessageParser::default().parse(DSN).expect("parses");
        let r = delivery_status(&m).expect("a report");
        assert!(r.failed);
        assert_eq!(r.recipients, vec!["Ada@Example.com".to_owned()]);
    }

    #[test]
    fn a_refusal_for_policy_says_nothing_about_the_address() {
        let spam = String::from_utf8_lossy(DSN).replace("Status: 5.1.1", "Status: 5.7.1");
        let m = MessageParser::default()
            .parse(spam.as_bytes())
            .expect("parses");
        assert_eq!(delivery_status(&m).map(|r| r.failed), Some(false));
    }

    #[test]
    fn a_delay_is_not_a_failure_and_a_plain_message_is_no_report() {
        let delayed = String::from_utf8_lossy(DSN).replace("Action: failed", "Action: delayed");
        let m = MessageParser::default()
            .parse(delayed.as_bytes())
            .expect("parses");
        assert_eq!(delivery_status(&m).map(|r| r.failed), Some(false));
        let plain = MessageParser::default()
            .parse(b"From: a@b.example\r\nSubject: hi\r\n\r\nhello\r\n".as_slice())
            .expect("parses");
        assert_eq!(delivery_status(&plain), None);
    }
}
